"""Box + mask metrics on hand-made cases: mask matching, AP of both kinds, the summary, fitness, columns, COCO JSON."""

import json
import subprocess

import numpy as np
import pytest

from tests.conftest import ROOT, reference_env
from utils.backend import from_numpy, to_numpy
from utils.metrics import iou_thresholds, process_batch
from utils.segment.metrics import (BEST_KEYS, KEYS, METRIC_KEYS, RESULTS_CSV_WIDTH, TRAIN_HEADER, TRAIN_ROW,
                                   VAL_HEADER, VAL_ROW, Metrics, ap_per_class_box_and_mask, coco_evaluate_masks,
                                   compute_metrics, fitness, image_gt_masks, mask_ious, process_batch_masks,
                                   prediction_rows_with_masks, yolo_to_coco_segments)

IOUV = iou_thresholds()


def _square(h, w, y1, x1, y2, x2):
    m = np.zeros((h, w), np.float32)
    m[y1:y2, x1:x2] = 1
    return m


# --------------------------------------------------------------------------------------------------------- columns
def test_columns_and_headers():
    assert len(KEYS) == 19 and KEYS[:4] == ["train/box_loss", "train/seg_loss", "train/obj_loss", "train/cls_loss"]
    assert KEYS[4:8] == ["metrics/precision(B)", "metrics/recall(B)", "metrics/mAP_0.5(B)",
                         "metrics/mAP_0.5:0.95(B)"]
    assert KEYS[8:12] == [k.replace("(B)", "(M)") for k in KEYS[4:8]] and METRIC_KEYS == KEYS[4:12]
    assert KEYS[12:] == ["val/box_loss", "val/seg_loss", "val/obj_loss", "val/cls_loss", "x/lr0", "x/lr1", "x/lr2"]
    assert BEST_KEYS[0] == "best/epoch" and len(BEST_KEYS) == 9 and RESULTS_CSV_WIDTH == 23
    assert TRAIN_HEADER.split() == ["Epoch", "GPU_mem", "box_loss", "seg_loss", "obj_loss", "cls_loss", "Instances",
                                    "Size"]
    assert len(TRAIN_ROW % ("0/9", "0G", 1, 2, 3, 4, 5, 64)) == 88
    assert VAL_HEADER.split() == ["Class", "Images", "Instances", "Box(P", "R", "mAP50", "mAP50-95)", "Mask(P", "R",
                                  "mAP50", "mAP50-95)"]
    assert len(VAL_HEADER) == len(VAL_ROW % ("all", 1, 2, *range(8))) == 132


def test_fitness_weighs_boxes_and_masks():
    x = np.array([[0.9, 0.8, 0.5, 0.3, 0.7, 0.6, 0.4, 0.2]])
    np.testing.assert_allclose(fitness(x), [0.1 * 0.5 + 0.9 * 0.3 + 0.1 * 0.4 + 0.9 * 0.2])


# -------------------------------------------------------------------------------------------------------- matching
def test_image_gt_masks_selects_the_image():
    targets = np.array([[0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]], np.float32)
    per = from_numpy(np.arange(3)[:, None, None] * np.ones((3, 2, 2), np.float32))
    assert to_numpy(image_gt_masks(per, from_numpy(targets), 1, overlap=False))[:, 0, 0].tolist() == [1, 2]
    assert tuple(image_gt_masks(per, targets, 2, overlap=False).shape) == (0, 2, 2)
    index = from_numpy(np.zeros((2, 4, 4), np.float32))
    assert tuple(image_gt_masks(index, targets, 1, overlap=True).shape) == (1, 4, 4)


@pytest.mark.parametrize("overlap", [True, False])
def test_mask_ious_resize_ground_truth_to_predictions(overlap):
    # ground truth at 8 x 8: instance 1 the top-left 4 x 4, instance 2 the right half; predictions at 4 x 4
    g1, g2 = _square(8, 8, 0, 0, 4, 4), _square(8, 8, 0, 4, 8, 8)
    gt = (g1 + 2 * g2)[None] if overlap else np.stack((g1, g2))
    preds = np.stack((_square(4, 4, 0, 0, 2, 2), _square(4, 4, 0, 0, 4, 2), _square(4, 4, 0, 2, 4, 4)))
    iou = to_numpy(mask_ious(from_numpy(preds), from_numpy(gt), 2, overlap))
    np.testing.assert_allclose(iou, [[1, 0.5, 0], [0, 0, 1]], atol=1e-6)


def test_box_hit_can_be_a_mask_miss():
    """Two predictions with the label's exact box: the one whose mask is the label's is right by mask; both boxes
    compete for one label, so only the first listed is right by box."""
    labels = np.array([[0, 0, 0, 8, 8]], np.float32)
    dets = np.array([[0, 0, 8, 8, 0.9, 0], [0, 0, 8, 8, 0.8, 0]], np.float32)
    gt = _square(8, 8, 0, 0, 8, 4)[None]  # left half
    preds = np.stack((_square(8, 8, 0, 4, 8, 8), _square(8, 8, 0, 0, 8, 4)))  # right half, left half
    tp_b = process_batch(dets, labels, IOUV)
    tp_m = process_batch_masks(dets, labels, IOUV, from_numpy(preds), from_numpy(gt), overlap=False)
    assert tp_b[:, 0].tolist() == [True, False] and tp_m[:, 0].tolist() == [False, True]
    assert tp_m.shape == (2, 10) and tp_m[1].all()
    as_tensor = process_batch_masks(from_numpy(dets), from_numpy(labels), IOUV, from_numpy(preds), from_numpy(gt),
                                    overlap=False)
    np.testing.assert_array_equal(to_numpy(as_tensor), tp_m)


# -------------------------------------------------------------------------------------------------------------- AP
def _stats(correct_masks):
    """Image of 2 labels (classes 0, 1), 2 predictions right by box; by mask as given."""
    tp_b = np.ones((2, 10), bool)
    return (np.asarray(correct_masks, bool), tp_b, np.array([0.9, 0.8]), np.array([0.0, 1.0]), np.array([0.0, 1.0]))


def test_ap_of_boxes_and_masks_and_the_summary():
    tp_m = np.zeros((2, 10), bool)
    tp_m[0] = True  # class 0's mask right, class 1's wrong
    curves = {}
    res = ap_per_class_box_and_mask(*_stats(tp_m), curves=curves)
    assert set(res) == {"boxes", "masks"} and set(curves) == {"Box", "Mask"}
    np.testing.assert_allclose(res["boxes"]["ap"], 0.995, atol=1e-3)  # 101-point AP of a perfect class
    np.testing.assert_allclose(res["masks"]["ap"][:, 0], [0.995, 0.0], atol=1e-3)
    m, tcls = compute_metrics([_stats(tp_m)])
    b_mp, b_mr, b_map50, b_map, m_mp, m_mr, m_map50, m_map = m.mean_results()
    assert b_mp == pytest.approx(1.0) and b_map == pytest.approx(0.995, abs=1e-3)
    assert m_map50 == pytest.approx(0.995 / 2, abs=1e-3) and m_mr == pytest.approx(0.5, abs=1e-3)
    assert list(m.ap_class_index) == [0, 1] and len(m.class_result(1)) == 8 and tcls.tolist() == [0, 1]
    maps = m.get_maps(3)  # box + mask per class; class 2 (no labels) gets the sum of the means
    np.testing.assert_allclose(maps, [0.995 * 2, 0.995, 0.995 + 0.995 / 2], atol=1e-3)


def test_no_mask_hit_reports_zero_for_boxes_too():
    """ultralytics computes AP only when some prediction is right by its mask."""
    m, _ = compute_metrics([_stats(np.zeros((2, 10), bool))])
    assert m.mean_results() == (0.0,) * 8 and isinstance(m, Metrics)
    empty, tcls = compute_metrics([])
    assert empty.mean_results() == (0.0,) * 8 and len(tcls) == 0


# ------------------------------------------------------------------------------------------------------- COCO JSON
def test_json_rows_carry_rle_masks(tmp_path):
    from pycocotools import mask as mask_utils

    predn = np.array([[2, 3, 10, 12, 0.876543, 1], [0, 0, 4, 4, 0.5, 0]], np.float32)
    masks = np.zeros((16, 20, 2), np.uint8)
    masks[3:12, 2:10, 0] = 1
    masks[0:4, 0:4, 1] = 1
    rows = prediction_rows_with_masks(predn, tmp_path / "42.jpg", list(range(1000)), masks)
    assert [r["image_id"] for r in rows] == [42, 42] and rows[0]["category_id"] == 1
    assert rows[0]["bbox"] == [2.0, 3.0, 8.0, 9.0] and rows[0]["score"] == 0.87654
    for k, r in enumerate(rows):
        seg = r["segmentation"]
        assert seg["size"] == [16, 20] and isinstance(seg["counts"], str)
        np.testing.assert_array_equal(mask_utils.decode(dict(seg, counts=seg["counts"].encode())), masks[:, :, k])
    json.dumps(rows)  # serialisable as written by --save-json


def test_pycocotools_scores_perfect_masks_as_one(tmp_path):
    w, h = 40, 30
    labels = [np.array([[0, 0.3, 0.4, 0.3, 0.4], [1, 0.7, 0.6, 0.4, 0.5]], np.float32)]
    polys = [[np.array([[0.15, 0.2], [0.45, 0.2], [0.45, 0.6], [0.15, 0.6]], np.float32),
              np.array([[0.5, 0.35], [0.9, 0.35], [0.9, 0.85], [0.5, 0.85]], np.float32)]]
    anno = yolo_to_coco_segments(["img/7.jpg"], labels, polys, [(w, h)], {0: "a", 1: "b"})
    assert anno["annotations"][0]["segmentation"][0][:2] == [6.0, 6.0] and anno["annotations"][0]["area"] > 0
    (tmp_path / "anno.json").write_text(json.dumps(anno))
    masks = np.zeros((h, w, 2), np.uint8)
    masks[6:18, 6:18, 0] = 1
    masks[10:25, 20:36, 1] = 1
    predn = np.array([[6, 6, 18, 18, 0.9, 0], [20, 10.5, 36, 25.5, 0.8, 1]], np.float32)
    rows = prediction_rows_with_masks(predn, "img/7.jpg", list(range(1000)), masks)
    (tmp_path / "pred.json").write_text(json.dumps(rows))
    map_b, map50_b, map_m, map50_m = coco_evaluate_masks(tmp_path / "anno.json", tmp_path / "pred.json")
    assert map50_b == pytest.approx(1.0) and map50_m == pytest.approx(1.0) and map_m > 0.8


# ------------------------------------------------------------------------------------------------------- reference
@pytest.mark.reference
def test_matching_and_metrics_equal_ultralytics(reference_python, tmp_path):
    out = tmp_path / "ref.npz"
    r = subprocess.run([reference_python, "tests/parity/ultralytics_seg_metrics.py", str(out)], cwd=ROOT,
                       env=reference_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    z = np.load(out)
    stats = []
    for i in range(6):
        dets, labels = z[f"dets{i}"], z[f"labels{i}"]
        pm = from_numpy(z[f"pm{i}"])
        tpm_ov = process_batch_masks(dets, labels, IOUV, pm, from_numpy(z[f"ov{i}"]), overlap=True)
        tpm = process_batch_masks(dets, labels, IOUV, pm, from_numpy(z[f"gt{i}"]), overlap=False)
        tpb = process_batch(dets, labels, IOUV)
        np.testing.assert_array_equal(tpm_ov, z[f"tpm_ov{i}"])
        np.testing.assert_array_equal(tpm, z[f"tpm{i}"])
        np.testing.assert_array_equal(tpb, z[f"tpb{i}"])
        stats.append((tpm, tpb, dets[:, 4], dets[:, 5], labels[:, 0]))
    assert sum(int(s[0].sum()) for s in stats) > 0  # some mask hits, some misses: the cases differ
    m, _ = compute_metrics(stats)
    np.testing.assert_allclose(m.mean_results(), z["mean_results"], rtol=1e-6)
    np.testing.assert_allclose(m.get_maps(3), z["maps"], rtol=1e-6)
    np.testing.assert_allclose(fitness(np.array([m.mean_results()])), z["fitness"], rtol=1e-6)
