"""Compatibility module: ultralytics' ``utils/segment/augmentations.py`` (mixup and random_perspective with segments),
which are the detection functions in ``utils/data/augment.py`` (they carry segments already)."""

from utils.data.augment import mixup, random_perspective  # noqa: F401
