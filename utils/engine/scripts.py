"""The three functions every task script offers, made once: ``parse_opt(known)``, ``main(opt)``, ``run(**kwargs)``.

ultralytics' scripts each define these (``train.run(data=..., imgsz=...)``, ``segment.val.run(...)``); here a script
is its docstring and one line, ``parse_opt, main, run = script("segment", "val")``, and ``python segment/val.py``
calls ``execute("val", main, parse_opt)``. What the functions do is in utils/engine/tasks.py, keyed by the task table.

This module imports no framework: a training script parses its flags and calls ``dist.preflight()`` (which must come
before ``import oneflow`` under a launcher) before the engine is loaded, on the first call of main().
"""

from utils import cli, dist, errors


def _tasks():
    from utils.engine import tasks  # noqa: PLC0415 (the engine, hence the framework: loaded on first use)

    return tasks


def script(task, role):
    """(parse_opt, main, run) of ``task``'s ``role`` script ('train', 'val' or 'predict'; utils.cli.TASKS)."""
    name = getattr(cli.TASKS[task], role)
    return {"train": _train, "val": _val, "predict": _predict}[role](task, name)


def execute(role, main, parse_opt):
    """``python <script>``: training under a launcher ties the process to it first (dist.preflight); a user error is
    one 'ERROR:' line and exit 1 (YOLOV5_TRACEBACK=1 adds the traceback)."""
    if role == "train":
        dist.preflight()
        dist.call_main(main, parse_opt())
        return
    with errors.guard():
        main(parse_opt())


def _train(task, name):
    def parse_opt(known=False):
        """The script's flags (sys.argv), as argparse parses them."""
        return cli.parse(name, known=known)

    def main(opt, callbacks=None):
        """Train (or --evolve) with the flags in ``opt``, which is left unchanged; returns the final results."""
        return _tasks().train(task, opt, callbacks)

    def run(**kwargs):
        """The script with its flags as keywords, e.g. run(data=..., imgsz=320, weights=...); returns the flags."""
        opt = cli.options(name, kwargs)
        main(opt)
        return opt

    return parse_opt, main, run


def _val(task, name):
    def parse_opt(known=False):
        """The script's flags (sys.argv), adjusted as the original script does, and logged."""
        return _tasks().val_opt(task, cli.parse(name, known=known))

    def main(opt):
        """Run --task val/train/test once, or the speed / study sweeps over every --weights."""
        return _tasks().val_script_main(task, opt, run)

    def run(data=None, weights=None, **kwargs):
        """Validate once with the script's flags as keywords (``data`` and ``weights`` first, as ultralytics' run(),
        None for their defaults; plus what a trainer passes: model, dataloader, ...); returns (metric values + mean
        losses, per-class values, (pre-process, inference, NMS) ms per image)."""
        given = {k: v for k, v in (("data", data), ("weights", weights)) if v is not None}
        return _tasks().validate(task, **given, **kwargs)

    return parse_opt, main, run


def _predict(task, name):
    def parse_opt(known=False):
        """The script's flags (sys.argv), --imgsz as (h, w), logged."""
        return _tasks().predict_opt(task, cli.parse(name, known=known))

    def main(opt):
        """Predict with the flags in ``opt`` and save the results; returns the run folder (Path)."""
        return _tasks().predict(task, opt)

    def run(**kwargs):
        """The script with its flags as keywords; returns the run folder (Path)."""
        return main(cli.options(name, kwargs))

    return parse_opt, main, run
