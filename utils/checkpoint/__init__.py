"""Read and write PyTorch's zip checkpoint container with Python and numpy only.

Why this module exists:
  - our ``last.pt`` / ``best.pt`` must open in PyTorch with ``torch.load(f, weights_only=True)`` and in OneFlow, so
    they are written here as plain data (dicts, lists, numbers, strings, tensors) in torch's own zip layout;
  - official ultralytics ``.pt`` files are full pickles of ``nn.Module`` objects. ``pickle.load`` on them would import
    and run whatever the file names; here a restricted unpickler resolves only an allow-list of globals and turns
    every pickled module into a :class:`ModuleRecord` (plain data), so loading a checkpoint never executes code.

The container: ``<prefix>/data.pkl`` (pickle protocol 2), ``<prefix>/data/<key>`` (raw little-endian
storage bytes, one record per storage), ``<prefix>/version``, and in newer files ``<prefix>/byteorder``. Tensors are
pickled as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``, where ``storage`` is a persistent
id ``('storage', torch.<X>Storage, key, location, numel)``.

one-yolov5's ``oneflow.save`` checkpoints (folders with ``pickled_data`` + ``tensor_<n>/`` records, or single pickle
files) are read by the same restricted unpickler (oneflow_format.py).

Nothing here imports torch or oneflow: tensors are read as numpy arrays and written from numpy arrays.
"""

from utils.checkpoint.format import CheckpointError, UnsafeCheckpointError  # noqa: F401
from utils.checkpoint.oneflow_format import is_checkpoint_dir as is_oneflow_dir  # noqa: F401
from utils.checkpoint.reader import ModuleRecord, read  # noqa: F401
from utils.checkpoint.writer import write  # noqa: F401

__all__ = ["CheckpointError", "UnsafeCheckpointError", "ModuleRecord", "read", "write", "is_oneflow_dir"]
