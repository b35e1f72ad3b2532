"""Validate a trained YOLOv5 detection model on a detection dataset, on OneFlow (default) or PyTorch.

Usage:
    python val.py --weights yolov5s.pt --data coco128.yaml --img 640
    python val.py --weights runs/train/exp/weights/best.pt --data synthetic.yaml --img 128
    python val.py --weights a.pt b.pt --data coco128.yaml          # ensemble
    python val.py --weights yolov5s.pt --data coco128.yaml --augment  # test-time augmentation
    python val.py --task speed --data coco.yaml --batch 1 --weights yolov5n.pt yolov5s.pt
    python val.py --task study --data coco.yaml --iou 0.7 --weights yolov5n.pt yolov5s.pt
    python val.py --backend torch ...                                 # PyTorch backend
Python (flags as keywords; a trainer's model and loader may be passed instead of weights):
    (mp, mr, map50, map, box_loss, obj_loss, cls_loss), maps, times = val.run(data="coco128.yaml", weights="yolov5s.pt")

Weights formats: .pt (official ultralytics v7.0 files and checkpoints written by train.py), and the files export.py
writes: .onnx (onnxruntime, or OpenCV DNN with --dnn) and .torchscript (PyTorch backend); exported formats run one
image at a time (--batch-size 1), as in ultralytics.
"""

from utils.engine.scripts import execute, script

parse_opt, main, run = script("detect", "val")

if __name__ == "__main__":
    execute("val", main, parse_opt)
