"""The learning-rate schedule of train.py and segment/train.py, epoch by epoch, against ultralytics YOLOv5 v7.0.

Warmup (100 iterations here) then the linear schedule: ultralytics' logged x/lr0..2 are reproduced exactly, including
its one-epoch lag after warmup (it sets scheduler.last_epoch after LambdaLR's constructor has already stepped).
"""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, reference_env

pytestmark = [pytest.mark.reference, pytest.mark.slow]
ARGS = ["--img", "64", "--batch", "2", "--epochs", "6", "--weights", "", "--workers", "0", "--noplots",
        "--noautoanchor", "--optimizer", "SGD"]


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_lr_columns_match_ultralytics(task, reference_python, tmp_path):
    from utils.data.synthetic import make_dataset

    data = make_dataset(tmp_path / "ds", n_train=64, n_val=4, imgsz=64, seed=6, task=task)
    cfg = "yolov5n-seg.yaml" if task == "segment" else "yolov5n.yaml"
    script, module = ("segment/train.py", "yolov5.segment.train") if task == "segment" else ("train.py", "yolov5.train")
    common = [*ARGS, "--data", str(data), "--cfg", cfg, "--project", str(tmp_path)]
    ref = subprocess.run([reference_python, "-m", module, *common, "--name", "ref"], cwd=tmp_path,
                         env=reference_env(), capture_output=True, text=True, timeout=1800)
    assert ref.returncode == 0, ref.stderr[-3000:]
    ours = subprocess.run([sys.executable, script, *common, "--name", "ours"], cwd=ROOT, capture_output=True,
                          text=True, timeout=1800)
    assert ours.returncode == 0, ours.stderr[-3000:]
    cols = ["x/lr0", "x/lr1", "x/lr2"]

    def lr(run):
        df = pd.read_csv(tmp_path / run / "results.csv")
        df.columns = [c.strip() for c in df.columns]
        return df[df["epoch"] < 6][cols].values  # ultralytics' segment logger adds a row for the final validation

    a, b = lr("ours"), lr("ref")
    assert a.shape == b.shape == (6, 3)
    np.testing.assert_allclose(a, b, rtol=1e-4)
    assert not np.allclose(a[4:], a[3:5]), "the schedule moves after warmup"
