"""Experimental blocks, model ensembles, and ``attempt_load``: weights files -> ready models.

``attempt_load`` reads official ultralytics ``.pt`` files (whole pickled models), one-yolov5's ``oneflow.save``
checkpoints (``last.of``, ``yolov5s.of``, ``weights/last`` folders) and our own checkpoints (plain data) through
utils.checkpoint, which never executes pickled code; the network itself is always rebuilt from its YAML by our own
builder and the weights are copied in with their names and shapes checked.
"""

import os
from pathlib import Path

import numpy as np

from models.common import MixConv2d, Sum  # noqa: F401 (ultralytics import path)
from models.yolo import TASKS, Detect, load_model_yaml, model_task, reshape_classifier_output
from utils import checkpoint
from utils.backend import from_numpy, nn, to_numpy, torch, vision
from utils.downloads import attempt_download
from utils.errors import UserError
from utils.files import ROOT
from utils.log import LOGGER


class Ensemble(nn.ModuleList):
    """Several models whose decoded outputs are concatenated (NMS then merges them)."""

    def forward(self, x, augment=False, profile=False, visualize=False):
        y = [module(x, augment, profile, visualize)[0] for module in self]
        return torch.cat(y, 1), None


# ------------------------------------------------------------------------------------------------- checkpoint -> model
class WeightsError(UserError, ValueError):
    """Weights that do not fit the model they describe; the message names the file and the tensors."""


WEIGHTS_SUFFIXES = (".pt", ".of")  # checkpoint names: ours and ultralytics' (.pt), one-yolov5's (.of)


def is_checkpoint_path(path):
    """True for a name the checkpoint reader takes: ``*.pt`` / ``*.of``, or a folder that oneflow.save wrote
    (one-yolov5 v1.0 / v1.1 ``weights/last``); exported formats (.onnx, .torchscript, ...) are not checkpoints."""
    p = str(path).rstrip("/\\")
    return p.endswith(WEIGHTS_SUFFIXES) or checkpoint.is_oneflow_dir(p)


def _same_shape(a, b):
    """Shapes match; a one-element tensor also fits a scalar (OneFlow 0.9 gives 0-d tensors' data as shape (1,))."""
    a, b = tuple(a), tuple(b)
    return a == b or (int(np.prod(a)) == int(np.prod(b)) == 1 and min(len(a), len(b)) == 0)


def load_state_dict(model, state, source="weights"):
    """Copy a name -> numpy array mapping into ``model``, refusing missing, unexpected or mis-shaped tensors."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    bad = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
           for k in own if k in state and not _same_shape(state[k].shape, own[k].shape)]
    if missing or unexpected or bad:
        parts = [f"{len(missing)} missing (e.g. {missing[:3]})" if missing else "",
                 f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})" if unexpected else "",
                 f"{len(bad)} with wrong shapes (e.g. {bad[:3]})" if bad else ""]
        raise WeightsError(f"{source}: weights do not fit the model: {'; '.join(p for p in parts if p)}")
    converted = {}
    for k, v in own.items():
        a = np.asarray(state[k]).reshape(tuple(v.shape))
        converted[k] = from_numpy(a.astype(np.float32) if a.dtype.kind == "f" else a.astype(np.int64), dtype=v.dtype)
    model.load_state_dict(converted)
    return model


def model_to_dict(model, half=False):
    """Our checkpoint form of a model: its YAML, names, stride and a numpy state_dict (plain data only).

    A torchvision / flowvision classifier (``model.vision_name``, set by the classification trainer) has no YAML: its
    'yaml' entry is {'vision': name, 'nc': classes}, which rebuilds it from the active backend's model zoo.
    """
    task = model_task(model)
    sd = {}
    for k, v in model.state_dict().items():
        a = to_numpy(v)
        sd[k] = a.astype(np.float16) if half and a.dtype == np.float32 else a
    names = dict(model.names)
    spec = getattr(model, "yaml", None) or {"vision": model.vision_name, "nc": len(names)}
    stride = to_numpy(model.stride).ravel() if hasattr(model, "stride") else [32.0]
    return {"task": task, "yaml": spec, "yaml_file": getattr(model, "yaml_file", None), "names": names,
            "nc": int(len(names)), "stride": [float(s) for s in stride], "state_dict": sd}


def _names_dict(names, nc):
    if isinstance(names, dict):
        return {int(k): str(v) for k, v in names.items()}
    if isinstance(names, (list, tuple)):
        return dict(enumerate(str(n) for n in names))
    return {i: f"class{i}" for i in range(nc)}


def _cls_yaml_from_state(state):
    """Detection YAML + cutoff for an official -cls file, which stores no YAML: widths and depths read off shapes."""
    c0 = state["model.0.conv.weight"].shape[0]
    gw = c0 / 64
    n2 = len({k.split(".")[3] for k in state if k.startswith("model.2.m.")})
    gd = {1: 0.33, 2: 0.67, 3: 1.0, 4: 1.33}.get(n2, n2 / 3)
    cutoff = 1 + max(int(k.split(".")[1]) for k in state)
    y = load_model_yaml(ROOT / "models" / "yolov5s.yaml")
    cls_nc = int(state[f"model.{cutoff - 1}.linear.weight"].shape[0])
    y.update(depth_multiple=gd, width_multiple=gw, cutoff=cutoff, cls_nc=cls_nc)
    return y


def build_from_record(yaml_dict, task, state, source):
    """Build our model for ``task`` (a key of models.yolo.TASKS) from its YAML and load ``state`` into it."""
    yaml_dict = dict(yaml_dict)
    if task not in TASKS:
        raise checkpoint.CheckpointError(f"{source}: holds a model of task {task!r}; known tasks: {', '.join(TASKS)}")
    with _quiet():
        if "vision" in yaml_dict:  # a torchvision / flowvision classifier (see model_to_dict)
            model = reshape_classifier_output(vision.create_model(yaml_dict["vision"], pretrained=False),
                                              int(yaml_dict["nc"]))
            model.vision_name, model.names = yaml_dict["vision"], {i: f"class{i}" for i in range(int(yaml_dict["nc"]))}
        else:
            model = TASKS[task].model.from_record(yaml_dict)
    return load_state_dict(model, state, source)


class _quiet:
    """Silence the layer table while a model is rebuilt from a checkpoint (ultralytics unpickles silently)."""

    def __enter__(self):
        self.level = LOGGER.level
        LOGGER.setLevel(40)

    def __exit__(self, *exc):
        LOGGER.setLevel(self.level)


# the task of a pickled model, by class name: the table's model classes, and ultralytics' pre-v6.2 name of detection's
TASK_OF_CLASS = {**{row.model.__name__: task for task, row in TASKS.items()}, "Model": "detect"}


def _payload(rec, path):
    """What a model entry of a checkpoint holds, as plain data: task, yaml, state (numpy), names, yaml_file."""
    if isinstance(rec, checkpoint.ModuleRecord):  # official: a pickled module, as data
        task = TASK_OF_CLASS.get(rec.name)
        if task is None:
            raise checkpoint.CheckpointError(f"{path}: holds a {rec.cls}, not a YOLOv5 model")
        # before v6.0 Detect.anchor_grid was a registered buffer; it is a derived cache, rebuilt on the first call
        state = {k: v for k, v in rec.state_dict().items() if not k.endswith(".anchor_grid")}
        y = rec.get("yaml") or (_cls_yaml_from_state(state) if task == "classify" else None)
        if not y:
            raise checkpoint.CheckpointError(f"{path}: the pickled {rec.name} carries no 'yaml' to rebuild it from")
        return {"task": task, "yaml": y, "state": state, "names": rec.get("names"), "yaml_file": rec.get("yaml_file")}
    if isinstance(rec, dict) and "state_dict" in rec:  # ours
        return {"task": rec.get("task", "detect"), "yaml": rec["yaml"], "state": rec["state_dict"],
                "names": rec.get("names"), "yaml_file": rec.get("yaml_file")}
    raise checkpoint.CheckpointError(f"{path}: unrecognised model entry of type {type(rec).__name__}")


def _as_ours(payload):
    """A model payload in the form of our checkpoints' 'model' / 'ema' entries (what resuming reads)."""
    return {"task": payload["task"], "yaml": payload["yaml"], "yaml_file": payload["yaml_file"],
            "names": payload["names"], "state_dict": payload["state"]}


def read_weights(path, prefer_ema=True, resume=False):
    """Read a checkpoint: (checkpoint dict, payload of 'ema' or 'model', payload of 'ema' or None).

    The returned dict has 'model' and 'ema' in our form whatever wrote the file (pickled modules of ultralytics or
    one-yolov5 become {'task', 'yaml', 'names', 'state_dict', ...}); an optimizer state written by another program is
    dropped (a resumed training restarts its optimizer, with a warning when ``resume``).
    """
    ckpt = checkpoint.read(path)
    if not isinstance(ckpt, dict) or (ckpt.get("ema") is None and ckpt.get("model") is None):
        raise checkpoint.CheckpointError(f"{path}: not a YOLOv5 checkpoint (no 'model' or 'ema' entry)")
    ema = _payload(ckpt["ema"], path) if ckpt.get("ema") is not None else None
    main = ema if (prefer_ema and ema is not None) or ckpt.get("model") is None else _payload(ckpt["model"], path)
    ckpt = dict(ckpt)
    for key in ("model", "ema"):
        if isinstance(ckpt.get(key), checkpoint.ModuleRecord):
            ckpt[key] = _as_ours(_payload(ckpt[key], path))
    fitness = ckpt.get("best_fitness")
    if isinstance(fitness, np.ndarray):  # ultralytics and one-yolov5 keep fitness() output, an array of shape (1,)
        ckpt["best_fitness"] = float(fitness.ravel()[0]) if fitness.size else None
    opt_state = ckpt.get("optimizer")
    if opt_state is not None and not (isinstance(opt_state, dict) and "backend" in opt_state):
        ckpt["optimizer"] = None
    if resume and opt_state is not None and ckpt["optimizer"] is None:
        LOGGER.warning(f"WARNING ⚠️ {path}: its optimizer state was written by another program (ultralytics or "
                       f"one-yolov5); only the model weights are resumed, the optimizer starts afresh")
    return ckpt, main, ema


def load_checkpoint_model(path):
    """Read ``path`` (official ultralytics .pt or ours) and return (model in float32 eval mode, checkpoint dict)."""
    ckpt, p, _ = read_weights(path, prefer_ema=True)
    model = build_from_record(p["yaml"], p["task"], p["state"], path)
    model.names = _names_dict(p["names"], len(model.names))
    model.nc = len(model.names)
    if p["yaml_file"]:
        model.yaml_file = str(p["yaml_file"])
    return model.float().eval(), ckpt


def attempt_load(weights, device=None, inplace=True, fuse=True):
    """Load one model, or an Ensemble of several, from weights file(s), in eval mode (fused by default).

    Args:
        weights: a path or a list of paths (official ultralytics .pt, or checkpoints written by train.py).
        device: device to move the model(s) to.
        inplace: Detect in-place decoding flag (kept for API compatibility).
        fuse: fold BatchNorm into convolutions.
    """
    models = Ensemble()
    for w in weights if isinstance(weights, (list, tuple)) else [weights]:
        model, _ = load_checkpoint_model(attempt_download(w))
        if not hasattr(model, "stride"):
            model.stride = torch.tensor([32.0])
        if fuse and hasattr(model, "fuse"):
            with _quiet():
                model.fuse()
        model = model.eval()
        for m in model.modules():
            if isinstance(m, Detect):
                m.inplace = inplace
        models.append(model.to(device) if device is not None else model)
    if len(models) == 1:
        return models[-1]
    LOGGER.info(f"Ensemble created with {[str(w) for w in weights]}\n")
    for k in ("names", "nc", "yaml"):
        setattr(models, k, getattr(models[0], k))
    strides = [float(m.stride.max()) for m in models]
    models.stride = models[int(np.argmax(strides))].stride
    if not all(models[0].nc == m.nc for m in models):
        raise WeightsError(f"Models have different class counts: {[m.nc for m in models]}")
    return models


def transfer_weights(model, state, exclude=()):
    """Copy the tensors of ``state`` (name -> numpy) whose names and shapes fit ``model``, skipping names that contain
    any of ``exclude`` (e.g. 'anchor'); returns how many were copied. Used to start from pretrained weights."""
    own = model.state_dict()
    fit = {k: from_numpy(np.asarray(v, np.float32) if np.asarray(v).dtype.kind == "f" else np.asarray(v),
                         dtype=own[k].dtype)
           for k, v in state.items()
           if k in own and not any(x in k for x in exclude) and tuple(np.shape(v)) == tuple(own[k].shape)}
    model.load_state_dict(fit, strict=False)
    return len(fit)


def strip_optimizer(f):
    """Finalise one of our checkpoints for release, in place: the EMA weights in FP16 become 'model'; optimizer, EMA,
    updates and fitness are dropped. Returns the new file size in bytes."""
    ckpt = checkpoint.read(f)
    src = ckpt.get("ema") or ckpt["model"]
    src = dict(src, state_dict={k: v.astype(np.float16) if v.dtype == np.float32 else v
                                for k, v in src["state_dict"].items()})
    ckpt.update(model=src, ema=None, optimizer=None, updates=None, best_fitness=None, epoch=-1)
    checkpoint.write(ckpt, f)
    return os.path.getsize(f)


def save_weights(path, model, half=True, **extra):
    """Write ``model`` (and any plain-data ``extra`` entries) as our checkpoint at ``path``, atomically."""
    ckpt = {"model": model_to_dict(model, half=half), "ema": None, "epoch": -1, **extra}
    checkpoint.write(ckpt, Path(path))
    return path
