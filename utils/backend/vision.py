"""VISION: the framework's model zoo behind classify/train.py's ``--model resnet50`` (part of the backend package).

ultralytics builds any name of ``torchvision.models`` with ``weights='IMAGENET1K_V1'`` (or None without
``--pretrained``). Here the active backend decides the zoo: torchvision on PyTorch, flowvision (OneFlow's port of it,
the library one-yolov5 used) on OneFlow. Both are optional: they are imported on first use, because neither is needed
for YOLOv5 models and flowvision alone takes seconds to import. Their names differ in places (torchvision
``convnext_tiny`` is flowvision ``convnext_tiny_224``); the common ones (resnet*, efficientnet_b0-7, mobilenet_v2/v3,
densenet*, vgg*, squeezenet*, shufflenet*, mnasnet*, regnet*) are the same.

Pretrained weights are downloaded by the library into its own cache (torch hub's ``checkpoints/``, flowvision's
``$FLOWVISION_CACHE``); offline, a DownloadError says which file to put where.

Installation facts behind ``_import_torchvision``: PyPI's torchvision 0.28.0 (the release paired with torch 2.13.0) is
built against the CUDA build of torch, so beside the CPU build its compiled ops library cannot load. Its Python models
do not need those ops, but its import stops at two unguarded fake-kernel registrations (``torchvision::nms``,
``torchvision::qnms``). Declaring the missing operator names first lets the import finish; the ops themselves
(torchvision.ops.nms, roi_align) then raise if called. This project never calls them on the CPU (utils.backend.nms has
its own kernel there), and on a CUDA machine torchvision's ops load normally and nothing is declared.
"""

import os
import re
import sys
from pathlib import Path

from utils.backend import IS_ONEFLOW, torch
from utils.downloads import DownloadError
from utils.errors import UserError

LIBRARY = "flowvision" if IS_ONEFLOW else "torchvision"
INSTALL = {"torchvision": "pip install torchvision==0.28.0  (the release paired with torch 2.13.0)",
           "flowvision": "pip install flowvision==0.2.1  (0.2.2 needs a newer OneFlow than 0.9.0; its setup.py "
                         'imports pkg_resources: where pip >= 23.1 builds it in isolation, set PIP_CONSTRAINT to a '
                         'file holding "setuptools<81")'}[LIBRARY]
TORCHVISION_WEIGHTS = "IMAGENET1K_V1"  # the weights ultralytics asks torchvision for
_state = {}  # the imported library (or the ImportError text), filled once


class VisionModelError(UserError, ValueError):
    """A --model name the vision library cannot build here; the message lists what can be built or installed."""


def _import_torchvision():
    """Import torchvision, declaring the operators whose compiled library could not load (see the module docstring)."""
    for _ in range(8):  # 0.28.0 needs two declarations; the bound only stops a loop on an unexpected message
        try:
            import torchvision  # noqa: PLC0415 (optional, see the module docstring)
            import torchvision.models  # noqa: PLC0415
            return torchvision
        except RuntimeError as e:
            missing = re.search(r"operator torchvision::(\w+) does not exist", str(e))
            if missing is None:
                raise
            if "fragment" not in _state:  # kept alive: a collected Library object takes its declarations with it
                _state["fragment"] = torch.library.Library("torchvision", "FRAGMENT")
            _state["fragment"].define(f"{missing.group(1)}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
                sys.modules.pop(name)  # a clean second import, not a half-initialised package
    raise ImportError("torchvision could not be imported beside this torch build")


def _import_flowvision():
    import flowvision  # noqa: PLC0415 (optional and slow: seconds, it builds a registry of ~300 models)
    import flowvision.models  # noqa: PLC0415
    return flowvision


def library():
    """The vision library of the active backend (imported once), or None when it is not installed or broken."""
    if "module" not in _state:
        try:
            _state["module"] = _import_flowvision() if IS_ONEFLOW else _import_torchvision()
            _state["error"] = None
        except (ImportError, RuntimeError, AttributeError) as e:  # absent, or built for another framework version
            _state["module"], _state["error"] = None, f"{type(e).__name__}: {e}"
    return _state["module"]


def available():
    """True when the active backend's vision library can build models here."""
    return library() is not None


def model_names():
    """Sorted names of the classification models the active backend's vision library builds ([] without it)."""
    lib = library()
    if lib is None:
        return []
    zoo = lib.models
    if IS_ONEFLOW:  # the registry also holds detection/segmentation builders; top-level names are classifiers
        registered = set(getattr(getattr(zoo, "ModelCreator", None), "_model_entrypoints", {}))
        return sorted(n for n in registered if callable(zoo.__dict__.get(n)))
    if hasattr(zoo, "list_models"):
        return sorted(zoo.list_models(module=zoo))
    return sorted(n for n, v in zoo.__dict__.items() if callable(v) and n[:1].islower() and not n.startswith("get_"))


def is_model_name(name):
    """True when ``name`` is a classification model of the vision library (False when the library is absent)."""
    return isinstance(name, str) and name in model_names()


def weights_url(name):
    """Download URL of the pretrained weights the library uses for ``name``, or None when it has none."""
    lib = library()
    if lib is None:
        return None
    if IS_ONEFLOW:
        builder = lib.models.__dict__.get(name)
        urls = getattr(sys.modules.get(getattr(builder, "__module__", ""), None), "model_urls", {}) or {}
        return urls.get(name) or None
    try:
        return lib.models.get_model_weights(name)[TORCHVISION_WEIGHTS].url
    except (KeyError, ValueError, AttributeError):
        return None


def weights_cache_dir():
    """Folder where the library looks for (and downloads) pretrained weights."""
    if IS_ONEFLOW:
        return Path(os.path.expanduser(os.getenv("FLOWVISION_CACHE", "~/.oneflow/flowvision_cache")))
    return Path(torch.hub.get_dir()) / "checkpoints"


def _offline_message(name, url, error):
    """What to put where when pretrained weights could not be downloaded."""
    cache, file = weights_cache_dir(), Path(str(url).split("?")[0]).name
    where = (f"extract it into {cache} (so that {cache / file.split('.')[0]} exists)" if IS_ONEFLOW
             else f"put it at {cache / file}")
    return (f"pretrained weights of --model {name} are not here and could not be downloaded from {url} "
            f"({type(error).__name__}: {error}). Download that file on a machine with internet access and {where}, "
            f"or train from scratch with --pretrained False")


def create_model(name, pretrained=True):
    """Build the vision library's model ``name`` as ultralytics does (ImageNet weights when ``pretrained``).

    Args:
        name: a name from model_names(), e.g. 'resnet50', 'efficientnet_b0'.
        pretrained: load the library's ImageNet-1k weights (torchvision: IMAGENET1K_V1), downloading them once.
    Returns:
        the model (nn.Module of the active backend), 1000 ImageNet classes: reshape its head for the dataset.
    Raises:
        VisionModelError: no vision library here, an unknown name, or no pretrained weights for it.
        DownloadError: the weights are not cached and could not be downloaded (offline).
    """
    if library() is None:
        raise VisionModelError(f"--model {name} is a {LIBRARY} model name, but {LIBRARY} is not importable with "
                               f"{'oneflow' if IS_ONEFLOW else 'torch'} {torch.__version__} here "
                               f"({_state['error']}). Install it with: {INSTALL}")
    if not is_model_name(name):
        raise VisionModelError(f"--model {name} not found: not a file, not a YOLOv5 name and not a {LIBRARY} "
                               f"classification model. {LIBRARY} models are: {', '.join(model_names())}")
    url = weights_url(name)
    if pretrained and url is None:
        raise VisionModelError(f"{LIBRARY} has no pretrained ImageNet weights for --model {name}: "
                               f"use --pretrained False to train it from scratch")
    builder = library().models.__dict__[name]
    try:
        if IS_ONEFLOW:
            return builder(pretrained=bool(pretrained))
        return builder(weights=TORCHVISION_WEIGHTS if pretrained else None)
    except OSError as e:  # offline (URLError), a cut connection, a read-only cache folder
        raise DownloadError(_offline_message(name, url, e)) from None
