"""Export a YOLOv5 model to other formats, on OneFlow (default) or PyTorch; every file is verified before it is kept.

Format                  | `export.py --include`   | Model
---                     | ---                     | ---
PyTorch                 | -                       | yolov5s.pt
TorchScript             | `torchscript`           | yolov5s.torchscript        (PyTorch backend)
ONNX                    | `onnx`                  | yolov5s.onnx
OpenVINO, TensorRT, CoreML, TensorFlow SavedModel/GraphDef/Lite/Edge TPU/.js, PaddlePaddle: listed as in ultralytics
v7.0, refused here with the reason (their toolchains are not part of this build).

Usage:
    python export.py --weights yolov5s.pt --include onnx                       # OneFlow: nn.Graph + oneflow-onnx
    python export.py --weights yolov5s.pt --include torchscript onnx --backend torch
    python export.py --weights best.pt --include onnx --dynamic --simplify    # dynamic batch (+ size on torch)

Inference with the exported files:
    python detect.py --weights yolov5s.onnx [--dnn]     # onnxruntime, or OpenCV DNN
    python val.py --weights yolov5s.onnx
    hubconf.custom(path="yolov5s.onnx")
"""

import sys
from pathlib import Path

FILE = Path(__file__).resolve()
ROOT = FILE.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from utils import cli, errors  # noqa: E402
from utils.export import ExportError, export  # noqa: E402, F401 (export.ExportError, as before)


def run(**kwargs):
    """Export ``weights`` (one file) to each format of ``include``; returns the written paths (see utils/export/).

    Keywords are export.py's flags; as ultralytics' run(), ``include`` defaults to ('torchscript', 'onnx') here.
    """
    opt = cli.options("export", {"include": ("torchscript", "onnx"), **kwargs})
    return export(**{k: v for k, v in vars(opt).items() if k != "backend"})


def parse_opt(argv=None):
    opt = cli.parse("export", argv)
    cli.print_args(vars(opt))
    return opt


def main(opt):
    """Export every --weights file; returns the files written (a failure raises ExportError: one 'ERROR:' line)."""
    kwargs = {k: v for k, v in vars(opt).items() if k not in ("backend", "weights")}
    files = []
    for w in opt.weights if isinstance(opt.weights, list) else [opt.weights]:
        files += run(weights=w, **kwargs)
    return files


if __name__ == "__main__":
    with errors.guard():  # a user error: one 'ERROR:' line and exit 1 (YOLOV5_TRACEBACK=1 adds the traceback)
        main(parse_opt())
