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
Outputs (as ultralytics): runs/train-cls/exp{n}/ with weights/best.pt and last.pt, results.csv and results.png,
train_images.jpg (a training batch) and test_images.jpg (true vs predicted classes on validation images).
"""

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # the repository root, for `python classify/train.py`

from utils.engine.scripts import execute, script  # noqa: E402

parse_opt, main, run = script("classify", "train")

if __name__ == "__main__":
    execute("train", main, parse_opt)
