"""The validation loop every task shares (``Validator``); a task subclass computes its metrics.

The base owns: device and model set-up (a standalone run loads ``cfg.weights``; a trainer passes the model it trains
and its loader), the run folder, the batch loop with pre-process / inference / post-process timings per image, the
accumulated validation loss (as many items as the task's loss has), the progress bar and callbacks. A task supplies:

    load_data()                                the dataset description (standalone runs): sets self.data, self.nc
    load_model()                               (model, stride, names, pt) from cfg.weights (standalone runs)
    build_dataloader()                         the loader of the split being validated (standalone runs)
    preprocess(batch) -> batch                 the record (utils/data/batch.py), 'img' float 0-1 on the device
    inference(batch) -> (preds, train_out)     train_out feeds the loss (None when there is none)
    loss_items(train_out, batch)               the detached loss items of one batch
    postprocess(preds, batch)                  NMS and the like
    update_metrics(preds, batch)               per-image matching and statistics
    plot_batch(batch_i, batch, preds), header(), init_metrics(), finalize() -> (metric values, per-class values)

and, for the val scripts (utils/engine/tasks.py), ``run_defaults``, ``init_args``, ``run_args``, ``sweeps`` and
``adjust_opt(opt)``. Detection's validator adds the per-image hooks segmentation fills in (utils/engine/detection.py).

A call returns ``(metric values + mean loss items, per-class values, (pre-process, inference, post-process) ms)``.
"""

import zipfile
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
from tqdm import tqdm

from models.experimental import attempt_load, is_checkpoint_path
from models.yolo import model_task
from utils.backend import cuda_available, inference_mode, nn, select_device, time_sync, to_numpy
from utils.backend.graph import compile_forward
from utils import cli
from utils.callbacks import Callbacks
from utils.data.batch import AnyBatch, Tensor
from utils.errors import FlagError, UserError
from utils.files import increment_path
from utils.log import LOGGER, TQDM_BAR_FORMAT
from utils.plots import plot_val_study
from utils.runtime import DetectMultiBackend, UnsupportedFormatError

TASKS = ("train", "val", "test", "speed", "study")


class ValidationError(UserError, ValueError):
    """Inputs that cannot be validated together (weights vs data, missing split); the message says how to fix it."""


def load_weights(weights, device, task, script, half=False, dnn=False, data=None):
    """The model runner of a standalone validation: returns (model, stride, names, pt).

    ``.pt`` files go through models.experimental.attempt_load (several files form an Ensemble); exported formats
    (.onnx, .torchscript) through ``DetectMultiBackend``. ``task`` is the model kind ``script`` validates.
    """
    files = weights if isinstance(weights, (list, tuple)) else [weights]
    if not files or any(w is None or str(w) == "" for w in files):
        raise ValidationError("no --weights given: pass a .pt file (or several for an ensemble)")
    if any(not is_checkpoint_path(w) for w in files):
        if len(files) > 1:
            raise ValidationError(f"{[str(w) for w in files]}: only .pt weights can form an ensemble")
        try:
            model = DetectMultiBackend(str(files[0]), device=device, dnn=dnn, data=data, fp16=half)
        except (UnsupportedFormatError, FileNotFoundError) as e:
            raise ValidationError(str(e)) from None
        check_task(model.task, task, files[0], script)
        return model, model.stride, model.names, False
    model = attempt_load([str(w) for w in files] if len(files) > 1 else str(files[0]), device=device)
    check_task(model_task(model), task, files[0], script)
    model = model.half() if half else model.float()
    names = model.names if hasattr(model, "names") else model.module.names
    return model, max(int(model.stride.max()), 32), names, True


def check_task(found, expected, weights, script):
    """Refuse weights of another task, pointing at the script that validates them (utils.cli.TASKS)."""
    if found != expected:
        other = cli.TASKS[found].file("val") if found in cli.TASKS else "the matching script"
        raise ValidationError(f"{weights} holds a {found} model: {script} validates {expected} models; use {other}")


class Timer:
    """Accumulated wall time of a code block, synchronising CUDA first (ultralytics' Profile)."""

    def __init__(self):
        self.t = 0.0

    def __enter__(self):
        self.start = time_sync()
        return self

    def __exit__(self, *exc):
        self.t += time_sync() - self.start


class Validator:
    """One validation run per call.

    Args:
        cfg: a ValConfig (utils.engine.config) or the task's own config.
        dataloader: the loader a trainer already has (standalone runs build one from cfg).
        save_dir: where plots and files go (standalone runs: an incremented cfg.project/cfg.name).
        plots: draw batches, curves and matrices. callbacks: ultralytics' on_val_* hooks.
        compute_loss: the trainer's loss; its items are averaged over the batches and appended to the results.
    """

    speed_names = ("pre-process", "inference", "NMS")
    loss_count = 0  # loss items appended to the results (zeros when no loss is computed), as ultralytics
    graph = None  # --graph: compile the forward (None: cfg.graph; a trainer sets its own flag)
    compiled = None  # the compiled forward, kept across calls (a trainer validates the same EMA model every epoch)

    # how a val script's run(**kwargs) (utils/engine/tasks.validate) builds the validator: its defaults for the
    # flags, the constructor arguments it takes, and ultralytics' run() names for some of them
    run_defaults = {}
    init_args = ("dataloader", "save_dir", "plots", "callbacks", "compute_loss")
    run_args = {}
    sweeps = False  # --task speed / study (the detection tasks)

    @classmethod
    def adjust_opt(cls, opt):
        """The parsed flags as the original script adjusts them before running (returns ``opt``)."""
        return opt

    def __init__(self, cfg, dataloader=None, save_dir=None, plots=True, callbacks=None, compute_loss=None):
        self.cfg = cfg
        self.dataloader, self.plots, self.compute_loss = dataloader, plots, compute_loss
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self.callbacks = callbacks or Callbacks()

    # ------------------------------------------------------------------------------------------------------ set-up
    def setup(self, model):
        """Use ``model`` (a trainer's, on its device) or load cfg.weights; build the loader when none was given."""
        cfg = self.cfg
        self.training = model is not None
        self.dt = (Timer(), Timer(), Timer())
        self.seen = 0
        if self.training:
            self.device = next(model.parameters()).device
            self.half = bool(cfg.half) and self.device.type != "cpu"
            self.model = model.half() if self.half else model.float()
            self.pt, self.stride, self.names = True, None, model.names
            self.data = cfg.data if isinstance(cfg.data, dict) else self.load_data()
            self.save_dir = self.save_dir or Path("")
        else:
            self.device = select_device(cfg.device, batch_size=cfg.batch_size, log=LOGGER.info)
            self.half = bool(cfg.half) and self.device.type != "cpu"  # FP16 on CUDA only
            self.data = self.load_data()  # before the weights: a bad dataset fails fast
            if self.save_dir is None:
                self.save_dir = increment_path(Path(cfg.project) / cfg.name, exist_ok=cfg.exist_ok)
                self.make_save_dir()
            self.model, self.stride, self.names, self.pt = self.load_model()
        self.model.eval()
        if (self.graph if self.graph is not None else getattr(cfg, "graph", False)) and self.pt:
            self.model = self.compiled_forward(self.model)
        if isinstance(self.names, (list, tuple)):
            self.names = dict(enumerate(self.names))
        if self.dataloader is None:
            self.dataloader = self.build_dataloader()

    def compiled_forward(self, model):
        """``model`` behind --graph's compiled forward (OneFlow nn.Graph per input shape, torch.compile on PyTorch)."""
        if self.compiled is None or self.compiled.module is not model:
            self.compiled = compile_forward(model, log=LOGGER.info)
        return self.compiled

    def make_save_dir(self):
        self.save_dir.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------------------------------------------- the loop
    def __call__(self, model=None):
        with inference_mode():
            self.setup(model)
            self.init_metrics()
            self.callbacks.run("on_val_start")
            loss = None
            for batch_i, raw in enumerate(self.progress_bar()):
                self.callbacks.run("on_val_batch_start")
                with self.dt[0]:
                    batch = self.preprocess(raw)
                with self.dt[1]:
                    preds, train_out = self.inference(batch)
                if self.compute_loss:
                    items = self.loss_items(train_out, batch)
                    loss = items if loss is None else loss + items
                with self.dt[2]:
                    preds = self.postprocess(preds, batch)
                self.update_metrics(preds, batch)
                if self.plots and batch_i < 3:
                    self.plot_batch(batch_i, batch, preds)
                self.end_batch(batch_i, batch, preds)
            results, per_class = self.finalize()
            self.model.float()  # back to FP32 for training
        n = max(len(self.dataloader), 1)
        losses = (to_numpy(loss) / n).tolist() if loss is not None else [0.0] * self.loss_count
        return (*results, *losses), per_class, self.speeds()

    def progress_bar(self):
        return self.tqdm(self.dataloader, self.header())

    @staticmethod
    def tqdm(loader, desc, leave=True):
        return tqdm(loader, desc=desc, bar_format=TQDM_BAR_FORMAT, leave=leave)

    def speeds(self):
        """(pre-process, inference, post-process) milliseconds per image."""
        return tuple(x.t / max(self.seen, 1) * 1e3 for x in self.dt)

    def log_speeds(self, shape):
        if not self.training:
            names = ", ".join(f"%.1fms {n}" for n in self.speed_names)
            LOGGER.info(f"Speed: {names} per image at shape {shape}" % self.speeds())

    def end_batch(self, batch_i: int, batch: AnyBatch, preds: list) -> None:
        """The on_val_batch_end callback (tasks pass ultralytics' arguments)."""
        self.callbacks.run("on_val_batch_end")

    # ------------------------------------------------------------------------------------------------ task hooks
    def header(self) -> str:
        return ""

    def load_data(self) -> dict:
        raise NotImplementedError

    def load_model(self) -> tuple[nn.Module, int, dict, bool]:
        raise NotImplementedError

    def build_dataloader(self) -> Iterable:
        raise NotImplementedError

    def preprocess(self, raw: AnyBatch) -> AnyBatch:
        raise NotImplementedError

    def inference(self, batch: AnyBatch) -> tuple[Any, Any]:
        raise NotImplementedError

    def loss_items(self, train_out: Any, batch: AnyBatch) -> Tensor:
        return self.compute_loss(train_out, batch)[1]

    def init_metrics(self) -> None:
        raise NotImplementedError

    def postprocess(self, preds: Any, batch: AnyBatch) -> list:
        return preds

    def update_metrics(self, preds: list, batch: AnyBatch) -> None:
        raise NotImplementedError

    def plot_batch(self, batch_i: int, batch: AnyBatch, preds: list) -> None:
        pass

    def finalize(self) -> tuple[tuple, Optional[np.ndarray]]:
        """Compute, print and save the metrics; return (metric values, per-class values)."""
        raise NotImplementedError


# ------------------------------------------------------------------------------------------------ --task speed/study
STUDY_SIZES = tuple(range(256, 1536 + 128, 128))  # --task study image sizes (x axis)


def val_main(opt, run, sizes, log, hybrid_note):
    """A val script's main(): --task val/train/test once (warning as ultralytics on --conf-thres > 0.001 and on
    --save-hybrid, through ``log`` with ``hybrid_note``: each script keeps its original's wording), or the speed /
    study sweeps over every --weights."""
    if opt.task not in TASKS:
        raise FlagError(f"--task {opt.task} is not one of {', '.join(TASKS)}")
    if opt.task in ("train", "val", "test"):
        if opt.conf_thres > 0.001:  # https://github.com/ultralytics/yolov5/issues/1466
            log(f"WARNING ⚠️ confidence threshold {opt.conf_thres} > 0.001 produces invalid results")
        if opt.save_hybrid:
            log(f"WARNING ⚠️ {hybrid_note}")
        return run(**{k: v for k, v in vars(opt).items() if k != "backend"})
    return speed_and_study(opt, run, sizes)


def speed_and_study(opt, run, sizes=STUDY_SIZES):
    """val.py --task speed (each --weights at conf 0.25 / IoU 0.45) or --task study (mAP and speed at every size).

    ``run`` is the script's run(**kwargs). The study writes one study_<data>_<weights>.txt per model into the current
    folder (P, R, mAP50, mAP50-95, the losses, 3 speeds per row), zips them into study.zip and plots study.png.
    """
    kwargs = {k: v for k, v in vars(opt).items() if k != "backend"}
    kwargs["half"] = cuda_available() and opt.device != "cpu"  # FP16 for fastest results
    weights = opt.weights if isinstance(opt.weights, list) else [opt.weights]
    if opt.task == "speed":
        kwargs.update(conf_thres=0.25, iou_thres=0.45, save_json=False)
        return [run(**dict(kwargs, weights=w, plots=False)) for w in weights]
    files = []
    for w in weights:
        f = Path(f"study_{Path(kwargs['data']).stem}_{Path(w).stem}.txt")
        rows = []
        for size in sizes:
            LOGGER.info(f"\nRunning {f} --imgsz {size}...")
            r, _, t = run(**dict(kwargs, weights=w, imgsz=size, plots=False))
            rows.append(list(r) + list(t))
        np.savetxt(f, rows, fmt="%10.4g")
        files.append(f)
    with zipfile.ZipFile("study.zip", "w") as z:
        for f in files:
            z.write(f)
    plot_val_study(x=list(sizes))
    return files
