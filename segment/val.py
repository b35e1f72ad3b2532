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

FILE = Path(__file__).resolve()
ROOT = FILE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from utils import cli, errors  # noqa: E402
from utils.engine.config import ValConfig  # noqa: E402
from utils.engine.segmentation import SegmentationValidator  # noqa: E402
from utils.engine.validator import STUDY_SIZES, val_main  # noqa: E402
from utils.files import find_file  # noqa: E402
from utils.log import LOGGER  # noqa: E402


def run(data=None, model=None, dataloader=None, save_dir=None, plots=True, callbacks=None, compute_loss=None,
        overlap=False, mask_downsample_ratio=1, **kwargs):
    """Validate once; returns ((box P, R, mAP50, mAP50-95, mask P, R, mAP50, mAP50-95, box/seg/obj/cls losses),
    per-class maps, (pre-process, inference, NMS) ms per image). ``kwargs`` are segment/val.py's flags; the others
    are what a trainer passes (as ultralytics' run())."""
    defaults = {"half": True}  # ultralytics' run() defaults to FP16 (used on CUDA only)
    opt = cli.options("segment/val", {**defaults, **kwargs, **({"data": data} if data is not None else {})})
    validator = SegmentationValidator(ValConfig.from_opt(opt), dataloader=dataloader, save_dir=save_dir, plots=plots,
                                      callbacks=callbacks, compute_loss=compute_loss, overlap=overlap,
                                      mask_ratio=mask_downsample_ratio)
    return validator(model)


def parse_opt(known=False):
    opt = cli.parse("segment/val", known=known)
    opt.data = find_file(opt.data, ("data",))
    opt.save_txt |= opt.save_hybrid
    cli.print_args(vars(opt))
    return opt


def main(opt):
    """Run --task val/train/test once, or the speed / study sweeps over every --weights."""
    return val_main(opt, run, STUDY_SIZES, LOGGER.warning,
                    "--save-hybrid returns high mAP from hybrid labels, not from predictions alone")


if __name__ == "__main__":
    with errors.guard():  # a user error: one 'ERROR:' line and exit 1 (YOLOV5_TRACEBACK=1 adds the traceback)
        main(parse_opt())
