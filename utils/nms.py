"""Non-maximum suppression of decoded YOLOv5 outputs, as ultralytics v7.0 does it, on either backend, CPU or GPU.

Two implementations give the same detections:
  - where the device has an NMS kernel (torchvision / oneflow.nms on CUDA), tensor code around ``utils.backend.nms``;
  - elsewhere (every CPU here), the whole batch moves to NumPy once (framework ops on OneFlow's CPU cost ~0.1 ms
    each) and greedy NMS runs in blocks of score-sorted candidates with IoU matrices (greedy_nms): a box is kept when
    no kept, higher-scoring box of its class overlaps it more than the threshold. Within a block the kept set is
    reached by iterating ``keep_j = not any_i(keep_i and suppresses(i, j))`` to its fixed point, which is exactly
    greedy NMS (a box's suppressors all score higher, so the recursion has one solution).
Around the kernel, as ultralytics: candidate filter on objectness, obj x cls scores, multi-label rows, class filter,
the highest MAX_NMS candidates, at most max_det detections.

Time limit, and where we differ from ultralytics on purpose: ultralytics stops after the image during which
0.5 + 0.05 * batch_size seconds have passed and returns *empty* detections for the rest of the batch, which silently
lowers the mAP of slow (early-training, CPU) validations. Here every image is always processed; when that budget is
exceeded one warning says so, how long NMS took, and how many images ultralytics would have dropped.
"""

import time

import numpy as np

from utils.backend import from_numpy, native_nms_available, nms, to_numpy, torch
from utils.boxes import xywh2xyxy
from utils.log import LOGGER

MAX_WH = 7680  # class offset (pixels) for batched NMS: boxes of different classes never overlap after it
MAX_NMS = 30000  # most candidates per image that enter the NMS kernel (highest scores first)
BLOCK = 64  # boxes decided together by the host NMS (see greedy_nms)


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
    options = dict(nc=nc, nm=nm, conf_thres=conf_thres, iou_thres=iou_thres, classes=classes, agnostic=agnostic,
                   multi_label=multi_label and nc > 1, max_det=max_det)
    on_host = not native_nms_available(prediction.device)
    batch = to_numpy(prediction) if on_host else prediction  # one transfer for the whole batch
    t0, budget, late = time.time(), time_limit_s(bs), None
    output = []
    for xi in range(bs):
        lb = labels[xi] if labels is not None and len(labels) and len(labels[xi]) else None
        if on_host:
            det = _nms_one_numpy(batch[xi], None if lb is None else to_numpy(lb), **options)
            output.append(from_numpy(det, device=prediction.device, dtype=prediction.dtype))
        else:
            output.append(_nms_one_tensor(batch[xi], lb, **options))
        if late is None and time.time() - t0 > budget:
            late = xi
    if late is not None and late < bs - 1:
        LOGGER.warning(f"WARNING ⚠️ NMS time limit {budget:.3f}s exceeded ({time.time() - t0:.3f}s for {bs} images); "
                       f"all images were processed (ultralytics would have returned no detections for the last "
                       f"{bs - 1 - late})")
    return output


# ------------------------------------------------------------------------------------------------------------ host
def _nms_one_numpy(p, lb, nc, nm, conf_thres, iou_thres, classes, agnostic, multi_label, max_det):
    """One image's prediction rows (n, 5 + nc + nm) as NumPy -> its detections (k, 6 + nm) float32."""
    x = p[p[:, 4] > conf_thres]
    if lb is not None:
        x = np.concatenate((x, _label_rows_numpy(lb, nc + nm + 5)), 0)
    if not x.shape[0]:
        return np.zeros((0, 6 + nm), np.float32)
    mi = 5 + nc  # first mask column
    x = x.copy()
    x[:, 5:] *= x[:, 4:5]  # class score = obj * cls (ultralytics also scales the mask columns; kept for parity)
    box = xywh2xyxy(x[:, :4])
    if multi_label:
        i, j = np.nonzero(x[:, 5:mi] > conf_thres)
        x = np.concatenate((box[i], x[i, 5 + j, None], j[:, None].astype(np.float32), x[i, mi:]), 1)
    else:
        j = x[:, 5:mi].argmax(1)
        conf = x[np.arange(len(x)), 5 + j]
        x = np.concatenate((box, conf[:, None], j[:, None].astype(np.float32), x[:, mi:]), 1)[conf > conf_thres]
    if classes is not None:
        x = x[(x[:, 5:6] == np.asarray(classes, dtype=x.dtype)).any(1)]
    if not x.shape[0]:
        return np.zeros((0, 6 + nm), np.float32)
    x = x[np.argsort(-x[:, 4], kind="stable")[:MAX_NMS]]
    keep = greedy_nms(x[:, :4], np.zeros(len(x)) if agnostic else x[:, 5], iou_thres, max_det)
    return x[keep].astype(np.float32)


def _label_rows_numpy(lb, width):
    v = np.zeros((len(lb), width), np.float32)
    v[:, :4] = lb[:, 1:5]
    v[:, 4] = 1.0
    v[np.arange(len(lb)), lb[:, 0].astype(int) + 5] = 1.0
    return v


def greedy_nms(boxes, groups, iou_thres, max_keep):
    """Greedy NMS of score-sorted boxes, suppressing only within a group (class): kept indices in score order.

    Exact greedy NMS in blocks of BLOCK boxes: a block first loses every box that a box kept in earlier blocks
    suppresses (one overlap matrix against the kept ones), then decides its own boxes with the fixed-point iteration
    on its own suppression matrix (see the module docstring). Work stops at ``max_keep`` kept, so it grows with the
    boxes examined until then times the boxes kept, not with the square of all candidates.

    Args:
        boxes: (n, 4) xyxy NumPy array sorted by descending score. groups: (n,) group of each box.
        iou_thres: suppress IoU > iou_thres. max_keep: most indices returned.
    """
    n = len(boxes)
    boxes = np.asarray(boxes, dtype=np.float32)
    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    keep = np.zeros(0, dtype=np.int64)
    for start in range(0, n, BLOCK):
        if len(keep) >= max_keep:
            break
        idx = np.arange(start, min(start + BLOCK, n))
        alive = ~_suppressed(boxes, areas, groups, idx, keep, iou_thres).any(1)
        own = np.triu(_suppressed(boxes, areas, groups, idx, idx, iou_thres), 1).astype(np.float32)
        keep = np.concatenate((keep, idx[_fixed_point(own, alive)]))
    return keep[:max_keep]


def _suppressed(boxes, areas, groups, rows, cols, iou_thres):
    """(len(rows), len(cols)) bool: IoU > iou_thres and the same group, tested as inter > t / (1 + t) * (a + b)."""
    if not len(rows) or not len(cols):
        return np.zeros((len(rows), len(cols)), dtype=bool)
    r, c = boxes[rows], boxes[cols]
    iw = np.minimum(r[:, 2:3], c[:, 2]) - np.maximum(r[:, 0:1], c[:, 0])
    ih = np.minimum(r[:, 3:4], c[:, 3]) - np.maximum(r[:, 1:2], c[:, 1])
    inter = iw.clip(0) * ih.clip(0)
    union = areas[rows][:, None] + areas[cols][None, :] - inter
    return (inter > iou_thres * union) & (groups[rows][:, None] == groups[cols][None, :])


def _fixed_point(suppresses, alive):
    """Which of a block's score-sorted boxes greedy NMS keeps: ``suppresses[i, j]`` (i before j overlaps it) among
    the ``alive`` ones. Iterates keep_j = alive_j and not any_i(keep_i and suppresses_ij) from keep = alive."""
    keep = alive
    while True:
        new = alive & ((keep.astype(np.float32) @ suppresses) == 0)
        if np.array_equal(new, keep):
            return np.nonzero(keep)[0]
        keep = new


# ---------------------------------------------------------------------------------------------------------- device
def _nms_one_tensor(p, lb, nc, nm, conf_thres, iou_thres, classes, agnostic, multi_label, max_det):
    """One image's rows on a device with an NMS kernel -> (k, 6 + nm) tensor (the same steps as the host path)."""
    x = p[p[:, 4] > conf_thres]
    if lb is not None:
        x = torch.cat((x, _label_rows(lb, nc + nm + 5, x)), 0)
    if not x.shape[0]:
        return p.new_zeros((0, 6 + nm))
    mi = 5 + nc
    x = x.clone()
    x[:, 5:] *= x[:, 4:5]
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


def _label_rows(lb, width, like):
    """Ground-truth rows [cls, xywh] -> prediction rows with objectness 1 and a one-hot class score of 1."""
    v = torch.zeros((len(lb), width), device=like.device, dtype=like.dtype)
    v[:, :4] = lb[:, 1:5]
    v[:, 4] = 1.0
    v[torch.arange(len(lb), device=like.device), lb[:, 0].long() + 5] = 1.0
    return v
