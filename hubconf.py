"""Hub entry points, as ultralytics' hubconf.py: load a YOLOv5 model ready for images in one call.

Usage:
    import hubconf                                           # from the repository root, any backend
    model = hubconf.custom(path="runs/train/exp/weights/best.pt")
    model = hubconf.yolov5s()                                # official weights (downloaded if absent)
    model = hubconf.yolov5n(pretrained=False, classes=3)     # a fresh network from models/yolov5n.yaml
    results = model("image.jpg"); results.print()

    >>> import torch                                         # PyTorch's hub loader, from a local clone
    >>> model = torch.hub.load(".", "custom", path="best.pt", source="local")

When PyTorch is already imported and no backend was chosen (YOLOV5_BACKEND / --backend), the models are PyTorch
models, as a torch.hub user expects; otherwise the default backend (OneFlow) is used.
"""

import os
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
if "torch" in sys.modules and "utils.backend" not in sys.modules and not os.getenv("YOLOV5_BACKEND"):
    os.environ["YOLOV5_BACKEND"] = "torch"  # loaded by torch.hub: hand back torch modules

dependencies = ["numpy", "cv2", "yaml", "PIL"]  # checked by torch.hub.load before the entry is called


def _load_pretrained(model, path, classes):
    """Copy the tensors of ``path`` whose names and shapes fit ``model`` (anchors excluded), as ultralytics."""
    from models.experimental import read_weights, transfer_weights  # noqa: PLC0415 (see the module docstring)
    from utils.downloads import attempt_download  # noqa: PLC0415

    _, payload, _ = read_weights(attempt_download(path))
    transfer_weights(model, payload["state"], exclude=("anchors",))
    names = payload.get("names")
    if names is not None and len(names) == classes:
        model.names = dict(names) if isinstance(names, dict) else dict(enumerate(names))
    return model


def _create(name, pretrained=True, channels=3, classes=80, autoshape=True, verbose=True, device=None):
    """Create or load a YOLOv5 model.

    Args:
        name: a model name ('yolov5s': models/**/yolov5s.yaml and the v7.0 release weights yolov5s.pt) or a
            weights path ('path/to/best.pt').
        pretrained: load the weights (False: a freshly initialised network from the YAML).
        channels, classes: input channels and class count; other than 3 / 80, the YAML network is built with them
            and the fitting pretrained tensors are copied in.
        autoshape: wrap a detection model in AutoShape (images in, Detections out).
        verbose: print model information.
        device: '' / 'cpu' / '0' / a device; default: CUDA:0 if available, else the CPU.
    Returns:
        AutoShape(DetectMultiBackend) for pretrained 3-channel, 80-class requests; otherwise the model itself.
    """
    from models.yolo import TASKS, DetectionModel  # noqa: PLC0415 (the backend is chosen when hub loads this file)
    from utils.autoshape import AutoShape  # noqa: PLC0415
    from utils.backend import select_device  # noqa: PLC0415
    from utils.log import LOGGER  # noqa: PLC0415
    from utils.runtime import DetectMultiBackend  # noqa: PLC0415

    level = LOGGER.level
    if not verbose:
        LOGGER.setLevel(30)
    try:
        name = Path(name)
        path = name.with_suffix(".pt") if name.suffix == "" and not name.is_dir() else name
        device = select_device("" if device is None else str(device), log=LOGGER.info if verbose else None)
        if pretrained and channels == 3 and classes == 80:
            model = DetectMultiBackend(path, device=device, fuse=autoshape)
            if autoshape and model.task in AutoShape.tasks:
                model = AutoShape(model, verbose=verbose)
            elif autoshape:
                LOGGER.warning(f"WARNING ⚠️ YOLOv5 {TASKS[model.task].model.__name__} is not yet AutoShape compatible. "
                               "You must pass tensors in BCHW to this model, e.g. shape(1,3,640,640).")
        else:
            cfgs = sorted((_ROOT / "models").rglob(f"{path.stem}.yaml"))
            if not cfgs:
                raise FileNotFoundError(f"no model YAML named {path.stem}.yaml under {_ROOT / 'models'}")
            model = DetectionModel(cfgs[0], channels, classes)
            if pretrained:
                _load_pretrained(model, path, classes)
        return model.to(device)
    finally:
        LOGGER.setLevel(level)


def custom(path="path/to/model.pt", autoshape=True, _verbose=True, device=None):
    """A local or custom weights file (ours or ultralytics')."""
    return _create(path, autoshape=autoshape, verbose=_verbose, device=device)


def yolov5n(pretrained=True, channels=3, classes=80, autoshape=True, _verbose=True, device=None):  # nano
    return _create("yolov5n", pretrained, channels, classes, autoshape, _verbose, device)


def yolov5s(pretrained=True, channels=3, classes=80, autoshape=True, _verbose=True, device=None):  # small
    return _create("yolov5s", pretrained, channels, classes, autoshape, _verbose, device)


def yolov5m(pretrained=True, channels=3, classes=80, autoshape=True, _verbose=True, device=None):  # medium
    return _create("yolov5m", pretrained, channels, classes, autoshape, _verbose, device)


def yolov5l(pretrained=True, channels=3, classes=80, autoshape=True, _verbose=True, device=None):  # large
    return _create("yolov5l", pretrained, channels, classes, autoshape, _verbose, device)


def yolov5x(pretrained=True, channels=3, classes=80, autoshape=True, _verbose=True, device=None):  # xlarge
    return _create("yolov5x", pretrained, channels, classes, autoshape, _verbose, device)


def yolov5n6(pretrained=True, channels=3, classes=80, autoshape=True, _verbose=True, device=None):  # nano, P6 1280
    return _create("yolov5n6", pretrained, channels, classes, autoshape, _verbose, device)


def yolov5s6(pretrained=True, channels=3, classes=80, autoshape=True, _verbose=True, device=None):  # small, P6 1280
    return _create("yolov5s6", pretrained, channels, classes, autoshape, _verbose, device)


def yolov5m6(pretrained=True, channels=3, classes=80, autoshape=True, _verbose=True, device=None):  # medium, P6 1280
    return _create("yolov5m6", pretrained, channels, classes, autoshape, _verbose, device)


def yolov5l6(pretrained=True, channels=3, classes=80, autoshape=True, _verbose=True, device=None):  # large, P6 1280
    return _create("yolov5l6", pretrained, channels, classes, autoshape, _verbose, device)


def yolov5x6(pretrained=True, channels=3, classes=80, autoshape=True, _verbose=True, device=None):  # xlarge, P6 1280
    return _create("yolov5x6", pretrained, channels, classes, autoshape, _verbose, device)


if __name__ == "__main__":
    import numpy as np

    from utils import cli, errors
    with errors.guard():  # a user error: one 'ERROR:' line and exit 1 (YOLOV5_TRACEBACK=1 adds the traceback)
        opt = cli.parse("hubconf")
        cli.print_args({"model": opt.model})
        model = _create(name=opt.model, pretrained=True, channels=3, classes=80, autoshape=True, verbose=True)
        images = sorted(str(p) for p in (_ROOT / "data" / "images").glob("*.jpg"))
        results = model(images or [np.zeros((320, 640, 3), np.uint8)], size=320)
        results.print()
        results.save()
