"""Forge ultralytics-layout ``.pt`` files by hand, with the standard library and numpy only (no torch).

A forged file is what ``torch.save`` writes for an ultralytics YOLOv5 checkpoint: the top-level dict
``{epoch, best_fitness, model, ema, updates, optimizer, opt, git, date}`` whose ``model`` is a pickled
``models.yolo.DetectionModel`` object. Modules are pickled exactly as torch pickles an ``nn.Module``:
``GLOBAL <class path>``, ``EMPTY_TUPLE``, ``NEWOBJ``, then ``BUILD`` with the module's ``__dict__``. The class paths
need not exist in this process.

Input is a plain description of the module tree, one :class:`Node` per module:

    Node(cls='models.common.Conv', attrs={...}, params={name: ndarray | None}, buffers={...}, children={name: Node})

The same Node object used twice (the shared ``SiLU`` of v7.0 ``Conv``) is written once and referenced through the
pickle memo. Arrays become tensors (storage class from the dtype); wrap one in :class:`Located` to give it a storage
location such as ``'cuda:0'``, and use :class:`ForgedPath` for ``pathlib`` values and :class:`NumpyValue` for numpy
objects pickled by numpy itself (``best_fitness`` of un-stripped files).

Typical use:
    model = toy_detection_model()                      # or node_from_record(checkpoint.read('yolov5s.pt')['model'])
    forge_ultralytics_checkpoint(tmp_path / 'toy.pt', model)
    node_state_dict(model)                             # the state_dict a reader must return
"""

import collections
import functools
import pickle

import numpy as np

from utils.checkpoint import writer as checkpoint_writer
from utils.checkpoint.writer import _Global

# Module.__init__ fields in __dict__ order. torch 1.x (v7.0 release files: torch 1.12/1.13) keeps _parameters,
# _buffers and _modules in OrderedDicts; torch 2.x uses plain dicts and has more hook dicts.
_TORCH1_HOOKS = ("_backward_hooks", "_is_full_backward_hook", "_forward_hooks", "_forward_pre_hooks",
                 "_state_dict_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")
_TORCH2_HOOKS = ("_backward_pre_hooks", "_backward_hooks", "_is_full_backward_hook", "_forward_hooks",
                 "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
                 "_forward_pre_hooks_with_kwargs", "_state_dict_hooks", "_state_dict_pre_hooks",
                 "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")
MODULE_FIELDS = {"training", "_parameters", "_buffers", "_modules", "_non_persistent_buffers_set",
                 *_TORCH1_HOOKS, *_TORCH2_HOOKS}


class Node:
    """One nn.Module: class path, extra __dict__ entries (after torch's own fields), parameters, buffers, children."""

    def __init__(self, cls, attrs=None, params=None, buffers=None, children=None, non_persistent=(), training=False):
        self.cls, self.training, self.non_persistent = cls, training, tuple(non_persistent)
        self.attrs = dict(attrs or {})
        self.params = collections.OrderedDict(params or {})
        self.buffers = collections.OrderedDict(buffers or {})
        self.children = collections.OrderedDict(children or {})


class Located:
    """A tensor whose storage records a location other than 'cpu' (e.g. class_weights on 'cuda:0')."""

    def __init__(self, array, location="cuda:0"):
        self.array, self.location = np.asarray(array), location


class ForgedPath:
    """A pathlib path pickled as GLOBAL pathlib.<cls> + REDUCE(parts), as pathlib pickles it.

    `path` is a '/'-separated string or the tuple of parts (e.g. ('C:\\', 'runs') with cls='WindowsPath').
    """

    def __init__(self, path, cls="PosixPath"):
        if isinstance(path, tuple):
            self.parts = path
        else:
            self.parts = tuple((["/"] if path.startswith("/") else []) + [p for p in path.split("/") if p])
        self.cls = cls


class NumpyValue:
    """A numpy array or scalar pickled by numpy's own __reduce__ (numpy.core.multiarray._reconstruct / scalar)."""

    def __init__(self, value):
        self.value = value


class _Parameter:
    def __init__(self, data, requires_grad):
        self.data, self.requires_grad = data, requires_grad


class ForgePickler(checkpoint_writer._Pickler):
    """The checkpoint writer's pickler, plus modules, parameters, located tensors, paths and numpy objects."""

    dispatch = dict(checkpoint_writer._Pickler.dispatch)

    def __init__(self, file, style="torch1", requires_grad=False):
        super().__init__(file)
        self.style, self.requires_grad = style, requires_grad

    def reducer_override(self, obj):
        kind = type(obj)
        if kind is Located:
            return self.tensor_reduce(obj.array, obj.location)
        if kind is _Parameter:  # torch: Parameter.__reduce_ex__ -> _rebuild_parameter(data, requires_grad, hooks)
            return _Global("torch._utils", "_rebuild_parameter"), (
                obj.data, obj.requires_grad, collections.OrderedDict())
        if kind is ForgedPath:
            return _Global("pathlib", obj.cls), obj.parts
        if kind is NumpyValue:
            return obj.value.__reduce_ex__(2)
        return super().reducer_override(obj)

    def module_state(self, node):
        """The module's __dict__ as torch would pickle it."""
        table = collections.OrderedDict if self.style == "torch1" else dict
        params = table((k, None if v is None else _Parameter(v, self.requires_grad)) for k, v in node.params.items())
        state = {"training": node.training, "_parameters": params, "_buffers": table(node.buffers),
                 "_non_persistent_buffers_set": set(node.non_persistent)}
        for hook in _TORCH1_HOOKS if self.style == "torch1" else _TORCH2_HOOKS:
            state[hook] = None if hook == "_is_full_backward_hook" else collections.OrderedDict()
        state["_modules"] = table(node.children)
        state.update(node.attrs)
        return state

    def save_node(self, node):
        module, name = node.cls.rsplit(".", 1)
        self.save(_Global(module, name))
        self.write(pickle.EMPTY_TUPLE + pickle.NEWOBJ)  # cls.__new__(cls), as copyreg.__newobj__ pickles
        self.memoize(node)
        self.save(self.module_state(node))
        self.write(pickle.BUILD)

    dispatch[Node] = save_node


def forge(path, obj, style="torch1", prefix="archive", byteorder=None):
    """Write `obj` (plain data, Nodes, Located, ForgedPath, NumpyValue) as a torch zip checkpoint.

    Args:
        path: destination file.
        obj: what torch.save would have been given.
        style: 'torch1' (torch 1.x: OrderedDict tables, v7.0 release files) or 'torch2' (plain dicts, more hooks).
        prefix: the archive folder name (torch 1.x release files use 'archive'); None: the file stem.
        byteorder: write the byteorder record (torch >= 2.0 does); default: only in 'torch2' style.
    """
    pickled, storages = checkpoint_writer._dump(obj, functools.partial(ForgePickler, style=style))
    byteorder = style == "torch2" if byteorder is None else byteorder
    checkpoint_writer._write_archive(path, pickled, storages, prefix=prefix, byteorder=byteorder)


def default_opt():
    """A v7.0 `vars(opt)` excerpt, with the pathlib.PosixPath a custom training can leave in it."""
    return {"weights": "yolov5s.pt", "cfg": "", "data": "data/coco128.yaml", "hyp": {"lr0": 0.01, "momentum": 0.937},
            "epochs": 3, "batch_size": 16, "imgsz": 640, "rect": False, "device": "", "single_cls": False,
            "save_dir": ForgedPath("/home/user/runs/train/exp"), "noautoanchor": False, "workers": 8}


def forge_ultralytics_checkpoint(path, model, *, epoch=-1, best_fitness=None, ema=None, updates=None, optimizer=None,
                                 opt=None, git=None, date="2022-11-22T13:39:43.123456", style="torch1",
                                 prefix="archive"):
    """Write the dict ultralytics' train.py + strip_optimizer leave (epoch, best_fitness, model, ema, updates, optimizer, opt, git, date) around `model` (a Node)."""
    ckpt = {"epoch": epoch, "best_fitness": best_fitness, "model": model, "ema": ema, "updates": updates,
            "optimizer": optimizer, "opt": default_opt() if opt is None else opt, "git": {} if git is None else git,
            "date": date}
    forge(path, ckpt, style=style, prefix=prefix)
    return ckpt


def node_state_dict(node, prefix="", out=None):
    """The state_dict torch would give for `node` (params, persistent buffers, then children, recursively)."""
    out = collections.OrderedDict() if out is None else out
    for name, value in node.params.items():
        if value is not None:
            out[prefix + name] = np.asarray(getattr(value, "array", value))
    for name, value in node.buffers.items():
        if value is not None and name not in node.non_persistent:
            out[prefix + name] = np.asarray(getattr(value, "array", value))
    for name, child in node.children.items():
        node_state_dict(child, f"{prefix}{name}.", out)
    return out


def node_from_record(record, memo=None):
    """Turn a ModuleRecord (from checkpoint.read) back into a Node tree, so a file read from torch can be re-forged.

    Shared sub-modules stay shared. Tensors come back on 'cpu'; torch's own Module fields are regenerated by the
    forge in the chosen style.
    """
    memo = {} if memo is None else memo
    if id(record) in memo:
        return memo[id(record)]
    a = record.attrs
    node = Node(record.cls, attrs={k: v for k, v in a.items() if k not in MODULE_FIELDS},
                params=a.get("_parameters") or {}, buffers=a.get("_buffers") or {},
                non_persistent=a.get("_non_persistent_buffers_set") or (), training=bool(a.get("training", False)))
    memo[id(record)] = node
    children = a.get("_modules") or {}
    node.children = collections.OrderedDict((k, node_from_record(v, memo)) for k, v in children.items())
    return node


# --------------------------------------------------------------------------------- a small v7.0-like detector
TOY_YAML = {
    "nc": 2, "depth_multiple": 0.33, "width_multiple": 0.25,
    "anchors": [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119]],
    "backbone": [[-1, 1, "Conv", [32, 6, 2, 2]], [-1, 1, "Conv", [64, 3, 2]], [-1, 1, "C3", [64]],
                 [-1, 1, "Conv", [128, 3, 2]], [-1, 1, "SPPF", [128, 5]]],
    "head": [[-1, 1, "nn.Upsample", [None, 2, "nearest"]], [[-1, 2], 1, "Concat", [1]], [-1, 1, "C3", [64, False]],
             [[7, 4], 1, "Detect", ["nc", "anchors"]]],
    "ch": 3}


class _Builder:
    """Builds the toy model's Nodes with the attributes ultralytics v7.0 and torch give each module."""

    def __init__(self, seed=0, dtype=np.float16):
        self.rng, self.dtype = np.random.default_rng(seed), dtype
        self.act = Node("torch.nn.modules.activation.SiLU", {"inplace": True})  # Conv.default_act: one shared object

    def rand(self, *shape, scale=0.1):
        return (self.rng.standard_normal(shape) * scale).astype(self.dtype)

    def conv2d(self, c1, c2, k, s=1, p=0, bias=False):
        return Node("torch.nn.modules.conv.Conv2d", {
            "in_channels": c1, "out_channels": c2, "kernel_size": (k, k), "stride": (s, s), "padding": (p, p),
            "dilation": (1, 1), "transposed": False, "output_padding": (0, 0), "groups": 1, "padding_mode": "zeros",
            "_reversed_padding_repeated_twice": (p, p, p, p)},
            params={"weight": self.rand(c2, c1, k, k), "bias": self.rand(c2) if bias else None})

    def conv(self, c1, c2, k=1, s=1, p=None):
        bn = Node("torch.nn.modules.batchnorm.BatchNorm2d", {
            "num_features": c2, "eps": 0.001, "momentum": 0.03, "affine": True, "track_running_stats": True},
            params={"weight": 1 + self.rand(c2), "bias": self.rand(c2)},
            buffers={"running_mean": self.rand(c2), "running_var": (1 + np.abs(self.rand(c2))).astype(self.dtype),
                     "num_batches_tracked": np.array(1234, np.int64)})
        conv = self.conv2d(c1, c2, k, s, k // 2 if p is None else p)
        return Node("models.common.Conv", children={"conv": conv, "bn": bn, "act": self.act})

    def c3(self, c1, c2, n=1, shortcut=True):
        c_ = c2 // 2
        blocks = [Node("models.common.Bottleneck", {"add": shortcut}, children={
            "cv1": self.conv(c_, c_, 1), "cv2": self.conv(c_, c_, 3)}) for _ in range(n)]
        m = Node("torch.nn.modules.container.Sequential", children={str(i): b for i, b in enumerate(blocks)})
        return Node("models.common.C3", children={
            "cv1": self.conv(c1, c_), "cv2": self.conv(c1, c_), "cv3": self.conv(2 * c_, c2), "m": m})

    def sppf(self, c1, c2, k=5):
        pool = Node("torch.nn.modules.pooling.MaxPool2d", {
            "kernel_size": k, "stride": 1, "padding": k // 2, "dilation": 1, "return_indices": False,
            "ceil_mode": False})
        return Node("models.common.SPPF", children={"cv1": self.conv(c1, c1 // 2), "cv2": self.conv(c1 // 2 * 4, c2),
                                                    "m": pool})

    def detect(self, nc, anchors, ch, strides):
        na, no = len(anchors[0]) // 2, nc + 5
        grid_units = np.array(anchors, np.float32).reshape(len(anchors), na, 2) / np.array(strides)[:, None, None]
        heads = Node("torch.nn.modules.container.ModuleList", children={
            str(i): self.conv2d(c, na * no, 1, bias=True) for i, c in enumerate(ch)})
        # grid / anchor_grid: the lists of cached tensors a model that ran inference carries (not state_dict)
        grid = [np.zeros((1, na, 4 // s, 4 // s, 2), self.dtype) for s in (1, 2)]
        # `dynamic` and `export` are class attributes in v7.0, so they are not in a pickled Detect's __dict__;
        # `stride` is set by DetectionModel after parse_model added i/f/type/np (toy_detection_model appends it).
        return Node("models.yolo.Detect", {
            "nc": nc, "no": no, "nl": len(anchors), "na": na, "grid": grid, "anchor_grid": [g + 1 for g in grid],
            "inplace": True}, buffers={"anchors": grid_units.astype(self.dtype)}, children={"m": heads})


def _count_params(node, seen=None):
    """sum(p.numel() for p in module.parameters()): parameters only, each shared module once."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return 0
    seen.add(id(node))
    own = sum(v.size for v in node.params.values() if v is not None)
    return own + sum(_count_params(child, seen) for child in node.children.values())


def toy_detection_model(seed=0, dtype=np.float16):
    """A 9-layer DetectionModel Node shaped like TOY_YAML under v7.0 code (FP16 like a stripped release file).

    Layers: Conv, Conv, C3, Conv, SPPF, nn.Upsample, Concat, C3(shortcut=False), Detect (2 levels, strides 4 and 8).
    """
    b = _Builder(seed, dtype)
    upsample = Node("torch.nn.modules.upsampling.Upsample", {
        "name": "Upsample", "size": None, "scale_factor": 2.0, "mode": "nearest", "align_corners": None,
        "recompute_scale_factor": None})
    layers = [(-1, "models.common.Conv", b.conv(3, 8, 6, 2, 2)), (-1, "models.common.Conv", b.conv(8, 16, 3, 2)),
              (-1, "models.common.C3", b.c3(16, 16)), (-1, "models.common.Conv", b.conv(16, 32, 3, 2)),
              (-1, "models.common.SPPF", b.sppf(32, 32)), (-1, "torch.nn.modules.upsampling.Upsample", upsample),
              ([-1, 2], "models.common.Concat", Node("models.common.Concat", {"d": 1})),
              (-1, "models.common.C3", b.c3(48, 16, shortcut=False)),
              ([7, 4], "models.yolo.Detect", b.detect(2, TOY_YAML["anchors"], (16, 32), (4, 8)))]
    for i, (f, t, node) in enumerate(layers):  # parse_model sets these on each layer, in this order
        node.attrs.update(i=i, f=f, type=t, np=_count_params(node))
    layers[-1][2].attrs["stride"] = np.array([4.0, 8.0], dtype)  # BaseModel._apply also halves Detect.stride
    model = Node("torch.nn.modules.container.Sequential", children={str(i): n for i, (_, _, n) in enumerate(layers)})
    return Node("models.yolo.DetectionModel", {
        "yaml_file": "toy.yaml", "yaml": TOY_YAML, "save": [2, 4, 7], "names": {0: "cat", 1: "dog"},
        "inplace": True, "stride": np.array([4.0, 8.0], np.float32), "nc": 2, "hyp": {"box": 0.05, "cls": 0.5},
        "class_weights": Located(np.array([0.7, 1.3], np.float32), "cuda:0")}, children={"model": model})
