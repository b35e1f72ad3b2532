"""Compatibility module: ultralytics' ``utils/augmentations.py`` names, now in ``utils/data/augment.py`` (detection)
and ``utils/classify/transforms.py`` (classification)."""

from utils.classify.transforms import (IMAGENET_MEAN, IMAGENET_STD, classify_albumentations,  # noqa: F401
                                       classify_transforms, denormalize, normalize)
from utils.data.augment import (Albumentations, augment_hsv, bbox_ioa, box_candidates, copy_paste,  # noqa: F401
                                letterbox, mixup, random_perspective)
