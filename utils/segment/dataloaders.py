"""Compatibility module: ultralytics' ``utils/segment/dataloaders.py`` names (dataset with masks, polygon rasterising),
now in ``utils/segment/dataset.py`` and ``utils/segment/masks.py``."""

from utils.segment.dataset import LoadImagesAndLabelsAndMasks, create_dataloader  # noqa: F401
from utils.segment.masks import polygon2mask, polygons2masks, polygons2masks_overlap  # noqa: F401
