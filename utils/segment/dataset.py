"""The segmentation dataset and loader: LoadImagesAndLabels whose items also carry ground-truth instance masks.

Polygon labels (``cls x1 y1 x2 y2 ...``, normalised) come from the same labels cache as detection. Augmentations move
the polygons with the pixels (mosaic, copy-paste, perspective, mixup), and each item's polygons are then rasterised at
1/downsample_ratio of the image (--mask-ratio):
  - overlap (the default): one index image per picture, pixel value k marking instance k; the image's labels are
    reordered by decreasing mask area so that k is the 1-based position of that instance among the image's labels;
  - --no-overlap: one 0/1 mask per instance, in label order.
Flips move the masks with the image. As ultralytics, the segmentation mosaic keeps the indexed image top-left (the
detection mosaic shuffles the 4 positions).
"""

import random

import numpy as np

from utils.backend import from_numpy, torch
from utils.boxes import xyxy2xywhn
from utils.data.batch import MaskBatch
from utils.data.augment import copy_paste, mixup, random_perspective
from utils.data.datasets import LoadImagesAndLabels
from utils.errors import FlagError
from utils.log import LOGGER
from utils.segment.masks import polygons2masks, polygons2masks_overlap


class LoadImagesAndLabelsAndMasks(LoadImagesAndLabels):
    """Detection dataset plus masks; items are (image, labels (n, 6), path, shapes, masks).

    Args (besides LoadImagesAndLabels'):
        downsample_ratio: masks are (h // r, w // r) for an (h, w) image (--mask-ratio, 4 in training).
        overlap: one index image (1, h // r, w // r) per item (default of training) instead of (n, h // r, w // r).
    Masks are uint8 (int32 in an overlap image of more than 255 instances).
    """

    def __init__(self, path, img_size=640, batch_size=16, augment=False, hyp=None, rect=False, image_weights=False,
                 cache_images=False, single_cls=False, stride=32, pad=0.0, min_items=0, prefix="", workers=8,
                 downsample_ratio=1, overlap=False, rank=-1):
        super().__init__(path, img_size, batch_size, augment, hyp, rect, image_weights, cache_images, single_cls,
                         stride, pad, min_items, prefix, workers, rank)
        if int(downsample_ratio) < 1:
            raise FlagError(f"downsample_ratio (--mask-ratio) must be an integer >= 1, not {downsample_ratio}")
        self.downsample_ratio = int(downsample_ratio)
        self.overlap = overlap
        self._boxes_as_polygons()

    def _boxes_as_polygons(self):
        """Give box-only label files a rectangle polygon per box, so every label has a mask.

        Ultralytics has no answer for them: overlap mode silently drops their labels, and a mosaic mixing them with
        polygon images pairs boxes with the wrong polygons or fails.
        """
        fixed = [i for i, (lb, seg) in enumerate(zip(self.labels, self.segments)) if len(lb) and not len(seg)]
        for i in fixed:
            xc, yc, w, h = self.labels[i][:, 1:5].T
            x1, y1, x2, y2 = xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2
            corners = np.stack((x1, y1, x2, y1, x2, y2, x1, y2), 1).reshape(-1, 4, 2)
            self.segments[i] = list(corners.astype(np.float32))
        if fixed:
            LOGGER.warning(f"{self.prefix}WARNING ⚠️ {len(fixed)} image(s) have box labels but no polygons, e.g. "
                           f"{self.label_files[fixed[0]]}: their boxes are used as rectangular masks")

    # -------------------------------------------------------------------------------------------------- loading
    def load_mosaic(self, index):
        """4-image mosaic with copy-paste and perspective, polygons warped along.

        Returns:
            (image, labels (n, 5) [cls, x1, y1, x2, y2] pixels, n pixel polygons).
        """
        img4, labels4, segments4 = self._mosaic_canvas(index, shuffle=False)
        img4, labels4, segments4 = copy_paste(img4, labels4, segments4, p=self.hyp["copy_paste"])
        return random_perspective(img4, labels4, segments4, **self._perspective_args(), border=self.mosaic_border,
                                  return_segments=True)

    def _load_letterboxed_segments(self, index):
        """Letterboxed image, its labels and polygons (perspective-warped when augmenting), and shapes."""
        img, labels, segments, shapes = self._letterbox_item(index, with_segments=True)
        if self.augment:
            img, labels, segments = random_perspective(img, labels, segments, **self._perspective_args(),
                                                       return_segments=True)
        return img, labels, segments, shapes

    def _masks(self, img_hw, labels, segments):
        """Rasterise the item's polygons; labels are reordered to the overlap order. Returns (labels, masks)."""
        h, w = img_hw[0] // self.downsample_ratio, img_hw[1] // self.downsample_ratio
        if not len(labels):
            return labels, np.zeros((1 if self.overlap else 0, h, w), np.uint8)
        if self.overlap:
            index, order = polygons2masks_overlap(img_hw, segments, downsample_ratio=self.downsample_ratio)
            return labels[order], index[None]
        return labels, polygons2masks(img_hw, segments, color=1, downsample_ratio=self.downsample_ratio)

    def __getitem__(self, index):
        index = self.indices[index]
        hyp = self.hyp
        if self.mosaic and random.random() < hyp["mosaic"]:
            img, labels, segments = self.load_mosaic(index)
            shapes = None
            if random.random() < hyp["mixup"]:
                img2, labels2, segments2 = self.load_mosaic(random.randint(0, self.n - 1))
                img, labels = mixup(img, labels, img2, labels2)
                segments = list(segments) + list(segments2)
        else:
            img, labels, segments, shapes = self._load_letterboxed_segments(index)
        labels = np.asarray(labels, np.float32).reshape(-1, 5)
        if len(labels):
            labels[:, 1:5] = xyxy2xywhn(labels[:, 1:5], w=img.shape[1], h=img.shape[0], clip=True, eps=1e-3)
        labels, masks = self._masks(img.shape[:2], labels, segments)
        if self.augment:
            img, labels, masks = self._augment_pixels(img, labels, masks)
        out = np.zeros((len(labels), 6), np.float32)
        out[:, 1:] = labels
        img = np.ascontiguousarray(img.transpose((2, 0, 1))[::-1])  # HWC BGR -> CHW RGB
        return from_numpy(img), from_numpy(out), self.im_files[index], shapes, from_numpy(masks)

    # -------------------------------------------------------------------------------------------------- collate
    @staticmethod
    def collate_fn(batch):
        """Stack images, concatenate labels (column 0 = image index) and masks along the first axis.

        Masks come out (B, h, w) index images with overlap, else (N, h, w), one per label row in order.
        """
        im, label, path, shapes, masks = zip(*batch)
        for i, lb in enumerate(label):
            lb[:, 0] = i
        wide = any(m.dtype != torch.uint8 for m in masks)  # an index image of > 255 instances is int32
        masks = [m.to(torch.int32) for m in masks] if wide else list(masks)
        return MaskBatch(torch.stack(im, 0), torch.cat(label, 0), path, shapes, torch.cat(masks, 0))

    @staticmethod
    def collate_fn4(batch):
        """--quad is not available for segmentation (see mask_loader_args)."""
        raise NotImplementedError(QUAD_REFUSED)


QUAD_REFUSED = "--quad is not supported for segmentation (ultralytics v7.0's segment loader fails on it too)"


def mask_loader_args(mask_ratio=4, overlap=True, quad=False):
    """The create_dataloader() arguments that make a loader of the mask dataset (utils.data.build).

    Args:
        mask_ratio: masks at 1/mask_ratio of the image (--mask-ratio). overlap: one index image per picture (not
            --no-overlap). quad: --quad, which is refused here, before any dataset is read.
    Raises:
        FlagError: ``quad``.
    """
    if quad:
        raise FlagError(QUAD_REFUSED)
    return {"dataset_cls": LoadImagesAndLabelsAndMasks,
            "dataset_kwargs": {"downsample_ratio": mask_ratio, "overlap": overlap}}
