"""Train a YOLOv5 detection model on a dataset, on OneFlow (default) or PyTorch.

Usage - from scratch (the built-in synthetic dataset; `make demo` runs this):
    python train.py --data synthetic.yaml --cfg yolov5n.yaml --weights '' --img 128 --epochs 32
Usage - from pretrained weights, any ultralytics dataset YAML:
    python train.py --data coco128.yaml --weights yolov5s.pt --img 640
Usage - resume the most recent (or a given) run:
    python train.py --resume [runs/train/exp/weights/last.pt]
Usage - PyTorch backend:
    python train.py --backend torch ...
Usage - multi-process DDP (--batch-size is the total; one process per CPU core or per GPU):
    python -m oneflow.distributed.launch --nproc_per_node 2 train.py --batch 16 ... [--device 0,1]
    torchrun --nproc_per_node 2 train.py --backend torch --batch 16 ... [--device 0,1]
Python:
    import train; train.run(data="coco128.yaml", imgsz=320, weights="yolov5n.pt")
"""

import sys
from pathlib import Path

FILE = Path(__file__).resolve()
ROOT = FILE.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from utils import cli, dist  # noqa: E402  (no framework import here: dist.preflight() must run before it)


def parse_opt(known=False):
    return cli.parse("train", known=known)


def main(opt, callbacks=None):
    """Train (or --evolve) with the flags in ``opt``, which is left unchanged; returns the final results."""
    from utils.engine.config import DetectTrainConfig  # noqa: PLC0415 (imports the framework: after preflight)
    from utils.engine.detection import DetectionTrainer  # noqa: PLC0415
    from utils.engine.launch import train_main  # noqa: PLC0415

    cli.print_args(vars(opt))
    return train_main(opt, callbacks, DetectionTrainer, DetectTrainConfig)


def run(**kwargs):
    """python train.py with keyword arguments, e.g. run(data='coco128.yaml', imgsz=320, weights='yolov5n.pt')."""
    opt = cli.options("train", kwargs)
    main(opt)
    return opt


if __name__ == "__main__":
    dist.preflight()  # under a launcher: tie this process to it, check MASTER_PORT (before `import oneflow`)
    dist.call_main(main, parse_opt())
