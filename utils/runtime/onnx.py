"""The ``.onnx`` runtime: onnxruntime, or OpenCV DNN when ``dnn=True``, and the onnxruntime session factory.

Why a module of its own: every weights format is one runtime module of utils/runtime/ (see its ``__init__``).
``onnx_session`` lives here, on the inference side, and export's check of a file it wrote uses it from here.
"""

import numpy as np

from utils.backend import to_numpy
from utils.log import LOGGER
from utils.runtime.base import Runtime, UnsupportedFormatError, known_task, literal_names, require_file


def onnx_session(path, cuda=False):
    """An onnxruntime InferenceSession for ``path`` (CUDA first when asked and available)."""
    import onnxruntime as ort  # noqa: PLC0415

    providers = ["CPUExecutionProvider"]
    if cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), providers=providers)


def task_from_outputs(shapes):
    """A guess for files that record no task: 'segment' for two outputs (detections + protos), 'classify' for one
    (b, nc) output, else 'detect'. ``shapes``: each output's dimensions (any sequence per output)."""
    if len(shapes) == 2:
        return "segment"
    return "classify" if len(shapes[0]) == 2 else "detect"


def _read_proto(path):
    """The ONNX model proto of ``path`` without its external weights (only the metadata and I/O are read here)."""
    import onnx  # noqa: PLC0415

    require_file(path)
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise UnsupportedFormatError(f"{path}: not a readable ONNX file ({type(e).__name__}: {e})") from None


def _recorded_task(path, meta, outputs):
    """The task export.py wrote into the metadata (key ``task``); files without it (ultralytics' own exports) get
    the guess from their outputs' shapes."""
    task = meta.get("task")
    if task is None:
        return task_from_outputs([o.type.tensor_type.shape.dim for o in outputs])
    return known_task(path, task)


class OnnxRuntime(Runtime):
    """``.onnx`` files (export.py's or ultralytics'): onnxruntime, or OpenCV DNN when ``dnn=True``.

    stride, names and task come from the file's metadata (written by export.py). The task is recorded there, not
    guessed; only files without the ``task`` key (ultralytics' own exports) fall back to guessing it from the
    outputs (two: segment; one of shape (b, nc): classify; else detect). A file exported with a fixed input shape
    refuses other shapes with a message that says which shape to use (or to export with --dynamic).
    """

    def __init__(self, path, weights, device, fp16=False, fuse=True, dnn=False, data=None):
        import onnx  # noqa: PLC0415

        proto = _read_proto(path)
        meta = {p.key: p.value for p in proto.metadata_props}
        self.stride = int(meta.get("stride", 32))
        self.names = literal_names(meta.get("names"))
        init = {t.name for t in proto.graph.initializer}
        inp = next(v for v in proto.graph.input if v.name not in init)
        self.input_name = inp.name
        self.input_shape = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
        self.output_names = [o.name for o in proto.graph.output]
        self.task = _recorded_task(path, meta, proto.graph.output)
        self.fp16 = inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16  # the file decides, not --half
        self.path = str(path)
        self.dnn = dnn
        if dnn:
            self.net = self._read_dnn(path)
        else:
            LOGGER.info(f"Loading {path} for ONNX Runtime inference...")
            self.session = onnx_session(path, cuda=str(device).startswith("cuda"))

    def _read_dnn(self, path):
        """The file as an OpenCV DNN net; a file OpenCV cannot read is one error that says to drop --dnn."""
        import cv2  # noqa: PLC0415

        LOGGER.info(f"Loading {path} for ONNX OpenCV DNN inference...")
        try:
            return cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as e:
            hint = (" (OpenCV DNN does not handle dynamic image sizes: export without --dynamic for --dnn)"
                    if any(n is None for n in self.input_shape[2:]) else "")
            raise UnsupportedFormatError(f"OpenCV {cv2.__version__} DNN cannot read {path}{hint}; run it with "
                                         f"onnxruntime instead (without --dnn). OpenCV said: "
                                         f"{str(e).strip().splitlines()[-1][:200]}") from None

    def _check_shape(self, shape):
        """ValueError unless ``shape`` fits every fixed axis of the file's input."""
        fixed = [(i, n) for i, n in enumerate(self.input_shape) if n]
        if any(shape[i] != n for i, n in fixed):
            want = tuple(n or "any" for n in self.input_shape)
            raise ValueError(f"{self.path} was exported for input shape {want} (b, 3, h, w), got {tuple(shape)}: run "
                             f"it at that --imgsz / --batch-size, or export it again with --dynamic")

    def forward(self, im, augment=False, visualize=False):
        """The file's outputs (numpy arrays, in the file's output order) for the batch ``im``."""
        x = to_numpy(im).astype(np.float16 if self.fp16 else np.float32)
        self._check_shape(x.shape)
        if self.dnn:
            self.net.setInput(x)
            return list(self.net.forward(self.output_names))
        return self.session.run(self.output_names, {self.input_name: x})
