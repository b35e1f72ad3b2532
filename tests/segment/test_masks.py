"""Mask maths: hand-made shapes on the active backend, and equality with ultralytics' own functions."""

import subprocess

import numpy as np
import pytest

from tests.conftest import ROOT, reference_env
from utils.backend import from_numpy, to_numpy, torch
from utils.segment.masks import (crop_mask, mask_iou, masks2segments, polygon2mask, polygons2masks,
                                 polygons2masks_overlap, process_mask, process_mask_native, process_mask_upsample,
                                 proto_masks, scale_image, split_overlap_mask)


def _t(a):
    return from_numpy(np.asarray(a, np.float32))


def _big_logit_protos(h, w):
    """One prototype channel, constant +10: every coefficient 1 gives a mask of ones, -1 a mask of zeros."""
    return _t(np.full((1, h, w), 10.0))


# ------------------------------------------------------------------------------------------------------ hand cases
def test_crop_mask_keeps_half_open_box():
    m = crop_mask(_t(np.ones((2, 4, 6))), _t([[1, 0, 3, 2], [2.5, 1.5, 6, 4]]))
    m = to_numpy(m)
    expect0 = np.zeros((4, 6))
    expect0[0:2, 1:3] = 1  # columns 1, 2 (1 <= x < 3), rows 0, 1
    expect1 = np.zeros((4, 6))
    expect1[2:4, 3:6] = 1  # x >= 2.5 -> columns 3..5, y >= 1.5 -> rows 2, 3
    np.testing.assert_array_equal(m[0], expect0)
    np.testing.assert_array_equal(m[1], expect1)


def test_process_mask_crops_at_prototype_scale_and_upsamples():
    protos = _big_logit_protos(8, 8)
    coef = _t([[1.0], [1.0], [-1.0]])
    boxes = _t([[0, 0, 16, 16], [16, 8, 32, 32], [0, 0, 32, 32]])  # input 32 x 32 -> prototypes at 1/4
    m = to_numpy(process_mask(protos, coef, boxes, (32, 32)))
    assert m.shape == (3, 8, 8) and set(np.unique(m)) <= {0.0, 1.0}
    assert m[0, :4, :4].all() and m[0].sum() == 16
    assert m[1, 2:, 4:].all() and m[1].sum() == 24
    assert m[2].sum() == 0  # sigmoid(-10) < 0.5 everywhere
    up = to_numpy(process_mask(protos, coef, boxes, (32, 32), upsample=True))
    assert up.shape == (3, 32, 32)
    # bilinear upsampling of a 0/1 step puts the edge half a prototype pixel (2 px) away from the box edge
    assert up[0, :14, :14].all() and not up[0, 18:].any() and not up[0, :, 18:].any()


def test_process_mask_upsample_crops_at_input_scale():
    m = to_numpy(process_mask_upsample(_big_logit_protos(8, 8), _t([[1.0]]), _t([[3, 5, 10, 20]]), (32, 32)))
    expect = np.zeros((32, 32))
    expect[5:20, 3:10] = 1
    np.testing.assert_array_equal(m[0], expect)


def test_process_mask_native_removes_letterbox_padding():
    # a 64 x 128 original letterboxed into a 128 x 128 input: 32 px grey bands top and bottom, prototypes 32 x 32
    # with 8-pixel bands. A prototype that is high only inside the bands must vanish in the native mask, and one high
    # only in the image part must cover the whole original inside the box.
    p = np.full((2, 32, 32), -10.0, np.float32)
    p[0, :8], p[0, 24:] = 10, 10
    p[1, 8:24] = 10
    m = to_numpy(process_mask_native(_t(p), _t([[1.0, 0.0], [0.0, 1.0]]), _t([[0, 0, 128, 64]] * 2), (64, 128)))
    assert m.shape == (2, 64, 128)
    assert m[0].sum() == 0 and m[1].all()


def test_process_mask_of_no_detections():
    assert tuple(process_mask(_big_logit_protos(8, 8), torch.zeros(0, 1), torch.zeros(0, 4), (32, 32),
                              upsample=True).shape) == (0, 32, 32)
    assert tuple(process_mask_upsample(_big_logit_protos(8, 8), torch.zeros(0, 1), torch.zeros(0, 4),
                                       (32, 32)).shape) == (0, 32, 32)


def test_proto_masks_is_sigmoid_of_linear_combination():
    rng = np.random.default_rng(0)
    p, c = rng.normal(size=(3, 4, 5)).astype(np.float32), rng.normal(size=(2, 3)).astype(np.float32)
    expect = 1 / (1 + np.exp(-(c @ p.reshape(3, -1)))).reshape(2, 4, 5)
    np.testing.assert_allclose(to_numpy(proto_masks(_t(p), _t(c))), expect, rtol=1e-5, atol=1e-6)


def test_scale_image_removes_padding_then_resizes():
    # 50 x 100 original in a 64 x 64 letterbox: gain 0.64, 32 x 64 content, 16 px pad top and bottom
    m = np.zeros((64, 64, 2), np.uint8)
    m[16:48, :32, 0] = 1  # left half of the content
    m[:16, :, 1] = 1  # only in the padding
    out = scale_image((64, 64), m, (50, 100, 3))
    assert out.shape == (50, 100, 2)
    assert out[:, :50, 0].all() and not out[:, 50:, 0].any()
    assert not out[..., 1].any()
    assert scale_image((64, 64), m[..., 0], (50, 100)).shape == (50, 100, 1)
    many = np.zeros((64, 64, 600), np.uint8)  # beyond cv2's 512-channel limit
    many[16:48, :32] = 1
    out = scale_image((64, 64), many, (50, 100))
    assert out.shape == (50, 100, 600) and out[:, :50].all() and not out[:, 50:].any()


def test_masks2segments_largest_and_concat():
    m = np.zeros((2, 20, 30), np.float32)
    m[0, 2:6, 2:6] = 1  # small square
    m[0, 10:18, 5:25] = 1  # big rectangle
    segs = masks2segments(_t(m))
    assert segs[0].dtype == np.float32 and len(segs) == 2 and segs[1].shape == (0, 2)
    np.testing.assert_array_equal(segs[0][:, 0].min(), 5)  # the rectangle (4 corner points each: first found wins)
    both = masks2segments(m, strategy="concat")[0]
    assert len(both) == 8 and both[:, 0].min() == 2
    with pytest.raises(ValueError):
        masks2segments(m, strategy="biggest")


def test_mask_iou_hand_case_both_kinds():
    a = np.zeros((2, 16), np.float32)
    a[0, :8], a[1, 8:12] = 1, 1
    b = np.zeros((3, 16), np.float32)
    b[0, :4], b[1, 4:12], b[2, 12:] = 1, 1, 1
    expect = [[4 / 8, 4 / 12, 0], [0, 4 / 8, 0]]
    np.testing.assert_allclose(mask_iou(a, b), expect, atol=1e-6)
    np.testing.assert_allclose(to_numpy(mask_iou(_t(a), _t(b))), expect, atol=1e-6)


def test_polygon_masks_and_downsampling():
    square = np.array([[8, 8], [24, 8], [24, 24], [8, 24]], np.float32)
    m = polygon2mask((32, 40), [square.reshape(-1)])
    assert m.shape == (32, 40) and m.dtype == np.uint8 and m[8:25, 8:25].all() and m.sum() == 17 * 17
    small = polygons2masks((32, 40), [square, square + 4], downsample_ratio=4)
    assert small.shape == (2, 8, 10) and small[0, 2:6, 2:6].all()
    assert polygons2masks((32, 40), [], downsample_ratio=4).shape == (0, 8, 10)


def test_overlap_masks_draw_largest_first_and_return_the_order():
    big = np.array([[0, 0], [30, 0], [30, 30], [0, 30]], np.float32)
    small = np.array([[10, 10], [20, 10], [20, 20], [10, 20]], np.float32)
    far = np.array([[33, 33], [39, 33], [39, 39], [33, 39]], np.float32)
    index, order = polygons2masks_overlap((40, 40), [small, far, big])
    assert list(order) == [2, 0, 1]  # big, small, far
    assert index.dtype == np.uint8
    assert index[5, 5] == 1 and index[15, 15] == 2 and index[35, 35] == 3 and index[0, 39] == 0
    inst = split_overlap_mask(index, 3)
    assert inst.shape == (3, 40, 40) and inst[0, 15, 15] == 0 and inst[1, 15, 15] == 1
    np.testing.assert_array_equal(to_numpy(split_overlap_mask(from_numpy(index[None]), 3)), inst)
    many, _ = polygons2masks_overlap((40, 40), [small] * 300)
    assert many.dtype == np.int32 and many[15, 15] == 300


# ------------------------------------------------------------------------------------------------------- reference
@pytest.fixture(scope="module")
def reference_masks(reference_python, tmp_path_factory):
    out = tmp_path_factory.mktemp("seg_masks") / "ref.npz"
    r = subprocess.run([reference_python, "tests/parity/ultralytics_seg_masks.py", str(out)], cwd=ROOT,
                       env=reference_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return np.load(out)


def _differ(a, b):
    """Number of differing elements (binary masks may flip where a soft value sits at 0.5 within float error)."""
    return int((np.asarray(a) != np.asarray(b)).sum())


@pytest.mark.reference
def test_mask_functions_equal_ultralytics(reference_masks):
    z = reference_masks
    p, c, b = (_t(z[k]) for k in ("protos", "coef", "boxes"))
    shape = z["pm_up"].shape[1:]
    np.testing.assert_allclose(to_numpy(crop_mask(_t(z["crop_in"]), b / 4)), z["crop"], atol=1e-6)
    assert _differ(to_numpy(process_mask(p, c, b, shape)), z["pm"]) == 0
    assert _differ(to_numpy(process_mask(p, c, b, shape, upsample=True)), z["pm_up"]) <= 2
    assert _differ(to_numpy(process_mask_upsample(p, c, b, shape)), z["pmu"]) <= 2
    h0, w0 = z["pmn"].shape[1:]
    assert _differ(to_numpy(process_mask_native(p, c, _t(z["im0_boxes"]), (h0, w0))), z["pmn"]) <= 2
    hwn = np.ascontiguousarray(z["pmu"].transpose(1, 2, 0)).astype(np.uint8)
    np.testing.assert_array_equal(scale_image(shape, hwn, (h0, w0, 3)), z["scale"])
    np.testing.assert_array_equal(scale_image(shape, hwn, (h0, w0, 3), ((0.6, 0.6), (1.0, 3.0))), z["scale_rp"])
    np.testing.assert_array_equal(scale_image(shape, hwn[:, :, 0], (h0, w0, 3)), z["scale_2d"])
    n = len(z["coef"])
    for i, (s, sc) in enumerate(zip(masks2segments(z["pmu"]), masks2segments(z["pmu"], "concat"))):
        np.testing.assert_array_equal(s, z[f"seg{i}"])
        np.testing.assert_array_equal(sc, z[f"segc{i}"])
    flat = _t(z["pmu"]).reshape(n, -1)
    np.testing.assert_allclose(to_numpy(mask_iou(flat[:4], flat)), z["iou"], rtol=1e-6)


@pytest.mark.reference
def test_polygon_rasterising_equals_ultralytics(reference_masks):
    z = reference_masks
    polys = [z[f"poly{i}"] for i in range(9)]
    shape = z["pm_up"].shape[1:]
    np.testing.assert_array_equal(polygon2mask(shape, [polys[0].reshape(-1)]), z["p2m"])
    for ratio in (1, 4):
        np.testing.assert_array_equal(polygons2masks(shape, polys, downsample_ratio=ratio), z[f"ps{ratio}"])
        index, order = polygons2masks_overlap(shape, polys, downsample_ratio=ratio)
        np.testing.assert_array_equal(order, z[f"ov_idx{ratio}"])
        np.testing.assert_array_equal(index, z[f"ov{ratio}"])
