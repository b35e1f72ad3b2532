"""Augmentations against hand-computed values: letterbox sizes and pads, identity warps, box tracking, filters."""

import random

import cv2
import numpy as np
import pytest

from utils.data.augment import (Albumentations, augment_hsv, bbox_ioa, box_candidates, copy_paste, letterbox, mixup,
                                random_perspective)


def _noise(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------------- letterbox
@pytest.mark.parametrize(
    "hw, new, auto, scaleup, out_hw, ratio, pad",
    [
        # 100x200 -> 320: r = min(3.2, 1.6) = 1.6, resized 160x320, pad 160 split 80/80
        ((100, 200), 320, False, True, (320, 320), 1.6, (0.0, 80.0)),
        # auto: pad only to the next multiple of 32 (160 is one already)
        ((100, 200), 320, True, True, (160, 320), 1.6, (0.0, 0.0)),
        # 101x200: 161.6 -> 162 rows, 320 - 162 = 158, 158 mod 32 = 30 -> 15 per side -> 192 rows
        ((101, 200), 320, True, True, (192, 320), 1.6, (0.0, 15.0)),
        # scaleup=False never enlarges: a 32x32 image stays 32x32 and is padded 16 per side
        ((32, 32), 64, False, False, (64, 64), 1.0, (16.0, 16.0)),
        # rectangular target (h, w) = (96, 128) for a 60x100 image: r = min(1.6, 1.28) = 1.28 -> 77x128, pad 19 = 9.5
        ((60, 100), (96, 128), False, True, (96, 128), 1.28, (0.0, 9.5)),
    ],
)
def test_letterbox_shapes_and_pads(hw, new, auto, scaleup, out_hw, ratio, pad):
    im, r, p = letterbox(_noise(*hw), new, auto=auto, scaleup=scaleup, stride=32)
    assert im.shape == (*out_hw, 3)
    assert r == pytest.approx((ratio, ratio))
    assert p == pytest.approx(pad)


def test_letterbox_odd_padding_goes_bottom_right_and_uses_grey():
    # 50x75 -> 64: r = 64/75, 42.67 -> 43 rows, 21 rows of padding: 10 on top, 11 below (round(10.5 -/+ 0.1))
    im, _, (dw, dh) = letterbox(np.zeros((50, 75, 3), np.uint8), 64, auto=False)
    assert (dw, dh) == (0.0, 10.5)
    rows = np.where((im == 114).all(axis=(1, 2)))[0]
    assert rows.tolist() == list(range(10)) + list(range(53, 64))
    assert (im[10:53] == 0).all()


def test_letterbox_scalefill_stretches():
    im, ratio, pad = letterbox(_noise(50, 75), (64, 64), auto=False, scaleFill=True)
    assert im.shape == (64, 64, 3) and pad == (0.0, 0.0)
    assert ratio == pytest.approx((64 / 75, 64 / 50))


def test_letterbox_identity_when_shape_fits():
    src = _noise(64, 64)
    im, ratio, pad = letterbox(src, 64, auto=False)
    assert np.array_equal(im, src) and ratio == (1.0, 1.0) and pad == (0.0, 0.0)


# ----------------------------------------------------------------------------------------------- random_perspective
def test_random_perspective_zero_params_is_identity():
    src = _noise(48, 64)
    targets = np.array([[1, 5, 6, 30, 40], [0, 10, 10, 60, 44]], np.float64)
    im, t = random_perspective(src.copy(), targets.copy(), degrees=0, translate=0, scale=0, shear=0, perspective=0)
    assert np.array_equal(im, src)
    np.testing.assert_allclose(t, targets)


def test_random_perspective_border_crops_centre():
    """A mosaic-style border of -s/2 on a 2s canvas with no warp cuts out the centre s x s and shifts boxes by -s/2."""
    s = 32
    src = _noise(2 * s, 2 * s)
    targets = np.array([[2, 20, 24, 40, 44]], np.float64)
    im, t = random_perspective(src, targets.copy(), degrees=0, translate=0, scale=0, shear=0, border=(-s // 2, -s // 2))
    assert im.shape == (s, s, 3)
    assert np.array_equal(im, src[s // 2:s // 2 + s, s // 2:s // 2 + s])
    np.testing.assert_allclose(t, [[2, 4, 8, 24, 28]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_perspective_boxes_follow_the_pixels(seed):
    """Rotate/scale/shear/translate a white rectangle: the returned box is the extent of the warped white pixels."""
    random.seed(seed)
    im = np.zeros((128, 128, 3), np.uint8)
    im[40:80, 30:90] = 255
    targets = np.array([[3, 30, 40, 90, 80]], np.float64)  # xyxy: pixel edges of the filled block
    out, t = random_perspective(im, targets, degrees=30, translate=0.1, scale=0.3, shear=5)
    ys, xs = np.nonzero(out[..., 0] > 127)
    assert len(t) == 1 and t[0, 0] == 3
    np.testing.assert_allclose(t[0, 1:], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], atol=2.0)


def test_random_perspective_drops_boxes_cropped_away():
    """A box in the corner of a 2s mosaic canvas lies outside the centre crop: it is removed, the other one kept."""
    s = 32
    targets = np.array([[0, 0, 0, 10, 10], [1, 20, 20, 40, 40]], np.float64)
    _, t = random_perspective(_noise(2 * s, 2 * s), targets, degrees=0, translate=0, scale=0, shear=0,
                              border=(-s // 2, -s // 2))
    np.testing.assert_allclose(t, [[1, 4, 4, 24, 24]])


def test_box_candidates_rules():
    before = np.array([[0, 0, 10, 10]] * 4, np.float64).T
    after = np.array([[0, 0, 10, 10],  # unchanged: kept
                      [0, 0, 2, 10],  # width 2 px (not > 2): dropped
                      [0, 0, 3, 3],  # 9% of the original area (< 10%): dropped
                      [0, 0, 1000, 9.9]], np.float64).T  # aspect ratio 101 (>= 100): dropped
    assert box_candidates(before, after).tolist() == [True, False, False, False]
    assert box_candidates(before[:, :1], np.array([[0, 0, 4, 4]], np.float64).T, area_thr=0.1).tolist() == [True]


# ------------------------------------------------------------------------------------------------------ colour & mixing
def test_augment_hsv_zero_gains_is_noop_and_gains_change_pixels():
    src = _noise(16, 16)
    im = src.copy()
    augment_hsv(im, 0, 0, 0)
    assert np.array_equal(im, src)
    np.random.seed(0)
    augment_hsv(im, 0.5, 0.5, 0.5)
    assert im.dtype == np.uint8 and im.shape == src.shape and not np.array_equal(im, src)
    again = src.copy()
    np.random.seed(0)
    augment_hsv(again, 0.5, 0.5, 0.5)
    assert np.array_equal(again, im)  # the global numpy seed drives it (seeded workers reproduce it)


def test_mixup_blends_images_and_keeps_both_label_sets():
    np.random.seed(0)
    a, b = np.full((8, 8, 3), 100, np.uint8), np.full((8, 8, 3), 200, np.uint8)
    la, lb = np.array([[0, 1, 1, 4, 4]], np.float32), np.array([[1, 2, 2, 6, 6], [2, 0, 0, 3, 3]], np.float32)
    im, labels = mixup(a, la, b, lb)
    assert labels.tolist() == la.tolist() + lb.tolist()
    assert 130 <= im[0, 0, 0] <= 170 and len(np.unique(im)) == 1  # Beta(32, 32) stays near 0.5


def test_copy_paste_mirrors_an_object():
    random.seed(0)
    im = np.zeros((40, 60, 3), np.uint8)
    im[10:20, 5:15] = 255  # one object near the left edge
    labels = np.array([[4, 5, 10, 15, 20]], np.float64)
    seg = [np.array([[5, 10], [15, 10], [15, 20], [5, 20]], np.float32)]
    out, new_labels, new_segs = copy_paste(im.copy(), labels, seg, p=1.0)
    assert len(new_labels) == 2 and len(new_segs) == 2
    np.testing.assert_allclose(new_labels[1], [4, 45, 10, 55, 20])  # mirrored: x -> 60 - x
    assert (out[12:18, 47:53] == 255).all()  # the pasted pixels
    assert np.array_equal(out[:, :30], im[:, :30])  # nothing else changed
    same, unchanged, _ = copy_paste(im.copy(), labels, [], p=1.0)
    assert np.array_equal(same, im) and len(unchanged) == 1  # no segments: no copy-paste


def test_bbox_ioa():
    ioa = bbox_ioa(np.array([0, 0, 10, 10]), np.array([[5, 5, 15, 15], [0, 0, 5, 5], [20, 20, 30, 30]]))
    np.testing.assert_allclose(ioa, [0.25, 1.0, 0.0], atol=1e-6)


def test_albumentations_absent_or_present_keeps_layout():
    alb = Albumentations(size=64)
    im = _noise(64, 64)
    labels = np.array([[1, 0.5, 0.5, 0.2, 0.2]], np.float32)
    out, lb = alb(im.copy(), labels.copy())
    assert out.shape == im.shape and lb.shape[1] == 5
    if alb.transform is None:  # package not installed: a transparent pass-through
        assert np.array_equal(out, im) and np.array_equal(lb, labels)


def test_letterbox_matches_cv2_resize():
    """The content area is exactly cv2's bilinear resize (ultralytics' INTER_LINEAR)."""
    src = _noise(30, 40)
    im, _, (dw, dh) = letterbox(src, 80, auto=False)
    ref = cv2.resize(src, (80, 60), interpolation=cv2.INTER_LINEAR)
    assert (dw, dh) == (0.0, 10.0)
    assert np.array_equal(im[10:70], ref)
