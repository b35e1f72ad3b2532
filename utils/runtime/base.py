"""What every inference runtime shares: the ``Runtime`` interface, its error, the recorded-task check, the name parsers.

Why a module of its own: each weights format is one module of this package (pt, onnx, torchscript, ...) and they all
build on these few names; keeping them here lets a format module import them without the package's ``__init__``
(which imports every format) and without anything of the export side.
"""

import ast
from pathlib import Path

from models.yolo import TASKS
from utils.errors import UserError


class UnsupportedFormatError(UserError, ValueError):
    """Weights in a format this build cannot run; the message names the format and what is supported."""


class Runtime:
    """One weights format. Subclasses set ``stride``, ``names``, ``fp16``, ``task`` (and ``module`` if they hold an
    nn.Module) in ``__init__`` and implement ``forward``.

    Args (of __init__): path (first weights file), weights (as given: a path or a list, for ensembles), device,
    fp16 (already checked against the backend), fuse (fold BatchNorm), dnn (prefer OpenCV DNN), data (YAML path).
    """

    module = None  # the nn.Module to register (so .to() / .half() reach its weights), or None
    task = "detect"

    def forward(self, im, augment=False, visualize=False):
        """Run a (b, 3, h, w) batch; return a tensor or numpy array, or a list/tuple of them."""
        raise NotImplementedError


def known_task(path, task):
    """``task`` (recorded in the file) if this build has it (models/yolo.py TASKS); else UnsupportedFormatError."""
    if task not in TASKS:
        raise UnsupportedFormatError(f"{path} holds a '{task}' model; this build runs {', '.join(TASKS)} models")
    return task


def require_file(path):
    """Raise FileNotFoundError unless ``path`` is an existing file (single-file formats: .onnx, .torchscript)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"weights not found: {path}")


def as_names(names):
    """Class names as {int: str} from a dict or a list/tuple of names; None for anything else."""
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    return {int(k): str(v) for k, v in names.items()} if isinstance(names, dict) else None


def literal_names(text):
    """Class names from metadata text such as "{0: 'person', 1: 'bicycle'}" (read as a literal, never executed)."""
    if not text:
        return None
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return as_names(names)
