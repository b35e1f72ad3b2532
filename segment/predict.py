"""Run YOLOv5 instance segmentation on images, folders, globs, lists, videos, webcams and streams (OneFlow or PyTorch).

Usage:
    python segment/predict.py --weights yolov5s-seg.pt --source img.jpg | dir/ | 'glob/*.jpg' | list.txt | vid.mp4 | 0
    python segment/predict.py --weights best.pt --source DIR --save-txt [--save-conf]   # polygons, normalised
    python segment/predict.py --weights best.pt --source DIR --retina-masks             # masks at the image's size
    python segment/predict.py --weights best.onnx --source DIR                          # exported (output0 + output1)
Outputs (as ultralytics): runs/predict-seg/exp{n}/ images and .mp4 videos with masks and boxes, labels/*.txt rows
`cls x1 y1 x2 y2 ... [conf]`, crops/<class>/ with --save-crop.
Python:
    save_dir = segment.predict.run(weights="best.pt", source="data/images", save_txt=True)
"""

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # the repository root, for `python segment/predict.py`

from utils.engine.scripts import execute, script  # noqa: E402

parse_opt, main, run = script("segment", "predict")

if __name__ == "__main__":
    execute("predict", main, parse_opt)
