"""Writing checkpoints: plain data (dicts, lists, numbers, strings, numpy arrays) in torch's zip layout, atomically.

The files open with ``torch.load(f, weights_only=True)`` and with our reader; a crash never leaves a half-written file
under the final name (temp file + rename).
"""

import collections
import contextlib
import io
import os
import pathlib
import pickle
import re
import struct
import tempfile
import zipfile

import numpy as np

from utils.checkpoint.format import _ALIGN, _WRITE_STORAGES
from utils.errors import UserError


class CheckpointWriteError(UserError, OSError):
    """A checkpoint could not be written (disk full, read-only folder, permissions); errno and filename as the
    OSError's. The file already at that path, if any, is unchanged (the write goes to a temp file first)."""

    def __str__(self):  # the message itself (OSError would print '[Errno 28] <strerror>: <filename>' instead)
        return str(self.args[0]) if self.args else super().__str__()


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
        CheckpointWriteError: the file system refused the write (ENOSPC, EACCES, ...); the previous file at `path`
            is intact and no temp file is left.
    """
    plain = _to_plain(obj, "obj", {}, set())
    pickled, storages = _dump(plain)
    try:
        _write_archive(path, pickled, storages)
    except OSError as e:
        err = CheckpointWriteError(f"cannot write checkpoint {path}: {e.strerror or e}; the file there (if any) is "
                                   f"unchanged")
        err.errno, err.strerror, err.filename = e.errno, e.strerror, os.fspath(path)
        raise err from e
