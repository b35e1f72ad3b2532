"""Compatibility module: ultralytics' ``utils/augmentations.py`` names, now in ``utils/data/augment.py``."""

from utils.data.augment import (Albumentations, augment_hsv, bbox_ioa, box_candidates, copy_paste,  # noqa: F401
                                letterbox, mixup, random_perspective)
