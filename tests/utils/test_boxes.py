"""Box maths on hand-made boxes with known answers, for numpy arrays and backend tensors alike."""

import math

import numpy as np
import pytest

from utils.backend import from_numpy, to_numpy, torch
from utils.boxes import (bbox_ioa, bbox_iou, box_area, box_iou, clip_boxes, clip_segments, resample_segments,
                         scale_boxes, scale_segments, segment2box, segments2boxes, wh_iou, xyn2xy, xywh2xyxy,
                         xywhn2xyxy, xyxy2xywh, xyxy2xywhn)

XYXY = np.array([[10.0, 20.0, 30.0, 60.0], [0.0, 0.0, 4.0, 2.0]], dtype=np.float32)
XYWH = np.array([[20.0, 40.0, 20.0, 40.0], [2.0, 1.0, 4.0, 2.0]], dtype=np.float32)


def _both(a):
    """The same data as numpy and as a tensor."""
    return [np.array(a, copy=True), from_numpy(np.asarray(a, dtype=np.float32))]


@pytest.mark.parametrize("kind", ["numpy", "tensor"])
def test_xyxy_xywh_round_trip(kind):
    x = _both(XYXY)[kind == "tensor"]
    y = xyxy2xywh(x)
    assert type(y) is type(x) and y is not x
    np.testing.assert_allclose(to_numpy(y), XYWH)
    np.testing.assert_allclose(to_numpy(xywh2xyxy(y)), XYXY)
    np.testing.assert_allclose(to_numpy(x), XYXY)  # input untouched


def test_integer_input_becomes_float():
    y = xyxy2xywh(np.array([[1, 1, 2, 2]]))
    np.testing.assert_allclose(y, [[1.5, 1.5, 1, 1]])


@pytest.mark.parametrize("kind", ["numpy", "tensor"])
def test_normalised_conversions(kind):
    n = np.array([[0.5, 0.5, 0.5, 0.25]], dtype=np.float32)
    x = _both(n)[kind == "tensor"]
    px = xywhn2xyxy(x, w=100, h=200, padw=3, padh=4)
    np.testing.assert_allclose(to_numpy(px), [[25 + 3, 75 + 4, 75 + 3, 125 + 4]])
    back = xyxy2xywhn(xywhn2xyxy(x, w=100, h=200), w=100, h=200)
    np.testing.assert_allclose(to_numpy(back), n, atol=1e-6)
    np.testing.assert_allclose(to_numpy(xyn2xy(x[:, :2], w=100, h=200, padw=1, padh=2)), [[51, 102]])


def test_xyxy2xywhn_clip_clips_the_input_in_place():
    x = np.array([[-10.0, -10.0, 50.0, 300.0]])
    y = xyxy2xywhn(x, w=100, h=200, clip=True)
    np.testing.assert_allclose(x, [[0, 0, 50, 200]])
    np.testing.assert_allclose(y, [[0.25, 0.5, 0.5, 1.0]])


def test_segments():
    square = np.array([[1.0, 1.0], [5.0, 1.0], [5.0, 3.0], [1.0, 3.0]])
    np.testing.assert_allclose(segment2box(square, width=5, height=10), [1, 1, 5, 3])
    np.testing.assert_allclose(segment2box(square, width=4, height=10), [1, 1, 1, 3])  # points at x=5 are outside
    np.testing.assert_allclose(segment2box(square - 100), np.zeros((1, 4)))  # nothing inside
    np.testing.assert_allclose(segments2boxes([square, square * 2]), [[3, 2, 4, 2], [6, 4, 8, 4]])
    out = resample_segments([square.copy()], n=9)
    assert out[0].shape == (9, 2)
    np.testing.assert_allclose(out[0][0], square[0])
    np.testing.assert_allclose(out[0][-1], square[0])  # closed polygon: ends where it starts
    np.testing.assert_allclose(out[0][1], [3.0, 1.0])  # halfway along the first edge (9 points, 4 edges)


@pytest.mark.parametrize("kind", ["numpy", "tensor"])
def test_clip_boxes_in_place(kind):
    b = _both([[-5.0, -5.0, 200.0, 50.0]])[kind == "tensor"]
    out = clip_boxes(b, (40, 100))
    assert out is b
    np.testing.assert_allclose(to_numpy(b), [[0, 0, 100, 40]])
    s = _both([[-1.0, 5.0], [120.0, 50.0]])[kind == "tensor"]
    clip_segments(s, (40, 100))
    np.testing.assert_allclose(to_numpy(s), [[0, 5], [100, 40]])


@pytest.mark.parametrize("kind", ["numpy", "tensor"])
def test_scale_boxes_undoes_letterbox(kind):
    # a 200x100 (w x h) image letterboxed into 128x128: gain 0.64, padding 32 px top and bottom
    img0, img1 = (100, 200), (128, 128)
    original = np.array([[20.0, 10.0, 120.0, 90.0]], dtype=np.float32)
    letterboxed = original * 0.64 + np.array([0, 32, 0, 32], dtype=np.float32)
    for ratio_pad in (None, ((0.64, 0.64), (0.0, 32.0))):
        b = _both(letterboxed)[kind == "tensor"]
        out = scale_boxes(img1, b, img0, ratio_pad)
        assert out is b
        np.testing.assert_allclose(to_numpy(b), original, atol=1e-4)
    b = _both(np.array([[-10.0, 0.0, 500.0, 128.0]]))[kind == "tensor"]
    np.testing.assert_allclose(to_numpy(scale_boxes(img1, b, img0)), [[0, 0, 200, 100]])  # clipped
    seg = _both(np.array([[64.0, 64.0]]))[kind == "tensor"]
    np.testing.assert_allclose(to_numpy(scale_segments(img1, seg, img0, normalize=True)), [[0.5, 0.5]], atol=1e-6)


@pytest.mark.parametrize("kind", ["numpy", "tensor"])
def test_box_iou_known_values(kind):
    a = _both([[0.0, 0.0, 2.0, 2.0]])[kind == "tensor"]
    rows = [[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 1.0], [5.0, 5.0, 6.0, 6.0]]
    b = _both(rows)[kind == "tensor"]
    iou = to_numpy(box_iou(a, b))
    assert iou.shape == (1, 4)
    np.testing.assert_allclose(iou[0], [1.0, 1 / 7, 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(to_numpy(box_area(b)), [4, 4, 2, 1])


def test_bbox_ioa_and_wh_iou():
    np.testing.assert_allclose(bbox_ioa(np.array([0, 0, 2, 2]), np.array([[1, 1, 3, 3], [0, 0, 1, 1]])), [0.25, 1.0],
                               atol=1e-6)
    wh = to_numpy(wh_iou(torch.tensor([[2.0, 2.0]]), torch.tensor([[2.0, 2.0], [1.0, 4.0]])))
    np.testing.assert_allclose(wh, [[1.0, 2 / 6]], atol=1e-6)


def _t(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_bbox_iou_variants_known_values():
    b1, b2 = _t([[0.0, 0.0, 2.0, 2.0]]), _t([[1.0, 1.0, 3.0, 3.0]])  # xyxy, same aspect ratio
    iou = 1 / 7
    got = {k: float(to_numpy(bbox_iou(b1, b2, xywh=False, **{k: True} if k else {}))[0, 0])
           for k in ("", "GIoU", "DIoU", "CIoU")}
    assert got[""] == pytest.approx(iou, abs=1e-6)
    assert got["GIoU"] == pytest.approx(iou - 2 / 9, abs=1e-6)  # enclosing 3x3 = 9, union 7
    assert got["DIoU"] == pytest.approx(iou - 2 / 18, abs=1e-6)  # centre distance^2 2, diagonal^2 18
    assert got["CIoU"] == pytest.approx(got["DIoU"], abs=1e-6)  # equal aspect ratios: no shape term


def test_bbox_iou_ciou_aspect_term_and_xywh():
    b1, b2 = _t([[0.0, 0.0, 2.0, 2.0]]), _t([[0.0, 0.0, 4.0, 2.0]])
    v = 4 / math.pi**2 * (math.atan(2) - math.atan(1)) ** 2
    iou = 0.5
    expected = iou - (1 / 20 + v * v / (v - iou + 1))
    assert float(to_numpy(bbox_iou(b1, b2, xywh=False, CIoU=True))[0, 0]) == pytest.approx(expected, abs=1e-6)
    w1, w2 = xyxy2xywh(b1), xyxy2xywh(b2)
    assert float(to_numpy(bbox_iou(w1, w2, CIoU=True))[0, 0]) == pytest.approx(expected, abs=1e-6)


def test_bbox_iou_broadcasts_and_backpropagates():
    p = _t([[5.0, 5.0, 4.0, 4.0], [6.0, 5.0, 2.0, 6.0]])
    p.requires_grad_(True)
    t = _t([[5.0, 5.0, 4.0, 4.0]])
    ciou = bbox_iou(p, t, CIoU=True)
    assert tuple(ciou.shape) == (2, 1)
    assert float(to_numpy(ciou.detach())[0, 0]) == pytest.approx(1.0, abs=1e-5)
    (1 - ciou).mean().backward()
    g = to_numpy(p.grad)
    assert np.isfinite(g).all() and np.abs(g[1]).sum() > 0
