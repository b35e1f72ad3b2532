"""Compatibility module: the ultralytics names of ``utils/dataloaders.py``, now living in ``utils/data/``."""

from utils.data.build import InfiniteDataLoader, create_dataloader, seed_worker  # noqa: F401
from utils.data.datasets import LoadImagesAndLabels  # noqa: F401
from utils.data.formats import (HELP_URL, IMG_FORMATS, VID_FORMATS, exif_size, get_hash,  # noqa: F401
                                img2label_paths, verify_image_label)
from utils.data.loaders import LoadImages, LoadStreams  # noqa: F401
