"""The data layer: label checks, the labels cache, datasets, loaders (both worker counts), sources and dataset YAMLs."""

import math
import os
import pickle
import random
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from tests.conftest import ROOT, reference_env
from utils.backend import DistributedSampler, to_numpy
from utils.data import formats
from utils.data.build import InfiniteDataLoader, create_dataloader, num_workers
from utils.data.dataset_yaml import DatasetError, check_dataset
from utils.data.datasets import LoadImagesAndLabels
from utils.data.formats import img2label_paths, load_label_cache, verify_image_label
from utils.data.loaders import LoadImages, LoadStreams
from utils.data.synthetic import make_dataset
from utils.downloads import DownloadError

NO_AUG = {"hsv_h": 0, "hsv_s": 0, "hsv_v": 0, "degrees": 0, "translate": 0, "scale": 0, "shear": 0,
          "perspective": 0, "flipud": 0, "fliplr": 0, "mosaic": 0, "mixup": 0, "copy_paste": 0}


def _img(path, h, w, bgr=None, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    im = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8) if bgr is None else \
        np.full((h, w, 3), bgr, np.uint8)
    assert cv2.imwrite(str(path), im)
    return path


def _pair(root, name, h, w, rows, ext="png", **kw):
    """images/<name>.<ext> with labels/<name>.txt holding ``rows`` (None: no label file)."""
    im = _img(root / "images" / f"{name}.{ext}", h, w, **kw)
    if rows is not None:
        lb = root / "labels" / f"{name}.txt"
        lb.parent.mkdir(parents=True, exist_ok=True)
        lb.write_text(rows)
    return im


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("synth") / "ds", 8, 4, 64, seed=0)


@pytest.fixture(scope="module")
def synth_seg(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("synth") / "seg", 8, 0, 64, seed=0, task="segment")


# --------------------------------------------------------------------------------------------------------- formats
def test_img2label_paths():
    s = os.sep
    got = img2label_paths([f"{s}d{s}images{s}train{s}a.jpg", f"{s}images{s}x{s}images{s}b.PNG", f"{s}d{s}c.jpeg"])
    assert got == [f"{s}d{s}labels{s}train{s}a.txt", f"{s}images{s}x{s}labels{s}b.txt", f"{s}d{s}c.txt"]


@pytest.mark.parametrize(
    "rows, counts, n, msg",
    [
        ("0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.1 0.1\n", (0, 1, 0, 0), 2, ""),
        (None, (1, 0, 0, 0), 0, ""),  # no label file: a background image
        ("", (0, 1, 1, 0), 0, ""),  # empty label file
        ("0 0.5 0.5 0.2\n", (0, 1, 0, 1), None, "labels require 5 columns"),
        ("0 -0.1 0.5 0.2 0.2\n", (0, 1, 0, 1), None, "negative label values"),
        ("0 50 50 20 20\n", (0, 1, 0, 1), None, "non-normalized or out of bounds coordinates"),
        ("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n2 0.3 0.3 0.1 0.1\n", (0, 1, 0, 0), 2, "1 duplicate labels removed"),
        ("0 0.5 0.5 0.2 0.2 0.1\n", (0, 1, 0, 1), None, "5 columns"),
    ],
)
def test_verify_image_label_rules(tmp_path, rows, counts, n, msg):
    im = _pair(tmp_path, "a", 20, 30, rows)
    lb = img2label_paths([str(im)])[0]
    im_file, labels, shape, segments, *got, message = verify_image_label((str(im), lb, "pre: "))
    assert tuple(got) == counts
    if n is None:  # corrupt: ignored, and the message names the file
        assert im_file is None and labels is None
        assert str(im) in message and "ignoring corrupt image/label" in message and msg in message
    else:
        assert im_file == str(im) and shape == (30, 20) and labels.shape == (n, 5) and msg in message
        if msg:
            assert message.startswith("pre: WARNING") and str(im) in message


def test_verify_polygons_become_boxes(tmp_path):
    im = _pair(tmp_path, "a", 20, 20, "3 0.1 0.1 0.5 0.1 0.5 0.4\n1 0.6 0.6 0.9 0.6 0.9 0.9 0.6 0.9\n")
    _, labels, _, segments, *_ = verify_image_label((str(im), img2label_paths([str(im)])[0], ""))
    np.testing.assert_allclose(labels, [[3, 0.3, 0.25, 0.4, 0.3], [1, 0.75, 0.75, 0.3, 0.3]], atol=1e-6)
    assert [s.shape for s in segments] == [(3, 2), (4, 2)]


def test_verify_image_problems(tmp_path):
    tiny = _pair(tmp_path, "tiny", 8, 20, "0 0.5 0.5 0.2 0.2\n")
    r = verify_image_label((str(tiny), img2label_paths([str(tiny)])[0], ""))
    assert r[7] == 1 and "<10 pixels" in r[8] and str(tiny) in r[8]
    garbage = tmp_path / "images" / "garbage.jpg"
    garbage.write_bytes(b"this is not a JPEG" * 20)
    r = verify_image_label((str(garbage), str(tmp_path / "labels" / "garbage.txt"), ""))
    assert r[0] is None and r[7] == 1 and str(garbage) in r[8]


def test_verify_restores_jpeg_without_end_marker(tmp_path):
    im = _pair(tmp_path, "a", 32, 32, "0 0.5 0.5 0.2 0.2\n", ext="jpg")
    data = im.read_bytes()
    assert data.endswith(b"\xff\xd9")
    im.write_bytes(data + b"\x00\x00")  # trailing bytes after the end-of-image marker
    r = verify_image_label((str(im), img2label_paths([str(im)])[0], ""))
    assert r[0] == str(im) and r[7] == 0 and "corrupt JPEG restored and saved" in r[8]
    assert im.read_bytes().endswith(b"\xff\xd9") and cv2.imread(str(im)).shape == (32, 32, 3)
    im.write_bytes(data[:-2])  # truly truncated: cannot be restored, ignored as corrupt (as ultralytics)
    r = verify_image_label((str(im), img2label_paths([str(im)])[0], ""))
    assert r[0] is None and r[7] == 1 and str(im) in r[8]


# ---------------------------------------------------------------------------------------------------- labels cache
def _count_verify(monkeypatch):
    calls = []

    def counting(args):
        calls.append(args[0])
        return verify_image_label(args)

    monkeypatch.setattr("utils.data.datasets.verify_image_label", counting)
    return calls


def test_cache_written_reused_and_rebuilt_on_change(tmp_path, monkeypatch, logs, capsys):
    root = tmp_path / "d"
    for i in range(3):
        _pair(root, f"im{i}", 32, 32, f"{i} 0.5 0.5 0.25 0.25\n")
    calls = _count_verify(monkeypatch)
    ds = LoadImagesAndLabels(str(root / "images"), 32, workers=0)
    cache = root / "labels.cache"
    assert cache.is_file() and len(calls) == 3 and any("New cache created" in m for m in logs)
    assert not list(root.glob("*.tmp"))  # atomic write leaves nothing behind
    assert "Scanning" in capsys.readouterr().err
    ds2 = LoadImagesAndLabels(str(root / "images"), 32, workers=0)  # unchanged: read from the cache
    assert len(calls) == 3 and "Scanning" in capsys.readouterr().err
    assert [lb.tolist() for lb in ds2.labels] == [lb.tolist() for lb in ds.labels]
    # same-size edit of one label (class 1 -> 5): ultralytics' size-only hash would miss it
    lb1 = root / "labels" / "im1.txt"
    lb1.write_text(lb1.read_text().replace("1 ", "5 ", 1))
    ds3 = LoadImagesAndLabels(str(root / "images"), 32, workers=0)
    assert len(calls) == 6 and ds3.labels[1][0, 0] == 5
    _pair(root, "im3", 32, 32, "0 0.5 0.5 0.1 0.1\n")  # a new image
    assert len(LoadImagesAndLabels(str(root / "images"), 32, workers=0)) == 4 and len(calls) == 10


def test_unreadable_or_foreign_cache_is_ignored(tmp_path, monkeypatch, logs):
    root = tmp_path / "d"
    _pair(root, "a", 32, 32, "0 0.5 0.5 0.25 0.25\n")
    cache = root / "labels.cache"
    cache.write_bytes(b"garbage, not a cache")
    ds = LoadImagesAndLabels(str(root / "images"), 32, workers=0)
    assert len(ds) == 1 and any("ignoring unreadable labels cache" in m and str(cache) in m for m in logs)
    assert load_label_cache(cache) is not None  # rebuilt

    class Payload:  # an ultralytics-style pickled cache must never be unpickled (it could run code)
        def __reduce__(self):
            return (Path(tmp_path / "pwned").touch, ())

    with open(cache, "wb") as f:
        np.save(f, np.array({"version": 0.6, "x": Payload()}, dtype=object), allow_pickle=True)
    assert len(LoadImagesAndLabels(str(root / "images"), 32, workers=0)) == 1
    assert not (tmp_path / "pwned").exists()
    calls = _count_verify(monkeypatch)
    monkeypatch.setattr(formats, "CACHE_VERSION", "some-other-version")  # a format change: rebuilt silently
    LoadImagesAndLabels(str(root / "images"), 32, workers=0)
    assert len(calls) == 1


def test_cache_for_txt_list_and_unwritable_dir(tmp_path, logs):
    root = tmp_path / "d"
    ims = [_pair(root, f"im{i}", 32, 32, "0 0.5 0.5 0.25 0.25\n") for i in range(2)]
    lst = tmp_path / "train.txt"
    lst.write_text("".join(f"{p}\n" for p in ims))
    assert len(LoadImagesAndLabels(str(lst), 32, workers=0)) == 2
    assert (tmp_path / "train.cache").is_file()
    if os.geteuid() == 0:
        return  # root writes anywhere
    (root / "labels.cache").unlink(missing_ok=True)
    os.chmod(root, 0o555)
    try:
        assert len(LoadImagesAndLabels(str(root / "images"), 32, workers=0)) == 2
        assert any("not writeable" in m for m in logs)
    finally:
        os.chmod(root, 0o755)


# ------------------------------------------------------------------------------------------------------- bad input
def test_corrupt_and_out_of_range_pairs_are_skipped_with_warnings(tmp_path, logs):
    root = tmp_path / "d"
    _pair(root, "good", 32, 32, "0 0.5 0.5 0.25 0.25\n")
    bad = _pair(root, "bad", 32, 32, "0 1.5 0.5 0.25 0.25\n")
    broken = root / "images" / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    ds = LoadImagesAndLabels(str(root / "images"), 32, workers=2)  # scanned by a process pool
    assert [Path(f).name for f in ds.im_files] == ["good.png"]
    text = "\n".join(logs)
    assert str(bad) in text and "non-normalized" in text and str(broken) in text


def test_missing_paths_and_empty_label_dirs(tmp_path, logs):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LoadImagesAndLabels(str(tmp_path / "nowhere"), 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No images found"):
        LoadImagesAndLabels(str(tmp_path / "empty"), 32)
    root = tmp_path / "d"
    for i in range(2):
        _pair(root, f"im{i}", 32, 32, None)  # images only: no labels at all
    (root / "labels").mkdir()
    ds = LoadImagesAndLabels(str(root / "images"), 32, workers=0)  # validation: allowed, all backgrounds
    assert len(ds) == 2 and all(len(lb) == 0 for lb in ds.labels)
    assert any("No labels found" in m for m in logs)
    with pytest.raises(FileNotFoundError, match="No labels found"):
        LoadImagesAndLabels(str(root / "images"), 32, augment=True, hyp=NO_AUG, workers=0)


# --------------------------------------------------------------------------------------------------------- dataset
def test_item_layout_letterbox_and_rgb(tmp_path):
    root = tmp_path / "d"
    _pair(root, "wide", 32, 64, "2 0.25 0.5 0.25 0.5\n", bgr=(255, 0, 0))  # pure blue in BGR
    ds = LoadImagesAndLabels(str(root / "images"), 64, workers=0)
    img, labels, path, shapes = ds[0]
    assert tuple(img.shape) == (3, 64, 64) and "uint8" in str(img.dtype)
    im = to_numpy(img)
    assert (im[2, 16:48] == 255).all() and (im[0, 16:48] == 0).all()  # RGB: blue is the last channel
    assert (im[:, :16] == 114).all() and (im[:, 48:] == 114).all()  # 16 px of grey above and below
    assert path.endswith("wide.png")
    assert shapes == ((32, 64), ((1.0, 1.0), (0.0, 16.0)))
    # y: (16 + 0.5 * 32) / 64 = 0.5; h: 0.5 * 32 / 64 = 0.25; x and w unchanged
    np.testing.assert_allclose(to_numpy(labels), [[0, 2, 0.25, 0.5, 0.25, 0.25]], atol=1e-6)


def test_rect_batch_shapes(tmp_path):
    root = tmp_path / "d"
    _pair(root, "a_square", 64, 64, "0 0.5 0.5 0.5 0.5\n")
    _pair(root, "b_wide", 32, 64, "1 0.5 0.5 0.5 0.5\n")
    ds = LoadImagesAndLabels(str(root / "images"), 64, batch_size=1, rect=True, stride=32, workers=0)
    assert [Path(f).name for f in ds.im_files] == ["b_wide.png", "a_square.png"]  # sorted by h/w
    assert ds.batch_shapes.tolist() == [[32, 64], [64, 64]]
    assert tuple(ds[0][0].shape) == (3, 32, 64) and ds[0][1][0, 1] == 1
    ds = LoadImagesAndLabels(str(root / "images"), 64, batch_size=1, rect=True, stride=32, pad=0.5, workers=0)
    assert ds.batch_shapes.tolist() == [[64, 96], [96, 96]]  # ceil(shape * 64 / 32 + 0.5) * 32
    ds = LoadImagesAndLabels(str(root / "images"), 64, batch_size=2, rect=True, stride=32, workers=0)
    assert ds.batch_shapes.tolist() == [[64, 64]]  # one batch holding both: the square wins


def test_mosaic_output_and_labels_inside(synth):
    data = check_dataset(synth)
    hyp = dict(NO_AUG, mosaic=1.0)
    ds = LoadImagesAndLabels(data["train"], 64, augment=True, hyp=hyp, workers=0)
    random.seed(0)
    np.random.seed(0)
    n_labels = 0
    for i in range(len(ds)):
        img, labels, _, shapes = ds[i]
        lb = to_numpy(labels)
        assert tuple(img.shape) == (3, 64, 64) and shapes is None
        assert ((lb[:, 2:] >= 0) & (lb[:, 2:] <= 1)).all() and (lb[:, 4:] > 0).all()
        assert (lb[:, 2:4] - lb[:, 4:6] / 2 >= -1e-3).all() and (lb[:, 2:4] + lb[:, 4:6] / 2 <= 1 + 1e-3).all()
        n_labels += len(lb)
    assert n_labels > 0
    img4, labels4 = ds.load_mosaic(0)
    assert img4.shape == (64, 64, 3) and labels4.shape[1] == 5
    assert ((labels4[:, 1:] >= 0) & (labels4[:, 1:] <= 64)).all()


def test_full_augmentation_with_segments(synth_seg):
    """scratch-high (mosaic, copy-paste on polygons, mixup, perspective, HSV, flips) keeps a valid layout."""
    hyp = yaml.safe_load((ROOT / "data/hyps/hyp.scratch-high.yaml").read_text())
    hyp.update(copy_paste=1.0, mixup=1.0, degrees=10, shear=5, perspective=0.0005, flipud=0.5)
    ds = LoadImagesAndLabels(check_dataset(synth_seg)["train"], 64, augment=True, hyp=hyp, workers=0)
    assert sum(len(s) for s in ds.segments) > 0
    random.seed(1)
    np.random.seed(1)
    for i in range(4):
        img, labels, _, _ = ds[i]
        lb = to_numpy(labels)
        assert tuple(img.shape) == (3, 64, 64)
        assert ((lb[:, 2:] >= 0) & (lb[:, 2:] <= 1)).all() and lb.shape[1] == 6


def test_single_cls_image_weights_and_image_caches(synth, tmp_path):
    data = check_dataset(synth)
    ds = LoadImagesAndLabels(data["train"], 64, single_cls=True, workers=0)
    assert all((lb[:, 0] == 0).all() for lb in ds.labels) and sum(len(lb) for lb in ds.labels) > 0
    ds.indices = [3] * ds.n  # what train.py does with --image-weights
    assert {ds[i][2] for i in range(ds.n)} == {ds.im_files[3]}
    plain = LoadImagesAndLabels(data["val"], 64, workers=0)
    ram = LoadImagesAndLabels(data["val"], 64, cache_images="ram", workers=0)
    disk = LoadImagesAndLabels(data["val"], 64, cache_images="disk", workers=0)
    assert all(f.is_file() for f in disk.npy_files) and all(im is not None for im in ram.ims)
    for i in range(len(plain)):
        ref = to_numpy(plain[i][0])
        assert np.array_equal(ref, to_numpy(ram[i][0])) and np.array_equal(ref, to_numpy(disk[i][0]))
    for f in disk.npy_files:
        f.unlink()


def test_collate_fn_and_quad(synth, monkeypatch):
    ds = LoadImagesAndLabels(check_dataset(synth)["train"], 32, workers=0)
    items = [ds[i] for i in range(8)]
    ims, targets, paths, shapes = LoadImagesAndLabels.collate_fn(items[:3])
    t = to_numpy(targets)
    assert tuple(ims.shape) == (3, 3, 32, 32) and len(paths) == 3 and len(shapes) == 3
    assert t[:, 0].tolist() == sum(([i] * len(items[i][1]) for i in range(3)), [])
    monkeypatch.setattr(random, "random", lambda: 0.9)  # the 2x2 grid branch
    items = [ds[i] for i in range(8)]
    ims4, t4, paths4, _ = LoadImagesAndLabels.collate_fn4(items)
    assert tuple(ims4.shape) == (2, 3, 64, 64) and len(paths4) == 2
    quad = to_numpy(ims4[0])
    assert np.array_equal(quad[:, 32:, :32], to_numpy(items[1][0]))  # image 1 below image 0
    assert np.array_equal(quad[:, :32, 32:], to_numpy(items[2][0]))  # image 2 right of image 0
    lb3 = to_numpy(items[3][1])[:, 2:]
    got = to_numpy(t4)
    if len(lb3):
        got = got[got[:, 0] == 0][-len(lb3):, 2:]  # image 3's boxes come last in quad 0
        np.testing.assert_allclose(got, np.concatenate([(lb3[:, :2] + 1) / 2, lb3[:, 2:] / 2], 1), atol=1e-6)
    monkeypatch.setattr(random, "random", lambda: 0.1)  # the upsampled-single-image branch
    ims4, t4, _, _ = LoadImagesAndLabels.collate_fn4([ds[i] for i in range(4)])
    assert tuple(ims4.shape) == (1, 3, 64, 64)
    np.testing.assert_allclose(to_numpy(t4)[:, 1:], to_numpy(ds[0][1])[:, 1:], atol=1e-6)


# ---------------------------------------------------------------------------------------------------------- loader
@pytest.mark.parametrize("workers", [0, 2])
def test_create_dataloader_batches(synth, workers):
    data = check_dataset(synth)
    hyp = yaml.safe_load((ROOT / "data/hyps/hyp.scratch-low.yaml").read_text())
    loader, ds = create_dataloader(data["train"], 64, 4, 32, hyp=hyp, augment=True, workers=workers, shuffle=True,
                                   prefix="train: ")
    assert isinstance(loader, InfiniteDataLoader) and len(loader) == 2
    assert loader.num_workers == min(os.cpu_count(), 4, workers)
    for _epoch in range(2):  # the same workers serve every epoch
        batches = list(loader)
        assert len(batches) == 2
        for ims, targets, paths, _shapes in batches:
            t = to_numpy(targets)
            assert tuple(ims.shape) == (4, 3, 64, 64) and "uint8" in str(ims.dtype) and len(paths) == 4
            assert t.shape[1] == 6 and set(t[:, 0].astype(int)) <= {0, 1, 2, 3}
            assert ((t[:, 2:] >= 0) & (t[:, 2:] <= 1)).all()


def test_loader_order_is_seeded_and_independent_of_workers(synth):
    data = check_dataset(synth)
    orders = []
    for workers in (0, 2, 2):
        loader, _ = create_dataloader(data["train"], 64, 2, 32, workers=workers, shuffle=True, seed=7)
        orders.append([p for _, _, paths, _ in loader for p in paths])
    assert orders[0] == orders[1] == orders[2] and sorted(orders[0]) == sorted(set(orders[0]))
    other, _ = create_dataloader(data["train"], 64, 2, 32, workers=0, shuffle=True, seed=8)
    assert [p for _, _, paths, _ in other for p in paths] != orders[0]


def test_loader_options(synth, monkeypatch, logs):
    data = check_dataset(synth)
    loader, _ = create_dataloader(data["val"], 64, 2, 32, rect=True, shuffle=True, pad=0.5, workers=0)
    assert any("--rect is incompatible" in m for m in logs)
    assert [p for _, _, paths, _ in loader for p in paths] == loader.dataset.im_files  # not shuffled
    quad, _ = create_dataloader(data["train"], 32, 4, 32, workers=0, quad=True)
    ims, *_ = next(iter(quad))
    assert tuple(ims.shape) == (1, 3, 64, 64)
    plain, _ = create_dataloader(data["train"], 32, 4, 32, workers=0, image_weights=True)
    assert not isinstance(plain, InfiniteDataLoader)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    ddp, ds = create_dataloader(data["train"], 32, 2, 32, workers=0, rank=1, shuffle=True)
    assert isinstance(ddp.sampler, DistributedSampler) and len(ddp) == math.ceil(math.ceil(ds.n / 2) / 2)
    assert num_workers(1, 8, n_devices=0) == 0  # batch 1: load in the main process
    assert num_workers(16, 8, n_devices=0) == min(os.cpu_count(), 8)
    assert num_workers(16, 3, n_devices=0) == min(os.cpu_count(), 3)


def test_worker_start_failure_falls_back_to_main_process(synth, monkeypatch, logs):
    import utils.data.build as build

    class NoWorkers(build.InfiniteDataLoader):  # e.g. a container without /dev/shm
        def __init__(self, *args, num_workers=0, **kwargs):
            if num_workers:
                raise OSError("cannot allocate shared memory")
            super().__init__(*args, num_workers=num_workers, **kwargs)

    monkeypatch.setattr(build, "InfiniteDataLoader", NoWorkers)
    loader, _ = build.create_dataloader(check_dataset(synth)["train"], 32, 4, 32, workers=2)
    assert loader.num_workers == 0 and len(list(loader)) == len(loader) == 2
    assert any("could not start" in m and "workers=0" in m for m in logs)


# ---------------------------------------------------------------------------------------------- inference sources
def test_load_images_skips_unreadable_and_letterboxes(tmp_path, logs):
    d = tmp_path / "src"
    _img(d / "a.jpg", 60, 100, bgr=(0, 0, 255))  # red
    _img(d / "c.png", 64, 64)
    (d / "b.jpg").write_bytes(b"not an image")
    (d / "notes.md").write_text("ignored")
    items = list(LoadImages(str(d), img_size=64, stride=32))
    assert [Path(p).name for p, *_ in items] == ["a.jpg", "c.png"]
    assert any(str(d / "b.jpg") in m and "skipping" in m for m in logs)
    path, im, im0, cap, s = items[0]
    # 60x100 -> r = 0.64 -> 38x64, auto: pad 26 rows (26 mod 32) -> 64x64
    assert im.shape == (3, 64, 64) and im0.shape == (60, 100, 3) and cap is None
    assert im.flags["C_CONTIGUOUS"] and im[0, 32, 32] > 200 and im[2, 32, 32] < 50  # RGB
    assert s.startswith("image 1/3 ") and s.endswith(": ")
    lst = tmp_path / "list.txt"
    lst.write_text(f"{d / 'c.png'}\n{d / 'a.jpg'}\n")
    assert len(list(LoadImages(str(lst), 64))) == 2 and len(list(LoadImages(str(d / "*.png"), 64))) == 1
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LoadImages(str(tmp_path / "missing.jpg"))
    (tmp_path / "none").mkdir()
    with pytest.raises(FileNotFoundError, match="No images or videos found"):
        LoadImages(str(tmp_path / "none"))


def test_load_images_video(tmp_path):
    f = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(f), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write video")
    for i in range(5):
        writer.write(np.full((48, 64, 3), i * 40, np.uint8))
    writer.release()
    frames = list(LoadImages(str(f), img_size=64, vid_stride=2))
    assert len(frames) == 2 and all(c is not None for _, _, _, c, _ in frames)
    assert frames[0][1].shape == (3, 64, 64) and frames[0][2].shape == (48, 64, 3)
    assert frames[0][4].startswith("video 1/1 (1/2)")


def test_load_streams_without_camera_is_a_clear_error():
    with pytest.raises(ConnectionError, match="Failed to open camera 99"):
        LoadStreams("99", img_size=64)


# ---------------------------------------------------------------------------------------------------- dataset YAML
def _write_yaml(file, **data):
    file.write_text(yaml.safe_dump(data, sort_keys=False))
    return file


def test_check_dataset_resolves_and_normalises(synth, tmp_path):
    d = check_dataset(synth)
    root = Path(synth).parent
    assert d["train"] == str(root / "images/train") and d["val"] == str(root / "images/val")
    assert d["names"][0] == "rectangle" and d["nc"] == 6
    f = _write_yaml(tmp_path / "list.yaml", path=str(root), train="images/train", val=["images/val"],
                    names=["a", "b"])
    d = check_dataset(f)
    assert d["names"] == {0: "a", 1: "b"} and d["nc"] == 2 and d["val"] == [str(root / "images/val")]
    # a relative 'path' resolves against the repository root (v7.0), else against the YAML's own folder
    (tmp_path / "local" / "images").mkdir(parents=True)
    f = _write_yaml(tmp_path / "rel.yaml", path="local", train="images", val="images", names={0: "x"})
    assert check_dataset(f)["val"] == str(tmp_path / "local" / "images")


def test_check_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_dataset.yaml"):
        check_dataset(str(tmp_path / "no_such_dataset.yaml"))
    f = _write_yaml(tmp_path / "nonames.yaml", path=str(tmp_path), train="a", val="a", nc=3)
    with pytest.raises(ValueError, match="'names:' field missing"):
        check_dataset(f)
    f = _write_yaml(tmp_path / "nc.yaml", path=str(tmp_path), train="a", val="a", nc=3, names=["x"])
    with pytest.raises(ValueError, match="nc=3 but 1 names"):
        check_dataset(f)
    f = _write_yaml(tmp_path / "missing.yaml", path=str(tmp_path / "gone"), train="images", val="images", names=["x"])
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "gone" / "images"))):
        check_dataset(f)


def test_check_dataset_download_urls_only(synth, tmp_path):
    src = Path(synth).parent
    archive = tmp_path / "ds.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in src.rglob("*"):
            if p.is_file() and p.suffix in (".jpg", ".txt"):
                z.write(p, Path("ds") / p.relative_to(src))
    target = tmp_path / "datasets" / "ds"
    f = _write_yaml(tmp_path / "dl.yaml", path=str(target), train="images/train", val="images/val",
                    names=["r", "e", "t", "s", "o", "c"], download=archive.as_uri())
    d = check_dataset(f)
    assert Path(d["val"]).is_dir() and len(list(Path(d["val"]).glob("*.jpg"))) == 4
    assert not (tmp_path / "datasets" / "ds.zip").exists()  # the archive is removed after extraction
    with pytest.raises(DatasetError):  # autodownload off: no fetching
        check_dataset(_write_yaml(tmp_path / "off.yaml", path=str(tmp_path / "x"), train="i", val="i", names=["a"],
                                  download=archive.as_uri()), autodownload=False)
    offline = _write_yaml(tmp_path / "offline.yaml", path=str(tmp_path / "y"), train="i", val="i", names=["a"],
                          download="http://127.0.0.1:9/data.zip")
    with pytest.raises(DownloadError, match="Download it on a machine with internet access") as e:
        check_dataset(offline)
    assert str(tmp_path / "y") in str(e.value) and not list((tmp_path).glob("*.part"))
    marker = tmp_path / "executed"
    script = _write_yaml(tmp_path / "script.yaml", path=str(tmp_path / "z"), train="i", val="i", names=["a"],
                         download=f"from pathlib import Path\nPath(r'{marker}').touch()\n")
    with pytest.raises(DatasetError, match="never runs code"):
        check_dataset(script)
    assert not marker.exists()
    bash = _write_yaml(tmp_path / "bash.yaml", path=str(tmp_path / "z"), train="i", val="i", names=["a"],
                       download=f"bash touch {marker}")
    with pytest.raises(DatasetError, match="never runs code"):
        check_dataset(bash)
    assert not marker.exists()


def test_zip_slip_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../escaped.txt", "x")
    f = _write_yaml(tmp_path / "evil.yaml", path=str(tmp_path / "in" / "ds"), train="i", val="i", names=["a"],
                    download=archive.as_uri())
    with pytest.raises(DatasetError, match="outside"):
        check_dataset(f)
    assert not (tmp_path / "escaped.txt").exists()


# ------------------------------------------------------------------------------------------------------- data files
@pytest.mark.parametrize("name, folder, url", [
    ("coco128.yaml", "coco128", "https://ultralytics.com/assets/coco128.zip"),
    ("coco128-seg.yaml", "coco128-seg", "https://ultralytics.com/assets/coco128-seg.zip"),
    ("coco.yaml", "coco", "https://github.com/ultralytics/yolov5/releases/download/v1.0/coco2017labels.zip"),
])
def test_coco_yamls(name, folder, url):
    d = yaml.safe_load((ROOT / "data" / name).read_text())
    assert d["path"] == f"../datasets/{folder}"
    assert len(d["names"]) == 80 and d["names"][0] == "person" and d["names"][79] == "toothbrush"
    assert (d["download"] if isinstance(d["download"], str) else d["download"][0]) == url
    if not (ROOT / d["path"]).exists():
        with pytest.raises(DatasetError, match=folder):
            check_dataset(name, autodownload=False)


def test_hyp_files_match_ultralytics_values():
    common = dict(lr0=0.01, momentum=0.937, weight_decay=0.0005, warmup_epochs=3.0, warmup_momentum=0.8,
                  warmup_bias_lr=0.1, box=0.05, cls_pw=1.0, obj_pw=1.0, iou_t=0.2, anchor_t=4.0, fl_gamma=0.0,
                  hsv_h=0.015, hsv_s=0.7, hsv_v=0.4, degrees=0.0, translate=0.1, shear=0.0, perspective=0.0,
                  flipud=0.0, fliplr=0.5, mosaic=1.0)
    expected = {
        "scratch-low": dict(common, lrf=0.01, cls=0.5, obj=1.0, scale=0.5, mixup=0.0, copy_paste=0.0),
        "scratch-med": dict(common, lrf=0.1, cls=0.3, obj=0.7, scale=0.9, mixup=0.1, copy_paste=0.0),
        "scratch-high": dict(common, lrf=0.1, cls=0.3, obj=0.7, scale=0.9, mixup=0.1, copy_paste=0.1),
        "no-augmentation": dict(common, lrf=0.1, cls=0.3, obj=0.7, **NO_AUG),
    }
    for name, values in expected.items():
        assert yaml.safe_load((ROOT / "data" / "hyps" / f"hyp.{name}.yaml").read_text()) == values


def test_compatibility_modules():
    import utils.augmentations as aug
    import utils.dataloaders as dl
    for n in ("create_dataloader", "LoadImagesAndLabels", "LoadImages", "LoadStreams", "img2label_paths",
              "IMG_FORMATS", "VID_FORMATS", "verify_image_label", "InfiniteDataLoader"):
        assert hasattr(dl, n), n
    for n in ("letterbox", "random_perspective", "box_candidates", "mixup", "augment_hsv", "copy_paste",
              "Albumentations"):
        assert hasattr(aug, n), n
    import utils.data
    assert utils.data.letterbox is aug.letterbox and "create_dataloader" in dir(utils.data)
    with pytest.raises(AttributeError):
        _ = utils.data.no_such_name
    assert pickle.loads(pickle.dumps(LoadImagesAndLabels.collate_fn)) is not None


# ------------------------------------------------------------------------------------------- parity with ultralytics
_REFERENCE = """
import random, sys, numpy as np, yaml
from yolov5.utils.dataloaders import LoadImagesAndLabels
out, res = sys.argv[1], {}
for tag, root, hyp in (('det', sys.argv[2], sys.argv[4]), ('seg', sys.argv[3], sys.argv[5])):
    ds = LoadImagesAndLabels(root + '/images/train', 64, 4, augment=True, hyp=yaml.safe_load(open(hyp)), workers=0)
    for i in range(len(ds)):
        random.seed(i); np.random.seed(i)
        im, lb, _, _ = ds[i]
        res[f'{tag}_im{i}'], res[f'{tag}_lb{i}'] = im.numpy(), lb.numpy()
ds = LoadImagesAndLabels(sys.argv[2] + '/images/val', 64, 2, rect=True, pad=0.5, workers=0)
for i in range(len(ds)):
    im, lb, _, s = ds[i]
    res[f'val_im{i}'], res[f'val_lb{i}'] = im.numpy(), lb.numpy()
    res[f'val_s{i}'] = np.array([*s[0], *s[1][0], *s[1][1]])
np.savez(out, **res)
"""


@pytest.mark.slow
@pytest.mark.reference
def test_items_match_ultralytics(reference_python, tmp_path):
    """Same data, same seeds: mosaic, mixup, copy-paste, perspective, HSV and flips give ultralytics' exact labels and
    images (pixels may differ slightly where the two environments have different OpenCV versions); rect val items
    (image, labels, shapes) are identical."""
    det = make_dataset(tmp_path / "det", 6, 3, 64, seed=2)
    seg = make_dataset(tmp_path / "seg", 6, 0, 64, seed=3, task="segment")
    ref_copy = {k: tmp_path / f"ref_{k}" for k in ("det", "seg")}
    for k, f in (("det", det), ("seg", seg)):
        shutil.copytree(Path(f).parent, ref_copy[k])  # separate label caches: the two formats differ
    med, high = ROOT / "data/hyps/hyp.scratch-med.yaml", tmp_path / "high.yaml"
    hyp_high = yaml.safe_load((ROOT / "data/hyps/hyp.scratch-high.yaml").read_text())
    high.write_text(yaml.safe_dump(dict(hyp_high, copy_paste=0.5, degrees=5.0, flipud=0.5)))
    out = tmp_path / "ref.npz"
    (tmp_path / "script.py").write_text(_REFERENCE)
    r = subprocess.run([reference_python, str(tmp_path / "script.py"), str(out), str(ref_copy["det"]),
                        str(ref_copy["seg"]), str(med), str(high)], capture_output=True, text=True,
                       env=reference_env(), cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ref = np.load(out)
    ref_cv2 = subprocess.run([reference_python, "-c", "import cv2; print(cv2.__version__)"], capture_output=True,
                             text=True, env=reference_env(), timeout=120).stdout.strip()
    exact = ref_cv2.split(".")[0] == cv2.__version__.split(".")[0]
    for tag, f, hyp in (("det", det, med), ("seg", seg, high)):
        ds = LoadImagesAndLabels(str(Path(f).parent / "images" / "train"), 64, 4, augment=True,
                                 hyp=yaml.safe_load(Path(hyp).read_text()), workers=0)
        for i in range(len(ds)):
            random.seed(i)
            np.random.seed(i)
            im, lb, _, _ = ds[i]
            np.testing.assert_allclose(to_numpy(lb), ref[f"{tag}_lb{i}"], atol=1e-6, err_msg=f"{tag} item {i}")
            diff = np.abs(to_numpy(im).astype(int) - ref[f"{tag}_im{i}"])
            assert (diff.max() == 0) if exact else (diff.mean() < 1 and diff.max() <= 16), (tag, i, diff.max())
    ds = LoadImagesAndLabels(str(Path(det).parent / "images" / "val"), 64, 2, rect=True, pad=0.5, workers=0)
    for i in range(len(ds)):
        im, lb, _, s = ds[i]
        assert np.array_equal(to_numpy(im), ref[f"val_im{i}"])
        np.testing.assert_allclose(to_numpy(lb), ref[f"val_lb{i}"], atol=1e-6)
        np.testing.assert_allclose([*s[0], *s[1][0], *s[1][1]], ref[f"val_s{i}"])
