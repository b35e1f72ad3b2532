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

FILE = Path(__file__).resolve()
ROOT = FILE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from utils import cli, errors  # noqa: E402
from utils.engine.config import PredictConfig  # noqa: E402
from utils.engine.segmentation import SegmentationPredictor  # noqa: E402


def run(**kwargs):
    """Segment with segment/predict.py's flags as keywords and save the results; returns the run folder (Path)."""
    return main(cli.options("segment/predict", kwargs))


def parse_opt(known=False):
    opt = cli.parse("segment/predict", known=known)
    opt.imgsz *= 2 if len(opt.imgsz) == 1 else 1  # expand
    cli.print_args(vars(opt))
    return opt


def main(opt):
    return SegmentationPredictor(PredictConfig.from_opt(opt))()


if __name__ == "__main__":
    with errors.guard():  # a user error: one 'ERROR:' line and exit 1 (YOLOV5_TRACEBACK=1 adds the traceback)
        main(parse_opt())
