"""Our weights in ultralytics' own checkpoint layout (``export.py --include ultralytics`` -> ``<stem>_ultralytics.pt``).

Why: our checkpoints are plain data (a state dict and the YAML), which ultralytics' ``attempt_load`` cannot use: it
expects the release-file form, a pickled ``models.yolo.DetectionModel`` / ``SegmentationModel`` /
``ClassificationModel`` object in FP16 carrying ``names``, ``stride`` and ``yaml``. Here the model tree is described
module by module with the class paths and ``__dict__`` fields ultralytics v7.0 and torch give each module, and written
by utils/checkpoint/torch_modules.py, without PyTorch. The file is then read back through our own allow-list reader and
must reproduce the model's outputs before it is kept.

The tree is written unfused (Conv + BatchNorm), as the release files are: ultralytics fuses when it loads.
"""

from datetime import datetime
from pathlib import Path

import numpy as np

from models.experimental import load_checkpoint_model
from models.yolo import ClassificationModel, Detect, DetectionModel, Segment
from utils.backend import nn_module_path, to_numpy
from utils.checkpoint import read as read_checkpoint
from utils.checkpoint.torch_modules import MethodRef, TorchModule, write_modules

SUFFIX = "_ultralytics.pt"
_LAYER_ATTRS = ("i", "f", "type", "np")  # what parse_model sets on every layer
_MODEL_ATTRS = {"DetectionModel": ("yaml_file", "yaml", "save", "names", "inplace", "stride", "nc"),
                "SegmentationModel": ("yaml_file", "yaml", "save", "names", "inplace", "stride", "nc"),
                "ClassificationModel": ("stride", "save", "nc", "names", "yaml", "yaml_file")}
_HEAD_CLASS_ATTRS = ("export", "dynamic")  # class attributes in ultralytics v7.0's Detect: never in the instance


class FormatError(ValueError):
    """The model holds a module ultralytics' layout cannot describe; the message names it."""


def _pair(v):
    return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _conv_attrs(m, transposed=False):
    w = m.weight.shape
    groups = int(m.groups)
    c_in, c_out = (int(w[0]), int(w[1]) * groups) if transposed else (int(w[1]) * groups, int(w[0]))
    padding = _pair(m.padding)
    return {"in_channels": c_in, "out_channels": c_out, "kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride),
            "padding": padding, "dilation": _pair(m.dilation), "transposed": transposed,
            "output_padding": _pair(getattr(m, "output_padding", 0)), "groups": groups, "padding_mode": "zeros",
            "_reversed_padding_repeated_twice": tuple(p for p in reversed(padding) for _ in range(2))}


def _upsample_attrs(m):
    scale = m.scale_factor
    scale = float(scale) if isinstance(scale, (int, float)) else tuple(float(s) for s in scale) if scale else None
    return {"name": "Upsample", "size": m.size, "scale_factor": scale, "mode": m.mode,
            "align_corners": m.align_corners, "recompute_scale_factor": None}


def _bn_attrs(m):
    return {"num_features": int(m.num_features), "eps": float(m.eps), "momentum": float(m.momentum),
            "affine": bool(m.affine), "track_running_stats": bool(m.track_running_stats)}


def _pool_attrs(m):
    return {k: getattr(m, k) for k in ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode")}


# torch.nn class name -> its __dict__ fields (as torch's __init__ sets them)
TORCH_ATTRS = {
    "Conv2d": _conv_attrs, "ConvTranspose2d": lambda m: _conv_attrs(m, transposed=True),
    "BatchNorm2d": _bn_attrs, "MaxPool2d": _pool_attrs, "Upsample": _upsample_attrs,
    "Linear": lambda m: {"in_features": int(m.in_features), "out_features": int(m.out_features)},
    "AdaptiveAvgPool2d": lambda m: {"output_size": m.output_size if isinstance(m.output_size, int)
                                    else tuple(m.output_size)},
    "Dropout": lambda m: {"p": float(m.p), "inplace": bool(m.inplace)},
    "LeakyReLU": lambda m: {"negative_slope": float(m.negative_slope), "inplace": bool(m.inplace)},
    **{name: (lambda m: {"inplace": bool(getattr(m, "inplace", False))})
       for name in ("SiLU", "ReLU", "ReLU6", "Hardswish", "Sigmoid", "Tanh", "Identity")},
    "Sequential": lambda m: {}, "ModuleList": lambda m: {},
}


def _array(t, half):
    a = to_numpy(t)
    return a.astype(np.float16) if half and a.dtype == np.float32 else a


def _plain_attrs(m, names=None):
    """Public plain-data attributes of one of our YOLO modules (ints, strings, lists, dicts), tensors as arrays."""
    out = {}
    for k, v in vars(m).items():
        if k.startswith("_") or k == "training" or (names is not None and k not in names):
            continue
        if hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, np.ndarray):
            v = to_numpy(v)
        if isinstance(v, (bool, int, float, str, list, tuple, dict, np.ndarray, type(None))):
            out[k] = v
    return out


def _yolo_node(m, half):
    name = type(m).__name__
    if name in _MODEL_ATTRS:
        attrs = _plain_attrs(m, _MODEL_ATTRS[name])
        if "stride" in attrs:
            attrs["stride"] = np.asarray(attrs["stride"], np.float32)  # a model's stride stays FP32 in .half()
        attrs["names"] = {int(k): str(v) for k, v in dict(m.names).items()}
        return attrs
    attrs = {k: v for k, v in _plain_attrs(m).items() if k not in _HEAD_CLASS_ATTRS}
    if isinstance(m, Detect):
        empty = np.zeros((0,), np.float16 if half else np.float32)
        attrs.update(grid=[empty] * m.nl, anchor_grid=[empty] * m.nl, stride=_array(m.stride, half))
        if isinstance(m, Segment):
            attrs["detect"] = MethodRef("models.yolo.Detect", "forward")  # ultralytics keeps detect = Detect.forward
    return attrs


def _class_path(m):
    cls = type(m)
    if cls.__module__ in ("models.common", "models.yolo", "models.experimental"):
        return f"{cls.__module__}.{cls.__name__}", True
    path = nn_module_path(m)
    if not path.startswith("torch.nn.modules.") or path.rsplit(".", 1)[-1] not in TORCH_ATTRS:
        raise FormatError(f"{path} ({cls.__module__}.{cls.__name__}) has no description in ultralytics' checkpoint "
                          f"layout here; models with it cannot be exported with --include ultralytics")
    return path, False


def module_tree(m, half=True, memo=None):
    """Our model (either backend) as the TorchModule tree ultralytics' classes and torch.nn would pickle."""
    memo = {} if memo is None else memo
    if id(m) in memo:
        return memo[id(m)]
    path, yolo = _class_path(m)
    attrs = _yolo_node(m, half) if yolo else {**TORCH_ATTRS[path.rsplit(".", 1)[-1]](m),
                                               **_plain_attrs(m, _LAYER_ATTRS)}
    skip = set(getattr(m, "_non_persistent_buffers_set", ()) or ())
    params = {k: None if v is None else _array(v, half) for k, v in m._parameters.items()}
    if path.rsplit(".", 1)[-1] in ("Conv2d", "ConvTranspose2d", "Linear"):
        params.setdefault("bias", None)  # torch keeps bias=None in _parameters; OneFlow leaves it out
    node = TorchModule(path, attrs, parameters=params,
                       buffers={k: None if v is None else _array(v, half) for k, v in m._buffers.items()},
                       non_persistent=tuple(sorted(skip)))
    memo[id(m)] = node
    node.modules.update({k: module_tree(c, half, memo) for k, c in m._modules.items() if c is not None})
    return node


def ultralytics_checkpoint(model, opt=None, date=None):
    """The dict ultralytics' train.py + strip_optimizer leave, around ``model`` (unfused) as a FP16 module tree."""
    if not isinstance(model, (DetectionModel, ClassificationModel)):
        raise FormatError(f"a {type(model).__name__} is not a YOLOv5 model (torchvision classifiers have no "
                          f"ultralytics checkpoint form)")
    return {"epoch": -1, "best_fitness": None, "model": module_tree(model), "ema": None, "updates": None,
            "optimizer": None, "opt": dict(opt or {}), "git": {}, "date": date or datetime.now().isoformat()}


def ultralytics_file(weights):
    """``runs/train/exp/weights/best.pt`` -> ``runs/train/exp/weights/best_ultralytics.pt``."""
    w = Path(str(weights).rstrip("/\\"))
    return w.with_name((w.stem if w.suffix in (".pt", ".of") else w.name) + SUFFIX)


def write_ultralytics(weights, file=None):
    """Read ``weights`` (ours, ultralytics' or one-yolov5's), write ``file`` in ultralytics' layout, atomically.

    Returns:
        (path written, the unfused float32 model it describes).
    """
    model, ckpt = load_checkpoint_model(str(weights))
    file = Path(file) if file else ultralytics_file(weights)
    opt = ckpt.get("opt") if isinstance(ckpt.get("opt"), dict) else {}
    write_modules(ultralytics_checkpoint(model, opt), file)
    return file, model


def read_back(file):
    """The written file through our own reader: (its model's class path, the class paths it pickles, the model
    rebuilt from it, unfused)."""
    ckpt = read_checkpoint(file)
    classes = sorted({r.cls for r in _records(ckpt["model"])})
    model, _ = load_checkpoint_model(str(file))
    return ckpt["model"].cls, classes, model


def _records(rec, seen=None):
    seen = set() if seen is None else seen
    if id(rec) in seen:
        return []
    seen.add(id(rec))
    out = [rec]
    for child in (rec.attrs.get("_modules") or {}).values():
        out += _records(child, seen)
    return out
