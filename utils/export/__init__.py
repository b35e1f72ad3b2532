"""Model export (what export.py runs): ONNX on both backends, TorchScript on PyTorch, every file verified before kept.

Each export is written into a private temporary folder next to its destination, checked, run and compared with the
native model, and only then renamed into place: a failed or interrupted export never leaves a half-written file
under the final name. What the verification does:
  1. ``onnx.checker`` on the written file (ONNX);
  2. the file is run (onnxruntime / torch.jit) on synthetic scenes letterboxed to the export shape, and, for a
     ``--dynamic`` export, again at another batch size (and image size where the backend frees it);
  3. its outputs are compared with the native model's: the export fails unless, element by element,
     ``|exported - native| <= atol + rtol * |native|`` with TOLERANCE (1e-3, 1e-3) in FP32 and (1e-2, 1e-2) in FP16.
     Outputs are pixels and probabilities, so this is about 0.6 px at 640 and 0.001 in a score.
The maximum absolute difference is logged for every export.

Formats are ultralytics v7.0's ``export_formats()``, plus ``ultralytics``: the weights in ultralytics' own checkpoint
layout (``<stem>_ultralytics.pt``, utils/ultralytics_format.py), for its attempt_load / detect.py / val.py / export.py
/ torch.hub. As in ultralytics, every requested format is attempted on its own: one that this build or backend cannot
produce is reported with the reason and what to use instead, one that fails is reported, and the others are written.

This package is the export side: one writer module per format (onnx.py, torchscript.py, ultralytics.py) over the
shared work folders and checks of verify.py; adding a format means one new writer module and one ``WRITERS`` entry.
It runs what it wrote through the inference side (utils/runtime/, utils/backend/jit.py), never the reverse. The
model's task is recorded in every file (ONNX metadata / TorchScript config.txt ``task``) for the runtimes to read.
"""

import time
from pathlib import Path

from models.experimental import WeightsError, attempt_load, is_checkpoint_path
from models.yolo import TASKS as MODEL_TASKS
from models.yolo import Detect, model_task
from utils import backend, cli
from utils.autoshape import AutoShape
from utils.backend import NAME, capabilities, to_numpy
from utils.backend import export as backend_export
from utils.checkpoint import CheckpointError
from utils.cli import check_img_size
from utils.downloads import DownloadError
from utils.export.onnx import export_onnx, onnx_dynamic_axes, onnx_output_names, verify_onnx
from utils.export.torchscript import export_torchscript, verify_torchscript
from utils.export.ultralytics import export_ultralytics
from utils.export.verify import (TMP_TAG, TOLERANCE, ExportError, check_shapes, compare_outputs, native_outputs,
                                 probe_images, work_dir)
from utils.files import ROOT
from utils.log import LOGGER, colorstr
from utils.runtime.onnx import onnx_session  # re-exported: the session export's ONNX check runs on

__all__ = ["EXPORT_FORMATS", "ExportError", "IGNORED_HERE", "NOT_BUILT", "OURS", "TMP_TAG", "TOLERANCE", "WRITERS",
           "check_include", "check_shapes", "compare_outputs", "export", "export_formats", "export_onnx",
           "export_torchscript", "export_ultralytics", "file_size", "load_model", "native_outputs",
           "onnx_dynamic_axes", "onnx_output_names", "onnx_session", "probe_images", "unavailable", "verify_onnx",
           "verify_torchscript", "work_dir"]

# Format, --include argument, file suffix, CPU, GPU: ultralytics v7.0 export_formats(), in its order
EXPORT_FORMATS = (
    ("PyTorch", "-", ".pt", True, True),
    ("TorchScript", "torchscript", ".torchscript", True, True),
    ("ONNX", "onnx", ".onnx", True, True),
    ("OpenVINO", "openvino", "_openvino_model", True, False),
    ("TensorRT", "engine", ".engine", False, True),
    ("CoreML", "coreml", ".mlmodel", True, False),
    ("TensorFlow SavedModel", "saved_model", "_saved_model", True, True),
    ("TensorFlow GraphDef", "pb", ".pb", True, True),
    ("TensorFlow Lite", "tflite", ".tflite", True, False),
    ("TensorFlow Edge TPU", "edgetpu", "_edgetpu.tflite", False, False),
    ("TensorFlow.js", "tfjs", "_web_model", False, False),
    ("PaddlePaddle", "paddle", "_paddle_model", True, True),
)
_TF = "TensorFlow exports rebuild the network in Keras/TensorFlow, which this build does not include"
NOT_BUILT = {  # formats that need a toolchain this project does not install, on any backend
    "openvino": "OpenVINO export needs Intel's openvino package (model optimizer), which this build does not install",
    "engine": "TensorRT export needs an NVIDIA GPU with the tensorrt package, which this build does not install",
    "coreml": "CoreML export needs coremltools and a torch.jit trace, which this build does not install",
    "saved_model": _TF, "pb": _TF, "tflite": _TF, "edgetpu": _TF + " (nor the Edge TPU compiler)", "tfjs": _TF,
    "paddle": "PaddlePaddle export needs paddlepaddle and x2paddle, which this build does not install",
}
FRAMEWORK_NAMES = {"torch": "PyTorch", "oneflow": "OneFlow"}
OURS = ("ultralytics",)  # --include arguments beyond ultralytics' table (written by this build on any backend)
IGNORED_HERE = {  # flags of formats this build does not export: named in a warning when set
    "keras": False, "int8": False, "nms": False, "agnostic_nms": False, "verbose": False, "workspace": 4,
    "topk_per_class": 100, "topk_all": 100, "iou_thres": 0.45, "conf_thres": 0.25}


def _onnx(model, im, w, metadata, opt):
    return export_onnx(model, im, w, opset=opt["opset"], dynamic=opt["dynamic"], simplify=opt["simplify"],
                       metadata=metadata, half=opt["half"])


def _torchscript(model, im, w, metadata, opt):
    return export_torchscript(model, im, w, optimize=opt["optimize"], metadata=metadata, half=opt["half"])


def _ultralytics(model, im, w, metadata, opt):
    return export_ultralytics(w, tuple(im.shape))  # from the weights file itself: the layout is unfused


# --include argument -> (log prefix, writer(model, im, weights, metadata, flags) -> (path, max abs difference))
WRITERS = {"torchscript": ("TorchScript:", _torchscript), "onnx": ("ONNX:", _onnx),
           "ultralytics": ("ultralytics:", _ultralytics)}


def export_formats():
    """ultralytics' table of formats as a pandas DataFrame (Format, Argument, Suffix, CPU, GPU)."""
    import pandas as pd  # noqa: PLC0415

    return pd.DataFrame(EXPORT_FORMATS, columns=["Format", "Argument", "Suffix", "CPU", "GPU"])


def unavailable(argument):
    """Why the --include ``argument`` cannot be produced with this backend/build, or None when it can."""
    if argument == "torchscript" and not capabilities()["torchscript"]:
        return (f"TorchScript export needs torch.jit, which the {NAME} backend does not have: run export.py with "
                f"--backend torch for TorchScript, or use --include onnx (runs everywhere TorchScript does) or "
                f"--include ultralytics (a .pt for ultralytics' own tools)")
    return NOT_BUILT.get(argument)


def check_include(include):
    """Split --include into (formats to export, {refused format: reason}), lower-cased and de-duplicated.

    Raises:
        ExportError: an unknown format (named with the valid ones), or not a single format this build can write.
    """
    include = [str(x).lower().strip() for x in ([include] if isinstance(include, str) else include)]
    valid = tuple(a for _, a, *_ in EXPORT_FORMATS[1:]) + OURS
    unknown = [x for x in include if x not in valid]
    if unknown or not include:
        raise ExportError(f"Invalid --include {unknown or include}, valid --include arguments are {valid}")
    include = list(dict.fromkeys(include))
    refused = {x: unavailable(x) for x in include if unavailable(x)}
    if len(refused) == len(include):
        raise ExportError("not supported on this backend/platform:\n  " +
                          "\n  ".join(f"{x}: {r}" for x, r in refused.items()))
    return [x for x in include if x not in refused], refused


def file_size(path):
    """Size in MB of a file or of everything in a folder."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size / 1e6
    return sum(f.stat().st_size for f in p.glob("**/*") if f.is_file()) / 1e6 if p.is_dir() else 0.0


def load_model(weights, device, inplace=False, dynamic_hw=False):
    """attempt_load() for export: fused, eval, Detect set to export mode; bad weights become one ExportError."""
    w = str(weights[0] if isinstance(weights, (list, tuple)) else weights)
    if Path(w).is_dir() and not is_checkpoint_path(w):  # one-yolov5's oneflow.save folders are checkpoints
        raise ExportError(f"--weights {w} is a folder; pass a .pt checkpoint file")
    try:
        model = attempt_load(w, device=device, inplace=True, fuse=True)
    except FileNotFoundError as e:
        raise ExportError(f"--weights {w}: file not found ({e})") from None
    except (CheckpointError, WeightsError, DownloadError) as e:
        raise ExportError(f"--weights {w} cannot be loaded: {e}") from None
    except Exception as e:  # anything else a damaged file can raise while being read
        raise ExportError(f"--weights {w} is not a readable YOLOv5 checkpoint ({type(e).__name__}: {e})") from None
    model.eval()
    for m in model.modules():
        if isinstance(m, Detect):
            m.inplace = inplace
            m.dynamic = dynamic_hw
            m.export = True
            m.stride = tuple(float(s) for s in to_numpy(m.stride).ravel())  # constants, also inside nn.Graph
    return model, w


def _check_flags(include, ignored, imgsz, batch_size):
    """The flag checks that need no model: returns (formats to write, {refused: reason}, [h, w])."""
    include, refused = check_include(include)
    unknown = set(ignored) - set(IGNORED_HERE)
    if unknown:
        raise TypeError(f"unknown export argument(s): {sorted(unknown)}")
    used = [f"--{k.replace('_', '-')}" for k, v in ignored.items() if v != IGNORED_HERE[k]]
    if used:
        LOGGER.warning(f"WARNING ⚠️ {', '.join(used)} only affect TensorFlow/TensorRT/CoreML/OpenVINO exports: "
                       f"ignored for --include {' '.join(include)}")
    imgsz = list(imgsz) if isinstance(imgsz, (list, tuple)) else [imgsz]
    imgsz *= 2 if len(imgsz) == 1 else 1
    if len(imgsz) != 2 or batch_size < 1:
        raise ExportError(f"--imgsz takes one or two sizes (h w) and --batch-size must be >= 1, got {imgsz}, "
                          f"{batch_size}")
    return include, refused, imgsz


def _select_device(device, half, dynamic, optimize):
    """The export device, after the checks of --half / --dynamic / --optimize against it (ultralytics' messages)."""
    device = backend.select_device(device, log=LOGGER.info)
    if half and device.type == "cpu":
        raise ExportError("--half only compatible with GPU export, i.e. use --device 0")
    if half and dynamic:
        raise ExportError("--half not compatible with --dynamic, i.e. use either --half or --dynamic but not both")
    if optimize and device.type != "cpu":
        raise ExportError("--optimize not compatible with cuda devices, i.e. use --device cpu")
    return device


def _prepare(weights, device, imgsz, batch_size, half, inplace, dynamic):
    """The model in export mode and its example input, after two dry runs.

    Returns:
        (model, im, weights path, metadata): metadata is what every file records (stride, names, task).
    """
    dynamic_hw = dynamic and backend_export.ONNX_DYNAMIC_IMAGE_SIZE
    model, w = load_model(weights, device, inplace=inplace, dynamic_hw=dynamic_hw)
    gs = int(float(model.stride.max()))
    imgsz = [check_img_size(x, gs) for x in imgsz]
    im = backend.torch.zeros(batch_size, 3, *imgsz).to(device)
    with backend.inference_mode():
        for _ in range(2):  # dry runs: build the grids the graphs keep as constants
            y = model(im)
    if half:
        im, model = im.half(), model.half()
    shape = tuple((y[0] if isinstance(y, (list, tuple)) else y).shape)
    framework = colorstr(FRAMEWORK_NAMES.get(backend.NAME, backend.NAME) + ":")
    LOGGER.info(f"\n{framework} starting from {w} with output shape {shape} ({file_size(w):.1f} MB)")
    return model, im, w, {"stride": gs, "names": dict(model.names), "task": model_task(model)}


def _write_all(include, model, im, w, metadata, opt):
    """Run every writer of ``include``; returns (written paths, ['format: reason' of each that failed])."""
    written, failed = [], []
    for fmt in include:
        t0 = time.time()
        label, writer = WRITERS[fmt]
        prefix = colorstr(label)
        try:
            with backend.inference_mode():
                f, _ = writer(model, im, w, metadata, opt)
        except ExportError as e:
            LOGGER.info(f"{prefix} export failure ❌ {time.time() - t0:.1f}s: {e}")
            failed.append(f"{fmt}: {e}")
            continue
        LOGGER.info(f"{prefix} export success ✅ {time.time() - t0:.1f}s, saved as {f} ({file_size(f):.1f} MB)")
        written.append(str(f))
    return written, failed


def export(weights=ROOT / "yolov5s.pt", imgsz=(640, 640), batch_size=1, device="cpu", include=("torchscript", "onnx"),
           half=False, inplace=False, optimize=False, dynamic=False, simplify=False, opset=12, data=None, **ignored):
    """Export ``weights`` to every --include format; returns the written paths (str), in --include order.

    A format this build or backend cannot produce is skipped with a warning naming the reason (an error only when
    none of the requested formats can be produced).

    Raises:
        ExportError: bad flags, unreadable weights, no requested format available here, or an export that failed
            (the others are still attempted first; every failure is named).
    """
    t = time.time()
    include, refused, imgsz = _check_flags(include, ignored, imgsz, batch_size)
    device = _select_device(device, half, dynamic, optimize)
    model, im, w, metadata = _prepare(weights, device, imgsz, batch_size, half, inplace, dynamic)
    for fmt, reason in refused.items():
        LOGGER.warning(f"WARNING ⚠️ --include {fmt} refused: {reason}")
    opt = {"half": half, "optimize": optimize, "dynamic": dynamic, "simplify": simplify, "opset": opset}
    written, failed = _write_all(include, model, im, w, metadata, opt)
    if failed:
        raise ExportError("export failed for " + "; ".join(failed))
    _summary(model, written, half, t, refused)
    return written


def _summary(model, files, half, t0, refused=None):
    """The closing lines: where the files went and the commands that use them (the task's scripts, utils.cli.TASKS)."""
    task = model_task(model)
    scripts = cli.TASKS[task]
    h = " --half" if half else ""
    kind = "" if task in AutoShape.tasks else MODEL_TASKS[task].model.__name__
    note = f"  # WARNING ⚠️ {kind} not yet supported for PyTorch Hub AutoShape inference" if kind else ""
    f = files[-1]
    LOGGER.info(f"\nExport complete ({time.time() - t0:.1f}s)"
                f"\nResults saved to {colorstr('bold', Path(f).parent.resolve())}"
                f"\nDetect:          python {scripts.file('predict')} --weights {f}{h}"
                f"\nValidate:        python {scripts.file('val')} --weights {f}{h}"
                f"\nPyTorch Hub:     model = torch.hub.load('ultralytics/yolov5', 'custom', '{f}'){note}"
                f"\nVisualize:       https://netron.app")
    if refused:
        LOGGER.warning(f"WARNING ⚠️ not exported: {', '.join(refused)} (see the reasons above)")
