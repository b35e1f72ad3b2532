"""Segmentation loss: its structure, the mask term by hand, and equality with ultralytics' own loss."""

import json
import subprocess

import numpy as np
import pytest

from models.yolo import SegmentationModel
from tests.conftest import ROOT, reference_env
from utils.backend import F, from_numpy, to_numpy, torch
from utils.loss import ComputeLoss as DetectionLoss
from utils.segment.loss import ITEM_NAMES, ComputeLoss

HYP = {"box": 0.05, "cls": 0.5, "cls_pw": 1.0, "obj": 1.0, "obj_pw": 1.0, "anchor_t": 4.0, "fl_gamma": 0.0}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = SegmentationModel("segment/yolov5n-seg.yaml", nc=3)
    m.train()
    return m


def _batch():
    """2 images of 64 px: image 0 has 2 targets, image 1 one; overlap index images and per-target masks (16 x 16)."""
    targets = np.array([[0, 1, 0.3, 0.3, 0.3, 0.3], [0, 2, 0.6, 0.6, 0.5, 0.4], [1, 0, 0.5, 0.5, 0.4, 0.4]],
                       np.float32)
    per = np.zeros((3, 16, 16), np.float32)
    per[0, 2:8, 2:8] = 1
    per[1, 8:13, 5:14] = 1
    per[2, 5:11, 5:11] = 1
    index = np.zeros((2, 16, 16), np.float32)
    index[0][per[0] > 0] = 1
    index[0][per[1] > 0] = 2
    index[1][per[2] > 0] = 1
    return from_numpy(targets), from_numpy(per), from_numpy(index)


def test_items_order_shapes_and_gradients(model):
    targets, per, index = _batch()
    preds = model(torch.rand(2, 3, 64, 64))
    loss, items = ComputeLoss(model, HYP, overlap=True)(preds, targets, index)
    assert ITEM_NAMES == ("box_loss", "seg_loss", "obj_loss", "cls_loss")
    assert tuple(loss.shape) == (1,) and tuple(items.shape) == (4,)
    it = to_numpy(items)
    np.testing.assert_allclose(float(to_numpy(loss)[0]), it.sum() * 2, rtol=1e-5)  # x batch size
    assert (it > 0).all()
    _, det_items = DetectionLoss(model, HYP)(preds[0], targets)  # box, obj, cls are detection's
    np.testing.assert_allclose(it[[0, 2, 3]], to_numpy(det_items), rtol=1e-6)
    loss.backward()
    g = model.model[-1].proto.cv3.conv.weight.grad
    assert g is not None and float(g.abs().sum()) > 0  # the mask term reaches the prototypes
    model.zero_grad()


def test_overlap_and_per_instance_masks_agree(model):
    targets, per, index = _batch()
    preds = model(torch.rand(2, 3, 64, 64))
    _, a = ComputeLoss(model, HYP, overlap=True)(preds, targets, index)
    _, b = ComputeLoss(model, HYP, overlap=False)(preds, targets, per)
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-6)
    up = F.interpolate(index[None], (64, 64), mode="nearest")[0]  # full-resolution masks are resized to the protos
    _, c = ComputeLoss(model, HYP, overlap=True)(preds, targets, up)
    np.testing.assert_allclose(to_numpy(a), to_numpy(c), rtol=1e-6)


def test_mask_term_by_hand(model):
    """One target: lseg = box/bs * mean over its assigned rows of (box-cropped mean BCE / box area)."""
    targets = from_numpy(np.array([[0, 1, 0.5, 0.5, 0.5, 0.5]], np.float32))
    masks = torch.zeros(1, 16, 16)
    masks[0, 4:12, 4:12] = 1
    preds = model(torch.rand(1, 3, 64, 64))
    loss_fn = ComputeLoss(model, HYP, overlap=True)
    _, items = loss_fn(preds, targets, masks)
    p, protos = preds
    _, _, indices, _ = loss_fn.build_targets(p, targets)
    total = 0.0
    proto = to_numpy(protos[0]).reshape(32, -1)
    gt = to_numpy(masks[0]).reshape(-1)
    crop = np.zeros((16, 16), bool)
    crop[4:12, 4:12] = True  # box 0.25..0.75 of 16 px
    for i, (b, a, gj, gi) in enumerate(indices):
        if not len(b):
            continue
        coef = to_numpy(p[i][b, a, gj, gi][:, 8:])
        x = coef @ proto
        bce = np.maximum(x, 0) - x * gt + np.log1p(np.exp(-np.abs(x)))
        total += ((bce * crop.reshape(-1)).mean(1) / 0.25).mean()
    np.testing.assert_allclose(float(to_numpy(items)[1]), total * 0.05 / 1, rtol=1e-4)


def test_no_targets_and_overlap_is_required(model):
    preds = model(torch.rand(2, 3, 64, 64))
    _, items = ComputeLoss(model, HYP, overlap=True)(preds, torch.zeros(0, 6), torch.zeros(2, 16, 16))
    it = to_numpy(items)
    assert it[0] == 0 and it[1] == 0 and it[3] == 0 and it[2] > 0
    with pytest.raises(TypeError):
        ComputeLoss(model, HYP)  # overlap must be said: the two mask layouts are not interchangeable


@pytest.mark.reference
@pytest.mark.parametrize("extra", [[], ["--no-overlap", "--mask-ratio", "1"],
                                   pytest.param(["--mask-ratio", "1"], marks=pytest.mark.slow),
                                   pytest.param(["--no-overlap"], marks=pytest.mark.slow)],
                         ids=["overlap-r4", "no-overlap-r1", "overlap-r1", "no-overlap-r4"])
def test_loss_equals_ultralytics(reference_python, tmp_path, extra):
    out = tmp_path / "ref.npz"
    r = subprocess.run([reference_python, "tests/parity/ultralytics_seg_loss.py", "--cfg",
                        "models/segment/yolov5n-seg.yaml", "--out", str(out), *extra], cwd=ROOT, env=reference_env(),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ref = np.load(out)
    model = SegmentationModel(json.loads(str(ref["yaml"])))
    own = model.state_dict()
    model.load_state_dict({k: from_numpy(ref[f"sd/{k}"], dtype=v.dtype) for k, v in own.items()})
    model.train()
    loss_fn = ComputeLoss(model, json.loads(str(ref["hyp"])), overlap=bool(ref["overlap"]))
    loss, items = loss_fn(model(from_numpy(ref["x"])), from_numpy(ref["targets"]), from_numpy(ref["masks"]))
    np.testing.assert_allclose(to_numpy(items), ref["items"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(to_numpy(loss), ref["loss"], rtol=1e-4)
