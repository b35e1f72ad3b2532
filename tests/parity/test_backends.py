"""Same weights, both backends, same outputs: the other backend runs in its own venv as a child process."""

import subprocess

import numpy as np
import pytest

from models.experimental import save_weights
from models.yolo import ClassificationModel, DetectionModel, SegmentationModel
from tests.conftest import ROOT, other_env
from tests.models.test_load import _randomise
from utils.backend import NAME, from_numpy, to_numpy, torch

# Max abs difference on any output from the same float32 weights. Box columns are compared in units of the image size
# (pixels / 96 here): at pixel scale, boxes of a few hundred pixels are 3e-5 apart per float32 rounding step, so two
# correct float32 programs summing in different orders differ by ~1e-4 px there; the pixel-scale bound is TOL_PX.
TOL = 1e-4
TOL_PX = 1e-3


def _build(kind):
    if kind == "detect":
        return DetectionModel("yolov5n.yaml", nc=3)
    if kind == "segment":
        return SegmentationModel("yolov5n-seg.yaml", nc=2)
    if kind == "transformer":
        return DetectionModel("yolov5s-transformer.yaml", nc=2)
    return ClassificationModel(model=DetectionModel("yolov5n.yaml"), nc=5, cutoff=10)


def _run_other(py, name, weights, x_path, out_path, fuse):
    cmd = [py, "tests/parity/run_model.py", "--weights", str(weights), "--input", str(x_path), "--out", str(out_path)]
    r = subprocess.run(cmd + (["--fuse"] if fuse else []), cwd=ROOT, env=other_env(name), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return np.load(out_path)


@pytest.mark.parametrize("kind", ["detect", "segment", "classify", "transformer"])
def test_same_weights_same_outputs_across_backends(kind, other_backend, tmp_path):
    name, py = other_backend
    model = _randomise(_build(kind), seed=11).eval()
    weights = save_weights(tmp_path / f"{kind}.pt", model, half=False)
    x = np.random.default_rng(0).random((2, 3, 64, 96), dtype=np.float32)
    x_path = tmp_path / "x.npy"
    np.save(x_path, x)
    with torch.no_grad():
        y = model(from_numpy(x))
    ours = [to_numpy(t) for t in (y if isinstance(y, (list, tuple)) else [y]) if hasattr(t, "shape")]
    theirs = _run_other(py, name, weights, x_path, tmp_path / "y.npz", fuse=False)
    assert str(theirs["backend"]) == name and name != NAME
    for i, a in enumerate(ours[:2]):
        b = theirs[f"out{i}"]
        assert a.shape == b.shape
        if i == 0 and kind != "classify":  # decoded boxes: xywh pixels, then scores (and raw mask coefficients)
            px = float(np.abs(a[..., :4] - b[..., :4]).max())
            assert px < TOL_PX, f"{kind}: boxes differ by {px:.2e} px between {NAME} and {name}"
            a, b = a.copy(), b.copy()
            a[..., :4] /= max(x.shape[2:])
            b[..., :4] /= max(x.shape[2:])
        diff = float(np.abs(a - b).max())
        assert diff < TOL, f"{kind} output {i}: max abs difference {diff:.2e} between {NAME} and {name}"
