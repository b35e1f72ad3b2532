"""The classification image grid and results.png."""

import cv2
import numpy as np
import pytest

from utils.backend import from_numpy
from utils.classify.metrics import results_csv_header, results_csv_row, results_keys
from utils.classify.plots import imshow_cls, plot_cls_results
from utils.classify.transforms import normalize


def _batch(n, s=16):
    rng = np.random.default_rng(n)
    return from_numpy(np.stack([normalize(rng.random((3, s, s)).astype(np.float32)) for _ in range(n)]))


@pytest.mark.parametrize("n", [1, 2, 3, 9, 30])
def test_grid_for_any_batch_size(tmp_path, n):
    labels = from_numpy(np.arange(n) % 3)
    f = imshow_cls(_batch(n), labels, labels, names=["cat", "dog", "emu"], f=tmp_path / "g.jpg")
    im = cv2.imread(str(f))
    assert im is not None and im.shape[0] > 50 and im.shape[1] > 50


def test_grid_without_labels_and_dict_names(tmp_path, log_lines):
    assert cv2.imread(str(imshow_cls(_batch(4), f=tmp_path / "a.jpg"))) is not None
    f = imshow_cls(_batch(4), from_numpy(np.array([0, 1, 5, 1])), names={0: "cat", 1: "dog"}, verbose=True,
                   f=tmp_path / "b.jpg")
    assert f.exists()
    assert any(line.startswith("True:") and "class5" in line for line in log_lines)


def test_results_png(tmp_path):
    csv = tmp_path / "results.csv"
    rows = [results_csv_row(e, [2.0 - e / 10, 2.1 - e / 10, 0.1 * e, 0.3 + 0.1 * e, 1e-3]) for e in range(3)]
    csv.write_text("\n".join([results_csv_header(results_keys()), *rows]) + "\n")
    out = plot_cls_results(csv)
    assert out == tmp_path / "results.png" and cv2.imread(str(out)) is not None
    assert plot_cls_results(tmp_path / "missing.csv") is None
