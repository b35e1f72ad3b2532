"""Classify images, folders, globs, lists, videos, webcams and streams with a YOLOv5 classifier (OneFlow or PyTorch).

Usage:
    python classify/predict.py --weights yolov5s-cls.pt --source img.jpg | dir/ | 'glob/*.jpg' | list.txt | vid.mp4 | 0
    python classify/predict.py --weights best.pt --source DIR --save-txt    # top-5 'prob name' lines per image
Outputs (as ultralytics): runs/predict-cls/exp{n}/ images with the top-5 classes written on them, labels/*.txt.
Python:
    save_dir = classify.predict.run(weights="best.pt", source="data/images")
"""

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # the repository root, for `python classify/predict.py`

from utils.engine.scripts import execute, script  # noqa: E402

parse_opt, main, run = script("classify", "predict")

if __name__ == "__main__":
    execute("predict", main, parse_opt)
