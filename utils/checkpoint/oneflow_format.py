"""one-yolov5's checkpoints (``oneflow.save``), read without OneFlow and without running pickled code.

Why: one-yolov5 users have ``weights/last`` folders (v1.0 / v1.1), ``last.of`` / ``best.of`` and the released
``yolov5*.of`` weights (v1.2.0). ``oneflow.save`` wrote them in one of three layouts, all handled here:
  - a folder holding ``pickled_data`` (pickle of ``{'protocol_version': 1, 'data': obj}``) and one sub-folder per
    tensor (``tensor_<n>/out``: raw bytes, ``tensor_<n>/meta``: protobuf text with ``shape { dim: .. }`` and
    ``data_type: kFloat16``); a pickled tensor is ``oneflow.Tensor`` / ``oneflow.nn.Parameter`` built from
    ``{'path': 'tensor_<n>'}`` (OneFlow 0.8 - 0.9.0, what one-yolov5 itself saved);
  - a single file: the same dict pickled with an extra ``'oneflow'`` key, each tensor built from ``{'data': <numpy
    array>, 'dtype': <oneflow dtype>, 'device': 'cpu'}`` (the OneFlow builds after 0.9.0 that the v1.2.0 release
    weights were written with);
  - a legacy folder of variables (``snapshot_done`` + ``<name>/out`` + ``<name>/meta``): a state dict.
The pickles name one-yolov5's classes under the same paths as ultralytics (``models.yolo.DetectionModel``, ...) and
OneFlow's modules under ``oneflow.nn.modules.*``; the reader's allow-list resolves them to plain records. This module
supplies the OneFlow vocabulary (tensor and dtype records, their globals) and turns tensor records into numpy arrays.
"""

import os
import re

import numpy as np

from utils.checkpoint.format import CheckpointError

PICKLE_FILE = "pickled_data"  # oneflow.save's pickle inside a checkpoint folder
SNAPSHOT_DONE = "snapshot_done"  # marker of the legacy variable-folder layout
MAGIC_KEY = "oneflow"  # top-level key of the single-file layout
# OneFlow's DataType enum (oneflow/core/common/data_type.proto) -> numpy type code
PROTO_DTYPES = {"kChar": "i1", "kFloat": "f4", "kDouble": "f8", "kInt8": "i1", "kInt32": "i4", "kInt64": "i8",
                "kUInt8": "u1", "kFloat16": "f2", "kBFloat16": "bf16", "kBool": "b1", "kUInt16": "u2",
                "kUInt32": "u4", "kUInt64": "u8", "kInt16": "i2"}
_TENSOR_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


class _Frozen(type):
    """Metaclass of the record classes: a crafted BUILD cannot set attributes on the classes themselves."""

    def __setattr__(cls, name, value):
        raise TypeError(f"{cls.__name__} is read-only")


class TensorRecord(metaclass=_Frozen):
    """A pickled ``oneflow.Tensor`` / ``oneflow.nn.Parameter``: only its state dict is kept (pickle's BUILD)."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise ValueError(f"oneflow tensor state is a {type(state).__name__}, expected a dict")
        self.__dict__["state"] = state


class DtypeRecord(metaclass=_Frozen):
    """A pickled ``oneflow.dtype`` (its state is the DataType enum number); the array's own dtype is what counts."""

    def __setstate__(self, state):
        if type(state) is not int:
            raise ValueError("oneflow dtype state is not an int")
        self.__dict__["code"] = state


class GeneratorRecord(metaclass=_Frozen):
    """A pickled ``oneflow.Generator`` (OneFlow's Dropout keeps one): inert, its RNG state is not used."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise ValueError("oneflow generator state is not a dict")


def globals_table():
    """(module, name) -> record class, for the tensor, dtype and generator globals of OneFlow pickles."""
    return {("oneflow", "Tensor"): TensorRecord, ("oneflow.framework.tensor", "Tensor"): TensorRecord,
            ("oneflow._oneflow_internal", "Tensor"): TensorRecord, ("oneflow.nn", "Parameter"): TensorRecord,
            ("oneflow.nn.parameter", "Parameter"): TensorRecord, ("oneflow._oneflow_internal", "dtype"): DtypeRecord,
            ("oneflow._oneflow_internal", "Generator"): GeneratorRecord}


# ------------------------------------------------------------------------------------------------------ tensors
def _parse_meta(text, where):
    """(shape, numpy code) from a tensor folder's meta file (protobuf text format)."""
    dtype = re.search(r"data_type:\s*(\w+)", text)
    if dtype is None or dtype.group(1) not in PROTO_DTYPES:
        raise CheckpointError(f"{where}: unknown or missing data_type in its meta file")
    body = re.search(r"shape\s*\{([^}]*)\}", text)
    dims = [int(d) for d in re.findall(r"dim:\s*(\d+)", body.group(1))] if body else []
    return tuple(dims), PROTO_DTYPES[dtype.group(1)]


def read_tensor_dir(folder):
    """The array stored in one tensor folder (``out`` + ``meta``), checked against its declared size."""
    meta, out = os.path.join(folder, "meta"), os.path.join(folder, "out")
    if not (os.path.isfile(meta) and os.path.isfile(out)):
        raise CheckpointError(f"{folder}: tensor folder without its 'meta' and 'out' files (incomplete checkpoint)")
    with open(meta, errors="replace") as f:
        shape, code = _parse_meta(f.read(4096), folder)
    itemsize = 2 if code == "bf16" else np.dtype(code).itemsize
    need = int(np.prod(shape, dtype=np.int64)) * itemsize
    if os.path.getsize(out) != need:
        raise CheckpointError(f"{folder}/out holds {os.path.getsize(out)} bytes, its meta declares {shape} {code} "
                              f"({need} bytes): truncated or corrupt checkpoint")
    array = np.fromfile(out, np.dtype("<u2" if code == "bf16" else code).newbyteorder("<")).reshape(shape)
    if code == "bf16":  # bfloat16 is the upper half of a float32
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def _tensor_value(record, folder):
    state = record.__dict__.get("state")
    if state is None:
        raise CheckpointError("a oneflow tensor without state")
    if "path" in state:
        rel = state["path"]
        if folder is None or not isinstance(rel, str) or not _TENSOR_NAME.fullmatch(rel) or rel in (".", ".."):
            raise CheckpointError(f"oneflow tensor reference {rel!r:.60} is not a tensor folder of this checkpoint")
        return read_tensor_dir(os.path.join(folder, rel))
    data = state.get("data")
    if not isinstance(data, np.ndarray):
        raise CheckpointError("a oneflow tensor whose data is not an array (a global tensor?): not supported")
    return np.ascontiguousarray(data)


def resolve_tensors(obj, folder=None, records=None):
    """Replace every TensorRecord inside ``obj`` (dicts, lists, tuples, module records) by its numpy array.

    Args:
        obj: what the restricted unpickler returned.
        folder: the checkpoint folder that ``{'path': ...}`` tensor states point into (None for the file layout).
        records: the module-record base class whose ``attrs`` dicts are walked as well.
    Returns:
        ``obj`` with arrays in place of tensor records (containers are updated in place; shared tensors stay shared).
    """
    done = {}

    def visit(x):
        if isinstance(x, TensorRecord):
            if id(x) not in done:
                done[id(x)] = _tensor_value(x, folder)
            return done[id(x)]
        if id(x) in done:
            return x
        if isinstance(x, dict):
            done[id(x)] = x
            for k in list(x):
                x[k] = visit(x[k])
        elif isinstance(x, list):
            done[id(x)] = x
            x[:] = [visit(v) for v in x]
        elif isinstance(x, tuple):
            return tuple(visit(v) for v in x)
        elif records is not None and isinstance(x, records):
            done[id(x)] = x
            visit(x.attrs)
        return x

    return visit(obj)


def unwrap(obj, where, single_file=False):
    """The saved object inside oneflow.save's envelope ``{'protocol_version': 1, ['oneflow': None,] 'data': obj}``."""
    if not (isinstance(obj, dict) and "data" in obj and obj.get("protocol_version") == 1
            and (MAGIC_KEY in obj or not single_file)):
        raise CheckpointError(f"{where}: not a oneflow.save checkpoint (no protocol_version 1 envelope)")
    return obj["data"]


def is_checkpoint_dir(path):
    """True for a folder oneflow.save wrote (with ``pickled_data``, or a legacy ``snapshot_done`` variable folder)."""
    return os.path.isdir(path) and (os.path.isfile(os.path.join(path, PICKLE_FILE))
                                    or os.path.isfile(os.path.join(path, SNAPSHOT_DONE)))


def read_legacy_dir(path):
    """{variable name: array} of a legacy variable folder (each sub-folder with out + meta)."""
    out = {}
    for name in sorted(os.listdir(path)):
        sub = os.path.join(path, name)
        if os.path.isdir(sub) and os.path.isfile(os.path.join(sub, "meta")):
            out[name] = read_tensor_dir(sub)
    return out
