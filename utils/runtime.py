"""``DetectMultiBackend``: one inference interface over every weights format detect.py, val.py and the hub accept.

The format is read off the file name as ultralytics does (``best.pt``, ``best.onnx``, ``best_openvino_model/`` ...).
Each format has a *runtime*: a small class that loads the file and runs a BCHW float batch. Adding a format means
writing one ``Runtime`` subclass and one entry in ``RUNTIMES``; nothing else changes. Here: ``.pt`` (ours and official
ultralytics files, through ``attempt_load``), ``.onnx`` (onnxruntime, or OpenCV DNN when ``dnn=True``) and
``.torchscript`` (PyTorch backend only), as written by export.py.

Usage:
    model = DetectMultiBackend("yolov5s.pt", device=select_device(""), fp16=False)
    pred = model(im)  # im: (b, 3, h, w) float 0-1; pred[0]: (b, n, 5 + nc) xywh pixels, objectness, class scores
"""

from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import yaml

from models.experimental import attempt_load, is_checkpoint_path
from models.yolo import model_task
from utils.backend import capabilities, from_numpy, nn, time_sync, to_numpy, torch
from utils.backend.export import ExportUnsupportedError, load_torchscript
from utils.errors import UserError
from utils.export import onnx_session
from utils.log import LOGGER

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


class UnsupportedFormatError(UserError, ValueError):
    """Weights in a format this build cannot run; the message names the format and what is supported."""


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
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    return {int(k): str(v) for k, v in names.items()} if isinstance(names, dict) else None


# ---------------------------------------------------------------------------------------------------------- runtimes
class Runtime:
    """One weights format. Subclasses set ``stride``, ``names``, ``fp16`` (and ``module`` if they hold an nn.Module)
    in ``__init__`` and implement ``forward``.

    Args (of __init__): path (first weights file), weights (as given: a path or a list, for ensembles), device,
    fp16 (already checked against the backend), fuse (fold BatchNorm), dnn (prefer OpenCV DNN), data (YAML path).
    """

    module = None  # the nn.Module to register (so .to() / .half() reach its weights), or None
    task = "detect"

    def forward(self, im, augment=False, visualize=False):
        """Run a (b, 3, h, w) batch; return a tensor or numpy array, or a list/tuple of them."""
        raise NotImplementedError


class PtRuntime(Runtime):
    """``.pt`` weights: our checkpoints and official ultralytics files (several files form an Ensemble)."""

    def __init__(self, path, weights, device, fp16=False, fuse=True, dnn=False, data=None):

        model = attempt_load(weights if isinstance(weights, (list, tuple)) else path, device=device, inplace=True,
                             fuse=fuse)
        first = model[0] if isinstance(model, nn.ModuleList) else model
        self.task = model_task(first)
        self.stride = max(int(model.stride.max()), 32)
        self.names = dict(model.module.names if hasattr(model, "module") else model.names)
        self.fp16 = fp16
        self.module = model.half() if fp16 else model.float()

    def forward(self, im, augment=False, visualize=False):
        if augment or visualize:
            return self.module(im, augment=augment, visualize=visualize)
        return self.module(im)


def _task_from_outputs(shapes):
    """'segment' for two outputs (detections + protos), 'classify' for one (b, nc) output, else 'detect'."""
    if len(shapes) == 2:
        return "segment"
    return "classify" if len(shapes[0]) == 2 else "detect"


class OnnxRuntime(Runtime):
    """``.onnx`` files (export.py's or ultralytics'): onnxruntime, or OpenCV DNN when ``dnn=True``.

    stride and names come from the file's metadata (written by export.py); a file exported with a fixed input shape
    refuses other shapes with a message that says which shape to use (or to export with --dynamic).
    """

    def __init__(self, path, weights, device, fp16=False, fuse=True, dnn=False, data=None):
        import onnx  # noqa: PLC0415

        if not Path(path).is_file():
            raise FileNotFoundError(f"weights not found: {path}")
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as e:
            raise UnsupportedFormatError(f"{path}: not a readable ONNX file ({type(e).__name__}: {e})") from None
        meta = {p.key: p.value for p in proto.metadata_props}
        self.stride = int(meta.get("stride", 32))
        self.names = _literal_names(meta.get("names"))
        init = {t.name for t in proto.graph.initializer}
        inp = next(v for v in proto.graph.input if v.name not in init)
        self.input_name = inp.name
        self.input_shape = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
        self.output_names = [o.name for o in proto.graph.output]
        self.task = _task_from_outputs([o.type.tensor_type.shape.dim for o in proto.graph.output])
        self.fp16 = inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16  # the file decides, not --half
        self.path = str(path)
        self.dnn = dnn
        if dnn:
            import cv2  # noqa: PLC0415

            LOGGER.info(f"Loading {path} for ONNX OpenCV DNN inference...")
            try:
                self.net = cv2.dnn.readNetFromONNX(str(path))
            except cv2.error as e:
                hint = (" (OpenCV DNN does not handle dynamic image sizes: export without --dynamic for --dnn)"
                        if any(n is None for n in self.input_shape[2:]) else "")
                raise UnsupportedFormatError(f"OpenCV {cv2.__version__} DNN cannot read {path}{hint}; run it with "
                                             f"onnxruntime instead (without --dnn). OpenCV said: "
                                             f"{str(e).strip().splitlines()[-1][:200]}") from None
        else:

            LOGGER.info(f"Loading {path} for ONNX Runtime inference...")
            self.session = onnx_session(path, cuda=str(device).startswith("cuda"))

    def _check_shape(self, shape):
        fixed = [(i, n) for i, n in enumerate(self.input_shape) if n]
        if any(shape[i] != n for i, n in fixed):
            want = tuple(n or "any" for n in self.input_shape)
            raise ValueError(f"{self.path} was exported for input shape {want} (b, 3, h, w), got {tuple(shape)}: run "
                             f"it at that --imgsz / --batch-size, or export it again with --dynamic")

    def forward(self, im, augment=False, visualize=False):
        x = to_numpy(im).astype(np.float16 if self.fp16 else np.float32)
        self._check_shape(x.shape)
        if self.dnn:
            self.net.setInput(x)
            y = self.net.forward(self.output_names)
            return list(y)
        return self.session.run(self.output_names, {self.input_name: x})


class TorchScriptRuntime(Runtime):
    """``.torchscript`` files written by export.py (or ultralytics); PyTorch backend only."""

    def __init__(self, path, weights, device, fp16=False, fuse=True, dnn=False, data=None):
        import json  # noqa: PLC0415


        if not Path(path).is_file():
            raise FileNotFoundError(f"weights not found: {path}")
        try:
            module, extra = load_torchscript(path, device)
        except ExportUnsupportedError as e:
            raise UnsupportedFormatError(str(e)) from None
        LOGGER.info(f"Loading {path} for TorchScript inference...")
        d = json.loads(extra.get("config.txt") or "{}")
        self.stride = int(d.get("stride", 32))
        self.names = {int(k): str(v) for k, v in d["names"].items()} if isinstance(d.get("names"), dict) else None
        self.fp16 = fp16
        self.module = module.half() if fp16 else module.float()
        self.task = d.get("task", "detect")

    def forward(self, im, augment=False, visualize=False):
        return self.module(im)


def _literal_names(text):
    """Class names from metadata text such as "{0: 'person', 1: 'bicycle'}" (read as a literal, never executed)."""
    import ast  # noqa: PLC0415

    if not text:
        return None
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    return {int(k): str(v) for k, v in names.items()} if isinstance(names, dict) else None


RUNTIMES = {"pt": PtRuntime, "jit": TorchScriptRuntime, "onnx": OnnxRuntime}  # flag -> Runtime subclass


# ------------------------------------------------------------------------------------------------- the public class
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
        names = getattr(runtime, "names", None) or load_names(data) or {i: f"class{i}" for i in range(999)}
        self.names = names
        self.weights = weights

    @staticmethod
    def _fp16_ok(device):
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
