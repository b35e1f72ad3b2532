"""Non-maximum suppression of decoded YOLOv5 outputs, as ultralytics v7.0 does it, on either backend, CPU or GPU.

The greedy kernel is ``utils.backend.nms`` (torchvision / oneflow.nms where the device has one, an exact NumPy greedy
loop otherwise). Everything around it (candidate filter, obj x cls scores, multi-label rows, class filter, the
class-offset trick for batched NMS) is tensor code.

Time limit, and where we differ from ultralytics on purpose: ultralytics stops after the image during which
0.5 + 0.05 * batch_size seconds have passed and returns *empty* detections for the rest of the batch, which silently
lowers the mAP of slow (early-training, CPU) validations. Here every image is always processed; when that budget is
exceeded one warning says so, how long NMS took, and how many images ultralytics would have dropped.
"""

import time

from utils.backend import nms, torch
from utils.boxes import xywh2xyxy
from utils.log import LOGGER

MAX_WH = 7680  # class offset (pixels) for batched NMS: boxes of different classes never overlap after it
MAX_NMS = 30000  # most candidates per image that enter the NMS kernel (highest scores first)


def time_limit_s(batch_size):
    """ultralytics' NMS time budget for a batch, in seconds."""
    return 0.5 + 0.05 * batch_size


def non_max_suppression(prediction, conf_thres=0.25, iou_thres=0.45, classes=None, agnostic=False,
                        multi_label=False, labels=(), max_det=300, nm=0):
    """Filter decoded predictions to at most ``max_det`` detections per image.

    Args:
        prediction: (bs, n, 5 + nc + nm) tensor of [x, y, w, h (pixels), objectness, class scores, mask coefficients],
            or a tuple/list whose first element is that tensor (the eval-mode model output).
        conf_thres: keep (box, class) pairs whose obj * cls score is above this (and boxes whose obj is above it).
        iou_thres: suppress a box whose IoU with a higher-scoring kept box of the same class is above this.
        classes: optional list of class indices to keep.
        agnostic: NMS across classes (no class offset).
        multi_label: one row per (box, class) pair above conf_thres instead of the best class only (needs nc > 1).
        labels: per image, an (m, 5) tensor [cls, x, y, w, h (pixels)] of boxes added with score 1 (autolabelling,
            val.py --save-hybrid).
        max_det: detections kept per image.
        nm: number of mask coefficients at the end of each row (segmentation).
    Returns:
        list of bs tensors (k, 6 + nm): [x1, y1, x2, y2, score, class, mask coefficients].
    """
    if not 0 <= conf_thres <= 1:
        raise ValueError(f"Invalid confidence threshold {conf_thres}, valid values are between 0.0 and 1.0")
    if not 0 <= iou_thres <= 1:
        raise ValueError(f"Invalid IoU {iou_thres}, valid values are between 0.0 and 1.0")
    if isinstance(prediction, (list, tuple)):
        prediction = prediction[0]
    bs = prediction.shape[0]
    nc = prediction.shape[2] - nm - 5
    multi_label = multi_label and nc > 1
    candidates = prediction[..., 4] > conf_thres
    options = dict(nc=nc, nm=nm, conf_thres=conf_thres, iou_thres=iou_thres, classes=classes, agnostic=agnostic,
                   multi_label=multi_label, max_det=max_det)

    t0, budget, late = time.time(), time_limit_s(bs), None
    output = []
    for xi in range(bs):
        x = prediction[xi][candidates[xi]]
        if labels is not None and len(labels) and len(labels[xi]):
            x = torch.cat((x, _label_rows(labels[xi], nc + nm + 5, x)), 0)
        output.append(_nms_one(x, **options) if x.shape[0] else prediction.new_zeros((0, 6 + nm)))
        if late is None and time.time() - t0 > budget:
            late = xi
    if late is not None and late < bs - 1:
        LOGGER.warning(f"WARNING ⚠️ NMS time limit {budget:.3f}s exceeded ({time.time() - t0:.3f}s for {bs} images); "
                       f"all images were processed (ultralytics would have returned no detections for the last "
                       f"{bs - 1 - late})")
    return output


def _label_rows(lb, width, like):
    """Ground-truth rows [cls, xywh] -> prediction rows with objectness 1 and a one-hot class score of 1."""
    v = torch.zeros((len(lb), width), device=like.device, dtype=like.dtype)
    v[:, :4] = lb[:, 1:5]
    v[:, 4] = 1.0
    v[torch.arange(len(lb), device=like.device), lb[:, 0].long() + 5] = 1.0
    return v


def _nms_one(x, nc, nm, conf_thres, iou_thres, classes, agnostic, multi_label, max_det):
    """NMS of one image's candidate rows (n, 5 + nc + nm) -> (k, 6 + nm)."""
    mi = 5 + nc  # first mask column
    x = x.clone()
    x[:, 5:] *= x[:, 4:5]  # class score = obj * cls (ultralytics also scales the mask columns; kept for parity)
    box = xywh2xyxy(x[:, :4])
    mask = x[:, mi:]
    if multi_label:
        i, j = (x[:, 5:mi] > conf_thres).nonzero(as_tuple=False).T
        x = torch.cat((box[i], x[i, 5 + j].unsqueeze(1), j.unsqueeze(1).float(), mask[i]), 1)
    else:
        conf, j = x[:, 5:mi].max(1, keepdim=True)
        x = torch.cat((box, conf, j.float(), mask), 1)[conf.view(-1) > conf_thres]
    if classes is not None:
        x = x[(x[:, 5:6] == torch.tensor(classes, device=x.device, dtype=x.dtype)).any(1)]
    if not x.shape[0]:
        return x
    x = x[x[:, 4].argsort(descending=True)[:MAX_NMS]]
    offset = x[:, 5:6] * (0 if agnostic else MAX_WH)
    keep = nms(x[:, :4] + offset, x[:, 4], iou_thres, max_keep=max_det)
    return x[keep[:max_det]]
