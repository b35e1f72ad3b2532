"""The engine's task table, and what a task script's main() and run() do with it.

``TASKS`` names each task's trainer, validator and predictor (with the configs they take), its scripts and run
folders (utils/cli.py's row), and where --evolve writes. The scripts (train.py, segment/val.py, ...) are made by
utils/engine/scripts.py from these functions, so a task script holds no code of its own; a new task is one row here
(and one in models/yolo.py's and utils/cli.py's TASKS).
"""

from pathlib import Path
from typing import NamedTuple, Optional

from utils import cli
from utils.engine.classification import ClassificationPredictor, ClassificationTrainer, ClassificationValidator
from utils.engine.config import (ClassifyTrainConfig, ClassifyValConfig, DetectTrainConfig, PredictConfig,
                                 SegmentTrainConfig, ValConfig)
from utils.engine.detection import DetectionPredictor, DetectionTrainer, DetectionValidator
from utils.engine.launch import train_main
from utils.engine.segmentation import SegmentationPredictor, SegmentationTrainer, SegmentationValidator
from utils.engine.validator import STUDY_SIZES, val_main
from utils.files import ROOT


class EngineTask(NamedTuple):
    """A row of TASKS."""

    trainer: type
    train_config: type
    validator: type
    val_config: type
    predictor: type
    scripts: cli.TaskScripts  # its three scripts; their --project defaults are its run folders
    evolve_folder: Optional[Path]  # where --evolve runs go (None: the task has no --evolve)


TASKS = {
    "detect": EngineTask(DetectionTrainer, DetectTrainConfig, DetectionValidator, ValConfig, DetectionPredictor,
                         cli.TASKS["detect"], ROOT / "runs/evolve"),
    "segment": EngineTask(SegmentationTrainer, SegmentTrainConfig, SegmentationValidator, ValConfig,
                          SegmentationPredictor, cli.TASKS["segment"], ROOT / "runs/evolve-seg"),
    "classify": EngineTask(ClassificationTrainer, ClassifyTrainConfig, ClassificationValidator, ClassifyValConfig,
                           ClassificationPredictor, cli.TASKS["classify"], None),
}


# ------------------------------------------------------------------------------------------------------- training
def train(task, opt, callbacks=None):
    """A training script's main(opt, callbacks): train (or --evolve) with ``opt``, left unchanged."""
    row = TASKS[task]
    cli.print_args(vars(opt), name=row.scripts.train)
    project = row.scripts.run_folder("train")
    return train_main(opt, callbacks, row.trainer, row.train_config, default_project=project,
                      evolve_project=row.evolve_folder or project)


# ----------------------------------------------------------------------------------------------------- validation
def validate(task, /, **kwargs):
    """A val script's run(**kwargs): validate once. ``kwargs`` are the script's flags plus what a trainer passes
    (``model``, and the validator's own arguments: dataloader, save_dir, plots, callbacks, compute_loss and the
    task's extras, under ultralytics' names; ``task`` is positional only: val.py has a --task flag); returns the
    validator's (results, per-class values, speeds)."""
    row = TASKS[task]
    v = row.validator
    model = kwargs.pop("model", None)
    extras = {v.run_args.get(k, k): kwargs.pop(k) for k in list(kwargs) if k in v.run_args or k in v.init_args}
    opt = cli.options(row.scripts.val, {**v.run_defaults, **kwargs})
    return v(row.val_config.from_opt(opt), **extras)(model)


def val_opt(task, opt):
    """A val script's parse_opt() after parsing: the validator's adjustments (utils.engine.validator), logged."""
    row = TASKS[task]
    opt = row.validator.adjust_opt(opt)
    cli.print_args(vars(opt), name=row.scripts.val)
    return opt


def val_script_main(task, opt, run):
    """A val script's main(opt): --task val/train/test once, or the speed / study sweeps (detection tasks)."""
    v = TASKS[task].validator
    if v.sweeps:
        return val_main(opt, run, STUDY_SIZES, *v.flag_warnings())
    return run(**{k: x for k, x in vars(opt).items() if k != "backend"})


# ----------------------------------------------------------------------------------------------------- prediction
def predict(task, opt):
    """A predict script's main(opt): predict with ``opt`` and save the results; returns the run folder."""
    row = TASKS[task]
    return row.predictor(PredictConfig.from_opt(opt, **row.predictor.config_defaults))()


def predict_opt(task, opt):
    """A predict script's parse_opt() after parsing: --imgsz as (h, w), logged."""
    opt.imgsz *= 2 if len(opt.imgsz) == 1 else 1
    cli.print_args(vars(opt), name=TASKS[task].scripts.predict)
    return opt
