"""Segmentation metrics as ultralytics YOLOv5 v7.0 computes them (segment/val.py, utils/segment/metrics.py).

Every prediction is scored twice: by its box (utils.metrics.process_batch) and by its mask. Mask matching is the box
matching with mask IoU in place of box IoU: the image's ground-truth masks (split from the overlap index image, or one
per label) are resized bilinearly to the prediction masks' resolution and thresholded at 0.5, then
utils.metrics.match_predictions pairs them with the predictions. AP, P, R come from utils.metrics.ap_per_class for
each of the two; the summary is (mp, mr, map50, map) for boxes (B) then masks (M), and fitness weighs both.

Also here: the loss/metric column names of segment/train.py's results.csv and progress bar, and COCO JSON result rows
with RLE masks (val.py --save-json), built on utils/coco.py's detection rows.
"""

import functools
from multiprocessing.pool import ThreadPool

import cv2
import numpy as np

from utils.backend import F, from_numpy, is_tensor, to_numpy
from utils.coco import coco_evaluate, prediction_rows, write_json, yolo_to_coco
from utils.metrics import Metric, ap_results, match_predictions
from utils.metrics import fitness as box_fitness
from utils.segment.masks import mask_iou, split_overlap_mask

# ------------------------------------------------------------------------------------------------------- columns
KEYS = [
    "train/box_loss", "train/seg_loss", "train/obj_loss", "train/cls_loss",
    "metrics/precision(B)", "metrics/recall(B)", "metrics/mAP_0.5(B)", "metrics/mAP_0.5:0.95(B)",
    "metrics/precision(M)", "metrics/recall(M)", "metrics/mAP_0.5(M)", "metrics/mAP_0.5:0.95(M)",
    "val/box_loss", "val/seg_loss", "val/obj_loss", "val/cls_loss",
    "x/lr0", "x/lr1", "x/lr2"]  # results.csv columns after 'epoch', in segment/train.py's order
BEST_KEYS = [
    "best/epoch", "best/precision(B)", "best/recall(B)", "best/mAP_0.5(B)", "best/mAP_0.5:0.95(B)",
    "best/precision(M)", "best/recall(M)", "best/mAP_0.5(M)", "best/mAP_0.5:0.95(M)"]
METRIC_KEYS = KEYS[4:12]  # what validation returns first, and what --evolve records
RESULTS_CSV_WIDTH = 23  # segment/train.py writes results.csv through GenericLogger: '%23s,' header, '%23.5g,' values
TRAIN_COLUMNS = ("Epoch", "GPU_mem", "box_loss", "seg_loss", "obj_loss", "cls_loss", "Instances", "Size")
TRAIN_HEADER = ("%11s" * 8) % TRAIN_COLUMNS  # printed after a newline at each epoch start
TRAIN_ROW = "%11s" * 2 + "%11.4g" * 6  # (epoch/epochs-1, mem, 4 mean losses, instances, image size)
VAL_COLUMNS = ("Class", "Images", "Instances", "Box(P", "R", "mAP50", "mAP50-95)", "Mask(P", "R", "mAP50",
               "mAP50-95)")
VAL_HEADER = ("%22s" + "%11s" * 10) % VAL_COLUMNS
VAL_ROW = "%22s" + "%11i" * 2 + "%11.3g" * 8  # (class, images, instances, 8 mean results)


# 0.1 * mAP@0.5 + 0.9 * mAP@0.5:0.95 of boxes plus the same of masks, for rows of the 8 mean results
fitness = functools.partial(box_fitness, weights=(0.0, 0.0, 0.1, 0.9) * 2)


# ------------------------------------------------------------------------------------------------------ matching
def image_gt_masks(masks, targets, si, overlap):
    """Ground-truth masks of batch image ``si``: its index image (1, h, w) with overlap, else its rows (n, h, w).

    Args:
        masks: the batch's masks (B, h, w) with overlap, else (N, h, w) in target order. targets: (N, 6), column 0
            the image index.
    """
    if overlap:
        return masks[si:si + 1]
    rows = np.nonzero(np.asarray(to_numpy(targets[:, 0])) == si)[0]
    if is_tensor(masks):
        return masks[from_numpy(rows, device=masks.device)] if len(rows) else masks[:0]
    return masks[rows]


def mask_ious(pred_masks, gt_masks, nl, overlap):
    """IoU (nl, N) of an image's ground-truth masks with its N predicted masks.

    Args:
        pred_masks: (N, h, w) binary masks (process_mask / process_mask_upsample output).
        gt_masks: image_gt_masks() output: (1, H, W) index image with overlap, else (nl, H, W).
        nl: the image's number of labels (the overlap image holds ids 1..nl).
    Ground-truth masks of another resolution are resized bilinearly (align_corners=False) to (h, w), then > 0.5.
    """
    pred_masks = pred_masks if is_tensor(pred_masks) else from_numpy(pred_masks)
    gt_masks = gt_masks if is_tensor(gt_masks) else from_numpy(gt_masks)
    h, w = pred_masks.shape[1:]
    if nl == 0 or pred_masks.shape[0] == 0:
        return pred_masks.new_zeros((nl, pred_masks.shape[0]))
    gt = split_overlap_mask(gt_masks, nl) if overlap else gt_masks.float()
    if tuple(gt.shape[1:]) != (h, w):
        gt = (F.interpolate(gt[None], (h, w), mode="bilinear", align_corners=False)[0] > 0.5).float()
    return mask_iou(gt.reshape(gt.shape[0], h * w), pred_masks.float().reshape(pred_masks.shape[0], h * w))


def process_batch_masks(detections, labels, iouv, pred_masks, gt_masks, overlap):
    """True-positive matrix (N, T) of one image's predictions by mask IoU (segment/val.py process_batch(masks=True)).

    Args:
        detections: (N, 6+) [x1, y1, x2, y2, conf, class, ...]; labels: (M, 5) [class, x1, y1, x2, y2] (only the
            classes are used); iouv: (T,) thresholds; pred_masks, gt_masks, overlap: as mask_ious().
    Returns:
        (N, T) bool: a tensor on the detections' device when detections is a tensor (as utils.metrics.process_batch),
        else a numpy array.
    """
    iou = mask_ious(pred_masks, gt_masks, len(labels), overlap)
    correct = match_predictions(detections[:, 5], labels[:, 0], to_numpy(iou), iouv)
    return from_numpy(correct, device=detections.device) if is_tensor(detections) else correct


# ------------------------------------------------------------------------------------------------------------ AP
def ap_per_class_box_and_mask(tp_m, tp_b, conf, pred_cls, target_cls, curves=None):
    """ap_per_class for masks and for boxes on the same predictions.

    Args:
        tp_m, tp_b: (N, T) bool, correct by mask / by box. conf, pred_cls: (N,). target_cls: (M,).
        curves: a dict to fill with {'Box': ..., 'Mask': ...} curves for utils.plots.plot_ap_curves(prefix=key).
    Returns:
        {'boxes': {'tp', 'fp', 'p', 'r', 'f1', 'ap', 'ap_class'}, 'masks': {...}} as ultralytics (ap is (C, T)).
    """
    results = {}
    for key, name, tp in (("boxes", "Box", tp_b), ("masks", "Mask", tp_m)):
        c = {} if curves is not None else None
        results[key] = ap_results(tp, conf, pred_cls, target_cls, curves=c)
        if curves is not None:
            curves[name] = c
    return results


class Metrics:
    """Box and mask metrics together; results are (box mp, mr, map50, map, mask mp, mr, map50, map)."""

    def __init__(self):
        self.metric_box = Metric()
        self.metric_mask = Metric()

    def update(self, results):
        """Take ap_per_class_box_and_mask() output."""
        self.metric_box.update(results["boxes"])
        self.metric_mask.update(results["masks"])

    def mean_results(self):
        return self.metric_box.mean_results() + self.metric_mask.mean_results()

    def class_result(self, i):
        return self.metric_box.class_result(i) + self.metric_mask.class_result(i)

    def get_maps(self, nc):
        """Box maps + mask maps, element-wise (ultralytics' choice: what --image-weights then resamples by)."""
        return self.metric_box.get_maps(nc) + self.metric_mask.get_maps(nc)

    @property
    def ap_class_index(self):
        return self.metric_box.ap_class_index


def compute_metrics(stats, curves=None):
    """Metrics of a whole validation run from its per-image stats.

    Args:
        stats: per image, (correct_masks (n, T), correct_boxes (n, T), conf (n,), pred_cls (n,), target_cls (m,)).
        curves: optional dict filled as in ap_per_class_box_and_mask().
    Returns:
        (Metrics, target classes (all labels, as one array)). As ultralytics, AP is computed only when some prediction
        is correct by its mask: otherwise every result, boxes included, stays 0.
    """
    metrics = Metrics()
    cols = [np.concatenate([np.asarray(to_numpy(s[k])) for s in stats], 0) for k in range(5)] if stats else []
    if cols and cols[0].any():
        metrics.update(ap_per_class_box_and_mask(*cols, curves=curves))
    return metrics, (cols[4] if cols else np.zeros(0))


# ------------------------------------------------------------------------------------------------------ COCO JSON
def _rle(mask):
    from pycocotools import mask as mask_utils  # noqa: PLC0415 (optional dependency, only for --save-json)

    rle = mask_utils.encode(np.asarray(mask[:, :, None], order="F", dtype="uint8"))[0]
    rle["counts"] = rle["counts"].decode("utf-8")
    return rle


def prediction_rows_with_masks(predn, path, class_map, pred_masks, threads=8):
    """COCO result rows of one image's detections with their masks as RLE ('segmentation').

    Args:
        predn: (n, 6+) [x1, y1, x2, y2, conf, cls, ...] in original-image pixels.
        path: the image file. class_map: YOLO class -> category_id.
        pred_masks: (h0, w0, n) binary masks in the original image (scale_image output), as ultralytics passes them.
    Returns:
        utils.coco.prediction_rows() rows, each with 'segmentation': {'size': [h0, w0], 'counts': str}.
    """
    predn = np.asarray(to_numpy(predn))[:, :6]
    masks = np.transpose(np.asarray(to_numpy(pred_masks)), (2, 0, 1))
    with ThreadPool(max(1, min(threads, len(masks)))) as pool:
        rles = pool.map(_rle, masks)
    rows = prediction_rows(predn, path, class_map)
    for row, rle in zip(rows, rles):
        row["segmentation"] = rle
    return rows


def yolo_to_coco_segments(im_files, labels, segments, shapes, names, class_map=None):
    """utils.coco.yolo_to_coco() with each annotation's polygon, so pycocotools can also score masks ('segm').

    Args:
        segments: per image, its labels' normalised polygons (a dataset's ``segments``); an image without polygons
            gets its boxes as rectangles.
    """
    coco = yolo_to_coco(im_files, labels, shapes, names, class_map)
    flat = []
    for lb, segs, (w, h) in zip(labels, segments, shapes):
        scale = np.array([w, h], np.float64)
        for k in range(len(lb)):
            flat.append(np.asarray(segs[k], np.float64) * scale if k < len(segs) else None)
    for ann, poly in zip(coco["annotations"], flat):
        if poly is None:
            x, y, bw, bh = ann["bbox"]
            poly = np.array([[x, y], [x + bw, y], [x + bw, y + bh], [x, y + bh]])
        ann["segmentation"] = [[round(float(v), 3) for v in poly.reshape(-1)]]
        ann["area"] = round(float(abs(cv2.contourArea(poly.astype(np.float32)))), 3)
    return coco


def write_coco_segment_annotations(dataset, names, file, class_map=None):
    """Write yolo_to_coco_segments() of a LoadImagesAndLabels-like dataset (im_files, labels, segments, shapes)."""
    coco = yolo_to_coco_segments(dataset.im_files, dataset.labels, dataset.segments, dataset.shapes, names, class_map)
    return write_json(coco, file)


def coco_evaluate_masks(anno_json, pred_json, img_ids=None):
    """pycocotools 'bbox' then 'segm' evaluation (prints both summaries), as segment/val.py --save-json.

    Returns:
        (map_bbox, map50_bbox, map_mask, map50_mask): stats[0:2] of each evaluation.
    """
    box, mask = coco_evaluate(anno_json, pred_json, img_ids=img_ids, iou_types=("bbox", "segm"))
    return float(box[0]), float(box[1]), float(mask[0]), float(mask[1])
