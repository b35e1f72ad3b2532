"""Compatibility module: ultralytics' ``utils/segment/dataloaders.py`` names (dataset with masks, polygon rasterising,
its create_dataloader), now in ``utils/segment/dataset.py``, ``utils/segment/masks.py`` and ``utils/compat.py``."""

from utils.compat import create_segment_dataloader as create_dataloader  # noqa: F401
from utils.segment.dataset import LoadImagesAndLabelsAndMasks  # noqa: F401
from utils.segment.masks import polygon2mask, polygons2masks, polygons2masks_overlap  # noqa: F401
