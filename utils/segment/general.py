"""Compatibility module: ultralytics' ``utils/segment/general.py`` mask helpers, now in ``utils/segment/masks.py``."""

from utils.segment.masks import (crop_mask, mask_iou, masks2segments, process_mask, process_mask_native,  # noqa: F401
                                 process_mask_upsample, scale_image)
