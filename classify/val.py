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

sys.path.append(str(Path(__file__).resolve().parents[1]))  # the repository root, for `python classify/val.py`

from utils.engine.scripts import execute, script  # noqa: E402

parse_opt, main, run = script("classify", "val")

if __name__ == "__main__":
    execute("val", main, parse_opt)
