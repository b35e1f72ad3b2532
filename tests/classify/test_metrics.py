"""Top-1/top-5 accuracy, validation loss averaging, per-class rows and the printed/logged text."""

import math

import numpy as np
import pytest

from utils.backend import from_numpy
from utils.classify import metrics as M

# 4 images, 7 classes. Rank of the target: image 0 first, image 1 second, image 2 last (7th), image 3 first.
LOGITS = np.array([[9, 1, 2, 3, 4, 5, 6],
                   [5, 7, 9, 1, 2, 3, 4],
                   [1, 2, 9, 0.5, 8, 7, 6.5],
                   [0, 0, 0, 5, 0, 0, 1]], np.float32)
TARGETS = np.array([0, 1, 3, 3])


def test_top1_top5_by_hand():
    m = M.ClassifyMetrics()
    m.update(from_numpy(LOGITS), from_numpy(TARGETS))
    acc, _ = m.accuracy()
    assert acc.tolist() == [[1, 1], [0, 1], [0, 0], [1, 1]]
    top1, top5, loss = m.compute()
    assert (top1, top5, loss) == (0.5, 0.75, 0.0)


def test_top5_is_all_classes_below_5_classes():
    m = M.ClassifyMetrics()
    m.update(from_numpy(LOGITS[:, :3]), from_numpy(np.array([2, 0, 1, 2])))
    assert m.compute()[:2] == (0.0, 1.0)


def test_loss_is_the_mean_of_batch_means():
    m = M.ClassifyMetrics()
    m.update(from_numpy(LOGITS[:3]), from_numpy(TARGETS[:3]), loss=0.9)
    m.update(from_numpy(LOGITS[3:]), from_numpy(TARGETS[3:]), loss=from_numpy(np.float32(0.3)))
    assert m.compute()[2] == pytest.approx(0.6)  # not (3 * 0.9 + 0.3) / 4


def test_per_class_rows_and_verbose_table():
    m = M.ClassifyMetrics()
    m.update(from_numpy(LOGITS), from_numpy(TARGETS))
    rows = m.per_class({0: "cat", 1: "dog", 3: "emu", 4: "yak"})
    assert rows[:3] == [("cat", 1, 1.0, 1.0), ("dog", 1, 0.0, 1.0), ("emu", 2, 0.5, 0.5)]
    name, n, t1, t5 = rows[3]
    assert (name, n) == ("yak", 0) and math.isnan(t1) and math.isnan(t5)
    lines = M.verbose_lines(4, 0.5, 0.75, rows)
    assert lines[0] == "                   Class      Images    top1_acc    top5_acc"
    assert lines[1] == "                     all           4         0.5        0.75"
    assert lines[4] == "                     emu           2         0.5         0.5"
    assert lines[5] == "                     yak           0         nan         nan"


def test_means_are_float32_as_pytorch():
    r, c = np.mgrid[0:12, 0:7]
    logits = -((c - r) % 7).astype(np.float32)  # row r ranks class (r + k) % 7 k-th
    rank = np.array([0] * 8 + [6] * 4)  # 8 images right at rank 0, 4 at the last rank
    m = M.ClassifyMetrics()
    m.update(from_numpy(logits), from_numpy((np.arange(12) + rank) % 7))
    assert m.compute()[:2] == (float(np.float32(8 / 12)), float(np.float32(8 / 12)))  # not 2/3 in float64


def test_empty_pass_is_an_error():
    with pytest.raises(ValueError):
        M.ClassifyMetrics().compute()


def test_results_csv_layout():
    keys = M.results_keys("test")
    assert keys == ("train/loss", "test/loss", "metrics/accuracy_top1", "metrics/accuracy_top5", "lr/0")
    header = M.results_csv_header(M.results_keys())
    assert header == ("                  epoch,             train/loss,               val/loss,  "
                      "metrics/accuracy_top1,  metrics/accuracy_top5,                   lr/0")
    row = M.results_csv_row(1, [1.123456789, 1.9876543, 0.5, 1.0, 0.00090100])
    assert row == ("                      1,                 1.1235,                 1.9877,                    0.5,"
                   "                      1,               0.000901")


def test_progress_text():
    assert M.train_header("val") == "     Epoch   GPU_mem  train_loss    val_loss    top1_acc    top5_acc"
    desc = M.train_description(0, 10, 0.0, 2.3456)
    assert desc == "      1/10        0G        2.35" + " " * 36
    assert M.val_description(desc, "validating") == "      1/10        0G        2.35" + " " * 26 + "validating"
    assert M.val_description(None, "testing") == "testing"
    assert M.val_result_description(desc, 2.2, 0.25, 0.91667) == \
        "      1/10        0G        2.35         2.2        0.25       0.917"
    assert M.train_description(9, 10, 1.23456, 0.5).startswith("     10/10     1.23G")
    assert M.running_mean(2.0, 5.0, 2) == 3.0


def test_val_action_and_speed_line(tmp_path):
    assert M.val_action(tmp_path / "val") == "validating" and M.val_action(tmp_path / "test") == "testing"
    assert M.speed_line((0.1, 0.2, 0.05), 100, 224) == \
        "Speed: 1.0ms pre-process, 2.0ms inference, 0.5ms post-process per image at shape (1, 3, 224, 224)"
