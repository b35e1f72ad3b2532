"""The classification transforms: eval transform maths, albumentations decision and pipeline."""

import sys
import types

import numpy as np
import pytest

from utils.backend import from_numpy, is_tensor, to_numpy
from utils.classify import transforms as T


def _gradient(h, w):
    """A BGR image whose pixels encode their own coordinates, so a crop's position can be read back."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)


def test_center_crop_takes_the_centred_square():
    im = _gradient(30, 50)  # landscape: the square is columns 10..39
    out = T.center_crop(im, 30)
    assert out.shape == (30, 30, 3)
    assert (out == im[:, 10:40]).all()  # same size: the resize is the identity
    portrait = _gradient(41, 20)  # (41 - 20) // 2 = 10 rows cut at the top
    assert (T.center_crop(portrait, 20) == portrait[10:30]).all()
    assert T.center_crop(im, (8, 12)).shape == (8, 12, 3)


def test_eval_transform_values_of_a_constant_image():
    im = np.zeros((10, 16, 3), np.uint8)
    im[:] = (0, 128, 255)  # BGR
    x = T.classify_transforms(4)(im)
    assert is_tensor(x) and tuple(x.shape) == (3, 4, 4) and str(x.dtype).endswith("float32")
    rgb = np.array([255, 128, 0], np.float32) / 255
    want = (rgb - np.array(T.IMAGENET_MEAN)) / np.array(T.IMAGENET_STD)
    assert np.allclose(to_numpy(x)[:, 0, 0], want, atol=1e-6)
    assert np.allclose(to_numpy(x), want[:, None, None], atol=1e-6)


def test_eval_transform_is_crop_then_channel_flip_then_normalise():
    rng = np.random.default_rng(0)
    im = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    x = to_numpy(T.ClassifyTransforms(24)(im))
    manual = T.center_crop(im, 24)[..., ::-1].transpose(2, 0, 1) / 255.0
    manual = (manual - np.array(T.IMAGENET_MEAN)[:, None, None]) / np.array(T.IMAGENET_STD)[:, None, None]
    assert np.abs(x - manual).max() < 1e-6


def test_size_must_be_an_int():
    with pytest.raises(TypeError, match="int"):
        T.classify_transforms((32, 32))


def test_denormalize_inverts_normalize():
    x = np.random.default_rng(1).random((2, 3, 5, 5)).astype(np.float32)
    n = np.stack([T.normalize(a) for a in x])
    assert np.abs(to_numpy(T.denormalize(from_numpy(n))) - x).max() < 1e-6
    assert np.abs(to_numpy(T.denormalize(from_numpy(n[0]))) - x[0]).max() < 1e-6


def test_no_albumentations_means_no_augmentation(monkeypatch, log_lines):
    monkeypatch.setitem(sys.modules, "albumentations", None)  # import fails as if not installed
    assert T.classify_albumentations(True, 32) is None
    assert any("not found" in x for x in log_lines)


def _fake_albumentations(version, with_size):
    """A stand-in albumentations module recording how RandomResizedCrop was built."""
    A = types.ModuleType("albumentations")
    A.__version__ = version

    class Op:
        p = 1.0

        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    if with_size:
        class RandomResizedCrop(Op):
            def __init__(self, size, scale=(0.08, 1.0), ratio=(0.75, 1.33), p=1.0):
                super().__init__(size=size, scale=scale, ratio=ratio)
    else:
        class RandomResizedCrop(Op):
            def __init__(self, height, width, scale=(0.08, 1.0), ratio=(0.75, 1.33), p=1.0):
                super().__init__(height=height, width=width, scale=scale, ratio=ratio)

    A.RandomResizedCrop = RandomResizedCrop
    for name in ("HorizontalFlip", "VerticalFlip", "ColorJitter", "Normalize", "SmallestMaxSize", "CenterCrop"):
        setattr(A, name, type(name, (Op,), {}))
    A.Compose = lambda ops: ops
    return A


@pytest.mark.parametrize("version,with_size,key", [("1.3.1", False, "height"), ("2.0.8", True, "size")])
def test_random_resized_crop_in_the_installed_signature(monkeypatch, version, with_size, key):
    monkeypatch.setitem(sys.modules, "albumentations", _fake_albumentations(version, with_size))
    t = T.classify_albumentations(True, 32)
    crop, flip, jitter, norm = t.compose
    assert key in crop.kwargs and crop.kwargs["scale"] == (0.08, 1.0) and crop.kwargs["ratio"] == (0.75, 1 / 0.75)
    assert type(flip).__name__ == "HorizontalFlip" and flip.kwargs == {"p": 0.5}
    assert type(jitter).__name__ == "ColorJitter" and jitter.args == (0.4, 0.4, 0.4, 0)
    assert type(norm).__name__ == "Normalize" and norm.kwargs == {"mean": T.IMAGENET_MEAN, "std": T.IMAGENET_STD}
    assert [type(x).__name__ for x in T.classify_albumentations(True, 32, hflip=0, jitter=0).compose] == \
        ["RandomResizedCrop", "Normalize"]
    assert [type(x).__name__ for x in T.classify_albumentations(False, 32).compose] == \
        ["SmallestMaxSize", "CenterCrop", "Normalize"]


def test_albumentations_older_than_1_0_3_is_not_used(monkeypatch):
    monkeypatch.setitem(sys.modules, "albumentations", _fake_albumentations("1.0.2", False))
    assert T.classify_albumentations(True, 32) is None


def test_real_albumentations_pipeline():
    pytest.importorskip("albumentations")
    rng = np.random.default_rng(0)
    im = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    t = T.classify_albumentations(True, 32)
    x = t(im)
    assert is_tensor(x) and tuple(x.shape) == (3, 32, 32)
    # a full-image crop, no flip and no jitter is a plain resize: the eval transform's numbers (up to rounding)
    fixed = T.classify_albumentations(True, 32, scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=0, jitter=0)
    assert np.abs(to_numpy(fixed(im)) - to_numpy(T.classify_transforms(32)(im))).max() < 1e-4
