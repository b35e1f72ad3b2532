"""ultralytics YOLOv5 v7.0's own helpers that this project does not use itself, for scripts and notebooks written
against ultralytics (``from utils.general import ...``, ``from utils.segment.dataloaders import create_dataloader``).

This module sits at the top of the layers: it may import anything in the library, and nothing in the library imports
it. The ultralytics module paths (``utils/general.py``, ``utils/dataloaders.py``, ``utils/segment/*.py`` ...) are
shims that re-export from here and from the modules where the project's own code lives.
"""

from utils.data.build import create_dataloader as _create_dataloader
from utils.segment.dataset import mask_loader_args


def create_segment_dataloader(path, imgsz, batch_size, stride, single_cls=False, hyp=None, augment=False, cache=False,
                              pad=0.0, rect=False, rank=-1, workers=8, image_weights=False, quad=False, prefix="",
                              shuffle=False, mask_downsample_ratio=1, overlap_mask=False, seed=0, world_size=None):
    """ultralytics' ``utils.segment.dataloaders.create_dataloader``: utils.data.build.create_dataloader on the mask
    dataset (LoadImagesAndLabelsAndMasks), with ultralytics' argument names.

    Args:
        mask_downsample_ratio: --mask-ratio. overlap_mask: not --no-overlap. Others: see utils.data.build.
    Returns:
        (loader, dataset); batches carry images, targets, paths, shapes and masks.
    Raises:
        FlagError: ``quad`` (not supported for segmentation).
    """
    extra = mask_loader_args(mask_downsample_ratio, overlap_mask, quad=quad)
    return _create_dataloader(path, imgsz, batch_size, stride, single_cls=single_cls, hyp=hyp, augment=augment,
                              cache=cache, pad=pad, rect=rect, rank=rank, workers=workers, image_weights=image_weights,
                              prefix=prefix, shuffle=shuffle, seed=seed, world_size=world_size, **extra)
