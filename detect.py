"""Run YOLOv5 detection on images, folders, globs, lists, videos, webcams and streams, on OneFlow or PyTorch.

Usage - sources:
    python detect.py --weights yolov5s.pt --source 0                               # webcam
                                                   img.jpg                         # image
                                                   vid.mp4                         # video
                                                   path/                           # directory
                                                   list.txt                        # list of images
                                                   list.streams                    # list of streams
                                                   'path/*.jpg'                    # glob
                                                   'https://example.com/img.jpg'   # image URL (downloaded)
                                                   'rtsp://example.com/media.mp4'  # RTSP, RTMP, HTTP stream

Usage - outputs (as ultralytics): runs/detect/exp{n}/ annotated images and .mp4 videos, labels/*.txt with
--save-txt (rows `cls x y w h [conf]`, normalised), crops/<class>/ with --save-crop, feature maps with --visualize.

Usage - formats (export.py writes them):
    python detect.py --weights yolov5s.pt / yolov5s.onnx (onnxruntime; --dnn: OpenCV DNN) / yolov5s.torchscript

Usage - backend:
    python detect.py --backend torch ...   (or YOLOV5_BACKEND=torch; default oneflow)
Python:
    import detect; save_dir = detect.run(weights="yolov5s.pt", source="data/images", save_txt=True)
"""

import sys
from pathlib import Path

FILE = Path(__file__).resolve()
ROOT = FILE.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from utils import cli, errors  # noqa: E402
from utils.engine.config import PredictConfig  # noqa: E402
from utils.engine.detection import DetectionPredictor  # noqa: E402
from utils.engine.predictor import SourceError  # noqa: E402, F401 (detect.SourceError, as before)


def run(**kwargs):
    """Detect objects with detect.py's flags as keywords and save the results; returns the run folder (Path)."""
    return main(cli.options("detect", kwargs))


def parse_opt(known=False):
    opt = cli.parse("detect", known=known)
    opt.imgsz *= 2 if len(opt.imgsz) == 1 else 1  # expand
    cli.print_args(vars(opt))
    return opt


def main(opt):
    return DetectionPredictor(PredictConfig.from_opt(opt, retina_masks=False))()


if __name__ == "__main__":
    with errors.guard():  # a user error: one 'ERROR:' line and exit 1 (YOLOV5_TRACEBACK=1 adds the traceback)
        main(parse_opt())
