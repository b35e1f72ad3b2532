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

sys.path.append(str(Path(__file__).resolve().parents[1]))  # the repository root, for `python segment/train.py`

from utils.engine.scripts import execute, script  # noqa: E402

parse_opt, main, run = script("segment", "train")

if __name__ == "__main__":
    execute("train", main, parse_opt)
