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

import argparse
import sys
from pathlib import Path

FILE = Path(__file__).resolve()
ROOT = FILE.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from utils.cli import add_backend_arg, print_args  # noqa: E402
from utils.log import LOGGER  # noqa: E402


def run(data=ROOT / "data/coco128.yaml", weights=ROOT / "yolov5s.pt", imgsz=(640, 640), batch_size=1, device="cpu",
        include=("torchscript", "onnx"), half=False, inplace=False, keras=False, optimize=False, int8=False,
        dynamic=False, simplify=False, opset=12, verbose=False, workspace=4, nms=False, agnostic_nms=False,
        topk_per_class=100, topk_all=100, iou_thres=0.45, conf_thres=0.25):
    """Export ``weights`` to each format of ``include``; returns the written paths (see utils/export.py)."""
    from utils.export import export  # noqa: PLC0415 (imports the backend)

    return export(weights=weights, imgsz=imgsz, batch_size=batch_size, device=device, include=include, half=half,
                  inplace=inplace, optimize=optimize, dynamic=dynamic, simplify=simplify, opset=opset, data=data,
                  keras=keras, int8=int8, verbose=verbose, workspace=workspace, nms=nms, agnostic_nms=agnostic_nms,
                  topk_per_class=topk_per_class, topk_all=topk_all, iou_thres=iou_thres, conf_thres=conf_thres)


def parse_opt(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=str, default=ROOT / "data/coco128.yaml", help="dataset.yaml path")
    parser.add_argument("--weights", nargs="+", type=str, default=ROOT / "yolov5s.pt", help="model.pt path(s)")
    parser.add_argument("--imgsz", "--img", "--img-size", nargs="+", type=int, default=[640, 640], help="image (h, w)")
    parser.add_argument("--batch-size", type=int, default=1, help="batch size")
    parser.add_argument("--device", default="cpu", help="cuda device, i.e. 0 or 0,1,2,3 or cpu")
    parser.add_argument("--half", action="store_true", help="FP16 half-precision export")
    parser.add_argument("--inplace", action="store_true", help="set YOLOv5 Detect() inplace=True")
    parser.add_argument("--keras", action="store_true", help="TF: use Keras")
    parser.add_argument("--optimize", action="store_true", help="TorchScript: optimize for mobile")
    parser.add_argument("--int8", action="store_true", help="CoreML/TF/OpenVINO INT8 quantization")
    parser.add_argument("--dynamic", action="store_true", help="ONNX/TF/TensorRT: dynamic axes")
    parser.add_argument("--simplify", action="store_true", help="ONNX: simplify model")
    parser.add_argument("--opset", type=int, default=12, help="ONNX: opset version")
    parser.add_argument("--verbose", action="store_true", help="TensorRT: verbose log")
    parser.add_argument("--workspace", type=int, default=4, help="TensorRT: workspace size (GB)")
    parser.add_argument("--nms", action="store_true", help="TF: add NMS to model")
    parser.add_argument("--agnostic-nms", action="store_true", help="TF: add agnostic NMS to model")
    parser.add_argument("--topk-per-class", type=int, default=100, help="TF.js NMS: topk per class to keep")
    parser.add_argument("--topk-all", type=int, default=100, help="TF.js NMS: topk for all classes to keep")
    parser.add_argument("--iou-thres", type=float, default=0.45, help="TF.js NMS: IoU threshold")
    parser.add_argument("--conf-thres", type=float, default=0.25, help="TF.js NMS: confidence threshold")
    parser.add_argument("--include", nargs="+", default=["torchscript"], help="torchscript, onnx, openvino, engine, "
                        "coreml, saved_model, pb, tflite, edgetpu, tfjs, paddle")
    add_backend_arg(parser)
    opt = parser.parse_args(argv)
    print_args(vars(opt))
    return opt


def main(opt):
    """Export every --weights file; a failure prints one 'ERROR: ...' line and exits with status 1."""
    from utils.export import ExportError  # noqa: PLC0415

    kwargs = {k: v for k, v in vars(opt).items() if k not in ("backend", "weights")}
    files = []
    try:
        for w in opt.weights if isinstance(opt.weights, list) else [opt.weights]:
            files += run(weights=w, **kwargs)
    except ExportError as e:
        LOGGER.error(f"ERROR: {e}")
        sys.exit(1)
    return files


if __name__ == "__main__":
    main(parse_opt())
