"""non_max_suppression on hand-made predictions with known answers, and against a plain-Python greedy NMS."""

import numpy as np
import pytest

from utils import nms as nms_module
from utils.backend import from_numpy, to_numpy
from utils.nms import MAX_WH, non_max_suppression


def _pred(rows, nc=3, nm=0):
    """rows: (x, y, w, h, obj, {class: score}[, masks]) -> a (1, n, 5 + nc + nm) prediction tensor."""
    out = np.zeros((1, len(rows), 5 + nc + nm), dtype=np.float32)
    for i, (x, y, w, h, obj, cls, *mask) in enumerate(rows):
        out[0, i, :5] = x, y, w, h, obj
        for c, s in cls.items():
            out[0, i, 5 + c] = s
        if mask:
            out[0, i, 5 + nc:] = mask[0]
    return from_numpy(out)


def _rows(det):
    return to_numpy(det).astype(np.float64).round(4).tolist()


def test_suppresses_overlap_within_a_class_and_keeps_score_order():
    p = _pred([(50, 50, 20, 20, 0.9, {0: 1.0}),     # kept
               (52, 50, 20, 20, 0.8, {0: 1.0}),     # IoU 0.82 with the first: suppressed
               (150, 50, 20, 20, 0.7, {0: 1.0}),    # far away: kept
               (250, 50, 20, 20, 0.2, {0: 1.0})])   # obj below conf_thres
    (det,) = non_max_suppression(p, conf_thres=0.25, iou_thres=0.45)
    assert _rows(det) == [[40, 40, 60, 60, 0.9, 0], [140, 40, 160, 60, 0.7, 0]]


def test_score_is_obj_times_class_and_best_class_only():
    p = _pred([(50, 50, 20, 20, 0.5, {0: 0.4, 1: 0.8, 2: 0.1})])
    (det,) = non_max_suppression(p, conf_thres=0.25)
    assert _rows(det) == [[40, 40, 60, 60, 0.4, 1]]  # 0.5 * 0.8; class 0 (0.2) not a row without multi_label
    (det,) = non_max_suppression(p, conf_thres=0.45)  # obj passes, best score 0.4 does not
    assert det.shape[0] == 0


def test_multi_label_gives_one_row_per_class_above_threshold():
    p = _pred([(50, 50, 20, 20, 0.5, {0: 0.6, 1: 0.8, 2: 0.1})])
    (det,) = non_max_suppression(p, conf_thres=0.25, multi_label=True)
    assert _rows(det) == [[40, 40, 60, 60, 0.4, 1], [40, 40, 60, 60, 0.3, 0]]  # same box, two classes, by score
    (single,) = non_max_suppression(_pred([(50, 50, 20, 20, 0.5, {0: 0.6})], nc=1), conf_thres=0.25, multi_label=True)
    assert _rows(single) == [[40, 40, 60, 60, 0.3, 0]]  # multi_label needs nc > 1


def test_agnostic_suppresses_across_classes():
    p = _pred([(50, 50, 20, 20, 0.9, {0: 1.0}), (51, 50, 20, 20, 0.8, {1: 1.0})])
    (det,) = non_max_suppression(p, conf_thres=0.25)
    assert det[:, 5].tolist() == [0, 1]  # class offset keeps both
    (det,) = non_max_suppression(p, conf_thres=0.25, agnostic=True)
    assert det[:, 5].tolist() == [0]


def test_class_offset_separates_identical_boxes_of_many_classes():
    nc = 80
    rows = [(300, 300, 600, 600, 0.99 - 0.005 * c, {c: 1.0}) for c in range(nc)]
    (det,) = non_max_suppression(_pred(rows, nc=nc), conf_thres=0.25, iou_thres=0.1)
    assert sorted(int(c) for c in to_numpy(det[:, 5])) == list(range(nc))
    assert MAX_WH == 7680


def test_classes_filter():
    p = _pred([(50, 50, 20, 20, 0.9, {0: 1.0}), (150, 50, 20, 20, 0.8, {1: 1.0}), (250, 50, 20, 20, 0.7, {2: 1.0})])
    (det,) = non_max_suppression(p, conf_thres=0.25, classes=[0, 2])
    assert det[:, 5].tolist() == [0, 2]


def test_max_det_keeps_the_highest_scores():
    rows = [(30 * i + 10, 10, 10, 10, 0.3 + 0.001 * i, {0: 1.0}) for i in range(50)]  # disjoint boxes
    (det,) = non_max_suppression(_pred(rows), conf_thres=0.25, max_det=7)
    np.testing.assert_allclose(to_numpy(det[:, 4]), [0.3 + 0.001 * i for i in range(49, 42, -1)], atol=1e-6)


def test_hybrid_labels_are_added_with_score_one():
    p = _pred([(50, 50, 20, 20, 0.9, {0: 1.0})])
    labels = [from_numpy(np.array([[2, 150, 50, 20, 20]], dtype=np.float32))]
    (det,) = non_max_suppression(p, conf_thres=0.25, labels=labels)
    assert _rows(det) == [[140, 40, 160, 60, 1.0, 2], [40, 40, 60, 60, 0.9, 0]]


def test_mask_columns_follow_their_box():
    p = _pred([(50, 50, 20, 20, 0.5, {1: 1.0}, [2.0, -4.0])], nc=2, nm=2)
    (det,) = non_max_suppression(p, conf_thres=0.25, nm=2)
    assert _rows(det) == [[40, 40, 60, 60, 0.5, 1, 1.0, -2.0]]  # scaled by obj, as ultralytics' NMS does


def test_batches_tuples_and_empty_images():
    p = _pred([(50, 50, 20, 20, 0.9, {0: 1.0})])
    empty = _pred([(50, 50, 20, 20, 0.01, {0: 1.0})])
    batch = from_numpy(np.concatenate([to_numpy(empty), to_numpy(p)], 0))
    out = non_max_suppression((batch, None), conf_thres=0.25)  # the eval-mode model's (pred, maps) tuple
    assert [o.shape[0] for o in out] == [0, 1] and tuple(out[0].shape) == (0, 6)


def test_invalid_thresholds_raise():
    p = _pred([(50, 50, 20, 20, 0.9, {0: 1.0})])
    with pytest.raises(ValueError, match="confidence"):
        non_max_suppression(p, conf_thres=1.5)
    with pytest.raises(ValueError, match="IoU"):
        non_max_suppression(p, iou_thres=-0.1)


def test_time_limit_warns_but_keeps_every_image(monkeypatch):
    messages = []
    monkeypatch.setattr(nms_module, "time_limit_s", lambda bs: -1.0)  # every image is "late"
    monkeypatch.setattr(nms_module.LOGGER, "warning", messages.append)
    one = to_numpy(_pred([(50, 50, 20, 20, 0.9, {0: 1.0})]))
    out = non_max_suppression(from_numpy(np.concatenate([one] * 4, 0)), conf_thres=0.25)
    assert [o.shape[0] for o in out] == [1, 1, 1, 1]
    assert len(messages) == 1 and "time limit" in messages[0] and "last 3" in messages[0]


# ------------------------------------------------------------------------------------------ brute-force reference
def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _reference(pred, conf_thres, iou_thres, multi_label, agnostic, max_det):
    """Greedy NMS written out per (box, class) pair, in plain Python."""
    cands = []
    for x, y, w, h, obj, *cls in pred.tolist():
        if obj <= conf_thres:
            continue
        box = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
        scores = [obj * s for s in cls]
        pairs = [(s, c) for c, s in enumerate(scores) if s > conf_thres] if multi_label else \
            [(max(scores), scores.index(max(scores)))] if max(scores) > conf_thres else []
        cands += [(s, c, box) for s, c in pairs]
    cands.sort(key=lambda t: -t[0])
    kept = []
    for s, c, box in cands:
        if all(_iou(box, kb) <= iou_thres for ks, kc, kb in kept if agnostic or kc == c):
            kept.append((s, c, box))
    return kept[:max_det]


@pytest.mark.parametrize("multi_label,agnostic", [(False, False), (True, False), (False, True)])
def test_matches_plain_python_greedy_nms(multi_label, agnostic):
    rng = np.random.default_rng(3)
    n, nc = 300, 4
    p = np.zeros((1, n, 5 + nc), dtype=np.float32)
    p[0, :, :2] = rng.uniform(20, 200, (n, 2))
    p[0, :, 2:4] = rng.uniform(8, 60, (n, 2))
    p[0, :, 4] = rng.uniform(0, 1, n)
    p[0, :, 5:] = rng.uniform(0, 1, (n, nc))
    (det,) = non_max_suppression(from_numpy(p), conf_thres=0.1, iou_thres=0.5, multi_label=multi_label,
                                 agnostic=agnostic, max_det=40)
    ref = _reference(p[0].astype(np.float64), 0.1, 0.5, multi_label, agnostic, 40)
    det = to_numpy(det)
    assert len(det) == len(ref) == 40
    np.testing.assert_allclose(det[:, 4], [s for s, _, _ in ref], atol=1e-6)
    np.testing.assert_array_equal(det[:, 5], [c for _, c, _ in ref])
    np.testing.assert_allclose(det[:, :4], [b for _, _, b in ref], atol=1e-4)
