"""AutoBatch (``train.py --batch-size -1``): the largest training batch that fits in a fraction of the CUDA memory.

As ultralytics v7.0: the training step of a copy of the model is profiled at batch sizes 1, 2, 4, 8 and 16, the
reserved CUDA memory is fitted by a line in the batch size, and the batch size where that line meets ``fraction`` (0.8)
of the free memory is used. Without CUDA (the CPU, or a backend without CUDA memory statistics: OneFlow 0.9 has no
``memory_reserved``) the default batch size 16 is used with a message saying why.
"""

from copy import deepcopy

import numpy as np

from utils.backend import NAME, autocast, torch
from utils.log import LOGGER, colorstr
from utils.model_tools import profile

PREFIX = colorstr("AutoBatch: ")


def check_train_batch_size(model, imgsz=640, amp=True):
    """The batch size for training ``model`` at ``imgsz`` (mixed precision when ``amp``), estimated on a copy."""
    with autocast(amp):
        return autobatch(deepcopy(model).train(), imgsz)


def cuda_memory(device):
    """(device name, total GiB, reserved GiB, allocated GiB), or None where the backend does not report them."""
    cuda = torch.cuda
    needed = ("get_device_properties", "memory_reserved", "memory_allocated")
    if not all(hasattr(cuda, f) for f in needed):
        return None
    gb = 1 << 30
    p = cuda.get_device_properties(device)
    return p.name, p.total_memory / gb, cuda.memory_reserved(device) / gb, cuda.memory_allocated(device) / gb


def fit_batch_size(batch_sizes, memory, free, fraction=0.8, default=16):
    """Batch size whose predicted memory is ``fraction`` of ``free`` GiB, from the profiled (size, GiB) points.

    ``memory`` holds None for the sizes that failed (out of memory): the answer then stays below the first failure.
    Returns (batch size, fitted line [slope, intercept]); ``default`` when the fit gives no sensible size.
    """
    ok = [(b, m) for b, m in zip(batch_sizes, memory) if m is not None]
    if len(ok) < 2:
        return default, None
    p = np.polyfit([b for b, _ in ok], [m for _, m in ok], deg=1)
    b = int((free * fraction - p[1]) / p[0]) if p[0] > 0 else default
    if None in memory:
        i = memory.index(None)
        if b >= batch_sizes[i]:
            b = batch_sizes[max(i - 1, 0)]
    if b < 1 or b > 1024:
        LOGGER.warning(f"{PREFIX}WARNING ⚠️ CUDA anomaly detected, recommend restart environment and retry command.")
        b = default
    return b, p


def autobatch(model, imgsz=640, fraction=0.8, batch_size=16):
    """Estimate the training batch size that uses ``fraction`` of the free CUDA memory (see the module docstring)."""
    LOGGER.info(f"{PREFIX}Computing optimal batch size for --imgsz {imgsz}")
    device = next(model.parameters()).device
    if device.type == "cpu":
        LOGGER.info(f"{PREFIX}CUDA not detected, using default CPU batch-size {batch_size}")
        return batch_size
    cudnn = getattr(getattr(torch, "backends", None), "cudnn", None)
    if getattr(cudnn, "benchmark", False):
        LOGGER.info(f"{PREFIX} ⚠️ Requires torch.backends.cudnn.benchmark=False, using default batch-size {batch_size}")
        return batch_size
    stats = cuda_memory(device)
    if stats is None:
        LOGGER.info(f"{PREFIX}{NAME} does not report CUDA memory use, using default batch-size {batch_size}")
        return batch_size
    name, t, r, a = stats
    f = t - (r + a)
    d = str(device).upper()
    LOGGER.info(f"{PREFIX}{d} ({name}) {t:.2f}G total, {r:.2f}G reserved, {a:.2f}G allocated, {f:.2f}G free")
    sizes = [1, 2, 4, 8, 16]
    try:
        rows = profile([torch.empty(b, 3, imgsz, imgsz) for b in sizes], model, n=3, device=device)
    except Exception as e:
        LOGGER.warning(f"{PREFIX}{e}")
        rows = [None] * len(sizes)
    memory = [row[2] if row else None for row in rows]
    b, p = fit_batch_size(sizes, memory, f, fraction, batch_size)
    if p is not None:
        used = (np.polyval(p, b) + r + a) / t
        LOGGER.info(f"{PREFIX}Using batch-size {b} for {d} {t * used:.2f}G/{t:.2f}G ({used * 100:.0f}%) ✅")
    return b
