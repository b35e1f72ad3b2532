"""The batch: what a loader's collate function makes and the engine hands on, unchanged in kind, to the loss.

A batch is a small typed record, one per kind of dataset, so every stage reads named fields (``batch.img``,
``batch.targets``, ``batch.masks``) instead of positions in a tuple or keys that later stages add to a dict:

    Batch           (img, targets)                         classification: targets are class indices (b,)
    DetectionBatch  (img, targets, paths, shapes)          detection: targets (n, 6) [image, class, x, y, w, h]
    MaskBatch       (img, targets, paths, shapes, masks)   segmentation: plus the masks of utils/segment/dataset.py

They are named tuples: iterating or indexing gives the fields in that order, so code written against ultralytics'
loaders (``for imgs, targets, paths, _ in loader``) keeps working, and the data loader's worker processes and
pin_memory handle them as they handle tuples. A stage that changes a field makes a new record with ``_replace``
(``batch._replace(img=batch.img.float() / 255)``) instead of adding keys to a shared container.
"""

from typing import Any, NamedTuple, Union


class Batch(NamedTuple):
    """A classification batch."""

    img: Any  # (b, 3, h, w) images: as the loader gives them, then float 0-1 on the device after pre-processing
    targets: Any  # (b,) int64 class indices


class DetectionBatch(NamedTuple):
    """A detection batch."""

    img: Any  # (b, 3, h, w) uint8 RGB from the loader, float 0-1 on the device after pre-processing
    targets: Any  # (n, 6) float32 [image index in the batch, class, x, y, w, h], box centre and size normalised
    paths: tuple  # the b image files
    shapes: tuple  # per image ((h0, w0), ((h / h0, w / w0), (pad_w, pad_h))) to map boxes back, or None (mosaic)


class MaskBatch(NamedTuple):
    """A segmentation batch: a detection batch plus its ground-truth masks."""

    img: Any
    targets: Any
    paths: tuple
    shapes: tuple
    masks: Any  # (b, h, w) index images (overlap) or (n, h, w) 0/1 masks in target order (--no-overlap)


AnyBatch = Union[Batch, DetectionBatch, MaskBatch]  # what the engine's base-class hooks pass (utils/engine/)
Tensor = Any  # a tensor of the active backend (oneflow.Tensor or torch.Tensor): utils/backend picks the framework
