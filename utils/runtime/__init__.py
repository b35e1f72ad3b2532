"""``DetectMultiBackend``: one inference interface over every weights format detect.py, val.py and the hub accept.

The format is read off the file name as ultralytics does (``best.pt``, ``best.onnx``, ``best_openvino_model/`` ...).
Each format has a *runtime*: a small class in a module of its own that loads the file and runs a BCHW float batch.
Adding a format means one new module (a ``Runtime`` subclass, utils/runtime/base.py) and one entry in ``RUNTIMES``;
nothing else changes. Here: ``.pt`` (pt.py: ours and official ultralytics files, through ``attempt_load``), ``.onnx``
(onnx.py: onnxruntime, or OpenCV DNN when ``dnn=True``) and ``.torchscript`` (torchscript.py: PyTorch backend only),
as written by export.py.

This package is the inference side only: it imports no export writer, converter or synthetic data (utils/export/ is
the other side, and uses this one to check what it wrote).

Usage:
    model = DetectMultiBackend("yolov5s.pt", device=select_device(""), fp16=False)
    pred = model(im)  # im: (b, 3, h, w) float 0-1; pred[0]: (b, n, 5 + nc) xywh pixels, objectness, class scores
"""

from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import yaml

from models.experimental import is_checkpoint_path
from utils.backend import capabilities, from_numpy, nn, time_sync, torch
from utils.log import LOGGER
from utils.runtime.base import Runtime, UnsupportedFormatError, as_names
from utils.runtime.onnx import OnnxRuntime, onnx_session
from utils.runtime.pt import PtRuntime
from utils.runtime.torchscript import TorchScriptRuntime

__all__ = ["DetectMultiBackend", "FLAGS", "FORMATS", "OnnxRuntime", "Profile", "PtRuntime", "RUNTIMES", "Runtime",
           "TorchScriptRuntime", "UnsupportedFormatError", "load_names", "model_format", "onnx_session"]

# (format name, ultralytics flag attribute, file-name ending), in ultralytics' export_formats() order
FORMATS = (
    ("PyTorch", "pt", ".pt"),
    ("TorchScript", "jit", ".torchscript"),
    ("ONNX", "onnx", ".onnx"),
    ("OpenVINO", "xml", "_openvino_model"),
    ("TensorRT", "engine", ".engine"),
    ("CoreML", "coreml", ".mlmodel"),
    ("TensorFlow SavedModel", "saved_model", "_saved_model"),
    ("TensorFlow GraphDef", "pb", ".pb"),
    ("TensorFlow Edge TPU", "edgetpu", "_edgetpu.tflite"),  # before .tflite: the longer ending wins
    ("TensorFlow Lite", "tflite", ".tflite"),
    ("TensorFlow.js", "tfjs", "_web_model"),
    ("PaddlePaddle", "paddle", "_paddle_model"),
)
FLAGS = tuple(f for _, f, _ in FORMATS) + ("triton",)
RUNTIMES = {"pt": PtRuntime, "jit": TorchScriptRuntime, "onnx": OnnxRuntime}  # flag -> Runtime subclass


def model_format(path):
    """The ultralytics flag name of a weights path ('pt', 'onnx', ..., 'triton' for an http/grpc server URL).

    Raises:
        UnsupportedFormatError: the name matches no known format.
    """
    p = str(path).rstrip("/\\")
    url = urlparse(p)
    if url.scheme in ("http", "https", "grpc") and url.netloc and not Path(url.path).suffix:
        return "triton"
    name = Path(p).name.lower()
    if is_checkpoint_path(p):  # also one-yolov5's .of files and oneflow.save folders: native checkpoints
        return "pt"
    for _, flag, ending in FORMATS:
        if name.endswith(ending):
            return flag
    known = ", ".join(e for _, _, e in FORMATS)
    raise UnsupportedFormatError(f"{path}: unknown weights format; expected a name ending in one of {known}")


def load_names(data):
    """Class names from a dataset YAML (dict form), or None."""
    if not data or not Path(str(data)).is_file():
        return None
    with open(data, errors="ignore") as f:
        names = (yaml.safe_load(f) or {}).get("names")
    return as_names(names)


class DetectMultiBackend(nn.Module):
    """Load ``weights`` in whatever format and run inference on it, as ultralytics' class of the same name.

    Args:
        weights: a path, or a list of .pt paths for an ensemble.
        device: the device to run on (default CPU).
        dnn: use OpenCV DNN for ONNX files.
        data: dataset YAML for class names when the weights carry none.
        fp16: half precision where the backend/device supports it (else a warning and float32).
        fuse: fold BatchNorm into convolutions (.pt).
    Attributes:
        stride (int), names (dict), fp16, device, task ('detect' | 'segment' | 'classify'), model (the nn.Module
        for .pt), and the ultralytics format flags pt, jit, onnx, xml, engine, ... triton.
    """

    def __init__(self, weights="yolov5s.pt", device=None, dnn=False, data=None, fp16=False, fuse=True):
        super().__init__()
        w = str(weights[0] if isinstance(weights, (list, tuple)) else weights)
        fmt = model_format(w)
        if fmt not in RUNTIMES:
            name = next((n for n, f, _ in FORMATS if f == fmt), "Triton Inference Server")
            raise UnsupportedFormatError(f"{w}: {name} weights are not supported by this build "
                                         f"(supported: {', '.join(sorted(RUNTIMES))})")
        if dnn and fmt != "onnx":
            LOGGER.warning(f"WARNING ⚠️ --dnn applies to ONNX weights only: ignored for {Path(w).name}")
        device = device if device is not None else torch.device("cpu")
        fp16 = bool(fp16) and self._fp16_ok(device)
        runtime = RUNTIMES[fmt](w, weights, device, fp16=fp16, fuse=fuse, dnn=dnn, data=data)
        for flag in FLAGS:
            setattr(self, flag, flag == fmt)
        self.nhwc = False
        self.device = device
        self.runtime = runtime
        self.model = runtime.module  # registered: .to() / .half() / .float() reach the weights
        self.stride = int(getattr(runtime, "stride", 32) or 32)
        self.fp16 = bool(getattr(runtime, "fp16", False))
        self.task = runtime.task
        self.names = getattr(runtime, "names", None) or load_names(data) or {i: f"class{i}" for i in range(999)}
        self.weights = weights

    @staticmethod
    def _fp16_ok(device):
        """Whether the backend runs FP16 on ``device``; warns (and the caller runs FP32) when it does not."""
        cuda = str(device).startswith("cuda")
        caps = capabilities()
        if caps["fp16_cuda" if cuda else "fp16_cpu"]:
            return True
        LOGGER.warning(f"WARNING ⚠️ --half is not available on {caps['backend']} {'CUDA' if cuda else 'CPU'}: "
                       f"running in float32")
        return False

    def forward(self, im, augment=False, visualize=False):
        """Inference on a (b, 3, h, w) float batch; outputs as tensors on ``self.device``."""
        if self.fp16 and im.dtype != torch.float16:
            im = im.half()
        y = self.runtime.forward(im, augment=augment, visualize=visualize)
        if isinstance(y, (list, tuple)):
            return self.from_numpy(y[0]) if len(y) == 1 else [self.from_numpy(x) for x in y]
        return self.from_numpy(y)

    def from_numpy(self, x):
        """A runtime's numpy output as a tensor on ``self.device`` (tensors pass through)."""
        return from_numpy(x, self.device) if isinstance(x, np.ndarray) else x

    def warmup(self, imgsz=(1, 3, 640, 640)):
        """One throw-away inference on a GPU (first-call set-up off the clock); nothing to gain on the CPU."""
        if str(self.device) != "cpu" and (self.pt or self.jit or self.onnx or self.engine):
            im = torch.zeros(*imgsz, dtype=torch.float16 if self.fp16 else torch.float32, device=self.device)
            self.forward(im)


class Profile:
    """Accumulating stopwatch: ``with dt: ...`` adds the block's seconds to ``dt.t`` (``dt.dt`` is the last one).

    CUDA work is waited for at both ends (time_sync), so GPU timings are real.
    """

    def __init__(self, t=0.0):
        self.t = t
        self.dt = 0.0
        self.start = 0.0

    def __enter__(self):
        self.start = time_sync()
        return self

    def __exit__(self, *exc):
        self.dt = time_sync() - self.start
        self.t += self.dt
