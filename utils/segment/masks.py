"""Instance-mask maths of YOLOv5 segmentation: prototype masks to instance masks, masks to polygons and back, mask IoU.

The Segment head predicts, per detection, nm coefficients; an image's masks are sigmoid(coefficients @ prototypes),
with the prototypes (nm, mh, mw) at 1/4 of the input resolution. What follows turns those into binary masks at the
resolution a caller needs (training loss, validation IoU, drawing, COCO JSON), and rasterises polygon labels into the
ground-truth masks the loss and the metrics compare with. Box and polygon coordinate maths stays in utils/boxes.py.

Conventions: mask tensors are (n, h, w) float 0/1 (as ultralytics, so they multiply and sum directly); xyxy boxes are
in the pixel units of the mask they crop; ``shape`` arguments are (height, width).
"""

import cv2
import numpy as np

from utils.backend import F, is_tensor, to_numpy, torch
from utils.boxes import letterbox_gain_pad

_CV2_MAX_CHANNELS = 512  # cv2.resize refuses images with more channels than this


# ------------------------------------------------------------------------------------------------ prototypes -> masks
def crop_mask(masks, boxes):
    """Zero each mask outside its box.

    Args:
        masks: (n, h, w) tensor.
        boxes: (n, 4) xyxy tensor in mask pixels; pixel column i is kept when x1 <= i < x2 (rows likewise).
    Returns:
        (n, h, w) tensor of masks' dtype.
    """
    n, h, w = masks.shape
    x1, y1, x2, y2 = (boxes[:, k].reshape(n, 1, 1) for k in range(4))
    cols = torch.arange(w, device=masks.device, dtype=boxes.dtype).reshape(1, 1, w)
    rows = torch.arange(h, device=masks.device, dtype=boxes.dtype).reshape(1, h, 1)
    inside = (cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2)
    return masks * inside.to(masks.dtype)


def proto_masks(protos, coefficients):
    """Soft masks sigmoid(coefficients @ protos): protos (nm, mh, mw), coefficients (n, nm) -> (n, mh, mw) float."""
    nm, mh, mw = protos.shape
    return (coefficients.float() @ protos.float().reshape(nm, -1)).sigmoid().reshape(-1, mh, mw)


def _resize(masks, shape):
    """Bilinear resize (align_corners=False) of (n, h, w) masks to ``shape`` (h, w)."""
    shape = (int(shape[0]), int(shape[1]))
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *shape))
    return F.interpolate(masks[None], shape, mode="bilinear", align_corners=False)[0]


def _binary(masks):
    return (masks > 0.5).float()


def process_mask(protos, masks_in, bboxes, shape, upsample=False):
    """Binary masks cropped at prototype resolution (fast; what validation uses without --save-json).

    Args:
        protos: (nm, mh, mw) prototypes of one image. masks_in: (n, nm) coefficients of its detections.
        bboxes: (n, 4) xyxy boxes in input-image pixels. shape: (h, w) of the network input.
        upsample: resize the cropped soft masks bilinearly to ``shape`` before thresholding.
    Returns:
        (n, mh, mw), or (n, h, w) with ``upsample``: float 0/1, 1 where the soft mask is above 0.5.
    """
    _, mh, mw = protos.shape
    ih, iw = shape[0], shape[1]
    masks = proto_masks(protos, masks_in)
    scale = torch.tensor([mw / iw, mh / ih, mw / iw, mh / ih], device=bboxes.device, dtype=bboxes.dtype)
    masks = crop_mask(masks, bboxes * scale)
    if upsample:
        masks = _resize(masks, shape)
    return _binary(masks)


def process_mask_upsample(protos, masks_in, bboxes, shape):
    """Binary masks resized to the input ``shape`` first, then cropped by ``bboxes`` (input pixels): more exact edges.

    Returns:
        (n, h, w) float 0/1.
    """
    masks = _resize(proto_masks(protos, masks_in), shape)
    return _binary(crop_mask(masks, bboxes))


def process_mask_native(protos, masks_in, bboxes, shape):
    """Binary masks in another image's frame (--retina-masks): the letterbox padding is cut from the prototypes, which
    are then resized to ``shape`` and cropped by ``bboxes`` given in that frame's pixels.

    Args:
        shape: (h, w) of the target frame, e.g. the original image (with bboxes scaled to it by scale_boxes).
    Returns:
        (n, h, w) float 0/1.
    """
    _, mh, mw = protos.shape
    _, (pad_w, pad_h) = letterbox_gain_pad((mh, mw), shape[:2])
    top, left = int(pad_h), int(pad_w)
    bottom, right = int(mh - pad_h), int(mw - pad_w)
    masks = proto_masks(protos, masks_in)[:, top:bottom, left:right]
    return _binary(crop_mask(_resize(masks, shape[:2]), bboxes))


def scale_image(im1_shape, masks, im0_shape, ratio_pad=None):
    """Masks of a letterboxed input mapped back to the original image: the padding is cut, the rest resized.

    Args:
        im1_shape: (h, w) of the network input. masks: (h, w) or (h, w, n) numpy array (uint8 or float).
        im0_shape: (h0, w0, ...) of the original image. ratio_pad: the loader's ((gain_h, gain_w), (pad_w, pad_h));
            only its padding is used (as ultralytics), else the letterbox is recomputed from the two shapes.
    Returns:
        (h0, w0, n) numpy array (bilinear, cv2.resize).
    """
    if masks.ndim < 2:
        raise ValueError(f"scale_image: masks must be (h, w) or (h, w, n), got shape {masks.shape}")
    _, (pad_w, pad_h) = letterbox_gain_pad(im1_shape, im0_shape, ratio_pad)
    top, left = int(pad_h), int(pad_w)
    bottom, right = int(im1_shape[0] - pad_h), int(im1_shape[1] - pad_w)
    masks = masks[top:bottom, left:right]
    size = (int(im0_shape[1]), int(im0_shape[0]))
    if masks.ndim == 2:
        return cv2.resize(masks, size)[:, :, None]
    if masks.shape[2] == 0:
        return np.zeros((size[1], size[0], 0), masks.dtype)
    # cv2 handles at most 512 channels at once (ultralytics fails beyond that, e.g. predict with --max-det 1000)
    parts = [cv2.resize(np.ascontiguousarray(masks[:, :, i:i + _CV2_MAX_CHANNELS]), size)
             for i in range(0, masks.shape[2], _CV2_MAX_CHANNELS)]
    return np.concatenate([p.reshape(size[1], size[0], -1) for p in parts], 2)


# ----------------------------------------------------------------------------------------------- masks <-> polygons
def masks2segments(masks, strategy="largest"):
    """Outer contours of binary masks as pixel polygons (what predict --save-txt writes).

    Args:
        masks: (n, h, w) tensor or numpy array, nonzero inside.
        strategy: 'largest' keeps the contour with the most points; 'concat' joins all contours' points.
    Returns:
        list of n float32 arrays (k, 2) of (x, y); (0, 2) for an empty mask.
    """
    if strategy not in ("largest", "concat"):
        raise ValueError(f"masks2segments strategy must be 'largest' or 'concat', not {strategy!r}")
    segments = []
    for m in np.asarray(to_numpy(masks)).astype(np.int32).astype(np.uint8):
        contours = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
        if not contours:
            c = np.zeros((0, 2))
        elif strategy == "concat":
            c = np.concatenate([x.reshape(-1, 2) for x in contours])
        else:  # most points, not largest area: ultralytics' choice
            c = contours[int(np.argmax([len(x) for x in contours]))].reshape(-1, 2)
        segments.append(c.astype(np.float32))
    return segments


def polygon2mask(img_size, polygons, color=1, downsample_ratio=1):
    """Rasterise polygons into one uint8 mask, drawn at full size and then resized by 1/downsample_ratio.

    Drawing first and resizing after keeps the mask the loss sees at --mask-ratio 1 consistent with the others.

    Args:
        img_size: (h, w) of the image the pixel polygons live in.
        polygons: sequence of flat [x1, y1, x2, y2, ...] pixel polygons (coordinates truncated to int).
        color: fill value. downsample_ratio: integer r; the mask is (h // r, w // r) (cv2 bilinear).
    """
    h, w = int(img_size[0]), int(img_size[1])
    mask = np.zeros((h, w), dtype=np.uint8)
    pts = np.asarray(polygons).astype(np.int32)
    cv2.fillPoly(mask, pts.reshape(pts.shape[0], -1, 2), color=color)
    out = (w // downsample_ratio, h // downsample_ratio)
    return mask if out == (w, h) else cv2.resize(mask, out)


def polygons2masks(img_size, polygons, color=1, downsample_ratio=1):
    """One mask per polygon (--no-overlap): (n, h // r, w // r) uint8."""
    h, w = int(img_size[0]) // downsample_ratio, int(img_size[1]) // downsample_ratio
    masks = [polygon2mask(img_size, [np.asarray(p).reshape(-1)], color, downsample_ratio) for p in polygons]
    return np.stack(masks) if masks else np.zeros((0, h, w), np.uint8)


def polygons2masks_overlap(img_size, segments, downsample_ratio=1):
    """All of an image's polygons in one index image (the default, overlap masks).

    Instances are drawn largest area first, so a smaller instance on top of a larger one stays visible; pixel value k
    (1-based) marks instance k of the returned order, 0 is background. Equal areas keep their input order (a stable
    sort): ultralytics' np.argsort(-areas) leaves ties to the NumPy version's sorting algorithm (1.26 and 2.x differ)
    and, negating unsigned areas, puts empty masks first; we put them last. Only the order of ties and of empty masks
    can differ from ultralytics.

    Returns:
        (index image (h // r, w // r), uint8, or int32 above 255 instances; order: indices of ``segments`` sorted by
        decreasing mask area, which the caller applies to its labels).
    """
    h, w = int(img_size[0]) // downsample_ratio, int(img_size[1]) // downsample_ratio
    index = np.zeros((h, w), dtype=np.int32 if len(segments) > 255 else np.uint8)
    masks = polygons2masks(img_size, segments, 1, downsample_ratio)
    order = np.argsort(-masks.reshape(len(masks), -1).sum(1, dtype=np.int64), kind="stable")
    for k, i in enumerate(order):
        index[masks[i] > 0] = k + 1  # later (smaller) instances overwrite earlier ones
    return index, order


def split_overlap_mask(index_image, n):
    """Index image (h, w) or (1, h, w) with values 1..n -> (n, h, w) float 0/1 masks (tensor or numpy as given)."""
    if is_tensor(index_image):
        ids = torch.arange(1, n + 1, device=index_image.device).reshape(n, 1, 1)
        return (index_image.reshape(1, *index_image.shape[-2:]) == ids.to(index_image.dtype)).float()
    ids = np.arange(1, n + 1).reshape(n, 1, 1)
    return (np.asarray(index_image).reshape(1, *index_image.shape[-2:]) == ids).astype(np.float32)


# ------------------------------------------------------------------------------------------------------------- IoU
def mask_iou(mask1, mask2, eps=1e-7):
    """IoU matrix (N, M) of flattened binary masks mask1 (N, h*w) and mask2 (M, h*w); tensors or numpy arrays."""
    if is_tensor(mask1):
        inter = torch.matmul(mask1, mask2.t()).clamp(0)
        union = mask1.sum(1)[:, None] + mask2.sum(1)[None] - inter
    else:
        mask1, mask2 = np.asarray(mask1, np.float32), np.asarray(mask2, np.float32)
        inter = (mask1 @ mask2.T).clip(0)
        union = mask1.sum(1)[:, None] + mask2.sum(1)[None] - inter
    return inter / (union + eps)
