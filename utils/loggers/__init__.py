"""Training loggers at ultralytics' import path (``from utils.loggers import Loggers, GenericLogger``).

TensorBoard is on by default: an event file in the run folder holds every results.csv column as a scalar per epoch,
under the column's name (``train/box_loss``, ``metrics/mAP_0.5``, ``x/lr0``, ...), and the images ultralytics logs
there for the task: detection the result plots at the end (results.png, confusion_matrix.png, the F1/PR/P/R curves),
segmentation the train mosaics at batch 10 and the result plots and validation images at the end, classification
train_images.jpg at the start and test_images.jpg at the end. The model graph is not logged (ultralytics traces it
with torch.jit). Validation columns of an epoch that was not validated (``--noval``: all zero in results.csv, whose
layout stays ultralytics') are left out, so TensorBoard draws no unmeasured zeros.

Weights & Biases, ClearML and Comet are used when installed and set up (utils/loggers/remote.py); results.csv is
written by the trainer. The trainer reaches the loggers only through its callbacks (utils/callbacks.py), on rank 0.
"""

from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from utils.loggers import remote
from utils.loggers.remote import warn_unused_flags, web_project_name  # noqa: F401 (ultralytics' names)
from utils.log import LOGGER, colorstr

LOGGERS = ("csv", "tb", "wandb", "clearml", "comet")  # results.csv, TensorBoard, W&B, ClearML, Comet
DETECT_KEYS = ("train/box_loss", "train/obj_loss", "train/cls_loss", "metrics/precision", "metrics/recall",
               "metrics/mAP_0.5", "metrics/mAP_0.5:0.95", "val/box_loss", "val/obj_loss", "val/cls_loss", "x/lr0",
               "x/lr1", "x/lr2")
RESULT_PLOTS = ("results.png", "confusion_matrix.png", "F1_curve.png", "PR_curve.png", "P_curve.png", "R_curve.png")
VALIDATED_PREFIXES = ("metrics/", "val/", "test/")  # results.csv columns that only a validation measures


class LogPlan(NamedTuple):
    """The images (and final scalars) a task's run sends beyond the per-epoch scalars: each trainer's ``log_plan``.

    The default is detection's: the result plots at the end.
    """

    start_images: tuple = ()  # (file, title) pairs logged after the set-up (classification: train_images.jpg)
    mosaic_batch: Optional[int] = None  # with plots, the train*.jpg mosaics as 'Mosaics' after this batch
    end_images: tuple = ()  # (file, title) pairs logged at the end (classification: test_images.jpg)
    result_plots: bool = True  # results.png, the confusion matrix and curves at the end
    final_validation: bool = False  # also the final validation's numbers and val*.jpg, one step past the last epoch


def validated_columns(keys):
    """Indices of the columns of ``keys`` that only a validation fills (metrics and validation losses)."""
    return [i for i, k in enumerate(keys) if k.strip().startswith(VALIDATED_PREFIXES)]


def was_validated(keys, values):
    """False for a row whose validation columns are all exactly zero: results.csv's filler for an epoch that
    ``--noval`` did not validate (a measured validation loss is never exactly zero)."""
    cols = validated_columns(keys)
    return not cols or any(float(values[i]) != 0.0 for i in cols)


def validated_rows(names, values):
    """Which rows of results.csv (column ``names``, rows ``values``) hold a validation: every row but those before
    the last whose validation columns are all zero (what ``--noval`` writes for the epochs it did not validate)."""
    rows = np.array([was_validated(names, row) for row in np.asarray(values, dtype=float)], dtype=bool)
    if len(rows):
        rows[-1] = True  # the final epoch is always validated
    return rows


def _open_tensorboard(save_dir):
    from utils.loggers.tensorboard import SummaryWriter  # noqa: PLC0415 (imports tensorboard)
    try:
        return SummaryWriter(save_dir)
    except ImportError:
        LOGGER.warning("WARNING ⚠️ TensorBoard: the tensorboard package is not installed (pip install tensorboard); "
                       "no event file is written")
        return None


class _Sinks:
    """Where logged values go: the TensorBoard writer (or None) and the trackers that started."""

    def __init__(self, save_dir, opt, hyp, include):
        self.tb = None
        if "tb" in include and not opt.get("evolve"):
            self.tb = _open_tensorboard(save_dir)
            if self.tb is not None:
                LOGGER.info(f"{colorstr('TensorBoard: ')}Start with 'tensorboard --logdir {Path(save_dir).parent}', "
                            f"view at http://localhost:6006/")
        self.remotes = remote.start(opt, hyp, include)
        warn_unused_flags(opt, wandb_active=any(isinstance(r, remote.WandbRemote) for r in self.remotes))

    def scalars(self, metrics, step):
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()  # a run's curves are readable while it trains
        for r in self.remotes:
            r.log_metrics(metrics, step)

    def images(self, files, name, step):
        files = [Path(f) for f in files if Path(f).exists()]
        if self.tb is not None:
            for f in files:
                self.tb.add_image_file(f.stem, f, step)
            self.tb.flush()
        if files:
            for r in self.remotes:
                r.log_images(files, name, step)

    def model(self, path, epoch, metadata=None):
        if Path(path).exists():
            for r in self.remotes:
                r.log_model(path, epoch, metadata)

    def params(self, params):
        for r in self.remotes:
            r.update_params(params)

    def close(self):
        if self.tb is not None:
            self.tb.close()
            self.tb = None
        for r in self.remotes:
            r.finish()
        self.remotes = []


def _as_dict(opt):
    if opt is None:
        return {}
    return dict(opt) if isinstance(opt, dict) else dict(vars(opt))


class Loggers:
    """The training loggers as callbacks (ultralytics' ``Loggers``); ``attach(trainer)`` is how the engine uses them.

    Args:
        save_dir: the run folder (the event file goes there). weights: unused (ultralytics reads a W&B run id there).
        opt: the training flags (a dict or a Namespace). hyp: the hyperparameters. logger: the console logger.
        include: which of LOGGERS to use. keys: the results.csv columns after 'epoch' (or a function returning
            them, read at each epoch). plan: which images are logged when (LogPlan; the trainer's ``log_plan``).
    """

    def __init__(self, save_dir=None, weights=None, opt=None, hyp=None, logger=LOGGER, include=LOGGERS,
                 keys=DETECT_KEYS, plan=LogPlan()):
        self.save_dir = Path(save_dir)
        self.opt, self.hyp = _as_dict(opt), dict(hyp or {})
        self.logger, self.include, self.plan = logger, tuple(include), plan
        self.plots = not self.opt.get("noplots") and not self.opt.get("evolve")
        self._keys = keys
        self.epochs = int(self.opt.get("epochs") or 0)
        self.epoch = 0  # the epoch being trained (for images logged mid-epoch)
        self.sinks = _Sinks(self.save_dir, self.opt, self.hyp, self.include)
        self._callbacks = None

    @property
    def keys(self):
        return list(self._keys() if callable(self._keys) else self._keys)

    @property
    def tb(self):
        return self.sinks.tb

    # ------------------------------------------------------------------------------------- wiring to the engine
    @classmethod
    def attach(cls, trainer, include=LOGGERS):
        """Loggers for ``trainer``'s run, registered on its callbacks (call on rank 0; ``detach`` after the run)."""
        cfg = trainer.cfg
        loggers = cls(trainer.save_dir, getattr(cfg, "weights", None), cfg.opt, trainer.hyp, include=include,
                      keys=trainer.result_keys, plan=getattr(trainer, "log_plan", LogPlan()))
        loggers.register(trainer.callbacks)
        return loggers

    def register(self, callbacks):
        from utils.callbacks import HOOKS  # noqa: PLC0415
        for hook in HOOKS:
            if callable(getattr(self, hook, None)):
                callbacks.register_action(hook, name="loggers", callback=getattr(self, hook))
        self._callbacks = callbacks

    def detach(self):
        """Close the event file and trackers (also after a failed run) and leave the callbacks as they were."""
        self.sinks.close()
        if self._callbacks is not None:
            self._callbacks.remove_actions("loggers")
            self._callbacks = None

    # ---------------------------------------------------------------------------------------------- the hooks
    def on_pretrain_routine_end(self, *args):
        for file, title in self.plan.start_images:
            self.sinks.images([self.save_dir / file], title, 0)

    def on_train_batch_end(self, model, ni, imgs, targets, paths, vals=None):
        if self.plots and ni == self.plan.mosaic_batch:
            self.sinks.images(sorted(self.save_dir.glob("train*.jpg")), "Mosaics", self.epoch)

    def on_fit_epoch_end(self, vals, epoch, best_fitness=None, fi=None):
        keys = self.keys
        final = self.epochs and epoch + 1 >= self.epochs
        skip = set() if final or was_validated(keys, vals) else set(validated_columns(keys))
        self.sinks.scalars({k: float(v) for i, (k, v) in enumerate(zip(keys, vals)) if i not in skip}, epoch)
        self.epoch = epoch + 1

    def on_params_update(self, params):
        self.sinks.params(params)

    def on_train_end(self, last, best, epoch, results):
        save_dir = self.save_dir
        plots = [save_dir / f for f in RESULT_PLOTS]
        for file, title in self.plan.end_images:
            self.sinks.images([save_dir / file], title, epoch)
        if self.plan.final_validation:
            keys = self.keys
            first = sum(k.startswith("train/") for k in keys)  # the final validation's metrics and losses
            self.sinks.scalars(dict(zip(keys[first:first + len(results)], map(float, results))), self.epochs)
            self.sinks.images(plots, "Results", epoch + 1)
            self.sinks.images(sorted(save_dir.glob("val*.jpg")), "Validation", epoch + 1)
        elif self.plan.result_plots:
            self.sinks.images(plots, "Results", epoch)
        if not self.opt.get("evolve"):
            self.sinks.model(best if Path(best).exists() else last, epoch)
        self.sinks.close()


class GenericLogger:
    """ultralytics' task-neutral logger for scripts of one's own: results.csv, TensorBoard and W&B.

    Args:
        opt: needs save_dir (and project, name for W&B). console_logger: where the TensorBoard line goes.
    """

    def __init__(self, opt, console_logger=LOGGER, include=("tb", "wandb")):
        d = _as_dict(opt)
        self.save_dir = Path(d["save_dir"])
        self.console_logger = console_logger
        self.csv = self.save_dir / "results.csv"
        self.sinks = _Sinks(self.save_dir, d, d.get("hyp") or {}, tuple(include))

    @property
    def tb(self):
        return self.sinks.tb

    def log_metrics(self, metrics, epoch):
        keys, vals = ["epoch", *metrics], [epoch, *metrics.values()]
        header = "" if self.csv.exists() else ("%23s," * len(keys) % tuple(keys)).rstrip(",") + "\n"
        with open(self.csv, "a") as f:
            f.write(header + ("%23.5g," * len(vals) % tuple(vals)).rstrip(",") + "\n")
        self.sinks.scalars(metrics, epoch)

    def log_images(self, files, name="Images", epoch=0):
        self.sinks.images(files if isinstance(files, (list, tuple)) else [files], name, epoch)

    def log_graph(self, model, imgsz=(640, 640)):
        """The model graph is not logged (ultralytics traces it with torch.jit, which OneFlow lacks)."""

    def log_model(self, model_path, epoch=0, metadata=None):
        self.sinks.model(model_path, epoch, metadata)

    def update_params(self, params):
        self.sinks.params(params)

    def close(self):
        self.sinks.close()
