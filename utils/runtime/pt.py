"""The ``.pt`` runtime: our checkpoints and official ultralytics files, run as native models through attempt_load.

Why a module of its own: every weights format is one runtime module of utils/runtime/ (see its ``__init__``).
"""

from models.experimental import attempt_load
from models.yolo import model_task
from utils.backend import nn
from utils.runtime.base import Runtime


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
        """The native model's eval output; augment/visualize reach the model only when asked for."""
        if augment or visualize:
            return self.module(im, augment=augment, visualize=visualize)
        return self.module(im)
