"""EXPORT: the framework calls behind export.py (part of the backend package: it may import oneflow / torch).

utils/export/ owns the flags, metadata, verification and the temp-file/rename handling; the functions here only turn
a model into a file. Loading a file back is inference, not export: TorchScript's loader is utils/backend/jit.py.
  OneFlow: the model is compiled as an nn.Graph and converted by oneflow-onnx 0.6.2 (needs onnx 1.14.x: 1.15+ breaks
           its Upsample handler). Its converter bakes the traced batch size into Reshape/Slice constants, so a
           dynamic batch is made here by rewriting those constants; image sizes stay fixed (the grids are constants).
           The graph's weights go to the caller's private work folder, never to oneflow-onnx's default
           /tmp/oneflow_model* folders (a stale one of those broke one-yolov5's exports).
  PyTorch: torch.onnx's TorchScript-based exporter (dynamic batch and image size) and torch.jit for TorchScript.
"""

import contextlib
import copy
import inspect
import os
import sys
import warnings

import numpy as np

from utils.backend import IS_ONEFLOW, _quiet_fd2, nn, torch
from utils.onnx_graph import finish_oneflow_onnx


class ExportUnsupportedError(RuntimeError):
    """An export this backend or platform cannot produce; the message says what to use instead."""


ONNX_DYNAMIC_IMAGE_SIZE = not IS_ONEFLOW  # --dynamic frees height/width too (OneFlow: the batch only)


def write_onnx(model, im, f, opset=12, dynamic=False, input_names=("images",), output_names=("output0",),
                dynamic_axes=None, work_dir=None):
    """Write ``model`` (run on ``im``) to the ONNX file ``f``, its input and outputs named as given.

    Args:
        model: eval-mode module; forward(im) returns a tensor or a tuple of tensors (one per output name).
        im: example input (b, 3, h, w) on the model's device.
        f: path of the file to write.
        opset: ONNX opset version.
        dynamic: make the axes of ``dynamic_axes`` ({name: {axis: label}}) dynamic; OneFlow frees the batch axes only.
        work_dir: an existing folder for intermediate files (OneFlow saves the graph's weights there).
    Returns:
        {name: {axis: label}}: the axes that are dynamic in the written file ({} for a static export).
    """
    if IS_ONEFLOW:
        return _export_onnx_oneflow(model, im, str(f), opset, dynamic, list(input_names), list(output_names),
                                    work_dir or os.path.dirname(os.path.abspath(f)))
    kwargs = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    axes = {k: dict(v) for k, v in (dynamic_axes or {}).items()} if dynamic else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings on shape arithmetic; the legacy exporter's deprecation note
        torch.onnx.export(model, (im,), str(f), verbose=False, opset_version=opset, do_constant_folding=True,
                          input_names=list(input_names), output_names=list(output_names),
                          dynamic_axes=axes or None, **kwargs)
    return axes


@contextlib.contextmanager
def _module_hidden(name):
    """Make ``import name`` fail inside the block (oneflow-onnx simplifies with onnxsim whenever it can import it)."""
    saved = sys.modules.get(name, _module_hidden)
    sys.modules[name] = None
    try:
        yield
    finally:
        if saved is _module_hidden:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = saved


def _export_onnx_oneflow(model, im, f, opset, dynamic, input_names, output_names, work_dir):
    if "bool" not in np.__dict__:  # oneflow-onnx still uses numpy.bool (removed in numpy 1.24)
        np.bool = bool
    try:
        from oneflow_onnx.oneflow2onnx.flow2onnx import Export  # noqa: PLC0415
    except ImportError as e:
        raise ExportUnsupportedError(f"ONNX export on oneflow needs oneflow-onnx 0.6.2 and onnx 1.14.1 ({e}): "
                                     f"pip install oneflow-onnx==0.6.2 onnx==1.14.1") from None

    class ExportGraph(nn.Graph):
        def __init__(self, module):
            super().__init__()
            self.module = module

        def build(self, x):
            return self.module(x)

    graph = ExportGraph(copy.deepcopy(model))  # tracing may cache lazy tensors on modules: keep the caller's clean
    weights = os.path.join(work_dir, "graph_weights")
    raw = os.path.join(work_dir, "oneflow_raw.onnx")
    # quiet: the CUDA-driver line OneFlow prints on CPU-only machines, and "Interpolate() is called in a nn.Graph,
    # but not registered" (harmless); both are replayed if the export fails
    with _quiet_fd2(), warnings.catch_warnings(), _module_hidden("onnxsim"):
        warnings.simplefilter("ignore")
        graph._compile(im)
        torch.save(graph.state_dict(), weights)
        Export(graph, weights, raw, opset=opset)  # onnxsim hidden: simplifying is export.py's --simplify
    return finish_oneflow_onnx(raw, f, int(im.shape[0]), dynamic, input_names, output_names)


def write_torchscript(model, im, f, extra_files=None, optimize=False):
    """Trace ``model`` on ``im`` and save it as TorchScript at ``f`` (PyTorch only), with ``extra_files`` inside.

    optimize=True writes a mobile-optimised file for PyTorch's lite interpreter (as ultralytics' --optimize)."""
    if IS_ONEFLOW:
        raise ExportUnsupportedError("TorchScript export needs torch.jit, which OneFlow does not have: use "
                                     "--backend torch for TorchScript, or --include onnx on oneflow")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings; torch.jit's deprecation note in torch >= 2.9
        ts = torch.jit.trace(model, im, strict=False)
        if optimize:
            from torch.utils.mobile_optimizer import optimize_for_mobile  # noqa: PLC0415
            try:
                ts = optimize_for_mobile(ts)
            except RuntimeError as e:  # CPU builds without XNNPACK (e.g. torch 2.13 CPU wheels)
                raise ExportUnsupportedError(f"--optimize needs a PyTorch build with XNNPACK "
                                             f"({str(e).splitlines()[-1][:120]})") from None
            ts._save_for_lite_interpreter(str(f), _extra_files=extra_files or {})
        else:
            ts.save(str(f), _extra_files=extra_files or {})
