"""Train a YOLOv5 instance-segmentation model on a polygon-labelled dataset, on OneFlow (default) or PyTorch.

Usage - from scratch on the built-in synthetic polygons (written on first use by data/synthetic-seg.yaml):
    python segment/train.py --data synthetic-seg.yaml --cfg yolov5n-seg.yaml --weights '' --img 128 --epochs 20
Usage - fine-tune official weights, any ultralytics segmentation dataset YAML:
    python segment/train.py --data coco128-seg.yaml --weights yolov5s-seg.pt --img 640
Usage - resume, masks kept per instance, full-size masks:
    python segment/train.py --resume [runs/train-seg/exp/weights/last.pt]
    python segment/train.py ... --no-overlap --mask-ratio 1
Usage - multi-process DDP (--batch-size is the total):
    python -m oneflow.distributed.launch --nproc_per_node 2 segment/train.py --batch 16 ...
    torchrun --nproc_per_node 2 segment/train.py --backend torch --batch 16 ...
Python:
    from segment import train; train.run(data="synthetic-seg.yaml", cfg="yolov5n-seg.yaml", weights="", imgsz=128)
"""

import sys
from pathlib import Path

FILE = Path(__file__).resolve()
ROOT = FILE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from utils import cli, dist  # noqa: E402  (no framework import here: dist.preflight() must run before it)


def parse_opt(known=False):
    return cli.parse("segment/train", known=known)


def main(opt, callbacks=None):
    """Train (or --evolve) with the flags in ``opt``, which is left unchanged; returns the final results."""
    from utils.engine.config import SegmentTrainConfig  # noqa: PLC0415 (imports the framework: after preflight)
    from utils.engine.launch import train_main  # noqa: PLC0415
    from utils.engine.segmentation import SegmentationTrainer  # noqa: PLC0415

    cli.print_args(vars(opt))
    return train_main(opt, callbacks, SegmentationTrainer, SegmentTrainConfig, default_project=ROOT / "runs/train-seg",
                      evolve_project=ROOT / "runs/evolve-seg")


def run(**kwargs):
    """segment/train.py with keyword arguments, e.g. run(data='coco128-seg.yaml', weights='yolov5n-seg.pt')."""
    opt = cli.options("segment/train", kwargs)
    main(opt)
    return opt


if __name__ == "__main__":
    dist.preflight()  # under a launcher: tie this process to it, check MASTER_PORT (before `import oneflow`)
    dist.call_main(main, parse_opt())
