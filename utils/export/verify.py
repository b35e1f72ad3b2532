"""What every export writer shares: its private work folder, the probe images and the comparison with the model.

Why a module of its own: each format's writer (onnx.py, torchscript.py, ultralytics.py, ...) writes into a work folder,
runs what it wrote on the same synthetic scenes as the native model and keeps the file only if the outputs agree
within ``TOLERANCE``; those steps are one set of functions here, so every format is verified the same way.
Element by element, ``|exported - native| <= atol + rtol * |native|``: (1e-3, 1e-3) in FP32 and (1e-2, 1e-2) in FP16.
Outputs are pixels and probabilities, so this is about 0.6 px at 640 and 0.001 in a score.
"""

import contextlib
import os
import shutil
from pathlib import Path

import numpy as np

from utils.backend import from_numpy, inference_mode, to_numpy
from utils.data.augment import letterbox
from utils.data.synthetic import render_scene
from utils.errors import UserError
from utils.log import LOGGER

TOLERANCE = {"fp32": (1e-3, 1e-3), "fp16": (1e-2, 1e-2)}  # (atol, rtol), see the module docstring
TMP_TAG = ".export-tmp-"  # <folder>/.<file name>.export-tmp-<pid>/: one export's private work folder


class ExportError(UserError, RuntimeError):
    """An export that cannot run or did not pass its verification; the message says why and what to do."""


# --------------------------------------------------------------------------------------------------- temp folders
def _alive(pid):
    """Whether process ``pid`` exists (a folder tagged with a live pid belongs to an export still running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove_stale(file):
    """Remove the work folders earlier exports of ``file`` left behind; refuse one whose process still runs."""
    for stale in sorted(file.parent.glob(f".{file.name}{TMP_TAG}*")):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            raise ExportError(f"{file} is being exported by another process (pid {pid}, working in {stale}); wait "
                              f"for it to finish, or stop it and delete {stale}")
        LOGGER.warning(f"WARNING ⚠️ removing {stale}, left behind by an earlier export of {file.name} that did not "
                       f"finish")
        shutil.rmtree(stale, ignore_errors=True)
        if stale.exists():
            raise ExportError(f"cannot remove the stale temporary folder {stale} (left by an earlier failed "
                              f"export): delete it by hand and export again")


@contextlib.contextmanager
def work_dir(file):
    """A private folder beside ``file`` for one export, removed afterwards whatever happens.

    Folders left by an earlier export of the same file that did not finish (killed, machine stopped) are removed
    with a warning; one that belongs to a process still running is another export of the same file: refused.
    """
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(file)
    d = file.parent / f".{file.name}{TMP_TAG}{os.getpid()}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------- verification
def probe_images(shape, seed=0):
    """(b, 3, h, w) float32 RGB 0-1 batch of synthetic scenes (shapes on textured backgrounds), letterboxed."""
    b, _, h, w = shape
    out = np.empty((b, 3, h, w), np.float32)
    for i in range(b):
        img, _ = render_scene(np.random.default_rng([seed, i]), max(h, w))
        img = letterbox(img, (h, w), auto=False)[0]
        out[i] = img[..., ::-1].transpose(2, 0, 1) / 255.0
    return out


def native_outputs(model, x, half=False):
    """The native model's outputs on numpy batch ``x`` as a list of float32 numpy arrays."""
    p = next(model.parameters())
    t = from_numpy(x, p.device)
    t = t.half() if half else t.float()
    with inference_mode():
        y = model(t)
    return [to_numpy(v).astype(np.float32) for v in _flat(y)]


def _flat(y):
    """Nested output lists/tuples (eval-mode heads return (detections, [feature maps])) as one flat list."""
    return [z for v in y for z in _flat(v)] if isinstance(y, (list, tuple)) else [y]


def compare_outputs(exported, native, half=False, what="export"):
    """Max |exported - native| over all outputs; ExportError on a shape mismatch or an element out of TOLERANCE."""
    atol, rtol = TOLERANCE["fp16" if half else "fp32"]
    if len(exported) != len(native):
        raise ExportError(f"{what}: {len(exported)} output(s), the native model gives {len(native)}")
    worst = 0.0
    for i, (a, b) in enumerate(zip(exported, native)):
        a = np.asarray(a, np.float32)
        if a.shape != b.shape:
            raise ExportError(f"{what}: output {i} has shape {a.shape}, the native model gives {b.shape}")
        err = np.abs(a - b)
        worst = max(worst, float(err.max()) if err.size else 0.0)
        bad = ~(err <= atol + rtol * np.abs(b))  # NaN counts as bad
        if bad.any():
            j = np.unravel_index(int(np.argmax(np.where(bad, err, -1))), err.shape)
            raise ExportError(f"{what}: output {i} differs from the native model by up to {worst:.3g} "
                              f"(at {tuple(int(k) for k in j)}: {a[j]:.6g} vs {b[j]:.6g}); tolerance "
                              f"{atol:g} + {rtol:g} * |native|")
    return worst


def check_shapes(shape, gs, dynamic_axes):
    """Input shapes to verify on: the export shape, plus a bigger batch (and size) for each freed axis."""
    b, c, h, w = shape
    axes = set((dynamic_axes or {}).get("images", {}))
    shapes = [(b, c, h, w)]
    if axes:
        shapes.append((b + 1 if 0 in axes else b, c, h + gs if 2 in axes else h, w + gs if 3 in axes else w))
    return shapes


def tolerance_text(half=False):
    """The tolerance as the verification log lines state it: 'atol + rtol * |native|'."""
    atol, rtol = TOLERANCE["fp16" if half else "fp32"]
    return f"{atol:g} + {rtol:g} * |native|"
