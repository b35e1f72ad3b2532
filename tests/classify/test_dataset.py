"""The class-folder dataset, its loader, and resolving --data (folders, names, downloads, offline)."""

import io
import os
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from utils.backend import is_tensor, to_numpy
from utils.classify import dataset as D
from utils.data.dataset_yaml import DatasetError
from utils.downloads import DownloadError


def _write(path, h=20, w=30, value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, 3), value, np.uint8))


@pytest.fixture
def tree(tmp_path):
    """Classes 'b' and 'a' (sorted: a=0, b=1), a nested image, mixed-case extensions, a non-image file."""
    root = tmp_path / "split"
    _write(root / "b" / "2.png")
    _write(root / "b" / "1.PNG")
    _write(root / "a" / "z.jpg")
    _write(root / "a" / "sub" / "x.bmp")
    (root / "a" / "notes.txt").write_text("not an image")
    return root


def test_classes_sorted_and_samples_in_walk_order(tree):
    ds = D.ClassificationDataset(tree, imgsz=16)
    assert ds.classes == ["a", "b"] and ds.class_to_idx == {"a": 0, "b": 1}
    names = [(str(Path(f).relative_to(tree)), j) for f, j in ds.samples]
    assert names == [("a/z.jpg", 0), ("a/sub/x.bmp", 0), ("b/1.PNG", 1), ("b/2.png", 1)]
    assert ds.targets == [0, 0, 1, 1] and len(ds) == 4


def test_items_are_normalised_chw_tensors_and_int_labels(cls_data, class_names):
    ds = D.ClassificationDataset(cls_data / "train", imgsz=32)
    assert ds.classes == class_names
    x, j = ds[5]
    assert is_tensor(x) and tuple(x.shape) == (3, 32, 32) and str(x.dtype).endswith("float32")
    assert isinstance(j, int) and j == ds.samples[5][1]
    im = cv2.imread(ds.samples[5][0])
    assert np.array_equal(to_numpy(x), ds.torch_transforms.numpy(im))
    assert -2.2 < float(x.min()) and float(x.max()) < 2.7  # ImageNet-normalised range


@pytest.mark.parametrize("cache", [True, "ram", "disk"])
def test_caches_give_the_same_items(tree, cache):
    plain = D.ClassificationDataset(tree, imgsz=16)
    cached = D.ClassificationDataset(tree, imgsz=16, cache=cache)
    npys = sorted(tree.rglob("*.npy"))
    if cache == "disk":
        assert len(npys) == 4 and all(x is None for x in cached.ims)
        assert np.array_equal(np.load(cached.npy_files[0]), cv2.imread(cached.samples[0][0]))
    else:
        assert not npys and all(x is not None for x in cached.ims)
    for i in range(len(plain)):
        assert np.array_equal(to_numpy(plain[i][0]), to_numpy(cached[i][0]))


def test_disk_cache_is_read_back(tree):
    ds = D.ClassificationDataset(tree, imgsz=16, cache="disk")
    np.save(ds.npy_files[0], np.zeros((5, 5, 3), np.uint8))  # the .npy, not the image, is what is loaded
    assert float(ds[0][0].max()) < 0  # black image: below the ImageNet means


def test_unknown_cache_value_caches_nothing(tree):
    ds = D.ClassificationDataset(tree, imgsz=16, cache="nope")
    assert ds.cache is None and not list(tree.rglob("*.npy"))


def test_folder_without_class_folders_is_named(tmp_path):
    _write(tmp_path / "flat" / "1.jpg")
    with pytest.raises(DatasetError, match="no class sub-folders in .*flat"):
        D.ClassificationDataset(tmp_path / "flat")
    with pytest.raises(DatasetError, match="not found"):
        D.ClassificationDataset(tmp_path / "missing")


def test_class_folder_without_images_is_named(tree):
    (tree / "c_empty").mkdir()
    (tree / "c_empty" / "readme.txt").write_text("x")
    with pytest.raises(DatasetError, match="c_empty"):
        D.ClassificationDataset(tree)


def test_unreadable_image_fails_with_its_path(tree):
    (tree / "a" / "z.jpg").write_bytes(b"not a jpeg")
    ds = D.ClassificationDataset(tree, imgsz=16)
    with pytest.raises(FileNotFoundError, match="z.jpg"):
        ds[0]


def test_loader_batches(cls_data):
    loader = D.create_classification_dataloader(cls_data / "val", imgsz=32, batch_size=5, augment=False, workers=0,
                                                shuffle=False)
    assert len(loader) == 3  # 12 images in batches of 5
    batches = list(loader)
    assert [tuple(x.shape) for x, _ in batches] == [(5, 3, 32, 32), (5, 3, 32, 32), (2, 3, 32, 32)]
    targets = np.concatenate([to_numpy(t) for _, t in batches])
    assert targets.dtype == np.int64 and targets.tolist() == loader.dataset.targets
    assert len(list(loader)) == 3  # the next epoch of the infinite loader is one pass again


def test_worker_processes_give_the_same_batches(cls_data):
    def epoch(workers):
        loader = D.create_classification_dataloader(cls_data / "val", imgsz=32, batch_size=4, augment=False,
                                                    workers=workers, shuffle=False, cache="ram")
        return loader.num_workers, [(to_numpy(x), to_numpy(t)) for x, t in loader]

    (n0, a), (n2, b) = epoch(0), epoch(2)
    assert (n0, n2) == (0, 2)
    assert all(np.array_equal(x, y) and np.array_equal(s, t) for (x, s), (y, t) in zip(a, b, strict=True))


def test_loader_caps_batch_and_shuffles_each_epoch(cls_data):
    loader = D.create_classification_dataloader(cls_data / "train", imgsz=32, batch_size=100, augment=False,
                                                workers=0, shuffle=True)
    assert len(loader) == 1
    first, second = (to_numpy(next(iter(loader))[1]) for _ in range(2))
    assert sorted(first.tolist()) == sorted(loader.dataset.targets)
    assert first.tolist() != second.tolist()


def test_loader_shards_under_ddp(cls_data):
    shards = [D.create_classification_dataloader(cls_data / "train", imgsz=32, batch_size=4, augment=False,
                                                 rank=r, workers=0, shuffle=False, world_size=2) for r in (0, 1)]
    seen = [np.concatenate([to_numpy(t) for _, t in s]) for s in shards]
    assert [len(s) for s in seen] == [12, 12]
    assert sorted(np.concatenate(seen).tolist()) == sorted(shards[0].dataset.targets)


# ------------------------------------------------------------------------------------------------------ --data
def test_check_folder(cls_data, class_names):
    d = D.check_classify_dataset(cls_data)
    assert d["path"] == cls_data.resolve() and d["train"] == cls_data / "train" and d["val"] == cls_data / "val"
    assert d["val_name"] == "val" and d["nc"] == 6 and d["names"] == dict(enumerate(class_names))


def test_test_split_wins_over_val(tmp_path):
    for split in ("train", "val", "test"):
        _write(tmp_path / "ds" / split / "a" / "1.jpg")
    d = D.check_classify_dataset(tmp_path / "ds")
    assert d["val"] == tmp_path / "ds" / "test" and d["val_name"] == "test"


def test_missing_splits_are_named(tmp_path):
    _write(tmp_path / "ds" / "train" / "a" / "1.jpg")
    with pytest.raises(DatasetError, match="val missing"):
        D.check_classify_dataset(tmp_path / "ds")


def test_relative_paths_and_names(tmp_path, monkeypatch, cls_data):
    monkeypatch.chdir(tmp_path)
    repo, datasets = tmp_path / "repo", tmp_path / "datasets"
    (repo / "ds").parent.mkdir()
    os.symlink(cls_data, repo / "ds")
    datasets.mkdir()
    os.symlink(cls_data, datasets / "shapes")
    assert D.check_classify_dataset("ds", root=repo, datasets_dir=datasets)["nc"] == 6  # v7.0: under the repo root
    assert D.check_classify_dataset("shapes", root=repo, datasets_dir=datasets)["nc"] == 6  # a name in datasets/


def test_class_mismatch_between_splits_warns(tmp_path, log_lines):
    _write(tmp_path / "ds" / "train" / "a" / "1.jpg")
    _write(tmp_path / "ds" / "train" / "b" / "1.jpg")
    _write(tmp_path / "ds" / "val" / "b" / "1.jpg")
    D.check_classify_dataset(tmp_path / "ds")
    assert any("do not match" in x for x in log_lines)


def test_unknown_name_and_imagenet_fail_clearly(tmp_path):
    with pytest.raises(DatasetError, match="mnist160"):  # lists what can be downloaded
        D.check_classify_dataset("no-such-set", datasets_dir=tmp_path, root=tmp_path)
    with pytest.raises(DatasetError, match="ILSVRC2012_img_train.tar"):
        D.check_classify_dataset("imagenet", datasets_dir=tmp_path, root=tmp_path)
    with pytest.raises(DatasetError):
        D.check_classify_dataset("mnist160", datasets_dir=tmp_path, root=tmp_path, autodownload=False)


def test_offline_download_fails_with_where_to_put_it(tmp_path, monkeypatch):
    calls = []

    def offline(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DownloadError) as e:
        D.check_classify_dataset("mnist160", datasets_dir=tmp_path, root=tmp_path)
    msg = str(e.value)
    assert calls == ["https://github.com/ultralytics/yolov5/releases/download/v1.0/mnist160.zip"]
    assert str(tmp_path / "mnist160") in msg and "train/<class>" in msg and "name resolution" in msg
    assert not list(tmp_path.iterdir())  # no partial .zip / .part left


def test_download_extracts_into_the_datasets_folder(tmp_path, monkeypatch):
    buf = io.BytesIO()
    ok, png = cv2.imencode(".png", np.full((8, 8, 3), 50, np.uint8))
    with zipfile.ZipFile(buf, "w") as z:
        for split in ("train", "test"):
            for c in ("0", "1"):
                z.writestr(f"mnist160/{split}/{c}/{c}.png", png.tobytes())
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(buf.getvalue()))
    d = D.check_classify_dataset("mnist160", datasets_dir=tmp_path, root=tmp_path)
    assert d["path"] == (tmp_path / "mnist160").resolve() and d["val_name"] == "test" and d["nc"] == 2
    assert not (tmp_path / "mnist160.zip").exists()
    monkeypatch.setattr(urllib.request, "urlopen", None)  # second call: found locally, no network
    assert D.check_classify_dataset("mnist160", datasets_dir=tmp_path, root=tmp_path)["nc"] == 2


def test_training_without_albumentations_uses_the_eval_transform(tree, monkeypatch):
    monkeypatch.setitem(sys.modules, "albumentations", None)
    aug, plain = D.ClassificationDataset(tree, augment=True, imgsz=16), D.ClassificationDataset(tree, imgsz=16)
    assert aug.album_transforms is None
    assert all(np.array_equal(to_numpy(aug[i][0]), to_numpy(plain[i][0])) for i in range(len(aug)))
