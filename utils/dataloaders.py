"""Compatibility module: the ultralytics names of ``utils/dataloaders.py``, now living in ``utils/data/`` (and
``utils/classify/dataset.py`` for the classification loader; its environment globals in ``utils/compat.py``)."""

from PIL.ImageOps import exif_transpose  # noqa: F401 (ultralytics' helper of that name does what PIL's does)

from utils.classify.dataset import ClassificationDataset, create_classification_dataloader  # noqa: F401
from utils.compat import LOCAL_RANK, RANK  # noqa: F401 (ultralytics' environment globals)
from utils.data.augment import letterbox  # noqa: F401 (ultralytics' dataloaders module imports it too)
from utils.data.build import PIN_MEMORY, InfiniteDataLoader, create_dataloader, seed_worker  # noqa: F401
from utils.data.datasets import NUM_THREADS, LoadImagesAndLabels  # noqa: F401
from utils.data.formats import (HELP_URL, IMG_FORMATS, VID_FORMATS, exif_size, get_hash,  # noqa: F401
                                img2label_paths, verify_image_label)
from utils.data.loaders import LoadImages, LoadStreams  # noqa: F401
from utils.data.zoo import autosplit  # noqa: F401
