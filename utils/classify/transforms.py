"""Image transforms of the classification task: the eval transform and the optional albumentations training one.

ultralytics v7.0 decides the transforms of a classification sample like this:
  - eval (and every sample when albumentations is missing): crop the centred square of side min(h, w), resize it to
    ``size`` x ``size`` (bilinear), BGR HWC uint8 -> RGB CHW float in [0, 1], then ImageNet mean/std normalisation.
  - training (``augment=True``) with albumentations >= 1.0.3 importable: RandomResizedCrop(size, scale 0.08-1,
    ratio 3/4-4/3), HorizontalFlip(0.5), ColorJitter(0.4, 0.4, 0.4, hue 0), Normalize(ImageNet), to CHW, on the RGB
    image. Without albumentations (the default install: it is an optional requirement) training samples get the eval
    transform: no augmentation at all.
One deliberate difference: ultralytics v7.0 builds RandomResizedCrop with ``height=, width=``, which albumentations 2.x
rejects, so there it also falls back to no augmentation; we pass the size in the form the installed version takes.

Everything is numpy/OpenCV until the last step, where the array becomes a tensor of the active backend.
"""

import inspect

import cv2
import numpy as np

from utils.backend import from_numpy, torch
from utils.log import LOGGER, colorstr

IMAGENET_MEAN = 0.485, 0.456, 0.406  # RGB
IMAGENET_STD = 0.229, 0.224, 0.225  # RGB
_ALBUMENTATIONS_MIN = (1, 0, 3)


def center_crop(im, size):
    """Centred square crop of side min(h, w), resized to ``size`` (int or (h, w)) with bilinear interpolation.

    Args:
        im: HWC uint8 image.
        size: output side, or (height, width).
    Returns:
        the resized HWC image (same dtype).
    """
    h, w = (size, size) if isinstance(size, int) else size
    imh, imw = im.shape[:2]
    m = min(imh, imw)
    top, left = (imh - m) // 2, (imw - m) // 2
    return cv2.resize(im[top:top + m, left:left + m], (w, h), interpolation=cv2.INTER_LINEAR)


def to_chw_rgb(im):
    """HWC BGR uint8 -> CHW RGB float32 in [0, 1] (numpy)."""
    x = np.ascontiguousarray(im.transpose(2, 0, 1)[::-1]).astype(np.float32)
    x /= np.float32(255.0)
    return x


def normalize(x, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """(x - mean) / std per channel of a CHW float32 array, in float32 (as torchvision's Normalize)."""
    mean = np.asarray(mean, dtype=np.float32)[:, None, None]
    std = np.asarray(std, dtype=np.float32)[:, None, None]
    return (x - mean) / std


def denormalize(x, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Undo normalize() on a (b, 3, h, w) or (3, h, w) tensor, e.g. to show a batch (returns a new tensor)."""
    shape = (3, 1, 1) if x.ndim == 3 else (1, 3, 1, 1)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).reshape(shape)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).reshape(shape)
    return x * s + m


class ClassifyTransforms:
    """The eval transform: HWC BGR uint8 image -> normalised CHW RGB float32 tensor of ``size`` x ``size``.

    Args:
        size: output side in pixels (an int, as ultralytics requires).
        mean, std: per-channel RGB normalisation.
    """

    def __init__(self, size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError(f"classify transforms size must be an int, not {size!r}")
        self.size, self.mean, self.std = size, tuple(mean), tuple(std)

    def numpy(self, im):
        """The transform as a numpy CHW float32 array (what __call__ turns into a tensor)."""
        return normalize(to_chw_rgb(center_crop(im, self.size)), self.mean, self.std)

    def __call__(self, im):
        return from_numpy(self.numpy(im))

    def __repr__(self):
        return f"ClassifyTransforms(size={self.size}, mean={self.mean}, std={self.std})"


def classify_transforms(size=224):
    """The eval transform of ``size`` pixels (CenterCrop, ToTensor, Normalize), as a callable on BGR images."""
    return ClassifyTransforms(size)


def _import_albumentations():
    """albumentations when importable and >= 1.0.3, else None (why is logged: it changes what training does)."""
    prefix = colorstr("albumentations: ")
    try:
        import albumentations  # noqa: PLC0415 (optional requirement: imported only when training asks for it)
    except ImportError:
        LOGGER.warning(f"{prefix}WARNING ⚠️ not found, install with `pip install albumentations` (recommended); "
                       f"training images are not augmented")
        return None
    version = tuple(int(p) for p in albumentations.__version__.split(".")[:3] if p.isdigit())
    if version < _ALBUMENTATIONS_MIN:
        LOGGER.info(f"{prefix}version {albumentations.__version__} is older than 1.0.3, not used: "
                    f"training images are not augmented")
        return None
    return albumentations


def _random_resized_crop(A, size, scale, ratio):
    """RandomResizedCrop in the signature the installed albumentations takes (``size=`` since 1.4, else h/w)."""
    if "size" in inspect.signature(A.RandomResizedCrop.__init__).parameters:
        return A.RandomResizedCrop(size=(size, size), scale=scale, ratio=ratio)
    return A.RandomResizedCrop(height=size, width=size, scale=scale, ratio=ratio)


class AlbumentationsTransform:
    """An albumentations pipeline ending in Normalize, applied to a BGR image; returns a CHW float32 tensor."""

    def __init__(self, compose):
        self.compose = compose

    def __call__(self, im):
        x = self.compose(image=cv2.cvtColor(im, cv2.COLOR_BGR2RGB))["image"]  # HWC float32, normalised
        return from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))

    def __repr__(self):
        return f"AlbumentationsTransform({self.compose})"


def classify_albumentations(augment=True, size=224, scale=(0.08, 1.0), ratio=(0.75, 1.0 / 0.75), hflip=0.5,
                            vflip=0.0, jitter=0.4, mean=IMAGENET_MEAN, std=IMAGENET_STD, auto_aug=False):
    """The albumentations transform of ultralytics' classification training, or None without albumentations.

    Args:
        augment: random crop/flips/colour jitter (training); False: resize the short side and centre-crop.
        size: output side. scale, ratio: RandomResizedCrop area fraction and aspect ratio ranges.
        hflip, vflip: flip probabilities. jitter: brightness/contrast/saturation jitter (hue 0); 0 disables.
        mean, std: RGB normalisation. auto_aug: not supported (logged, as ultralytics).
    Returns:
        AlbumentationsTransform (BGR image -> CHW float32 tensor), or None when albumentations is absent or too old:
        the caller then uses classify_transforms (no augmentation), as ultralytics does.
    """
    A = _import_albumentations()
    if A is None:
        return None
    if augment:
        T = [_random_resized_crop(A, size, scale, ratio)]
        if auto_aug:
            LOGGER.info(f"{colorstr('albumentations: ')}auto augmentations are currently not supported")
        else:
            T += [A.HorizontalFlip(p=hflip)] if hflip > 0 else []
            T += [A.VerticalFlip(p=vflip)] if vflip > 0 else []
            T += [A.ColorJitter(*(float(jitter),) * 3, 0)] if jitter > 0 else []
    else:  # a fixed crop keeps evaluation reproducible
        T = [A.SmallestMaxSize(max_size=size), A.CenterCrop(height=size, width=size)]
    T += [A.Normalize(mean=mean, std=std)]
    LOGGER.info(colorstr("albumentations: ") + ", ".join(f"{x}".replace("always_apply=False, ", "") for x in T if x.p))
    return AlbumentationsTransform(A.Compose(T))
