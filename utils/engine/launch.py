"""What a training script's main() does before and around the trainer, shared by train.py and segment/train.py.

``train_main(opt, callbacks, trainer_class, config_class)``, after the script has echoed its flags: resolve them
(``--resume`` reloads the run's own
opt.yaml; otherwise short file names are found under data/ and models/ and the run folder is numbered), echo them,
join the DDP job when launched, pick the device, then evolve hyperparameters or train once. The user's Namespace is
never modified: a resolved copy becomes the typed config the trainer runs on.
"""

import argparse
import math
import os
from pathlib import Path

import yaml

from models.experimental import is_checkpoint_path
from utils import checkpoint, dist
from utils.backend import banner, select_device
from utils.callbacks import Callbacks
from utils.errors import FlagError, InputError
from utils.evolve import evolve
from utils.files import ROOT, find_file, increment_path
from utils.loggers import Loggers, warn_unused_flags
from utils.log import LOGGER


def get_latest_run(search_dir="."):
    """Path of the most recently written last*.pt (or one-yolov5 last*.of) under search_dir (for a bare --resume)."""
    runs = sorted((p for p in Path(search_dir).rglob("last*") if is_checkpoint_path(p)), key=os.path.getmtime)
    return runs[-1] if runs else None


def resume_opt(opt):
    """--resume [path]: the run's own flags (its opt.yaml, else the checkpoint's), to continue in the same folder."""
    last = Path(opt.resume) if isinstance(opt.resume, str) else (get_latest_run(ROOT / "runs") or get_latest_run())
    if last is None or not last.exists():
        what = opt.resume if isinstance(opt.resume, str) else "no last.pt under runs/"
        raise FileNotFoundError(f"--resume: no checkpoint found ({what})")
    opt_yaml = last.parent.parent / "opt.yaml"
    if opt_yaml.is_file():
        with open(opt_yaml, errors="ignore") as f:
            d = yaml.safe_load(f)
    else:
        d = checkpoint.read(last).get("opt") or {}
    resumed = argparse.Namespace(**{**vars(opt), **d})
    resumed.cfg, resumed.weights, resumed.resume, resumed.exist_ok = "", str(last), True, True
    if last.parent.name == "weights" or not d.get("save_dir"):  # the run folder is where the checkpoint is (a saved
        resumed.save_dir = str(last.parent.parent)  # save_dir may be relative to another working folder: one-yolov5)
    resumed.backend = opt.backend or d.get("backend")
    return resumed


def resolve_opt(opt, default_project, evolve_project):
    """A resolved copy of the flags: file names found, run folder numbered (``evolve_project`` for --evolve when the
    project is the script's default). Scripts without --resume / --hyp / --cfg (classification) skip those steps."""
    if getattr(opt, "resume", False) and not getattr(opt, "evolve", None):
        return resume_opt(opt)
    opt = argparse.Namespace(**vars(opt))
    if hasattr(opt, "hyp"):  # detection and segmentation: short names of data/model/hyp files
        opt.data = find_file(opt.data, ("data",)) if opt.data else opt.data
        opt.cfg = find_file(opt.cfg, ("models",)) if opt.cfg else opt.cfg
        opt.hyp = find_file(opt.hyp, ("data",)) if not isinstance(opt.hyp, dict) else opt.hyp
        opt.weights = str(opt.weights)
    opt.project = str(opt.project)
    if getattr(opt, "evolve", None):
        if opt.project == str(default_project):
            opt.project = str(evolve_project)
        opt.exist_ok, opt.resume = opt.resume, False
    opt.save_dir = str(increment_path(Path(opt.project) / opt.name, exist_ok=opt.exist_ok))
    return opt


# the keys the detection/segmentation trainers, loss and augmentations read (every data/hyps/*.yaml has them)
HYP_KEYS = ("lr0", "lrf", "momentum", "weight_decay", "warmup_epochs", "warmup_momentum", "warmup_bias_lr", "box",
            "cls", "cls_pw", "obj", "obj_pw", "iou_t", "anchor_t", "hsv_h", "hsv_s", "hsv_v", "degrees", "translate",
            "scale", "shear", "perspective", "flipud", "fliplr", "mosaic", "mixup", "copy_paste")


def load_hyp(hyp):
    """The hyperparameter dict of --hyp (a YAML path; resumed runs carry the dict itself).

    Raises:
        InputError: the file is not a mapping, lacks a key, or holds a value that is not a finite number (a NaN
            learning rate would otherwise train silently into NaN weights); the message names the file and key.
    """
    where = "the resumed run's hyp" if isinstance(hyp, dict) else f"--hyp {hyp}"
    if isinstance(hyp, dict):
        d = dict(hyp)
    else:
        with open(hyp, errors="ignore") as f:
            d = yaml.safe_load(f)
    if not isinstance(d, dict):
        raise InputError(f"{where}: expected a mapping of hyperparameters (key: value), got {type(d).__name__}; "
                         f"see data/hyps/hyp.scratch-low.yaml")
    missing = [k for k in HYP_KEYS if k not in d]
    if missing:
        raise InputError(f"{where}: missing {', '.join(missing)}; copy them from data/hyps/hyp.scratch-low.yaml")
    for k, v in d.items():
        values = v if k == "anchors" and isinstance(v, (list, tuple)) else [v]
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in values):
            raise InputError(f"{where}: {k}: {v!r} is not a finite number")
    return d


def _device(opt):
    """The single process's device for --device; a device this machine lacks is a FlagError (one line)."""
    try:
        return select_device(opt.device, batch_size=opt.batch_size, log=LOGGER.info)
    except ValueError as e:  # the backend's message names the flag, the value and what this machine has
        raise FlagError(str(e)) from None


def train_main(opt, callbacks, trainer_class, config_class, default_project=ROOT / "runs/train",
               evolve_project=ROOT / "runs/evolve"):
    """A training script's main(): see the module docstring. Returns the final results (or evolve's hyp file)."""
    callbacks = callbacks or Callbacks()
    opt = resolve_opt(opt, default_project, evolve_project)
    LOGGER.debug(banner())
    d = dist.setup(opt, log=LOGGER.info)  # launched: checks, device, process group; else a no-op Dist()
    if opt.batch_size == -1 and d.ddp:  # AutoBatch sizes one process's memory (ultralytics refuses it too)
        raise FlagError("AutoBatch with --batch-size -1 is incompatible with multi-process DDP training: pass the "
                        "total --batch-size")
    if opt.batch_size < 1 and opt.batch_size != -1:
        raise FlagError(f"--batch-size {opt.batch_size}: pass a positive batch size, or -1 for AutoBatch")
    device = d.device if d.ddp else _device(opt)
    save_dir = d.broadcast_json(str(opt.save_dir), "run folder name")  # one folder even if ranks raced on exp<n>
    extra = {"hyp": load_hyp(opt.hyp)} if hasattr(opt, "hyp") else {}
    cfg = config_class.from_opt(opt, save_dir=save_dir, **extra)
    if cfg.evolve:
        warn_unused_flags(cfg.opt)  # --bucket, --entity, ...: one warning that they do nothing here (no loggers)
        return evolve(cfg, trainer_class, device, callbacks)
    loggers = None
    try:
        trainer = trainer_class(cfg, callbacks, device, dist=d)
        loggers = Loggers.attach(trainer) if d.main else None  # TensorBoard; W&B, ClearML, Comet when set up
        return trainer.fit()
    finally:
        if loggers is not None:
            loggers.detach()
        d.close()
