"""The data layer: label formats and cache, augmentations, datasets, loaders, inference sources, dataset YAMLs.

Names are imported lazily, so ``python -m utils.data.synthetic`` and ``check_dataset`` need no deep-learning framework.

    from utils.data import create_dataloader, LoadImages, check_dataset, letterbox
"""

import importlib

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
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module 'utils.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"utils.data.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
