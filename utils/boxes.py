"""Box and polygon maths shared by the data pipeline, the loss, NMS and the metrics.

Conventions (as ultralytics YOLOv5):
  - xyxy: (x1, y1, x2, y2) corners; xywh: (x_center, y_center, width, height); the suffix ``n`` means normalised to 0-1.
  - The last axis holds the 4 coordinates; leading axes are free.
  - Conversions accept numpy arrays or backend tensors and return a new object of the same kind.
  - ``clip_*`` and ``scale_*`` work in place (and also return their input), because the validator relies on it.
"""

import math

import numpy as np

from utils.backend import is_tensor, torch


def _copy(x):
    """A float copy of ``x`` (tensor stays tensor, anything else becomes a numpy array)."""
    if is_tensor(x):
        return x.clone() if x.is_floating_point() else x.float()
    x = np.asarray(x)
    return x.astype(np.float64) if x.dtype.kind in "iub" else np.copy(x)


# ---------------------------------------------------------------------------------------------------------- formats
def xyxy2xywh(x):
    """Corners -> centre, width, height."""
    y = _copy(x)
    y[..., 0] = (x[..., 0] + x[..., 2]) / 2
    y[..., 1] = (x[..., 1] + x[..., 3]) / 2
    y[..., 2] = x[..., 2] - x[..., 0]
    y[..., 3] = x[..., 3] - x[..., 1]
    return y


def xywh2xyxy(x):
    """Centre, width, height -> corners."""
    y = _copy(x)
    half_w, half_h = x[..., 2] / 2, x[..., 3] / 2
    y[..., 0] = x[..., 0] - half_w
    y[..., 1] = x[..., 1] - half_h
    y[..., 2] = x[..., 0] + half_w
    y[..., 3] = x[..., 1] + half_h
    return y


def xywhn2xyxy(x, w=640, h=640, padw=0, padh=0):
    """Normalised centre boxes -> pixel corners in a (w, h) image shifted by (padw, padh)."""
    y = _copy(x)
    y[..., 0] = w * (x[..., 0] - x[..., 2] / 2) + padw
    y[..., 1] = h * (x[..., 1] - x[..., 3] / 2) + padh
    y[..., 2] = w * (x[..., 0] + x[..., 2] / 2) + padw
    y[..., 3] = h * (x[..., 1] + x[..., 3] / 2) + padh
    return y


def xyxy2xywhn(x, w=640, h=640, clip=False, eps=0.0):
    """Pixel corners -> normalised centre boxes; ``clip`` first clips ``x`` itself to (h - eps, w - eps)."""
    if clip:
        clip_boxes(x, (h - eps, w - eps))  # in place, as ultralytics
    y = _copy(x)
    y[..., 0] = (x[..., 0] + x[..., 2]) / 2 / w
    y[..., 1] = (x[..., 1] + x[..., 3]) / 2 / h
    y[..., 2] = (x[..., 2] - x[..., 0]) / w
    y[..., 3] = (x[..., 3] - x[..., 1]) / h
    return y


def xyn2xy(x, w=640, h=640, padw=0, padh=0):
    """Normalised polygon points (n, 2) -> pixel points."""
    y = _copy(x)
    y[..., 0] = w * x[..., 0] + padw
    y[..., 1] = h * x[..., 1] + padh
    return y


# ----------------------------------------------------------------------------------------------------------- polygons
def segment2box(segment, width=640, height=640):
    """One polygon (n, 2) -> its xyxy box over the points inside the image; zeros (1, 4) when none is inside.

    Like ultralytics, "none inside" is tested with ``any(x)``, so a polygon whose inside points all have x == 0 also
    gives zeros.
    """
    x, y = np.asarray(segment).T
    inside = (x >= 0) & (y >= 0) & (x <= width) & (y <= height)
    x, y = x[inside], y[inside]
    return np.array([x.min(), y.min(), x.max(), y.max()]) if any(x) else np.zeros((1, 4))


def segments2boxes(segments):
    """Polygons (each (n, 2)) -> (m, 4) xywh boxes."""
    boxes = [[s[:, 0].min(), s[:, 1].min(), s[:, 0].max(), s[:, 1].max()] for s in map(np.asarray, segments)]
    return xyxy2xywh(np.array(boxes, dtype=np.float64).reshape(-1, 4))


def resample_segments(segments, n=1000):
    """Resample each closed polygon to n points by linear interpolation along its vertices (list modified in place)."""
    for k, s in enumerate(segments):
        s = np.concatenate((s, s[:1]), axis=0)
        t = np.linspace(0, len(s) - 1, n)
        tp = np.arange(len(s))
        segments[k] = np.stack([np.interp(t, tp, s[:, d]) for d in (0, 1)], axis=1)
    return segments


# ------------------------------------------------------------------------------------------------- clipping, scaling
def clip_boxes(boxes, shape):
    """Clip xyxy boxes in place to an image of shape (height, width)."""
    h, w = shape[0], shape[1]
    if is_tensor(boxes):
        boxes[..., 0].clamp_(0, w)
        boxes[..., 1].clamp_(0, h)
        boxes[..., 2].clamp_(0, w)
        boxes[..., 3].clamp_(0, h)
    else:
        boxes[..., [0, 2]] = boxes[..., [0, 2]].clip(0, w)
        boxes[..., [1, 3]] = boxes[..., [1, 3]].clip(0, h)
    return boxes


def clip_segments(segments, shape):
    """Clip (n, 2) polygon points in place to an image of shape (height, width)."""
    h, w = shape[0], shape[1]
    if is_tensor(segments):
        segments[:, 0].clamp_(0, w)
        segments[:, 1].clamp_(0, h)
    else:
        segments[:, 0] = segments[:, 0].clip(0, w)
        segments[:, 1] = segments[:, 1].clip(0, h)
    return segments


def letterbox_gain_pad(img1_shape, img0_shape, ratio_pad=None):
    """Letterbox gain and (x, y) padding that took an img0_shape image to img1_shape (or the given ratio_pad)."""
    if ratio_pad is None:
        gain = min(img1_shape[0] / img0_shape[0], img1_shape[1] / img0_shape[1])
        pad = (img1_shape[1] - img0_shape[1] * gain) / 2, (img1_shape[0] - img0_shape[0] * gain) / 2
        return gain, pad
    return ratio_pad[0][0], ratio_pad[1]


def scale_boxes(img1_shape, boxes, img0_shape, ratio_pad=None):
    """Map xyxy boxes in place from a letterboxed image (img1_shape) back to the original (img0_shape), clipped.

    Args:
        img1_shape: (h, w) of the network input.
        boxes: (..., 4+) xyxy, modified in place.
        img0_shape: (h, w) of the original image.
        ratio_pad: ((gain_h, gain_w), (pad_w, pad_h)) from the loader; only gain_h is used, as in ultralytics.
    """
    gain, pad = letterbox_gain_pad(img1_shape, img0_shape, ratio_pad)
    boxes[..., [0, 2]] -= pad[0]
    boxes[..., [1, 3]] -= pad[1]
    boxes[..., :4] /= gain
    clip_boxes(boxes, img0_shape)
    return boxes


def scale_segments(img1_shape, segments, img0_shape, ratio_pad=None, normalize=False):
    """scale_boxes() for (n, 2) polygon points; ``normalize`` divides by the original width and height."""
    gain, pad = letterbox_gain_pad(img1_shape, img0_shape, ratio_pad)
    segments[:, 0] -= pad[0]
    segments[:, 1] -= pad[1]
    segments /= gain
    clip_segments(segments, img0_shape)
    if normalize:
        segments[:, 0] /= img0_shape[1]
        segments[:, 1] /= img0_shape[0]
    return segments


# ---------------------------------------------------------------------------------------------------------------- IoU
def box_area(box):
    """Areas of (n, 4) xyxy boxes (tensor or numpy)."""
    return (box[..., 2] - box[..., 0]) * (box[..., 3] - box[..., 1])


def box_iou(box1, box2, eps=1e-7):
    """Pairwise IoU matrix (N, M) of xyxy boxes box1 (N, 4) and box2 (M, 4); tensors or numpy arrays."""
    if is_tensor(box1):
        a1, a2 = box1[:, None, :2], box1[:, None, 2:4]
        b1, b2 = box2[None, :, :2], box2[None, :, 2:4]
        inter = (torch.min(a2, b2) - torch.max(a1, b1)).clamp(0).prod(2)
    else:
        box1, box2 = np.asarray(box1), np.asarray(box2)
        a1, a2 = box1[:, None, :2], box1[:, None, 2:4]
        b1, b2 = box2[None, :, :2], box2[None, :, 2:4]
        inter = (np.minimum(a2, b2) - np.maximum(a1, b1)).clip(0).prod(2)
    return inter / ((a2 - a1).prod(2) + (b2 - b1).prod(2) - inter + eps)


def bbox_ioa(box1, box2, eps=1e-7):
    """Intersection of one xyxy box (4,) with each of box2 (n, 4), over box2's area (numpy)."""
    b1_x1, b1_y1, b1_x2, b1_y2 = box1
    b2_x1, b2_y1, b2_x2, b2_y2 = np.asarray(box2).T
    inter = ((np.minimum(b1_x2, b2_x2) - np.maximum(b1_x1, b2_x1)).clip(0) *
             (np.minimum(b1_y2, b2_y2) - np.maximum(b1_y1, b2_y1)).clip(0))
    return inter / ((b2_x2 - b2_x1) * (b2_y2 - b2_y1) + eps)


def wh_iou(wh1, wh2, eps=1e-7):
    """IoU matrix (N, M) of boxes given only as widths and heights, aligned at a common corner (tensors)."""
    wh1, wh2 = wh1[:, None], wh2[None]
    inter = torch.min(wh1, wh2).prod(2)
    return inter / (wh1.prod(2) + wh2.prod(2) - inter + eps)


def bbox_iou(box1, box2, xywh=True, GIoU=False, DIoU=False, CIoU=False, eps=1e-7):  # noqa: N803 (ultralytics names)
    """Element-wise (broadcast) IoU of box1 (..., 4) and box2 (..., 4), or its GIoU / DIoU / CIoU variant.

    Returns a (..., 1) tensor. With xywh=False the boxes are corners and the heights are clamped to eps (only for the
    aspect-ratio term), exactly as ultralytics. CIoU's trade-off weight alpha is computed without gradient.
    """
    if xywh:
        (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.chunk(4, -1), box2.chunk(4, -1)
        b1_x1, b1_x2, b1_y1, b1_y2 = x1 - w1 / 2, x1 + w1 / 2, y1 - h1 / 2, y1 + h1 / 2
        b2_x1, b2_x2, b2_y1, b2_y2 = x2 - w2 / 2, x2 + w2 / 2, y2 - h2 / 2, y2 + h2 / 2
    else:
        b1_x1, b1_y1, b1_x2, b1_y2 = box1.chunk(4, -1)
        b2_x1, b2_y1, b2_x2, b2_y2 = box2.chunk(4, -1)
        w1, h1 = b1_x2 - b1_x1, (b1_y2 - b1_y1).clamp(eps)
        w2, h2 = b2_x2 - b2_x1, (b2_y2 - b2_y1).clamp(eps)

    inter = ((torch.min(b1_x2, b2_x2) - torch.max(b1_x1, b2_x1)).clamp(0) *
             (torch.min(b1_y2, b2_y2) - torch.max(b1_y1, b2_y1)).clamp(0))
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    if not (GIoU or DIoU or CIoU):
        return iou
    cw = torch.max(b1_x2, b2_x2) - torch.min(b1_x1, b2_x1)  # smallest enclosing box
    ch = torch.max(b1_y2, b2_y2) - torch.min(b1_y1, b2_y1)
    if GIoU and not (DIoU or CIoU):  # https://arxiv.org/abs/1902.09630
        c_area = cw * ch + eps
        return iou - (c_area - union) / c_area
    c2 = cw**2 + ch**2 + eps  # enclosing diagonal squared (https://arxiv.org/abs/1911.08287)
    rho2 = ((b2_x1 + b2_x2 - b1_x1 - b1_x2) ** 2 + (b2_y1 + b2_y2 - b1_y1 - b1_y2) ** 2) / 4  # centre distance squared
    if not CIoU:
        return iou - rho2 / c2
    v = (4 / math.pi**2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)
