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

from utils.engine.scripts import execute, script

parse_opt, main, run = script("detect", "train")

if __name__ == "__main__":
    execute("train", main, parse_opt)
