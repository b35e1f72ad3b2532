"""The typed settings the engine runs on: a script's argparse Namespace stops at ``from_opt``.

A script parses its flags (utils/cli.py declares them and their defaults, once), resolves what needs the file system
(dataset/model/hyp files, the run folder, --resume) and builds one frozen config here; the engine reads only these
fields and never sees or changes the user's Namespace. The fields carry no defaults of their own: library callers
build a config from ``utils.cli.options(script, kwargs)`` (the flags' defaults plus their keywords), the way
``run(**kwargs)`` does. ``opt`` on a training config is the plain-data record of the flags that ultralytics writes to
``opt.yaml`` and into checkpoints (``--resume`` reads it back).
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path


def plain(obj):
    """Values as plain data for YAML and checkpoints (paths -> str, tuples -> lists, numpy scalars -> numbers)."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and hasattr(obj, "dtype"):  # numpy scalar
        return obj.item()
    return obj


class _FromOpt:
    """``from_opt``: the dataclass fields found in a Namespace (plus changes); ``replace``: a changed copy."""

    @classmethod
    def from_opt(cls, opt, **changes):
        values = {**vars(opt), **changes}
        names = {f.name for f in dataclasses.fields(cls)}
        if "opt" in names:
            values["opt"] = plain({k: v for k, v in values.items() if k != "opt"})
        missing = names - set(values)
        if missing:
            raise TypeError(f"{cls.__name__}: no value for {sorted(missing)}")
        return cls(**{k: v for k, v in values.items() if k in names})

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class TrainConfig(_FromOpt):
    """What every trainer reads, whatever the task.

    Attributes:
        data: dataset YAML path (detect/segment) or dataset folder / name (classify).
        epochs: total epochs. batch_size: images per optimizer step over all processes. imgsz: train/val image size.
        save_dir: the run folder (runs/train/exp*), already chosen by the script.
        device: '--device' string ('' / 'cpu' / '0' / '0,1'). workers: dataloader workers per process.
        optimizer: 'SGD' | 'Adam' | 'AdamW' | 'RMSProp'. label_smoothing: target smoothing epsilon.
        cache: None | 'ram' | 'disk'. seed: global seed. nosave: only save the final checkpoint.
        patience: epochs without improvement before stopping (None or <= 0: never).
        noplots: no plot files. noval: validate the final epoch only. resume: continue the run of the weights.
        evolve: hyperparameter-evolution generations, None for a normal run. sync_bn: SyncBatchNorm under DDP.
        multi_tensor_optimizer: fused optimizer step and EMA update (OneFlow CUDA; elsewhere a notice).
        graph: compile the validation forward (OneFlow nn.Graph; torch.compile on PyTorch) and, on OneFlow, the
            training step and the SGD optimizer step (utils/backend/graph.py says where and why not).
        opt: the flags as plain data (opt.yaml, checkpoints).
    """

    data: str
    epochs: int
    batch_size: int
    imgsz: int
    save_dir: Path
    device: str
    workers: int
    optimizer: str
    label_smoothing: float
    cache: str
    seed: int
    nosave: bool
    patience: int
    noplots: bool
    noval: bool
    resume: bool
    evolve: int
    sync_bn: bool
    multi_tensor_optimizer: bool
    graph: bool
    opt: dict

    def __post_init__(self):
        object.__setattr__(self, "save_dir", Path(self.save_dir))
        object.__setattr__(self, "resume", bool(self.resume))


@dataclass(frozen=True)
class DetectTrainConfig(TrainConfig):
    """Detection training (train.py).

    Attributes:
        weights: initial weights ('' from scratch). cfg: model YAML (needed from scratch; with weights: rebuilt
            from it).
        hyp: the hyperparameters as in the hyp YAML (unscaled).
        rect, quad, multi_scale, image_weights, single_cls: ultralytics' data options.
        noautoanchor: skip AutoAnchor. cos_lr: cosine schedule. freeze: [n] freezes layers 0..n-1, a longer list those
            indices. save_period: an extra epoch<n>.pt every n epochs (< 1: never).
    """

    weights: str
    cfg: str
    hyp: dict
    rect: bool
    quad: bool
    multi_scale: bool
    image_weights: bool
    single_cls: bool
    noautoanchor: bool
    cos_lr: bool
    freeze: tuple
    save_period: int
    bbox_iou_optim: bool

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "weights", str(self.weights or ""))
        object.__setattr__(self, "cfg", str(self.cfg or ""))
        object.__setattr__(self, "freeze", tuple(self.freeze))
        object.__setattr__(self, "hyp", dict(self.hyp))


@dataclass(frozen=True)
class SegmentTrainConfig(DetectTrainConfig):
    """Instance-segmentation training (segment/train.py): detection's settings plus the mask targets.

    Attributes:
        mask_ratio: ground-truth masks are kept at 1/mask_ratio of the image size.
        overlap: one index image of all instances per picture (ultralytics' default) instead of one mask each.
    """

    mask_ratio: int
    overlap: bool

    @classmethod
    def from_opt(cls, opt, **changes):
        return super().from_opt(opt, overlap=not opt.no_overlap, **changes)


@dataclass(frozen=True)
class ClassifyTrainConfig(TrainConfig):
    """Image-classification training (classify/train.py).

    Attributes:
        model: -cls weights, a detection .pt / YAML to cut at ``cutoff``, or a torchvision model name.
        pretrained: start from pretrained weights (torchvision names). lr0, decay: learning rate, weight decay.
        cutoff: layer index where a detection model is cut for the Classify head. dropout: head dropout (None: keep).
        verbose: per-class accuracy at the end.
    """

    model: str
    pretrained: bool
    lr0: float
    decay: float
    cutoff: int
    dropout: float
    verbose: bool

    @classmethod
    def from_opt(cls, opt, **changes):
        """classify/train.py has no --patience/--noval/--noplots/--resume/--evolve/--sync-bn: v7.0 never stops early,
        validates and plots every run, and cannot resume or evolve."""
        pretrained = opt.pretrained
        if isinstance(pretrained, str):  # --pretrained False
            pretrained = pretrained.strip().lower() not in ("false", "0", "no", "none", "")
        fixed = dict(patience=None, noval=False, noplots=False, resume=False, evolve=None, sync_bn=False)
        return super().from_opt(opt, **{**fixed, "pretrained": pretrained, **changes})


@dataclass(frozen=True)
class ClassifyValConfig(_FromOpt):
    """A standalone validation's settings that every task has (classify/val.py's flags, all of them): data, weights
    (a path or a list: an ensemble), batch_size, imgsz, device, workers, verbose, project, name, exist_ok, half, dnn,
    graph."""

    data: object
    weights: object
    batch_size: int
    imgsz: int
    device: str
    workers: int
    verbose: bool
    project: Path
    name: str
    exist_ok: bool
    half: bool
    dnn: bool
    graph: bool


@dataclass(frozen=True)
class ValConfig(ClassifyValConfig):
    """A standalone detection or segmentation validation (val.py, segment/val.py; the trainer sets the fields it uses
    too): ClassifyValConfig's settings plus conf_thres, iou_thres, max_det, task ('train'|'val'|'test'|'speed'|'study'),
    single_cls, augment, save_txt, save_hybrid, save_conf, save_json."""

    conf_thres: float
    iou_thres: float
    max_det: int
    task: str
    single_cls: bool
    augment: bool
    save_txt: bool
    save_hybrid: bool
    save_conf: bool
    save_json: bool


@dataclass(frozen=True)
class PredictConfig(_FromOpt):
    """A prediction run (detect.py, segment/predict.py, classify/predict.py; flags a task lacks take the values
    that make them inert: no NMS settings for classify, retina_masks only for segment)."""

    weights: object
    source: str
    data: object
    imgsz: tuple
    device: str
    view_img: bool
    save_txt: bool
    nosave: bool
    augment: bool
    visualize: bool
    update: bool
    project: Path
    name: str
    exist_ok: bool
    half: bool
    dnn: bool
    graph: bool
    vid_stride: int
    conf_thres: float
    iou_thres: float
    max_det: int
    save_conf: bool
    save_crop: bool
    classes: tuple
    agnostic_nms: bool
    line_thickness: int
    hide_labels: bool
    hide_conf: bool
    retina_masks: bool
