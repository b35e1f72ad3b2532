"""The ``.torchscript`` runtime: files written by export.py (or ultralytics), PyTorch backend only.

Why a module of its own: every weights format is one runtime module of utils/runtime/ (see its ``__init__``). The
file is loaded by the backend's inference-side loader (utils/backend/jit.py), never by the export writers.
"""

import json

from utils.backend.jit import TorchScriptUnavailableError, load_torchscript
from utils.log import LOGGER
from utils.runtime.base import Runtime, UnsupportedFormatError, as_names, known_task, require_file


class TorchScriptRuntime(Runtime):
    """``.torchscript`` files; stride, names and task come from the ``config.txt`` export.py stores inside."""

    def __init__(self, path, weights, device, fp16=False, fuse=True, dnn=False, data=None):
        require_file(path)
        try:
            module, extra = load_torchscript(path, device)
        except TorchScriptUnavailableError as e:
            raise UnsupportedFormatError(str(e)) from None
        LOGGER.info(f"Loading {path} for TorchScript inference...")
        d = json.loads(extra.get("config.txt") or "{}")
        self.stride = int(d.get("stride", 32))
        self.names = as_names(d.get("names"))
        self.fp16 = fp16
        self.module = module.half() if fp16 else module.float()
        self.task = known_task(path, d.get("task", "detect"))  # ultralytics' files record none: detection models

    def forward(self, im, augment=False, visualize=False):
        """The traced model's output (augment/visualize are not part of a traced graph)."""
        return self.module(im)
