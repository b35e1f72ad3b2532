"""The TorchScript writer (``--include torchscript``, PyTorch backend): trace, run the file against eager, keep.

Why a module of its own: every export format is one writer module of utils/export/ (see its ``__init__``). The trace
is the backend's (utils/backend/export.py write_torchscript); the file is loaded back by the inference side's loader
(utils/backend/jit.py), the one TorchScriptRuntime uses. ``config.txt`` inside carries shape, stride, names and task.
"""

import json
import os
from pathlib import Path

import numpy as np

from models.yolo import model_task
from utils import backend
from utils.backend import from_numpy, inference_mode, to_numpy
from utils.backend import export as backend_export
from utils.backend.jit import load_torchscript
from utils.export.verify import ExportError, compare_outputs, native_outputs, probe_images, work_dir
from utils.log import LOGGER, colorstr


def verify_torchscript(path, model, shapes, half=False):
    """Run the TorchScript file at ``path`` on each input shape against the native model; max abs difference."""
    p = next(model.parameters())
    module, _ = load_torchscript(path, p.device)
    worst = 0.0
    for shape in shapes:
        x = probe_images(shape)
        t = from_numpy(x, p.device)
        with inference_mode():
            y = module(t.half() if half else t)
        y = [to_numpy(v).astype(np.float32) for v in (y if isinstance(y, (list, tuple)) else [y])]
        worst = max(worst, compare_outputs(y, native_outputs(model, x, half), half, f"TorchScript at {shape}"))
    return worst


def export_torchscript(model, im, file, optimize=False, metadata=None, half=False):
    """Trace, verify and keep ``file``.torchscript; returns (path, max abs difference vs the native model).

    ``config.txt`` inside holds the input shape, ``metadata`` (stride, names) and the model's task.
    """
    prefix = colorstr("TorchScript:")
    f = Path(file).with_suffix(".torchscript")
    LOGGER.info(f"\n{prefix} starting export with {backend.NAME} {backend.VERSION}...")
    config = {"shape": list(im.shape), **(metadata or {})}
    config.setdefault("task", model_task(model))
    extra = {"config.txt": json.dumps(config)}
    with work_dir(f) as tmp:
        tmp_file = tmp / f.name
        try:
            backend_export.write_torchscript(model, im, tmp_file, extra_files=extra, optimize=optimize)
        except backend_export.ExportUnsupportedError as e:
            raise ExportError(str(e)) from None
        except Exception as e:
            raise ExportError(f"torch.jit.trace failed: {type(e).__name__}: {e}") from e
        diff = verify_torchscript(tmp_file, model, [tuple(im.shape)], half)
        LOGGER.info(f"{prefix} verified: torch.jit vs eager max abs difference {diff:.2e}")
        os.replace(tmp_file, f)
    return f, diff
