"""Small helpers every script's parse_opt()/main() shares: the --backend flag, argument echo, image-size checks."""

import inspect
import math
from pathlib import Path

from utils.files import ROOT
from utils.log import LOGGER, colorstr


def add_backend_arg(parser):
    """--backend {oneflow,torch}: read by utils.backend when it is first imported (so it is parsed here for --help)."""
    parser.add_argument("--backend", default=None, choices=["oneflow", "torch"],
                        help="deep-learning framework (default: $YOLOV5_BACKEND or oneflow)")
    return parser


def print_args(args=None, show_file=True, show_func=False):
    """Log 'script: key=value, ...' as ultralytics does at start-up."""
    frame = inspect.currentframe().f_back
    file, _, func, _, _ = inspect.getframeinfo(frame)
    if args is None:
        args, _, _, values = inspect.getargvalues(frame)
        args = {k: v for k, v in values.items() if k in args}
    try:
        file = Path(file).resolve().relative_to(ROOT).with_suffix("")
    except ValueError:
        file = Path(file).stem
    s = (f"{file}: " if show_file else "") + (f"{func}: " if show_func else "")
    LOGGER.info(colorstr(s) + ", ".join(f"{k}={v}" for k, v in args.items()))


def check_img_size(imgsz, s=32, floor=0):
    """Round image size(s) up to a multiple of stride ``s`` (warning when changed), as ultralytics."""
    if isinstance(imgsz, int):
        new_size = max(math.ceil(imgsz / s) * s, floor)
    else:
        imgsz = list(imgsz)
        new_size = [max(math.ceil(x / s) * s, floor) for x in imgsz]
    if new_size != imgsz:
        LOGGER.warning(f"WARNING ⚠️ --img-size {imgsz} must be multiple of max stride {s}, updating to {new_size}")
    return new_size
