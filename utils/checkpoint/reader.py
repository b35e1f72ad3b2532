"""Reading checkpoints safely: a restricted unpickler over torch's zip container (no framework imported).

Official ultralytics ``.pt`` files are full pickles of ``nn.Module`` objects; ``pickle.load`` on them would import and
run whatever the file names. Here only an allow-list of globals resolves, and every pickled module becomes a
:class:`ModuleRecord` (plain data), so loading a checkpoint never executes code. one-yolov5's ``oneflow.save``
checkpoints (folders, or single pickle files) go through the same unpickler with OneFlow's tensor classes added to the
allow-list (utils/checkpoint/oneflow_format.py).
"""

import collections
import errno
import io
import os
import pathlib
import pickle
import zipfile

import numpy as np

import utils.checkpoint.oneflow_format as oneflow_format
from utils.checkpoint.format import (_LEGACY_MAGIC, _NN_CLASSES, _STORAGE_CODES, _TORCH_DTYPES,
                                     _YOLO_CLASSES, _YOLO_MODULES, CheckpointError, UnsafeCheckpointError)


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


_ONEFLOW_ALLOWED = oneflow_format.globals_table()


def _find_global(module, name, oneflow=False):
    """The object the restricted unpickler returns for GLOBAL module.name, or None if it is not allowed.

    ``oneflow``: the pickle comes from oneflow.save, whose tensors, dtypes and ``oneflow.nn.modules.*`` are allowed.
    """
    if (module, name) in _ALLOWED:
        return _ALLOWED[module, name]
    if oneflow and (module, name) in _ONEFLOW_ALLOWED:
        return _ONEFLOW_ALLOWED[module, name]
    if oneflow and module.startswith("oneflow.nn.modules.") and name in _NN_CLASSES:
        return _record_class(f"{module}.{name}")
    if (module, name) in _TRANSFORM_CLASSES:  # -cls files carry model.transforms: kept as inert records
        return _record_class(f"{module}.{name}")
    if (module in _YOLO_MODULES and name in _YOLO_CLASSES) or (
            module.startswith("torch.nn.modules.") and name in _NN_CLASSES):
        return _record_class(f"{module}.{name}")
    return None


class _Unpickler(pickle.Unpickler):
    """Resolves only allow-listed globals and reads storages from the open zip on demand."""

    def __init__(self, data, file, zf=None, prefix="", order="<", oneflow=False):
        super().__init__(io.BytesIO(data))
        self.file, self.zf, self.prefix, self.order, self.oneflow = file, zf, prefix, order, oneflow
        self.storages = {}

    def find_class(self, module, name):
        found = _find_global(module, name, self.oneflow)
        if found is None:
            raise UnsafeCheckpointError(f"{self.file}: refusing to load global '{module}.{name}': it is not on the "
                                        f"allow-list of utils/checkpoint.py (loading a checkpoint never runs code)")
        return found

    def persistent_load(self, pid):
        if self.zf is None:
            raise ValueError("persistent ids outside a torch zip checkpoint")
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
    """Load a checkpoint safely, without torch or oneflow.

    Args:
        path: file written by ``torch.save`` (torch >= 1.6) or by :func:`write`; or what ``oneflow.save`` wrote (a
            folder with ``pickled_data``, a legacy variable folder, or a single pickle file with a 'oneflow' key).

    Returns:
        The unpickled object. Tensors and Parameters are numpy arrays with the stored dtype, shape and values
        (contiguous copies; bfloat16 becomes float32); pickled modules are :class:`ModuleRecord` objects; pathlib
        paths are strings. A legacy OneFlow variable folder gives {variable name: array}.

    Raises:
        FileNotFoundError: `path` does not exist.
        UnsafeCheckpointError: the pickle names a global outside the allow-list.
        CheckpointError: the file is not a readable checkpoint (the message names the file and the problem).
    """
    file = os.fspath(path)
    if not os.path.exists(file):
        raise FileNotFoundError(errno.ENOENT, "checkpoint not found", file)
    if os.path.isdir(file):
        return _read_oneflow_dir(file)
    with open(file, "rb") as f:
        head = f.read(len(_LEGACY_MAGIC))
    if head[:1] == b"\x80" and not head.startswith(_LEGACY_MAGIC):
        return _read_oneflow_file(file)
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




def _unpickle_oneflow(data, file, folder=None):
    """oneflow.save's pickle -> the saved object, tensors as numpy arrays (loaded from ``folder`` if given)."""
    try:
        obj = _Unpickler(data, file, oneflow=True).load()
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"{file}: corrupt oneflow.save pickle: {type(e).__name__}: {e}") from e
    obj = oneflow_format.unwrap(obj, file, single_file=folder is None)
    return oneflow_format.resolve_tensors(obj, folder, ModuleRecord)


def _read_oneflow_dir(folder):
    """A checkpoint folder written by oneflow.save (one-yolov5 ``weights/last``, ``last.of``, ``yolov5s.of``)."""
    pickled = os.path.join(folder, oneflow_format.PICKLE_FILE)
    if os.path.isfile(pickled):
        with open(pickled, "rb") as f:
            return _unpickle_oneflow(f.read(), folder, folder)
    if oneflow_format.is_checkpoint_dir(folder):
        return oneflow_format.read_legacy_dir(folder)
    raise CheckpointError(f"{folder}: is a directory, not a checkpoint (neither a PyTorch file nor a oneflow.save "
                          f"folder with '{oneflow_format.PICKLE_FILE}')")


def _read_oneflow_file(file):
    """A bare pickle: only oneflow.save's single-file layout is accepted."""
    with open(file, "rb") as f:
        data = f.read()
    try:
        return _unpickle_oneflow(data, file)
    except UnsafeCheckpointError:
        raise
    except CheckpointError as e:
        raise CheckpointError(f"{file}: cannot load: it is a bare pickle, neither a PyTorch zip checkpoint nor a "
                              f"oneflow.save file ({e})") from None
