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

import sys
from pathlib import Path

FILE = Path(__file__).resolve()
ROOT = FILE.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from utils import cli, errors  # noqa: E402
from utils.engine.config import ValConfig  # noqa: E402
from utils.engine.detection import DetectionValidator  # noqa: E402
from utils.engine.validator import STUDY_SIZES, val_main  # noqa: E402
from utils.files import find_file  # noqa: E402
from utils.log import LOGGER  # noqa: E402


def run(data=None, model=None, dataloader=None, save_dir=None, plots=True, callbacks=None, compute_loss=None,
        **kwargs):
    """Validate once; returns ((P, R, mAP50, mAP50-95, box, obj, cls losses), per-class mAP50-95 (nc,),
    (pre-process, inference, NMS) ms per image). ``kwargs`` are val.py's flags; ``model``/``dataloader``/
    ``compute_loss`` are what a trainer passes (the model it trains, its loader and loss)."""
    defaults = {"half": True}  # ultralytics' val.run() defaults to FP16 (used on CUDA only); the CLI flag to FP32
    opt = cli.options("val", {**defaults, **kwargs, **({"data": data} if data is not None else {})})
    validator = DetectionValidator(ValConfig.from_opt(opt), dataloader=dataloader, save_dir=save_dir, plots=plots,
                                   callbacks=callbacks, compute_loss=compute_loss)
    return validator(model)


def parse_opt(known=False):
    opt = cli.parse("val", known=known)
    opt.data = find_file(opt.data, ("data",))
    opt.save_json |= str(opt.data).endswith("coco.yaml")
    opt.save_txt |= opt.save_hybrid
    cli.print_args(vars(opt))
    return opt


def main(opt):
    """Run --task val/train/test once, or the speed / study sweeps over every --weights."""
    return val_main(opt, run, STUDY_SIZES, LOGGER.info,
                    "--save-hybrid will return high mAP from hybrid labels, not from predictions alone")


if __name__ == "__main__":
    with errors.guard():  # a user error: one 'ERROR:' line and exit 1 (YOLOV5_TRACEBACK=1 adds the traceback)
        main(parse_opt())
