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

FILE = Path(__file__).resolve()
ROOT = FILE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from utils import cli, errors  # noqa: E402
from utils.engine.classification import ClassificationPredictor  # noqa: E402
from utils.engine.config import PredictConfig  # noqa: E402

NO_BOXES = dict(conf_thres=None, iou_thres=None, max_det=None, save_conf=False, save_crop=False, classes=None,
                agnostic_nms=False, line_thickness=None, hide_labels=False, hide_conf=False, retina_masks=False)


def run(**kwargs):
    """Classify with classify/predict.py's flags as keywords and save the results; returns the run folder."""
    return main(cli.options("classify/predict", kwargs))


def parse_opt(known=False):
    opt = cli.parse("classify/predict", known=known)
    opt.imgsz *= 2 if len(opt.imgsz) == 1 else 1  # expand
    cli.print_args(vars(opt))
    return opt


def main(opt):
    return ClassificationPredictor(PredictConfig.from_opt(opt, **NO_BOXES))()


if __name__ == "__main__":
    with errors.guard():  # a user error: one 'ERROR:' line and exit 1 (YOLOV5_TRACEBACK=1 adds the traceback)
        main(parse_opt())
