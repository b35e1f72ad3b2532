"""The segmentation dataset and loader: batch layout, masks against polygons and boxes, overlap order, flips, the
labels cache, bad polygon files, and equality with ultralytics' own segmentation dataset."""

import random
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from tests.conftest import ROOT, reference_env
from utils.backend import to_numpy, torch
from utils.boxes import segment2box, xywhn2xyxy
from utils.data.augment import random_perspective
from utils.data.dataset_yaml import check_dataset
from utils.data.formats import img2label_paths, load_label_cache, verify_image_label
from utils.data.synthetic import DATASETS, make_dataset
from utils.segment.dataloaders import create_dataloader
from utils.segment.dataset import LoadImagesAndLabelsAndMasks
from utils.segment.masks import polygons2masks, split_overlap_mask

NO_AUG = {"hsv_h": 0, "hsv_s": 0, "hsv_v": 0, "degrees": 0, "translate": 0, "scale": 0, "shear": 0,
          "perspective": 0, "flipud": 0, "fliplr": 0, "mosaic": 0, "mixup": 0, "copy_paste": 0}


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    return check_dataset(make_dataset(tmp_path_factory.mktemp("seg") / "ds", 8, 4, 64, seed=0, task="segment"))


def _hyp(**kw):
    hyp = yaml.safe_load((ROOT / "data/hyps/hyp.scratch-low.yaml").read_text())
    hyp.update(kw)
    return hyp


def _bbox(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


# ------------------------------------------------------------------------------------------------------- batches
@pytest.mark.parametrize("overlap", [True, False])
def test_batch_layout(seg, overlap):
    loader, ds = create_dataloader(seg["train"], 64, 4, 32, hyp=_hyp(), augment=True, workers=0, shuffle=True,
                                   mask_downsample_ratio=4, overlap_mask=overlap)
    assert isinstance(ds, LoadImagesAndLabelsAndMasks)
    random.seed(0)
    np.random.seed(0)
    imgs, targets, paths, shapes, masks = next(iter(loader))
    assert tuple(imgs.shape) == (4, 3, 64, 64) and imgs.dtype == torch.uint8
    assert targets.shape[1] == 6 and targets.dtype == torch.float32 and len(paths) == 4 and len(shapes) == 4
    assert masks.dtype == torch.uint8
    t, m = to_numpy(targets), to_numpy(masks)
    if overlap:
        assert m.shape == (4, 16, 16)
        for i in range(4):  # ids 1..n of the image's targets; each target is visible somewhere
            n = int((t[:, 0] == i).sum())
            assert set(np.unique(m[i])) <= set(range(n + 1))
    else:
        assert m.shape == (len(t), 16, 16) and m.max() <= 1


def test_rect_validation_batches_keep_full_resolution(seg):
    loader, _ = create_dataloader(seg["val"], 64, 2, 32, rect=True, pad=0.5, workers=0, overlap_mask=True)
    for imgs, targets, _, shapes, masks in loader:
        assert tuple(masks.shape) == (imgs.shape[0], *imgs.shape[2:])
        assert shapes[0] is not None


def test_quad_is_refused(seg):
    with pytest.raises(ValueError, match="quad"):
        create_dataloader(seg["train"], 64, 4, 32, workers=0, quad=True)


# ------------------------------------------------------------------------------------------- masks vs polygons
def test_masks_agree_with_polygons_and_boxes(seg):
    ds = LoadImagesAndLabelsAndMasks(seg["train"], 64, workers=0, overlap=False)
    checked = 0
    for i in range(len(ds)):
        img, labels, _, _, masks = ds[i]
        lb, m = to_numpy(labels), to_numpy(masks)
        h, w = img.shape[1:]
        assert m.shape == (len(lb), h, w)
        boxes = xywhn2xyxy(lb[:, 2:6].astype(np.float64), w, h)
        for box, mask in zip(boxes, m):
            assert mask.any()
            np.testing.assert_allclose(_bbox(mask), box, atol=1.5)  # the polygon fills its own box
            inside = np.zeros_like(mask)
            x1, y1, x2, y2 = np.round(box).astype(int)
            inside[max(y1 - 1, 0):y2 + 1, max(x1 - 1, 0):x2 + 1] = 1
            assert not (mask & ~inside.astype(bool)).any()
            checked += 1
    assert checked > 5


def test_overlap_index_image_orders_labels_by_area(seg):
    ov = LoadImagesAndLabelsAndMasks(seg["train"], 64, workers=0, overlap=True)
    per = LoadImagesAndLabelsAndMasks(seg["train"], 64, workers=0, overlap=False)
    for i in range(len(ov)):
        _, lb_o, _, _, m_o = ov[i]
        _, lb_p, _, _, m_p = per[i]
        lb_o, lb_p, m_o, m_p = (to_numpy(x) for x in (lb_o, lb_p, m_o, m_p))
        if not len(lb_p):
            assert m_o.shape == (1, 64, 64) and not m_o.any()
            continue
        order = np.argsort(-m_p.reshape(len(m_p), -1).sum(1, dtype=np.int64), kind="stable")
        np.testing.assert_array_equal(lb_o, lb_p[order])
        inst = split_overlap_mask(m_o[0], len(lb_o))
        for k in range(len(lb_o)):  # instance k is its polygon's mask minus the smaller ones drawn after it
            later = m_p[order[k + 1:]].any(0) if k + 1 < len(lb_o) else np.zeros_like(m_p[0], bool)
            np.testing.assert_array_equal(inst[k].astype(bool), m_p[order[k]].astype(bool) & ~later)


@pytest.mark.parametrize("flip", ["fliplr", "flipud"])
def test_flips_move_masks_with_boxes(seg, flip):
    kw = dict(NO_AUG)
    base = LoadImagesAndLabelsAndMasks(seg["train"], 64, augment=True, hyp=_hyp(**kw), workers=0, overlap=False)
    kw[flip] = 1.0
    flipped = LoadImagesAndLabelsAndMasks(seg["train"], 64, augment=True, hyp=_hyp(**kw), workers=0, overlap=False)
    axis, col = (2, 2) if flip == "fliplr" else (1, 3)
    for i in range(len(base)):
        items = []
        for ds in (base, flipped):
            random.seed(i)  # the same draws for both (optional albumentations)
            np.random.seed(i)
            items.append([to_numpy(x) if hasattr(x, "shape") else x for x in ds[i]])
        (im_a, lb_a, _, _, m_a), (im_b, lb_b, _, _, m_b) = items
        if not len(lb_a):
            continue
        np.testing.assert_array_equal(im_b, np.flip(im_a, axis))
        np.testing.assert_array_equal(m_b, np.flip(m_a, axis))
        np.testing.assert_allclose(lb_b[:, col], 1 - lb_a[:, col], atol=1e-6)
        for lb, m in zip(lb_b, m_b):  # the flipped mask still sits in the flipped box
            centre = (_bbox(m)[[0, 1]] + _bbox(m)[[2, 3]]) / 2 / np.array(m.shape[::-1])
            np.testing.assert_allclose(centre, lb[2:4], atol=2 / 64)


def test_mosaic_and_copy_paste_keep_masks_and_labels_in_step(seg):
    hyp = _hyp(copy_paste=1.0, mixup=1.0, degrees=10, shear=3)
    for overlap in (True, False):
        ds = LoadImagesAndLabelsAndMasks(seg["train"], 64, augment=True, hyp=hyp, workers=0,
                                         downsample_ratio=4, overlap=overlap)
        random.seed(3)
        np.random.seed(3)
        for i in range(len(ds)):
            _, lb, _, _, m = ds[i]
            lb, m = to_numpy(lb), to_numpy(m)
            assert m.shape[1:] == (16, 16) and len(m) == (1 if overlap else len(lb))
            if overlap:
                assert m.max() <= len(lb)


# ---------------------------------------------------------------------------------------------- augmentation
def test_random_perspective_returns_the_warped_polygons_of_kept_targets():
    im = np.zeros((64, 64, 3), np.uint8)
    squares = [np.array([[8, 8], [24, 8], [24, 24], [8, 24]], np.float32),
               np.array([[40, 40], [63, 40], [63, 63], [40, 63]], np.float32),
               np.array([[60, 2], [62, 2], [62, 4], [60, 4]], np.float32)]  # too small after the warp
    targets = np.array([[0, 8, 8, 24, 24], [1, 40, 40, 63, 63], [2, 60, 2, 62, 4]], np.float64)
    random.seed(0)
    _, t, segs = random_perspective(im, targets.copy(), [s.copy() for s in squares], degrees=20, translate=0,
                                    scale=0.2, shear=0, return_segments=True)
    assert len(segs) == len(t) == 2 and list(t[:, 0]) == [0, 1]
    for row, seg in zip(t, segs):
        assert seg.shape == (1000, 2)  # resampled outline, not clipped
        np.testing.assert_allclose(row[1:], segment2box(seg, 64, 64), atol=1e-6)
    random.seed(0)
    _, t_det = random_perspective(im, targets.copy(), [s.copy() for s in squares], degrees=20, translate=0,
                                  scale=0.2, shear=0)
    np.testing.assert_array_equal(t, t_det)  # the detection result is unchanged
    with pytest.raises(ValueError, match="one polygon per target"):
        random_perspective(im, targets.copy(), squares[:2], return_segments=True)


# ------------------------------------------------------------------------------------------------------ the cache
def test_labels_cache_round_trip_keeps_polygons(tmp_path):
    f = make_dataset(tmp_path / "ds", 4, 0, 64, seed=1, task="segment")
    images = Path(f).parent / "images" / "train"
    first = LoadImagesAndLabelsAndMasks(str(images), 64, workers=0)
    cache = load_label_cache(Path(first.label_files[0]).parent.with_suffix(".cache"))
    again = LoadImagesAndLabelsAndMasks(str(images), 64, workers=0)
    for k, im in enumerate(again.im_files):
        _, _, _, segments, *_ = verify_image_label((im, img2label_paths([im])[0], ""))
        assert len(cache[im][2]) == len(segments) == len(again.segments[k])
        for a, b, c in zip(segments, cache[im][2], again.segments[k]):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)


# ------------------------------------------------------------------------------------------------------ bad input
def _image(root, name, rows):
    im = root / "images" / f"{name}.png"
    im.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(im), np.full((64, 64, 3), 90, np.uint8))
    lb = root / "labels" / f"{name}.txt"
    lb.parent.mkdir(parents=True, exist_ok=True)
    lb.write_text(rows)
    return im


def test_bad_polygon_files_warn_and_are_kept(tmp_path, logs):
    good = "0 0.1 0.1 0.4 0.1 0.4 0.4 0.1 0.4\n"
    mixed = _image(tmp_path, "mixed", good + "1 0.7 0.7 0.2 0.2\n")
    short = _image(tmp_path, "short", good + "2 0.5 0.5\n")
    outside = _image(tmp_path, "outside", good + "1 0.7 0.6 1.1 0.6 1.05 0.9 0.7 0.9\n")
    boxes = _image(tmp_path, "boxes", "3 0.5 0.5 0.25 0.5\n")
    ds = LoadImagesAndLabelsAndMasks(str(tmp_path / "images"), 64, workers=0, overlap=False)
    text = "\n".join(logs)
    assert f"{mixed}: 1 box row(s)" in text
    assert f"{short}: 1 polygon(s) with fewer than 3 points" in text
    assert f"{outside}: 1 polygon(s) with points outside the image" in text
    assert "box labels but no polygons" in text and str(img2label_paths([str(boxes)])[0]) in text
    assert len(ds) == 4  # nothing dropped: every file is used as ultralytics reads it
    by_name = {Path(f).stem: i for i, f in enumerate(ds.im_files)}
    _, lb, _, _, m = ds[by_name["boxes"]]
    np.testing.assert_array_equal(to_numpy(m)[0], polygons2masks((64, 64), [np.array(
        [[24, 16], [40, 16], [40, 48], [24, 48]], np.float32)])[0])  # the box became a rectangle mask
    _, lb, _, _, m = ds[by_name["outside"]]
    assert to_numpy(m).shape == (2, 64, 64) and to_numpy(m)[1, :, 63].any()  # cut at the image border


# ------------------------------------------------------------------------------------------------------ dataset yaml
def test_synthetic_seg_yaml_generates_polygon_data(tmp_path):
    spec = yaml.safe_load((ROOT / "data/synthetic-seg.yaml").read_text())
    assert Path(spec["path"]).name == DATASETS["segment"].name and spec["generate"]["task"] == "segment"
    det = yaml.safe_load((ROOT / "data/synthetic.yaml").read_text())
    assert spec["names"] == det["names"]
    spec.update(path=str(tmp_path / "synthetic-seg"), generate=dict(spec["generate"], n_train=2, n_val=2))
    data = check_dataset(spec)
    rows = [r.split() for f in sorted(Path(data["path"], "labels", "val").glob("*.txt"))
            for r in f.read_text().splitlines()]
    assert rows and all(len(r) >= 7 and len(r) % 2 == 1 for r in rows)


# ------------------------------------------------------------------------------------------------------- reference
@pytest.mark.slow
@pytest.mark.reference
@pytest.mark.parametrize("overlap, ratio", [(True, 1), (False, 4)])
def test_items_match_ultralytics(reference_python, tmp_path, overlap, ratio):
    """Same data, same seeds: mosaic, copy-paste, mixup, perspective, flips and the masks built from the warped
    polygons give ultralytics' exact labels and masks (images: exact with the same OpenCV major version); rect
    validation items are identical.

    Where two masks of an overlap item have the same area, ultralytics' drawing order depends on the NumPy version
    (see polygons2masks_overlap): such items are compared as sets of labels with the same union of masks.
    """
    f = make_dataset(tmp_path / "ours", 6, 3, 64, seed=3, task="segment")
    ours = Path(f).parent
    shutil.copytree(ours, tmp_path / "ref")  # separate label caches: the two projects' formats differ
    hyp = _hyp(**yaml.safe_load((ROOT / "data/hyps/hyp.scratch-high.yaml").read_text()))
    hyp.update(copy_paste=0.5, mixup=0.5, degrees=5.0, flipud=0.5, perspective=0.0005)
    (tmp_path / "hyp.yaml").write_text(yaml.safe_dump(hyp))
    out = tmp_path / "ref.npz"
    args = [reference_python, str(ROOT / "tests/parity/ultralytics_seg_items.py"), str(out),
            str(tmp_path / "ref/images/train"), str(tmp_path / "hyp.yaml"), "--mask-ratio", str(ratio),
            "--rect-val", str(tmp_path / "ref/images/val")] + ([] if overlap else ["--no-overlap"])
    r = subprocess.run(args, capture_output=True, text=True, env=reference_env(), cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ref = np.load(out)
    ref_cv2 = subprocess.run([reference_python, "-c", "import cv2; print(cv2.__version__)"], capture_output=True,
                             text=True, env=reference_env(), timeout=120).stdout.strip()
    exact = ref_cv2.split(".")[0] == cv2.__version__.split(".")[0]
    ds = LoadImagesAndLabelsAndMasks(str(ours / "images/train"), 64, 4, augment=True, hyp=hyp, workers=0,
                                     downsample_ratio=ratio, overlap=overlap)
    per = LoadImagesAndLabelsAndMasks(str(ours / "images/train"), 64, 4, augment=True, hyp=hyp, workers=0,
                                      downsample_ratio=ratio, overlap=False)
    exact_items = 0
    for i in range(len(ds)):
        random.seed(i)
        np.random.seed(i)
        im, lb, _, _, m = (to_numpy(x) if hasattr(x, "shape") else x for x in ds[i])
        diff = np.abs(im.astype(int) - ref[f"tr_im{i}"])
        assert (diff.max() == 0) if exact else (diff.mean() < 1 and diff.max() <= 16), (i, diff.max())
        random.seed(i)
        np.random.seed(i)
        areas = to_numpy(per[i][4]).reshape(len(lb), -1).sum(1)
        if overlap and len(np.unique(areas)) < len(areas):  # ties: order within them is NumPy's choice
            np.testing.assert_allclose(np.sort(lb, 0), np.sort(ref[f"tr_lb{i}"], 0), atol=1e-6)
            np.testing.assert_array_equal(m > 0, ref[f"tr_mk{i}"] > 0)
            continue
        np.testing.assert_allclose(lb, ref[f"tr_lb{i}"], atol=1e-6, err_msg=f"item {i}")
        np.testing.assert_array_equal(m.astype(np.float32), ref[f"tr_mk{i}"].astype(np.float32))
        exact_items += 1
    assert exact_items >= 2, exact_items
    ds = LoadImagesAndLabelsAndMasks(str(ours / "images/val"), 64, 2, rect=True, pad=0.5, workers=0, overlap=overlap)
    for i in range(len(ds)):
        im, lb, _, _, m = ds[i]
        assert np.array_equal(to_numpy(im), ref[f"va_im{i}"])
        np.testing.assert_allclose(to_numpy(lb), ref[f"va_lb{i}"], atol=1e-6)
        np.testing.assert_array_equal(to_numpy(m).astype(np.float32), ref[f"va_mk{i}"].astype(np.float32))
