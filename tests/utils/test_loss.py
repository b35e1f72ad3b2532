"""ComputeLoss: the assignment rules by hand, loss structure, and equality with ultralytics' own loss."""

import json
import subprocess

import numpy as np
import pytest

from models.yolo import DetectionModel
from tests.conftest import ROOT, reference_env
from utils.backend import from_numpy, to_numpy, torch
from utils.loss import ComputeLoss, FocalLoss, smooth_BCE

HYP = {"box": 0.05, "cls": 0.5, "cls_pw": 1.0, "obj": 1.0, "obj_pw": 1.0, "anchor_t": 4.0, "fl_gamma": 0.0}


def _maps(model, size):
    model.train()
    return model(torch.zeros(1, 3, size, size))


def _assignments(model, target, size=64):
    loss = ComputeLoss(model, HYP)
    tcls, tbox, indices, anch = loss.build_targets(_maps(model, size), from_numpy(np.array([target], np.float32)))
    out = []
    for level, (b, a, gj, gi) in enumerate(indices):
        for row in zip(*(to_numpy(v).tolist() for v in (b, a, gj, gi))):
            out.append((level, *row))
    return sorted(out), tbox, anch


def test_assignment_three_cells_one_anchor():
    model = DetectionModel("yolov5n.yaml", nc=2)
    # 64 px: level 0 is 8x8. x=0.3 -> gx=2.4 (left half of cell 2: left neighbour), y=0.55 -> gy=4.4 (upper half of
    # cell 4: upper neighbour). wh=0.1 -> 0.8 cells: ratio to P3 anchor 0 (1.25, 1.625) is < 4 on both axes, anchors 1
    # (2, 3.75) and 2 (4.125, 2.875) exceed 4 on some axis; on levels 1 and 2 the box is too small for every anchor.
    cells, tbox, anch = _assignments(model, [0, 1, 0.3, 0.55, 0.1, 0.1])
    assert cells == [(0, 0, 0, 3, 2), (0, 0, 0, 4, 1), (0, 0, 0, 4, 2)]  # (level, image, anchor, gy, gx)
    t = to_numpy(tbox[0])
    # xy targets relative to each assigned cell: own (0.4, 0.4), left cell (1.4, 0.4), upper cell (0.4, 1.4)
    np.testing.assert_allclose(sorted(t[:, :2].tolist()), [[0.4, 0.4], [0.4, 1.4], [1.4, 0.4]], atol=1e-5)
    np.testing.assert_allclose(t[:, 2:], 0.8, atol=1e-6)
    np.testing.assert_allclose(to_numpy(anch[0]), [[1.25, 1.625]] * 3)


def test_assignment_on_a_cell_boundary_still_three_cells():
    model = DetectionModel("yolov5n.yaml", nc=2)
    # x = 0.25 -> gx = 2.0 exactly: the fractional part 0 passes both the left test and the right test (8 - 2.0 = 6.0),
    # but the right offset maps 2.0 + 0.5 back into cell 2: the own cell is listed twice, 3 distinct cells remain
    cells, _, _ = _assignments(model, [0, 0, 0.25, 0.55, 0.1, 0.1])
    assert cells == [(0, 0, 0, 3, 2), (0, 0, 0, 4, 1), (0, 0, 0, 4, 2), (0, 0, 0, 4, 2)]
    assert len(set(cells)) == 3


def test_assignment_edges_and_large_boxes():
    model = DetectionModel("yolov5n.yaml", nc=2)
    # near the top-left corner no neighbour outside the grid is used (gx, gy > 1 rule)
    cells, _, _ = _assignments(model, [0, 0, 0.05, 0.05, 0.1, 0.1])
    assert cells == [(0, 0, 0, 0, 0)]
    # a large box (wh 0.9 -> 7.2 cells at 8x8) is within 4x of P3 anchors 1 (2, 3.75) and 2 (4.125, 2.875) only
    cells, _, _ = _assignments(model, [0, 0, 0.5, 0.5, 0.9, 0.9])
    assert {c[2] for c in cells if c[0] == 0} == {1, 2}
    # a tiny box (0.01 -> 0.08 cells at 8x8) is more than 4x smaller than every anchor: not assigned at all
    cells, _, _ = _assignments(model, [0, 0, 0.5, 0.5, 0.01, 0.01])
    assert cells == []


def test_loss_structure_and_gradients():
    model = DetectionModel("yolov5n.yaml", nc=3)
    loss_fn = ComputeLoss(model, HYP)
    model.train()
    p = model(torch.rand(2, 3, 64, 64))
    targets = from_numpy(np.array([[0, 1, 0.5, 0.5, 0.2, 0.3], [1, 2, 0.3, 0.6, 0.1, 0.1]], np.float32))
    loss, items = loss_fn(p, targets)
    assert tuple(loss.shape) == (1,) and tuple(items.shape) == (3,)
    np.testing.assert_allclose(float(loss), float(to_numpy(items).sum()) * 2, rtol=1e-5)  # x batch size
    loss.backward()
    g = model.model[-1].m[0].weight.grad
    assert g is not None and float(g.abs().sum()) > 0
    empty, items = loss_fn(p, torch.zeros(0, 6))  # no targets: objectness loss only
    it = to_numpy(items)
    assert it[0] == 0 and it[2] == 0 and it[1] > 0


def test_smooth_bce_and_focal():
    assert smooth_BCE(0.0) == (1.0, 0.0) and smooth_BCE(0.1) == (0.95, 0.05)
    from utils.backend import nn
    fl = FocalLoss(nn.BCEWithLogitsLoss(), gamma=1.5, alpha=0.25)
    pred, true = from_numpy(np.array([2.0, -1.0], np.float32)), from_numpy(np.array([1.0, 0.0], np.float32))
    p = 1 / (1 + np.exp(-np.array([2.0, -1.0])))
    bce = -np.array([np.log(p[0]), np.log(1 - p[1])])
    expected = (bce * np.array([0.25, 0.75]) * np.array([1 - p[0], p[1]]) ** 1.5).mean()
    np.testing.assert_allclose(float(fl(pred, true)), expected, rtol=1e-5)


@pytest.mark.reference
@pytest.mark.parametrize("cfg, extra", [
    ("yolov5n.yaml", []),
    pytest.param("yolov5n.yaml", ["--label-smoothing", "0.1"], marks=pytest.mark.slow),
    pytest.param("hub/yolov5n6.yaml", ["--imgsz", "128"], marks=pytest.mark.slow),
    pytest.param("yolov5n.yaml", ["--fl-gamma", "1.5"], marks=pytest.mark.slow)])
def test_loss_equals_ultralytics(reference_python, tmp_path, cfg, extra):
    out = tmp_path / "ref.npz"
    r = subprocess.run([reference_python, "tests/parity/ultralytics_loss.py", "--cfg", f"models/{cfg}", "--out",
                        str(out), *extra], cwd=ROOT, env=reference_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ref = np.load(out)
    model = DetectionModel(json.loads(str(ref["yaml"])))
    own = model.state_dict()
    model.load_state_dict({k: from_numpy(ref[f"sd/{k}"], dtype=v.dtype) for k, v in own.items()})
    hyp = json.loads(str(ref["hyp"]))
    model.train()
    loss, items = ComputeLoss(model, hyp)(model(from_numpy(ref["x"])), from_numpy(ref["targets"]))
    np.testing.assert_allclose(to_numpy(items), ref["items"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(to_numpy(loss), ref["loss"], rtol=1e-4)
