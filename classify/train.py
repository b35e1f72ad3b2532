"""Train a YOLOv5 classifier (or a torchvision / flowvision model) on a class-folder dataset, on OneFlow or PyTorch.

Usage - dataset folders hold train/<class>/*.jpg and val/<class>/*.jpg (or test/); names ultralytics publishes
(mnist, cifar10, imagenette160, ...) are downloaded into ../datasets when missing:
    python classify/train.py --model yolov5s-cls.pt --data imagenette160 --epochs 5 --img 224
    python classify/train.py --model yolov5n.pt --data ../datasets/synthetic-cls --img 128   # detector cut at 10
    python classify/train.py --model yolov5n.yaml --pretrained False --data DIR --cutoff 10  # from scratch
    python classify/train.py --model resnet50 --data DIR    # torchvision (PyTorch) / flowvision (OneFlow) name
Usage - multi-process DDP (--batch-size is the total):
    python -m oneflow.distributed.launch --nproc_per_node 2 classify/train.py --batch 64 ...
    torchrun --nproc_per_node 2 classify/train.py --backend torch --batch 64 ...
Python:
    from classify import train; train.run(model="yolov5n.yaml", data="../datasets/synthetic-cls", imgsz=128)
"""

import sys
from pathlib import Path

FILE = Path(__file__).resolve()
ROOT = FILE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from utils import cli, dist  # noqa: E402  (no framework import here: dist.preflight() must run before it)


def parse_opt(known=False):
    return cli.parse("classify/train", known=known)


def main(opt, callbacks=None):
    """Train with the flags in ``opt`` (left unchanged); returns (val loss, top-1, top-5) of the last epoch."""
    from utils.engine.classification import ClassificationTrainer  # noqa: PLC0415 (after preflight: framework)
    from utils.engine.config import ClassifyTrainConfig  # noqa: PLC0415
    from utils.engine.launch import train_main  # noqa: PLC0415

    cli.print_args(vars(opt))
    return train_main(opt, callbacks, ClassificationTrainer, ClassifyTrainConfig,
                      default_project=ROOT / "runs/train-cls")


def run(**kwargs):
    """classify/train.py with keyword arguments, e.g. run(model='yolov5n.yaml', data='mnist160', imgsz=64)."""
    opt = cli.options("classify/train", kwargs)
    main(opt)
    return opt


if __name__ == "__main__":
    dist.preflight()
    dist.call_main(main, parse_opt())
