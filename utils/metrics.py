"""Detection metrics as ultralytics YOLOv5 v7.0 computes them: matching, AP, P/R/F1, the per-class results of a run
(``Metric``, which segmentation's box and mask metrics are made of), confusion matrix, and the class statistics of a
label set (class and image weights).

All arithmetic is NumPy on small host arrays, so both backends give the same numbers. Nothing here draws: utils/plots.py
draws what ``ap_per_class(curves=...)`` and ``ConfusionMatrix`` compute (plots depend on metrics, never the reverse).

Vocabulary: N predictions, M labels, T IoU thresholds (10: 0.50, 0.55, ..., 0.95), nc classes.
"""

import numpy as np

from utils.backend import is_tensor, to_numpy, torch
from utils.boxes import bbox_ioa, bbox_iou, box_iou, wh_iou  # noqa: F401 (ultralytics exposes them here)

_trapz = getattr(np, "trapezoid", None) or np.trapz  # NumPy 2 renamed trapz


def iou_thresholds():
    """The 10 IoU thresholds of mAP@0.5:0.95 as float32, computed by the framework exactly as ultralytics does."""
    return to_numpy(torch.linspace(0.5, 0.95, 10))


def fitness(x, weights=(0.0, 0.0, 0.1, 0.9)):
    """Model fitness of result rows: 0.1 * mAP@0.5 + 0.9 * mAP@0.5:0.95 of rows [P, R, mAP@0.5, mAP@0.5:0.95, ...].

    Segmentation weighs its box and mask metrics alike: ``weights`` repeated (rows of 8 box-then-mask values)."""
    w = np.asarray(weights, dtype=np.float64)
    return (np.asarray(x)[:, :len(w)] * w).sum(1)


# ------------------------------------------------------------------------------------------- class statistics
def labels_to_class_weights(labels, nc=80):
    """Inverse class frequency of a list of (n, 5) label arrays, normalised to sum 1 (empty classes count as 1)."""
    if not len(labels) or not sum(len(lb) for lb in labels):
        return np.ones(nc, np.float32) / nc
    classes = np.concatenate(labels, 0)[:, 0].astype(int)
    weights = np.bincount(classes, minlength=nc).astype(np.float64)
    weights[weights == 0] = 1
    weights = 1 / weights
    return (weights / weights.sum()).astype(np.float32)


def labels_to_image_weights(labels, nc=80, class_weights=np.ones(80)):
    """Per-image sampling weight: sum of the class weights of its labels."""
    counts = np.array([np.bincount(lb[:, 0].astype(int), minlength=nc) for lb in labels])
    return (class_weights.reshape(1, nc) * counts).sum(1)


def smooth(y, f=0.05):
    """Box filter over a fraction f of the points (odd width), padded with the end values."""
    nf = round(len(y) * f * 2) // 2 + 1
    pad = np.ones(nf // 2)
    yp = np.concatenate((pad * y[0], y, pad * y[-1]), 0)
    return np.convolve(yp, np.ones(nf) / nf, mode="valid")


def compute_ap(recall, precision):
    """AP of one precision/recall curve: precision envelope, 101-point interpolation, trapezoidal integration.

    Returns:
        (ap, envelope precision, recall) with the sentinels [0 ... 1] / [1 ... 0] added.
    """
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    x = np.linspace(0, 1, 101)  # COCO's 101 recall points
    return _trapz(np.interp(x, mrec, mpre), x), mpre, mrec


def ap_per_class(tp, conf, pred_cls, target_cls, eps=1e-16, curves=None):
    """Per-class AP at every IoU threshold, and P, R, F1 at the confidence that maximises the class-mean F1.

    Args:
        tp: (N, T) bool, correct predictions per IoU threshold; conf: (N,) scores; pred_cls: (N,) classes.
        target_cls: (M,) classes of all labels.
        curves: a dict to fill with the PR / F1 / P / R curves for utils.plots.plot_ap_curves (None: not kept).
    Returns:
        tp, fp, p, r, f1 (each (C,)), ap (C, T), classes (C,) int, for the C classes that have labels.
    """
    tp, conf, pred_cls, target_cls = (np.asarray(a) for a in (tp, conf, pred_cls, target_cls))
    order = np.argsort(-conf)
    tp, conf, pred_cls = tp[order], conf[order], pred_cls[order]
    unique_classes, nt = np.unique(target_cls, return_counts=True)
    nc = unique_classes.shape[0]

    px, py = np.linspace(0, 1, 1000), []  # confidence axis of the curves; PR curves at IoU 0.5
    ap, p, r = np.zeros((nc, tp.shape[1])), np.zeros((nc, 1000)), np.zeros((nc, 1000))
    for ci, c in enumerate(unique_classes):
        i = pred_cls == c
        n_l, n_p = nt[ci], i.sum()
        if n_p == 0 or n_l == 0:
            continue
        fpc = (1 - tp[i]).cumsum(0)
        tpc = tp[i].cumsum(0)
        recall = tpc / (n_l + eps)
        precision = tpc / (tpc + fpc)
        r[ci] = np.interp(-px, -conf[i], recall[:, 0], left=0)  # conf decreases: interpolate on its negative
        p[ci] = np.interp(-px, -conf[i], precision[:, 0], left=1)
        for j in range(tp.shape[1]):
            ap[ci, j], mpre, mrec = compute_ap(recall[:, j], precision[:, j])
            if curves is not None and j == 0:
                py.append(np.interp(px, mrec, mpre))

    f1 = 2 * p * r / (p + r + eps)
    if curves is not None:
        curves.update(px=px, py=py, ap=ap, f1=f1, p=p, r=r, classes=unique_classes.astype(int))
    i = smooth(f1.mean(0), 0.1).argmax()
    p, r, f1 = p[:, i], r[:, i], f1[:, i]
    tp = (r * nt).round()
    fp = (tp / (p + eps) - tp).round()
    return tp, fp, p, r, f1, ap, unique_classes.astype(int)


# ------------------------------------------------------------------------------------------------------------ matching
class Metric:
    """The per-class results of ap_per_class for one kind of match (boxes; segmentation also has one for masks), and
    their means as val.py prints them.

    Attributes (empty until ``update``): tp, fp, p, r, f1 (C,) at the best-F1 confidence; all_ap (C, T) AP at every
    IoU threshold; ap_class_index (C,) the C classes that have labels.
    """

    def __init__(self):
        self.tp = self.fp = self.p = self.r = self.f1 = np.zeros(0)
        self.all_ap, self.ap_class_index = np.zeros((0, 0)), np.zeros(0, dtype=int)

    def update(self, results):
        """Take {'tp', 'fp', 'p', 'r', 'f1', 'ap', 'ap_class'} (ap_per_class's outputs by name)."""
        self.tp, self.fp = results.get("tp", self.tp), results.get("fp", self.fp)
        self.p, self.r, self.f1, self.all_ap = results["p"], results["r"], results["f1"], results["ap"]
        self.ap_class_index = results["ap_class"]

    @property
    def ap50(self):
        """AP@0.5 per class, (C,)."""
        return self.all_ap[:, 0] if len(self.all_ap) else np.zeros(0)

    @property
    def ap(self):
        """AP@0.5:0.95 per class, (C,)."""
        return self.all_ap.mean(1) if len(self.all_ap) else np.zeros(0)

    def mean_results(self):
        """(mp, mr, map50, map): the class means, 0 when nothing was matched."""
        if not len(self.all_ap):
            return 0.0, 0.0, 0.0, 0.0
        return float(self.p.mean()), float(self.r.mean()), float(self.ap50.mean()), float(self.ap.mean())

    def class_result(self, i):
        """(p, r, ap50, ap) of the i-th class with labels."""
        return self.p[i], self.r[i], self.ap50[i], self.ap[i]

    def get_maps(self, nc):
        """mAP@0.5:0.95 per class index 0..nc-1; classes without labels get the mean."""
        maps = np.zeros(nc) + self.mean_results()[3]
        for i, c in enumerate(self.ap_class_index):
            maps[c] = self.ap[i]
        return maps


def ap_results(tp, conf, pred_cls, target_cls, curves=None):
    """ap_per_class's outputs by name, as Metric.update takes them."""
    tp, fp, p, r, f1, ap, ap_class = ap_per_class(tp, conf, pred_cls, target_cls, curves=curves)
    return {"tp": tp, "fp": fp, "p": p, "r": r, "f1": f1, "ap": ap, "ap_class": ap_class}


def box_metrics(stats, curves=None):
    """The box Metric of a validation run from its per-image stats.

    Args:
        stats: per image, (correct (n, T), conf (n,), pred_cls (n,), target_cls (m,)).
        curves: optional dict that ap_per_class fills with the AP curves.
    Returns:
        (Metric, target classes of every label, as one array). As ultralytics, AP is computed only when some
        prediction is correct: otherwise every result stays 0.
    """
    metric = Metric()
    cols = [np.concatenate(x, 0) for x in zip(*stats)]
    if cols and cols[0].any():
        metric.update(ap_results(*cols, curves=curves))
    return metric, (cols[3] if cols else np.zeros(0))


def _unique_first(matches, col):
    """Rows of ``matches`` whose value in column ``col`` is seen first (np.unique order, as ultralytics)."""
    return matches[np.unique(matches[:, col], return_index=True)[1]]


def match_predictions(pred_classes, true_classes, iou, iouv):
    """Which predictions are true positives at each IoU threshold, matched exactly as ultralytics v7.0 val.py does.

    At each threshold, (label, prediction) pairs with IoU >= threshold and equal class are sorted by IoU, descending,
    and each prediction keeps its highest-IoU pair (np.unique). That step leaves the pairs ordered by prediction index,
    so a label claimed by several predictions then goes to the one listed first (for NMS output: the highest score),
    not to the one with the highest IoU: v7.0 comments out the re-sort between the two steps. COCOeval instead lets
    predictions in score order take the unmatched label of highest IoU; the two differ when predictions compete.

    Args:
        pred_classes: (N,); true_classes: (M,); iou: (M, N) IoU of labels with predictions; iouv: (T,) thresholds.
    Returns:
        (N, T) bool numpy array.
    """
    pred_classes, true_classes, iou = (np.asarray(to_numpy(a)) for a in (pred_classes, true_classes, iou))
    iouv = np.asarray(to_numpy(iouv))
    correct = np.zeros((pred_classes.shape[0], iouv.shape[0]), dtype=bool)
    same_class = true_classes[:, None] == pred_classes[None, :]
    for k, thr in enumerate(iouv):
        li, di = np.nonzero((iou >= thr) & same_class)
        if not li.size:
            continue
        matches = np.stack((li, di, iou[li, di]), 1).astype(iou.dtype)
        if li.size > 1:
            matches = matches[matches[:, 2].argsort()[::-1]]
            matches = _unique_first(matches, 1)
            matches = _unique_first(matches, 0)
        correct[matches[:, 1].astype(int), k] = True
    return correct


def process_batch(detections, labels, iouv):
    """True-positive matrix of one image's detections against its labels (val.py's process_batch).

    Args:
        detections: (N, 6) [x1, y1, x2, y2, conf, class]; labels: (M, 5) [class, x1, y1, x2, y2]; iouv: (T,).
            Tensors or numpy arrays, in the same coordinate frame.
    Returns:
        (N, T) bool, a tensor on the detections' device when detections is a tensor, else numpy.
    """
    iou = box_iou(labels[:, 1:], detections[:, :4])
    correct = match_predictions(detections[:, 5], labels[:, 0], iou, iouv)
    if is_tensor(detections):
        return torch.from_numpy(correct).to(detections.device)
    return correct


# -------------------------------------------------------------------------------------------------- confusion matrix
class ConfusionMatrix:
    """(nc + 1) x (nc + 1) counts, rows = predicted class, columns = true class; index nc is background.

    Detections below ``conf`` are ignored; a detection and a label match at IoU > ``iou_thres`` regardless of class.
    """

    def __init__(self, nc, conf=0.25, iou_thres=0.45):
        self.matrix = np.zeros((nc + 1, nc + 1))
        self.nc = nc
        self.conf = conf
        self.iou_thres = iou_thres

    def process_batch(self, detections, labels):
        """Add one image: detections (N, 6) [xyxy, conf, cls] or None, labels (M, 5) [cls, xyxy] (or (M,) classes
        when detections is None)."""
        labels = np.asarray(to_numpy(labels))
        if detections is None:
            for gc in labels.astype(int).reshape(-1):
                self.matrix[self.nc, gc] += 1  # missed: background
            return
        detections = np.asarray(to_numpy(detections))
        detections = detections[detections[:, 4] > self.conf]
        gt_classes = labels[:, 0].astype(int)
        detection_classes = detections[:, 5].astype(int)
        iou = box_iou(labels[:, 1:], detections[:, :4])

        li, di = np.nonzero(iou > self.iou_thres)
        if li.size:
            matches = np.stack((li, di, iou[li, di]), 1)
            if li.size > 1:
                matches = _unique_first(matches[matches[:, 2].argsort()[::-1]], 1)
                matches = _unique_first(matches[matches[:, 2].argsort()[::-1]], 0)
        else:
            matches = np.zeros((0, 3))

        n = matches.shape[0] > 0
        m0, m1 = matches[:, 0].astype(int), matches[:, 1].astype(int)
        for i, gc in enumerate(gt_classes):
            j = m0 == i
            if n and j.sum() == 1:
                self.matrix[detection_classes[m1[j]][0], gc] += 1  # matched (right or wrong class)
            else:
                self.matrix[self.nc, gc] += 1  # missed: background
        if n:
            for i, dc in enumerate(detection_classes):
                if not (m1 == i).any():
                    self.matrix[dc, self.nc] += 1  # false detection on background

    def tp_fp(self):
        """True and false positives per class (background excluded)."""
        tp = self.matrix.diagonal()
        fp = self.matrix.sum(1) - tp
        return tp[:-1], fp[:-1]

    def print(self):
        for row in self.matrix:
            print(" ".join(map(str, row)))
