"""The data layer: label formats and cache, augmentations, datasets, loaders, inference sources, dataset YAMLs.

Names are imported lazily, so ``python -m utils.data.synthetic`` and ``check_dataset`` need no deep-learning framework.

    from utils.data import create_dataloader, LoadImages, check_dataset, letterbox
"""

from utils.lazy import lazy_exports

_EXPORTS = {
    "formats": ("IMG_FORMATS", "VID_FORMATS", "HELP_URL", "img2label_paths", "verify_image_label", "get_hash",
                "exif_size", "load_label_cache", "save_label_cache"),
    "augment": ("letterbox", "random_perspective", "box_candidates", "mixup", "augment_hsv", "copy_paste",
                "Albumentations"),
    "datasets": ("LoadImagesAndLabels", "list_image_files"),
    "build": ("create_dataloader", "InfiniteDataLoader", "seed_worker"),
    "loaders": ("LoadImages", "LoadStreams"),
    "dataset_yaml": ("check_dataset", "DATASETS_DIR", "DatasetError"),
    "synthetic": ("make_dataset",),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
