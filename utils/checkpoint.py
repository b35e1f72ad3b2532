"""Read and write PyTorch's zip checkpoint container with Python and numpy only (DESIGN.md section 3).

Why this module exists:
  - our ``last.pt`` / ``best.pt`` must open in PyTorch with ``torch.load(f, weights_only=True)`` and in OneFlow, so
    they are written here as plain data (dicts, lists, numbers, strings, tensors) in torch's own zip layout;
  - official ultralytics ``.pt`` files are full pickles of ``nn.Module`` objects. ``pickle.load`` on them would import
    and run whatever the file names; here a restricted unpickler resolves only an allow-list of globals and turns
    every pickled module into a :class:`ModuleRecord` (plain data), so loading a checkpoint never executes code.

The container (FACTS.md 3.1): ``<prefix>/data.pkl`` (pickle protocol 2), ``<prefix>/data/<key>`` (raw little-endian
storage bytes, one record per storage), ``<prefix>/version``, and in newer files ``<prefix>/byteorder``. Tensors are
pickled as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``, where ``storage`` is a persistent
id ``('storage', torch.<X>Storage, key, location, numel)``.

Nothing here imports torch or oneflow: tensors are read as numpy arrays and written from numpy arrays.
"""

import collections
import contextlib
import errno
import io
import os
import pathlib
import pickle
import re
import struct
import tempfile
import zipfile

import numpy as np

__all__ = ["CheckpointError", "UnsafeCheckpointError", "ModuleRecord", "read", "write"]

# torch.<X>Storage -> numpy type code of one element; 'bf16' (bfloat16) has no numpy type: read as uint16 bits.
_STORAGE_CODES = {
    "HalfStorage": "f2", "FloatStorage": "f4", "DoubleStorage": "f8", "BFloat16Storage": "bf16",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "b1", "ComplexFloatStorage": "c8", "ComplexDoubleStorage": "c16", "UntypedStorage": "u1"}
# torch dtypes as they are pickled (GLOBAL 'torch float16'); used by _rebuild_tensor_v3 with an UntypedStorage.
_TORCH_DTYPES = {
    "float16": "f2", "float32": "f4", "float64": "f8", "bfloat16": "bf16", "int64": "i8", "int32": "i4",
    "int16": "i2", "int8": "i1", "uint8": "u1", "bool": "b1", "complex64": "c8", "complex128": "c16",
    "uint16": "u2", "uint32": "u4", "uint64": "u8"}
# numpy (kind + itemsize) -> the storage class a writer names; these are the dtypes write() accepts.
_WRITE_STORAGES = {code: name for name, code in _STORAGE_CODES.items()
                   if name not in ("BFloat16Storage", "UntypedStorage")}

_YOLO_MODULES = {"models.common", "models.yolo", "models.experimental"}
_YOLO_MODULES |= {"yolov5." + m for m in _YOLO_MODULES}  # the PyPI `yolov5` package pickles with this prefix
_YOLO_CLASSES = frozenset(
    "DetectionModel Model SegmentationModel ClassificationModel BaseModel Detect Segment Conv DWConv DWConvTranspose2d "
    "TransformerLayer TransformerBlock Bottleneck BottleneckCSP CrossConv C3 C3x C3TR C3SPP C3Ghost SPP SPPF Focus "
    "GhostConv GhostBottleneck Contract Expand Concat Proto Classify MixConv2d Ensemble Sum".split())
_NN_CLASSES = frozenset(
    "Sequential ModuleList ModuleDict Conv2d ConvTranspose2d BatchNorm2d SyncBatchNorm LayerNorm SiLU ReLU ReLU6 "
    "LeakyReLU Hardswish Sigmoid Tanh GELU Identity MaxPool2d AvgPool2d AdaptiveAvgPool2d Upsample ZeroPad2d Dropout "
    "Linear MultiheadAttention NonDynamicallyQuantizableLinear Flatten".split())
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # pickled magic number of torch < 1.6 files
_ALIGN = 64  # torch aligns storage payloads to 64 bytes in the file (needed for torch.load(mmap=True))


class CheckpointError(Exception):
    """The file is not a readable checkpoint (not a zip, truncated, records missing, corrupt pickle, ...)."""


class UnsafeCheckpointError(CheckpointError):
    """The pickle names a global outside the allow-list; it was refused before anything ran."""


# ----------------------------------------------------------------------------------------------------- reading
class _ReadOnlyClass(type):
    """Metaclass of the record classes: a crafted BUILD opcode cannot set attributes on them."""

    def __setattr__(cls, name, value):
        raise TypeError(f"{cls.__name__} is read-only")

    def __delattr__(cls, name):
        raise TypeError(f"{cls.__name__} is read-only")


class ModuleRecord(metaclass=_ReadOnlyClass):
    """A pickled ``nn.Module`` as plain data; the real class is never imported or instantiated.

    Attributes:
        cls: the class path as written in the pickle, e.g. ``'models.yolo.DetectionModel'``.
        attrs: the module's ``__dict__`` as unpickled (``training``, ``_parameters``, ``_buffers``, ``_modules``,
            ``yaml``, ``names``, ``stride``, ...). Attribute access falls back to ``attrs`` and then to the
            parameters, buffers and sub-modules, as on a torch module (``record.model``, ``record.stride``).
    """

    cls = "torch.nn.modules.module.Module"

    def __new__(klass, *args, **kwargs):  # pickle's NEWOBJ calls cls.__new__(cls) and never __init__
        self = super().__new__(klass)
        self.__dict__["attrs"] = {}
        return self

    def __init__(self, cls=None, attrs=None):
        if cls is not None:
            self.__dict__["cls"] = cls
        if attrs is not None:
            self.__dict__["attrs"] = dict(attrs)

    def __getstate__(self):  # copy.deepcopy(record) round-trips through __setstate__
        return self.attrs

    def __setstate__(self, state):  # pickle's BUILD: the module's __dict__, or (__dict__, slots) for slotted classes
        if isinstance(state, tuple) and len(state) == 2:
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise ValueError(f"state of {self.cls} is a {type(state).__name__}, expected a dict")
        self.attrs.update(state)

    def __getattr__(self, name):
        attrs = self.__dict__.get("attrs", {})
        if not name.startswith("__"):
            if name in attrs:
                return attrs[name]
            for group in ("_parameters", "_buffers", "_modules"):
                members = attrs.get(group)
                if isinstance(members, dict) and name in members:
                    return members[name]
        raise AttributeError(f"{self.__dict__.get('cls', type(self).cls)} record has no attribute {name!r}")

    @property
    def name(self):
        """Class name without its module, e.g. ``'DetectionModel'``."""
        return self.cls.rsplit(".", 1)[-1]

    def get(self, key, default=None):
        """``attrs.get(key, default)``."""
        return self.attrs.get(key, default)

    def state_dict(self):
        """Return the tensors as torch's ``Module.state_dict()`` names them.

        Returns:
            OrderedDict of dotted name -> numpy array: per module its parameters, then its persistent buffers (those
            not in ``_non_persistent_buffers_set``), then each sub-module in order; ``None`` entries are skipped.
        """
        out = collections.OrderedDict()
        self._collect(out, "")
        return out

    def _collect(self, out, prefix):
        skip = self.attrs.get("_non_persistent_buffers_set") or ()
        for name, value in (self.attrs.get("_parameters") or {}).items():
            if value is not None:
                out[prefix + name] = value
        for name, value in (self.attrs.get("_buffers") or {}).items():
            if value is not None and name not in skip:
                out[prefix + name] = value
        for name, child in (self.attrs.get("_modules") or {}).items():
            if isinstance(child, ModuleRecord):
                child._collect(out, f"{prefix}{name}.")

    def __repr__(self):
        return f"ModuleRecord({self.cls})"


def _ignore_args(self, *args, **kwargs):
    """__init__ of the per-class records: arguments of a REDUCE-style call carry nothing we keep."""


_RECORD_CLASSES = {}


def _record_class(path):
    """The ModuleRecord subclass standing for the pickled class `path` (cached: one class per path)."""
    if path not in _RECORD_CLASSES:
        name = path.rsplit(".", 1)[-1]
        _RECORD_CLASSES[path] = _ReadOnlyClass(name, (ModuleRecord,), {
            "cls": path, "__init__": _ignore_args, "__module__": __name__, "__qualname__": f"ModuleRecord[{path}]"})
    return _RECORD_CLASSES[path]


class _Ref:
    """An allow-listed global as the unpickler hands it out. Immutable, so a crafted BUILD cannot alter it."""

    __slots__ = ("path", "kind", "value")

    def __init__(self, path, kind, value=None):
        for slot, v in zip(self.__slots__, (path, kind, value)):
            object.__setattr__(self, slot, v)

    def __setattr__(self, name, value):
        raise TypeError(f"{self.path} is read-only")

    def __delattr__(self, name):
        raise TypeError(f"{self.path} is read-only")

    def __call__(self, *args):
        if not callable(self.value):
            raise TypeError(f"{self.path} is not callable")
        return self.value(*args)


class _Storage:
    """One storage record: its bytes, element type code and byte order ('<' or '>')."""

    def __init__(self, data, code, order):
        self.data, self.code, self.order = data, code, order


def _as_array(storage, offset, size, stride, code=None):
    """Tensor view (offset/size/stride in elements) of a storage -> a contiguous numpy copy in native byte order."""
    if not isinstance(storage, _Storage):
        raise ValueError(f"tensor rebuilt from a {type(storage).__name__}, expected a storage")
    code = code or storage.code
    dtype = np.dtype("u2" if code == "bf16" else code).newbyteorder(storage.order)
    size, stride, offset = tuple(size), tuple(stride), int(offset)
    if len(size) != len(stride) or not all(type(v) is int and v >= 0 for v in size + stride + (offset,)):
        raise ValueError(f"bad tensor geometry: offset {offset}, size {size}, stride {stride}")
    if 0 in size:
        array = np.empty(size, dtype)
    else:
        count = len(storage.data) // dtype.itemsize
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= count:
            raise ValueError(f"tensor (offset {offset}, size {size}, stride {stride}) exceeds its storage of {count}")
        flat = np.frombuffer(storage.data, dtype, count)
        view = np.lib.stride_tricks.as_strided(flat[offset:], size, [s * dtype.itemsize for s in stride])
        array = np.array(view, order="C")  # a contiguous copy, free of the record's buffer
    array = array.astype(dtype.newbyteorder("="), copy=False)
    if code == "bf16":  # bfloat16 is the upper half of a float32
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _rebuild_tensor_v2(storage, offset, size, stride, *requires_grad_hooks_metadata):  # also the older _rebuild_tensor
    return _as_array(storage, offset, size, stride)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    if not (isinstance(dtype, _Ref) and dtype.kind == "dtype"):
        raise ValueError("_rebuild_tensor_v3 without a torch dtype")
    return _as_array(storage, offset, size, stride, dtype.value)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    if not isinstance(data, np.ndarray):
        raise ValueError(f"parameter data is a {type(data).__name__}, expected a tensor")
    return data  # a Parameter is its tensor here: requires_grad and hooks do not survive into numpy


def _rebuild_from_type_v2(func, new_type, args, state):
    """torch._tensor._rebuild_from_type_v2, accepted only for plain Tensor / Parameter (no subclass code)."""
    if not (isinstance(func, _Ref) and func.kind == "rebuild" and isinstance(new_type, _Ref)
            and new_type.kind == "tensor_type"):
        raise ValueError("_rebuild_from_type_v2 used with something other than a plain Tensor/Parameter")
    return func(*args)


def _reconstruct(subtype, shape, dtype_code):
    """numpy.core.multiarray._reconstruct for plain ndarrays; the following BUILD sets shape, dtype and data."""
    if not (isinstance(subtype, _Ref) and subtype.kind == "ndarray") or not isinstance(dtype_code, (str, bytes)):
        raise ValueError("numpy _reconstruct of something other than a plain ndarray")
    return np.ndarray((0,), np.dtype(dtype_code))  # numpy always pickles shape (0,); a larger one is not honoured


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype):
        raise ValueError("numpy scalar without a dtype")
    if dtype.hasobject:
        return data
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise ValueError(f"numpy scalar of {dtype} with {len(data or b'')} bytes")
    return np.frombuffer(data, dtype, 1)[0]


def _numpy_dtype(spec, align=False, copy=True):
    if not isinstance(spec, str):
        raise ValueError("numpy dtype from a non-string spec")
    return np.dtype(spec, align=bool(align))


def _codecs_encode(text, encoding="utf-8"):
    """Protocol 2 spells bytes as _codecs.encode(str, 'latin1'); nothing else is accepted."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ValueError("_codecs.encode allowed only for latin1 text")
    return text.encode("latin1")


def _path(flavour):
    """pathlib paths come back as strings: a PosixPath written on Linux must also load on Windows."""

    def build(*parts):
        if not all(isinstance(p, str) for p in parts):
            raise ValueError("path parts must be strings")
        return str(flavour(*parts))

    return build


def _copyreg_reconstructor(cls, base, state=None):  # copyreg._reconstructor: protocol 0/1 form of cls.__new__(cls)
    if not (isinstance(cls, type) and issubclass(cls, ModuleRecord)) or base is not object:
        raise ValueError("copyreg._reconstructor allowed only for module records")
    return cls.__new__(cls)


def _method_ref(owner, name):
    """builtins.getattr, as protocol 2 pickles a method (ultralytics' Segment keeps ``detect = Detect.forward``).

    Allowed only on a YOLOv5 / torch.nn record class and only for its ``forward``: it yields a marker string, never
    the attribute itself, so no real object is ever looked up.
    """
    if not (isinstance(owner, type) and issubclass(owner, ModuleRecord)) or name != "forward":
        raise ValueError("getattr is allowed only as <YOLOv5 module class>.forward")
    return f"{owner.cls}.{name}"


def _allowed_globals():
    """(module, name) -> object for every non-module global an unpickled checkpoint may name."""
    table = {}
    for name, func in (("_rebuild_tensor_v2", _rebuild_tensor_v2), ("_rebuild_tensor", _rebuild_tensor_v2),
                       ("_rebuild_tensor_v3", _rebuild_tensor_v3), ("_rebuild_parameter", _rebuild_parameter),
                       ("_rebuild_parameter_with_state", _rebuild_parameter)):
        table["torch._utils", name] = _Ref(f"torch._utils.{name}", "rebuild", func)
    table["torch._tensor", "_rebuild_from_type_v2"] = _Ref("_rebuild_from_type_v2", "rebuild", _rebuild_from_type_v2)
    table["torch", "Tensor"] = _Ref("torch.Tensor", "tensor_type")
    table["torch.nn.parameter", "Parameter"] = _Ref("torch.nn.parameter.Parameter", "tensor_type",
                                                    lambda data=None, requires_grad=True: data)
    table["torch", "Size"] = _Ref("torch.Size", "callable", lambda dims=(): tuple(int(d) for d in dims))
    table["torch", "device"] = _Ref("torch.device", "callable",  # a string: CUDA is never touched
                                    lambda kind, index=None: kind if index is None else f"{kind}:{index}")
    for name, code in _STORAGE_CODES.items():
        for module in ("torch", "torch.cuda", "torch.storage"):  # torch.cuda.*Storage: files saved by old torch
            table[module, name] = _Ref(f"{module}.{name}", "storage", code)
    for name, code in _TORCH_DTYPES.items():
        table["torch", name] = _Ref(f"torch.{name}", "dtype", code)
    for builtins in ("__builtin__", "builtins"):  # protocol 2 writes Python 2's module name
        for kind in (set, frozenset, list, dict, tuple):
            table[builtins, kind.__name__] = kind
        table[builtins, "getattr"] = _Ref("builtins.getattr", "callable", _method_ref)
    table["collections", "OrderedDict"] = collections.OrderedDict
    table["_codecs", "encode"] = _Ref("_codecs.encode", "callable", _codecs_encode)
    for module in ("copyreg", "copy_reg"):
        table[module, "_reconstructor"] = _Ref("copyreg._reconstructor", "callable", _copyreg_reconstructor)
        table[module, "__newobj__"] = _Ref("copyreg.__newobj__", "callable",
                                           lambda cls, *args: _copyreg_reconstructor(cls, object))
    for module in ("pathlib", "pathlib._local"):
        for name in ("PosixPath", "PurePosixPath"):
            table[module, name] = _Ref(f"pathlib.{name}", "callable", _path(pathlib.PurePosixPath))
        for name in ("WindowsPath", "PureWindowsPath"):
            table[module, name] = _Ref(f"pathlib.{name}", "callable", _path(pathlib.PureWindowsPath))
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[module, "_reconstruct"] = _Ref("numpy._reconstruct", "callable", _reconstruct)
        table[module, "scalar"] = _Ref("numpy.scalar", "callable", _numpy_scalar)
    table["numpy", "ndarray"] = _Ref("numpy.ndarray", "ndarray")
    table["numpy", "dtype"] = _Ref("numpy.dtype", "callable", _numpy_dtype)
    return table


_ALLOWED = _allowed_globals()
_TRANSFORM_CLASSES = {(m, n) for m in ("torchvision.transforms.transforms",)
                      for n in ("Compose", "Normalize", "Resize", "CenterCrop", "ToTensor")} | {
    (m, n) for m in ("utils.augmentations", "yolov5.utils.augmentations")
    for n in ("CenterCrop", "ToTensor", "LetterBox")}


def _find_global(module, name):
    """The object the restricted unpickler returns for GLOBAL module.name, or None if it is not allowed."""
    if (module, name) in _ALLOWED:
        return _ALLOWED[module, name]
    if (module, name) in _TRANSFORM_CLASSES:  # -cls files carry model.transforms: kept as inert records
        return _record_class(f"{module}.{name}")
    if (module in _YOLO_MODULES and name in _YOLO_CLASSES) or (
            module.startswith("torch.nn.modules.") and name in _NN_CLASSES):
        return _record_class(f"{module}.{name}")
    return None


class _Unpickler(pickle.Unpickler):
    """Resolves only allow-listed globals and reads storages from the open zip on demand."""

    def __init__(self, data, file, zf, prefix, order):
        super().__init__(io.BytesIO(data))
        self.file, self.zf, self.prefix, self.order = file, zf, prefix, order
        self.storages = {}

    def find_class(self, module, name):
        found = _find_global(module, name)
        if found is None:
            raise UnsafeCheckpointError(f"{self.file}: refusing to load global '{module}.{name}': it is not on the "
                                        f"allow-list of utils/checkpoint.py (loading a checkpoint never runs code)")
        return found

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] in ("storage", b"storage")):
            raise ValueError(f"unknown persistent id {pid!r:.80}")
        storage_type, key, numel = pid[1], str(pid[2]), pid[4]  # pid[3] (e.g. 'cuda:0') is ignored on purpose
        if not (isinstance(storage_type, _Ref) and storage_type.kind == "storage") or type(numel) is not int:
            raise ValueError(f"bad storage reference {pid!r:.80}")
        if key not in self.storages:
            code = storage_type.value
            name = f"{self.prefix}data/{key}"
            data = _read_record(self.zf, name, self.file)
            need = numel * np.dtype("u2" if code == "bf16" else code).itemsize
            if len(data) < need:
                raise CheckpointError(f"{self.file}: storage record '{name}' has {len(data)} bytes, expected {need}")
            self.storages[key] = _Storage(data, code, self.order)
        return self.storages[key]


def _read_record(zf, name, file):
    try:
        return zf.read(name)
    except KeyError:
        raise CheckpointError(f"{file}: missing record '{name}' (truncated or incomplete checkpoint)") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as e:
        raise CheckpointError(f"{file}: cannot read record '{name}': {e}") from e


def _not_zip_reason(head):
    if not head:
        return "the file is empty"
    if head.startswith(_LEGACY_MAGIC):
        return ("it is in the legacy (torch < 1.6) non-zip format, which is not supported; re-save it with "
                "torch >= 1.6: torch.save(torch.load(f), f)")
    if head[:1] == b"\x80":
        return "it is a bare pickle, not a PyTorch zip checkpoint"
    return "it is not a zip archive (not a PyTorch checkpoint)"


def _find_prefix(zf, file):
    """The archive folder holding data.pkl (written as the file stem, 'archive', or anything else)."""
    names = zf.namelist()
    pickles = sorted((n for n in names if n == "data.pkl" or n.endswith("/data.pkl")), key=lambda n: n.count("/"))
    if not pickles:
        raise CheckpointError(f"{file}: the zip archive has no data.pkl record (not a PyTorch checkpoint)")
    prefix = pickles[0][: -len("data.pkl")]
    if prefix + "constants.pkl" in names or any(n.startswith(prefix + "code/") for n in names):
        raise CheckpointError(f"{file}: this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint")
    return prefix


def read(path):
    """Load a PyTorch zip checkpoint safely, without torch.

    Args:
        path: file written by ``torch.save`` (torch >= 1.6) or by :func:`write`.

    Returns:
        The unpickled object. Tensors and Parameters are numpy arrays with the stored dtype, shape and values
        (contiguous copies; bfloat16 becomes float32); pickled modules are :class:`ModuleRecord` objects; pathlib
        paths are strings.

    Raises:
        FileNotFoundError: `path` does not exist.
        UnsafeCheckpointError: the pickle names a global outside the allow-list.
        CheckpointError: the file is not a readable checkpoint (the message names the file and the problem).
    """
    file = os.fspath(path)
    if not os.path.exists(file):
        raise FileNotFoundError(errno.ENOENT, "checkpoint not found", file)
    if os.path.isdir(file):
        raise CheckpointError(f"{file}: is a directory, not a checkpoint file (oneflow.save directories are not read)")
    with open(file, "rb") as f:
        head = f.read(len(_LEGACY_MAGIC))
    if not head.startswith(b"PK"):
        raise CheckpointError(f"{file}: cannot load: {_not_zip_reason(head)}")
    try:
        zf = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise CheckpointError(f"{file}: truncated or corrupt zip archive ({e})") from e
    with zf:
        prefix = _find_prefix(zf, file)
        order = b"little"
        if prefix + "byteorder" in zf.namelist():
            order = _read_record(zf, prefix + "byteorder", file)
        if order not in (b"little", b"big"):
            raise CheckpointError(f"{file}: unknown byteorder record {order[:20]!r}")
        data = _read_record(zf, prefix + "data.pkl", file)
        try:
            return _Unpickler(data, file, zf, prefix, "<" if order == b"little" else ">").load()
        except CheckpointError:
            raise
        except Exception as e:  # any failure inside the pickle stream means the file is damaged
            raise CheckpointError(f"{file}: corrupt {prefix}data.pkl: {type(e).__name__}: {e}") from e


# ----------------------------------------------------------------------------------------------------- writing
class _Global:
    """A reference to `module.name` that the writer emits as a GLOBAL opcode without importing it."""

    __slots__ = ("module", "name")
    _cache = {}

    def __new__(cls, module, name):  # interned, so the pickler memo writes each global once, as torch does
        key = (module, name)
        if key not in cls._cache:
            self = super().__new__(cls)
            object.__setattr__(self, "module", module)
            object.__setattr__(self, "name", name)
            cls._cache[key] = self
        return cls._cache[key]

    def __call__(self, *args):  # pickle requires the function of a reduce tuple to be callable
        raise TypeError(f"{self.module}.{self.name} is only a reference")


class _StorageOut:
    """A storage to write: pickled as its persistent id, its bytes go to <prefix>/data/<key>."""

    def __init__(self, key, storage_class, location, numel):
        self.key, self.storage_class, self.location, self.numel = key, storage_class, location, numel


def _contiguous_strides(shape):
    strides, step = [], 1
    for n in reversed(shape):  # torch's rule: a zero-sized dim still counts as 1 for the strides before it
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


class _Pickler(pickle._Pickler):
    """Protocol-2 pickler (pure-Python, to extend its dispatch) writing numpy arrays as torch tensors."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file):
        super().__init__(file, protocol=2)
        self.storages = []  # (key, bytes) in the order the pickle names them

    def persistent_id(self, obj):
        if type(obj) is _StorageOut:
            return "storage", _Global("torch", obj.storage_class), obj.key, obj.location, obj.numel
        return None

    def reducer_override(self, obj):
        if type(obj) is np.ndarray:
            return self.tensor_reduce(obj)
        return NotImplemented

    def tensor_reduce(self, array, location="cpu"):
        """Reduce tuple of a tensor with its own storage: _rebuild_tensor_v2(storage, 0, size, stride, False, {})."""
        code = f"{array.dtype.kind}{array.dtype.itemsize}"
        if code not in _WRITE_STORAGES:
            raise TypeError(f"arrays of dtype {array.dtype} cannot be stored as torch tensors")
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        storage = _StorageOut(str(len(self.storages)), _WRITE_STORAGES[code], location, array.size)
        self.storages.append((storage.key, data))
        shape = tuple(int(n) for n in array.shape)
        args = (storage, 0, shape, _contiguous_strides(shape), False, collections.OrderedDict())
        return _Global("torch._utils", "_rebuild_tensor_v2"), args

    def save_global_ref(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("utf-8"))
        self.memoize(obj)

    dispatch[_Global] = save_global_ref


def _dump(obj, pickler_class=_Pickler):
    """Pickle `obj` -> (data.pkl bytes, [(storage key, bytes)])."""
    buffer = io.BytesIO()
    pickler = pickler_class(buffer)
    pickler.dump(obj)
    return buffer.getvalue(), pickler.storages


def _add_record(zf, fh, name, data):
    """Append an uncompressed record whose payload starts on a 64-byte boundary (padding in an 'FB' extra field)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    zip64 = 20 if len(data) * 1.05 > zipfile.ZIP64_LIMIT else 0  # zipfile then appends a zip64 extra field
    pad = -(fh.tell() + 30 + len(name.encode("utf-8")) + 4 + zip64) % _ALIGN  # 30: fixed local header size
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    zf.writestr(info, data)


def _write_archive(path, pickled, storages, prefix=None, byteorder=True):
    """Write the zip container atomically: a temp file in the same folder, fsync, then os.replace.

    The archive folder is `prefix`, by default the file stem (as torch.save names it), or 'archive' for odd stems.
    No `.format_version` record is written on purpose: with it, newer torch may compute storage offsets assuming
    miniz's exact layout (data descriptors after every payload) instead of reading the zip headers.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if prefix is None:
        stem = os.path.splitext(os.path.basename(path))[0]
        prefix = stem if re.fullmatch(r"[A-Za-z0-9_.-]+", stem) else "archive"
    prefix += "/"
    mode = os.stat(path).st_mode & 0o777 if os.path.isfile(path) else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                _add_record(zf, fh, prefix + "data.pkl", pickled)  # torch names the archive after the first record
                if byteorder:
                    _add_record(zf, fh, prefix + "byteorder", b"little")
                for key, data in storages:
                    _add_record(zf, fh, f"{prefix}data/{key}", data)
                _add_record(zf, fh, prefix + "version", b"3\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError, AttributeError):  # make the rename durable (POSIX; skipped where unsupported)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


_SCALARS = (str, int, float, bool, type(None))


def _to_plain(obj, where, arrays, active):
    """Validated copy of `obj` for writing; raises TypeError naming the key path of anything not plain data."""
    if type(obj) in _SCALARS:
        return obj
    if isinstance(obj, (np.bool_, np.number)) and type(obj.item()) in _SCALARS:
        return obj.item()  # numpy scalars are written as Python numbers
    if isinstance(obj, np.ndarray):
        if id(obj) not in arrays:  # the same array object twice is one tensor, as torch.save would write it
            array = np.asarray(obj)
            if f"{array.dtype.kind}{array.dtype.itemsize}" not in _WRITE_STORAGES:
                raise TypeError(f"checkpoint.write: arrays of dtype {array.dtype} cannot be stored (at {where})")
            arrays[id(obj)] = array if array.flags.c_contiguous else array.copy(order="C")
        return arrays[id(obj)]
    if isinstance(obj, pathlib.PurePath):
        return str(obj)  # paths are stored as strings, which load anywhere
    if type(obj) in (dict, collections.OrderedDict, list, tuple):
        if id(obj) in active:
            raise TypeError(f"checkpoint.write: circular reference at {where}")
        active.add(id(obj))
        if isinstance(obj, dict):
            out = type(obj)((_key(k, where), _to_plain(v, f"{where}[{k!r}]", arrays, active)) for k, v in obj.items())
        else:
            out = type(obj)(_to_plain(v, f"{where}[{i}]", arrays, active) for i, v in enumerate(obj))
        active.discard(id(obj))
        return out
    kind = type(obj)
    raise TypeError(f"checkpoint.write: cannot store a {kind.__module__}.{kind.__qualname__} at {where}: only dict, "
                    f"OrderedDict, list, tuple, str, int, float, bool, None and numpy arrays are allowed")


def _key(key, where):
    if type(key) in _SCALARS:
        return key
    if isinstance(key, (np.bool_, np.number)) and type(key.item()) in _SCALARS:
        return key.item()
    raise TypeError(f"checkpoint.write: dict key {key!r} ({type(key).__name__}) at {where} is not a str or number")


def write(obj, path):
    """Write plain data as a PyTorch zip checkpoint, atomically.

    Args:
        obj: dict / OrderedDict / list / tuple / str / int / float / bool / None / numpy array, nested. Arrays
            become torch tensors of the same dtype (float16/32/64, int8/16/32/64, uint8, bool, complex64/128);
            numpy scalars become Python numbers and pathlib paths strings.
        path: destination; the previous file there stays intact until the new one is complete.

    Raises:
        TypeError: `obj` holds anything else (the message names its key path); nothing is written then.
    """
    plain = _to_plain(obj, "obj", {}, set())
    pickled, storages = _dump(plain)
    _write_archive(path, pickled, storages)
