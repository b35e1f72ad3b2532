"""Validate a YOLOv5 instance-segmentation model: box and mask P, R, mAP50, mAP50-95, on OneFlow or PyTorch.

Usage:
    python segment/val.py --weights yolov5s-seg.pt --data coco128-seg.yaml --img 640
    python segment/val.py --weights runs/train-seg/exp/weights/best.pt --data synthetic-seg.yaml --img 128
    python segment/val.py --weights best.onnx --data synthetic-seg.yaml      # exported: one image at a time
    python segment/val.py ... --save-json      # COCO JSON with RLE masks, scored by pycocotools (boxes and masks)
    python segment/val.py --task speed|study ...
Python:
    (*box_pr_maps, *mask_pr_maps, *losses), maps, times = segment.val.run(data="coco128-seg.yaml", weights="x.pt")
"""

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # the repository root, for `python segment/val.py`

from utils.engine.scripts import execute, script  # noqa: E402

parse_opt, main, run = script("segment", "val")

if __name__ == "__main__":
    execute("val", main, parse_opt)
