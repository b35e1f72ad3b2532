"""Image augmentations of YOLOv5 training, in numpy/OpenCV on BGR uint8 images (HWC).

Labels travel with the image as (n, 5) arrays [cls, x1, y1, x2, y2] in pixels, except in Albumentations where they are
[cls, xc, yc, w, h] normalised. Randomness comes from Python's ``random`` and numpy's global generator, as in
ultralytics, so a seeded DataLoader worker reproduces its augmentations.
"""

import math
import random

import cv2
import numpy as np

from utils.boxes import bbox_ioa, resample_segments, segment2box
from utils.log import LOGGER, colorstr

PAD_COLOR = (114, 114, 114)


def letterbox(im, new_shape=(640, 640), color=PAD_COLOR, auto=True, scaleFill=False, scaleup=True, stride=32):
    """Resize ``im`` keeping its aspect ratio, then pad it to ``new_shape``.

    Args:
        im: HWC image. new_shape: int or (h, w). color: padding colour.
        auto: pad only up to the next multiple of ``stride`` (minimum rectangle) instead of to ``new_shape``.
        scaleFill: stretch to ``new_shape`` without padding. scaleup: allow enlarging (False: only shrink).
    Returns:
        (image, (width ratio, height ratio), (pad_w, pad_h)) where the pads are per side (may be .5).
    """
    h0, w0 = im.shape[:2]
    if isinstance(new_shape, int):
        new_shape = (new_shape, new_shape)
    r = min(new_shape[0] / h0, new_shape[1] / w0)
    if not scaleup:
        r = min(r, 1.0)
    ratio = r, r
    new_w, new_h = int(round(w0 * r)), int(round(h0 * r))
    dw, dh = new_shape[1] - new_w, new_shape[0] - new_h
    if auto:
        dw, dh = np.mod(dw, stride), np.mod(dh, stride)
    elif scaleFill:
        dw, dh = 0.0, 0.0
        new_w, new_h = new_shape[1], new_shape[0]
        ratio = new_shape[1] / w0, new_shape[0] / h0
    dw, dh = float(dw) / 2, float(dh) / 2
    if (w0, h0) != (new_w, new_h):
        im = cv2.resize(im, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    # the odd pixel of an odd total padding goes to the bottom/right side
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    im = cv2.copyMakeBorder(im, top, bottom, left, right, cv2.BORDER_CONSTANT, value=color)
    return im, ratio, (dw, dh)


def _affine_matrix(shape, border, degrees, translate, scale, shear, perspective):
    """Random 3x3 warp (centre -> perspective -> rotate/scale -> shear -> translate) and the drawn scale."""
    h, w = shape[:2]
    out_h, out_w = h + border[0] * 2, w + border[1] * 2
    C = np.eye(3)
    C[0, 2], C[1, 2] = -w / 2, -h / 2  # move the image centre to the origin
    P = np.eye(3)
    P[2, 0] = random.uniform(-perspective, perspective)
    P[2, 1] = random.uniform(-perspective, perspective)
    R = np.eye(3)
    a = random.uniform(-degrees, degrees)
    s = random.uniform(1 - scale, 1 + scale)
    R[:2] = cv2.getRotationMatrix2D(angle=a, center=(0, 0), scale=s)
    S = np.eye(3)
    S[0, 1] = math.tan(random.uniform(-shear, shear) * math.pi / 180)
    S[1, 0] = math.tan(random.uniform(-shear, shear) * math.pi / 180)
    T = np.eye(3)
    T[0, 2] = random.uniform(0.5 - translate, 0.5 + translate) * out_w
    T[1, 2] = random.uniform(0.5 - translate, 0.5 + translate) * out_h
    return T @ S @ R @ P @ C, s, (out_h, out_w)  # applied right to left


def _warp_boxes(boxes, M, perspective, width, height):
    """xyxy boxes (n, 4) -> the xyxy extents of their warped corners, clipped to the output image."""
    n = len(boxes)
    xy = np.ones((n * 4, 3))
    xy[:, :2] = boxes[:, [0, 1, 2, 3, 0, 3, 2, 1]].reshape(n * 4, 2)  # corners x1y1, x2y2, x1y2, x2y1
    xy = xy @ M.T
    xy = (xy[:, :2] / xy[:, 2:3] if perspective else xy[:, :2]).reshape(n, 8)
    x, y = xy[:, [0, 2, 4, 6]], xy[:, [1, 3, 5, 7]]
    new = np.stack((x.min(1), y.min(1), x.max(1), y.max(1)), 1)
    new[:, [0, 2]] = new[:, [0, 2]].clip(0, width)
    new[:, [1, 3]] = new[:, [1, 3]].clip(0, height)
    return new


def _warp_segments(segments, M, perspective, width, height):
    """Polygons -> (boxes of their warped, densely re-sampled outlines, the warped outlines themselves).

    The boxes are more exact than warped box corners; the outlines are not clipped (the masks drawn from them are).
    """
    new, warped = np.zeros((len(segments), 4)), []
    for i, seg in enumerate(resample_segments(segments)):
        xy = np.ones((len(seg), 3))
        xy[:, :2] = seg
        xy = xy @ M.T
        xy = xy[:, :2] / xy[:, 2:3] if perspective else xy[:, :2]
        new[i] = segment2box(xy, width, height)
        warped.append(xy)
    return new, warped


def random_perspective(im, targets=(), segments=(), degrees=10, translate=0.1, scale=0.1, shear=10, perspective=0.0,
                       border=(0, 0), return_segments=False):
    """Random rotation/scale/shear/translation/perspective of ``im`` and its boxes.

    Args:
        im: HWC image. targets: (n, 5) [cls, x1, y1, x2, y2] pixels. segments: optional pixel polygons, one per target.
        border: (y, x) pixels removed from (negative) or added to each side; mosaic passes -s/2 to crop 2s back to s.
        return_segments: segmentation mode (ultralytics' segment augmentation): ``segments`` must hold one polygon per
            target; boxes always come from the warped polygons, and the warped polygons (1000 points each, unclipped)
            of the kept targets are returned too.
    Returns:
        (image, targets) with targets warped and filtered by box_candidates; (image, targets, segments) when
        ``return_segments``.
    """
    if return_segments and len(segments) != len(targets):
        raise ValueError(f"random_perspective(return_segments=True) needs one polygon per target, got "
                         f"{len(segments)} polygons for {len(targets)} targets")
    M, s, (height, width) = _affine_matrix(im.shape, border, degrees, translate, scale, shear, perspective)
    if border[0] != 0 or border[1] != 0 or (M != np.eye(3)).any():
        if perspective:
            im = cv2.warpPerspective(im, M, dsize=(width, height), borderValue=PAD_COLOR)
        else:
            im = cv2.warpAffine(im, M[:2], dsize=(width, height), borderValue=PAD_COLOR)
    n = len(targets)
    warped = []
    if n:
        use_segments = return_segments or (len(segments) == n and any(x.any() for x in segments))
        if use_segments:
            new, warped = _warp_segments(segments, M, perspective, width, height)
        else:
            new = _warp_boxes(targets[:, 1:5], M, perspective, width, height)
        keep = box_candidates(box1=targets[:, 1:5].T * s, box2=new.T, area_thr=0.01 if use_segments else 0.10)
        targets = targets[keep]
        targets[:, 1:5] = new[keep]
        warped = [x for x, k in zip(warped, keep) if k]
    return (im, targets, warped) if return_segments else (im, targets)


def box_candidates(box1, box2, wh_thr=2, ar_thr=100, area_thr=0.1, eps=1e-16):
    """Boxes worth keeping after augmentation: box1 before (4, n), box2 after (4, n), both xyxy pixels.

    Kept: width and height > ``wh_thr`` px, area > ``area_thr`` of the (scaled) original, aspect ratio < ``ar_thr``.
    """
    w1, h1 = box1[2] - box1[0], box1[3] - box1[1]
    w2, h2 = box2[2] - box2[0], box2[3] - box2[1]
    ar = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    return (w2 > wh_thr) & (h2 > wh_thr) & (w2 * h2 / (w1 * h1 + eps) > area_thr) & (ar < ar_thr)


def mixup(im, labels, im2, labels2):
    """MixUp (Zhang et al. 2017): blend two images with r ~ Beta(32, 32) and keep the labels of both."""
    r = np.random.beta(32.0, 32.0)
    im = (im * r + im2 * (1 - r)).astype(np.uint8)
    return im, np.concatenate((labels, labels2), 0)


def augment_hsv(im, hgain=0.5, sgain=0.5, vgain=0.5):
    """In place: multiply hue, saturation and value by random gains in [1 - g, 1 + g] (through lookup tables)."""
    if not (hgain or sgain or vgain):
        return
    r = np.random.uniform(-1, 1, 3) * [hgain, sgain, vgain] + 1
    hue, sat, val = cv2.split(cv2.cvtColor(im, cv2.COLOR_BGR2HSV))
    x = np.arange(0, 256, dtype=r.dtype)
    lut_hue = ((x * r[0]) % 180).astype(im.dtype)  # OpenCV's 8-bit hue runs 0-179
    lut_sat = np.clip(x * r[1], 0, 255).astype(im.dtype)
    lut_val = np.clip(x * r[2], 0, 255).astype(im.dtype)
    hsv = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
    cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR, dst=im)


def copy_paste(im, labels, segments, p=0.5):
    """Copy-Paste (Ghiasi et al. 2020): paste a left-right mirrored copy of a fraction ``p`` of the objects.

    A mirrored object is added only where it hides less than 30% of every existing box. ``labels`` are (n, 5)
    [cls, x1, y1, x2, y2] pixels and ``segments`` the matching pixel polygons (the list is extended in place).
    """
    n = len(segments)
    if not (p and n):
        return im, labels, segments
    h, w, _ = im.shape
    mask = np.zeros(im.shape, np.uint8)
    for j in random.sample(range(n), k=round(p * n)):
        lb, seg = labels[j], segments[j]
        box = w - lb[3], lb[2], w - lb[1], lb[4]
        if (bbox_ioa(box, labels[:, 1:5]) < 0.30).all():
            labels = np.concatenate((labels, [[lb[0], *box]]), 0)
            segments.append(np.concatenate((w - seg[:, 0:1], seg[:, 1:2]), 1))
            cv2.drawContours(mask, [segments[j].astype(np.int32)], -1, (1, 1, 1), cv2.FILLED)
    mirrored = cv2.flip(im, 1)
    sel = cv2.flip(mask, 1).astype(bool)
    im[sel] = mirrored[sel]
    return im, labels, segments


class Albumentations:
    """Optional extra pixel augmentations through the ``albumentations`` package (skipped when it is not installed).

    Blur, MedianBlur, ToGray and CLAHE at p=0.01 each, as ultralytics; boxes pass through in YOLO format.
    """

    def __init__(self, size=640):
        self.transform = None
        prefix = colorstr("albumentations: ")
        try:
            import albumentations as A  # optional dependency
        except ImportError:
            return
        try:
            ops = [A.Blur(p=0.01), A.MedianBlur(p=0.01), A.ToGray(p=0.01), A.CLAHE(p=0.01)]
            self.transform = A.Compose(ops, bbox_params=A.BboxParams(format="yolo", label_fields=["class_labels"]))
            LOGGER.info(prefix + ", ".join(f"{type(x).__name__}(p={x.p})" for x in ops))
        except Exception as e:  # an incompatible albumentations version: train without it, say why
            LOGGER.info(f"{prefix}{e}")
            self.transform = None

    def __call__(self, im, labels, p=1.0):
        """im: HWC uint8; labels: (n, 5) [cls, xc, yc, w, h] normalised."""
        if self.transform and random.random() < p:
            new = self.transform(image=im, bboxes=labels[:, 1:], class_labels=labels[:, 0])
            im = new["image"]
            labels = np.array([[c, *b] for c, b in zip(new["class_labels"], new["bboxes"])], np.float32).reshape(-1, 5)
        return im, labels
