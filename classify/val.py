"""Validate a YOLOv5 classifier on a class-folder dataset (its test/ split, else val/), on OneFlow or PyTorch.

Usage:
    python classify/val.py --weights yolov5s-cls.pt --data ../datasets/imagenet --img 224
    python classify/val.py --weights runs/train-cls/exp/weights/best.pt --data ../datasets/synthetic-cls --img 128
    python classify/val.py --weights best.onnx --data DIR        # exported files run one image at a time
Python:
    top1, top5, loss = classify.val.run(weights="best.pt", data="../datasets/mnist160")[0]
Prints top-1 / top-5 accuracy overall and per class (--verbose, on by default) and the speed per image.
"""

import sys
from pathlib import Path

FILE = Path(__file__).resolve()
ROOT = FILE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from utils import cli, errors  # noqa: E402
from utils.engine.classification import ClassificationValidator  # noqa: E402
from utils.engine.config import ClassifyValConfig  # noqa: E402


def run(model=None, dataloader=None, criterion=None, pbar=None, **kwargs):
    """Validate once with classify/val.py's flags as keywords; returns ((top1, top5, loss), None, speeds).

    ``model`` / ``dataloader`` / ``criterion`` / ``pbar`` are what a trainer passes (as ultralytics' run())."""
    cfg = ClassifyValConfig.from_opt(cli.options("classify/val", kwargs))
    return ClassificationValidator(cfg, dataloader=dataloader, compute_loss=criterion, pbar=pbar)(model)


def parse_opt(known=False):
    opt = cli.parse("classify/val", known=known)
    cli.print_args(vars(opt))
    return opt


def main(opt):
    return run(**{k: v for k, v in vars(opt).items() if k != "backend"})


if __name__ == "__main__":
    with errors.guard():  # a user error: one 'ERROR:' line and exit 1 (YOLOV5_TRACEBACK=1 adds the traceback)
        main(parse_opt())
