"""utils/loggers: TensorBoard by default (tags read back with tensorboard's EventAccumulator), trackers when set up,
one warning for the logger flags that do nothing here, and results.png without the epochs --noval did not validate."""

import sys
import types

import numpy as np
import pandas as pd
import pytest

from tests.utils.tb_events import read_events
from utils.data.synthetic import make_dataset
from utils.loggers import DETECT_KEYS, GenericLogger, Loggers, remote, validated_rows

pytest.importorskip("tensorboard")


@pytest.fixture
def log_lines(log_lines, monkeypatch):
    """The shared log_lines (tests/conftest.py), with the warn-once memory empty and no tracker installed."""
    monkeypatch.setattr(remote, "_warned", set())
    for name in ("wandb", "clearml", "comet_ml"):  # a developer's own tracker set-up must not leak into the tests
        monkeypatch.setitem(sys.modules, name, None)
    return log_lines


# --------------------------------------------------------------------------------------------- a real training run
@pytest.fixture(scope="module")
def noval_run(tmp_path_factory):
    """train.py for 2 epochs with --noval (epoch 0 not validated), plots on, two inert logger flags; returns
    (run folder, log lines)."""
    import train
    from utils.log import LOGGER

    data = make_dataset(tmp_path_factory.mktemp("syn"), n_train=8, n_val=4, imgsz=64, seed=0)
    project = tmp_path_factory.mktemp("runs")
    opt = train.parse_opt(known=True)
    for k, v in dict(data=str(data), cfg="yolov5n.yaml", weights="", imgsz=64, epochs=2, batch_size=8, workers=0,
                     project=str(project / "train"), name="exp", noautoanchor=True, noval=True, patience=100,
                     entity="someone", bbox_interval=2).items():
        setattr(opt, k, v)
    lines = []
    with pytest.MonkeyPatch.context() as mp:
        for level in ("info", "warning"):
            original = getattr(LOGGER, level)
            mp.setattr(LOGGER, level, lambda msg, *a, _o=original, **k: (lines.append(str(msg)), _o(msg, *a, **k)))
        mp.setattr(remote, "_warned", set())
        for name in ("wandb", "clearml", "comet_ml"):  # not imported even where a developer has them
            mp.setitem(sys.modules, name, None)
        train.main(opt)
    return project / "train" / "exp", lines


def test_event_file_holds_every_results_csv_column(noval_run):
    run, lines = noval_run
    assert list(run.glob("events.out.tfevents.*")), "an event file in the run folder"
    df = pd.read_csv(run / "results.csv")
    df.columns = [c.strip() for c in df.columns]
    scalars, _ = read_events(run)
    assert set(scalars) == set(df.columns[1:]) == set(DETECT_KEYS)
    for tag, points in scalars.items():
        for step, value in points:
            assert value == pytest.approx(df.loc[df.epoch == step, tag].item(), rel=1e-4, abs=1e-9), (tag, step)
    print("tags read back:", sorted(scalars))
    assert any("TensorBoard: " in s and f"tensorboard --logdir {run.parent}" in s and "http://localhost:6006/" in s
               for s in lines)


def test_noval_epochs_log_no_validation_values(noval_run):
    run, _ = noval_run
    scalars, _ = read_events(run)
    for tag in DETECT_KEYS:
        steps = [s for s, _ in scalars[tag]]
        validated = tag.startswith(("metrics/", "val/"))
        assert steps == ([1] if validated else [0, 1]), (tag, steps)  # epoch 0 was not validated
    df = pd.read_csv(run / "results.csv")
    df.columns = [c.strip() for c in df.columns]
    assert (df.loc[0, ["metrics/precision", "val/box_loss"]] == 0).all(), "the CSV keeps ultralytics' zero filler"
    assert list(validated_rows(list(df.columns), df.values)) == [False, True]


def test_result_images_are_logged_at_the_end(noval_run):
    run, _ = noval_run
    _, images = read_events(run)
    assert {"results", "confusion_matrix"} <= set(images), images
    expected = {f.stem for f in run.glob("*.png") if f.stem in
                ("results", "confusion_matrix", "F1_curve", "PR_curve", "P_curve", "R_curve")}
    assert set(images) == expected
    step, w, h = images["results"][0]
    assert step == 1 and (w, h) == (2400, 1200)  # results.png (12 x 6 in, 200 dpi), at the last epoch


def test_inert_logger_flags_warn_once_in_a_run(noval_run):
    _, lines = noval_run
    warned = [s for s in lines if "nothing in this run" in s]
    assert len(warned) == 1, warned
    assert "--entity" in warned[0] and "--bbox_interval" in warned[0] and "--bucket" not in warned[0]


# ------------------------------------------------------------------------------------------------- the pieces
def test_loggers_log_each_epoch_and_detach(tmp_path, log_lines):
    from utils.callbacks import Callbacks

    cb = Callbacks()
    loggers = Loggers(tmp_path, opt={"epochs": 3, "project": str(tmp_path)}, hyp={})
    loggers.register(cb)
    rows = [[0.1 * e + i for i in range(len(DETECT_KEYS))] for e in range(3)]
    for e, row in enumerate(rows):
        cb.run("on_fit_epoch_end", row, e, 0.0, 0.0)
    loggers.detach()
    assert all(not cb.get_registered_actions(h) for h in cb.get_registered_actions())
    scalars, _ = read_events(tmp_path)
    assert sorted(scalars) == sorted(DETECT_KEYS)
    for i, k in enumerate(DETECT_KEYS):
        np.testing.assert_allclose([v for _, v in scalars[k]], [r[i] for r in rows], rtol=1e-6)
        assert [s for s, _ in scalars[k]] == [0, 1, 2]


def test_segment_and_classify_images(tmp_path, log_lines):
    import cv2

    from utils.engine.classification import ClassificationTrainer
    from utils.engine.segmentation import SegmentationTrainer

    seg, cls = tmp_path / "seg", tmp_path / "cls"
    for folder, names in ((seg, ("results.png", "val_batch0_pred.jpg", "train_batch0.jpg")),
                          (cls, ("train_images.jpg", "test_images.jpg"))):
        folder.mkdir()
        for n in names:
            cv2.imwrite(str(folder / n), np.full((20, 30, 3), 200, np.uint8))
    keys = ("train/box_loss", "train/seg_loss", "metrics/mAP_0.5(M)", "val/box_loss", "x/lr0")
    loggers = Loggers(seg, opt={"epochs": 2}, keys=keys, plan=SegmentationTrainer.log_plan)
    loggers.on_train_batch_end(None, 10, None, None, None)
    loggers.on_train_end(seg / "last.pt", seg / "best.pt", 1, (0.5, 0.25))
    scalars, images = read_events(seg)
    assert images == {"train_batch0": [(0, 30, 20)], "results": [(2, 30, 20)], "val_batch0_pred": [(2, 30, 20)]}
    assert scalars == {"metrics/mAP_0.5(M)": [(2, 0.5)], "val/box_loss": [(2, 0.25)]}  # the final validation
    loggers = Loggers(cls, opt={"epochs": 2}, keys=("train/loss",), plan=ClassificationTrainer.log_plan)
    loggers.on_pretrain_routine_end()
    loggers.on_train_end(cls / "last.pt", cls / "best.pt", 1, ())
    assert read_events(cls)[1] == {"train_images": [(0, 30, 20)], "test_images": [(1, 30, 20)]}


def test_generic_logger_writes_csv_and_events(tmp_path, log_lines):
    logger = GenericLogger({"save_dir": str(tmp_path), "project": "runs/train-cls", "name": "exp"})
    logger.log_metrics({"train/loss": 1.5, "lr/0": 0.01}, 0)
    logger.log_metrics({"train/loss": 1.25, "lr/0": 0.005}, 1)
    logger.close()
    df = pd.read_csv(tmp_path / "results.csv")
    df.columns = [c.strip() for c in df.columns]
    assert list(df.columns) == ["epoch", "train/loss", "lr/0"] and list(df["train/loss"]) == [1.5, 1.25]
    assert read_events(tmp_path)[0]["train/loss"] == [(0, 1.5), (1, 1.25)]


def test_unused_flags_warn_once(log_lines):
    opt = {"entity": "me", "upload_dataset": True, "bbox_interval": -1, "artifact_alias": "latest", "bucket": "b"}
    assert remote.unused_flags(opt) == ["entity", "upload_dataset", "bucket"]
    assert remote.unused_flags(opt, wandb_active=True) == ["upload_dataset", "bucket"]
    remote.warn_unused_flags(opt)
    remote.warn_unused_flags(opt)
    warned = [s for s in log_lines if "nothing in this run" in s]
    assert len(warned) == 1 and all(f"--{k}" in warned[0] for k in ("entity", "upload_dataset", "bucket"))
    assert remote.warn_unused_flags({"entity": None, "bucket": ""}) == []  # defaults: nothing to say


class _FakeRun:
    def __init__(self, **kwargs):
        self.init, self.logged, self.finished, self.id = kwargs, [], False, "abc"
        self.config = types.SimpleNamespace(update=lambda *a, **k: None)

    def log(self, data, step=None):
        self.logged.append((step, data))

    def finish(self):
        self.finished = True


def test_wandb_is_used_when_installed_and_logged_in(tmp_path, log_lines, monkeypatch):
    runs = []
    fake = types.ModuleType("wandb")
    fake.__version__ = "0.0-test"
    fake.api = types.SimpleNamespace(api_key="key")
    fake.init = lambda **kw: runs.append(_FakeRun(**kw)) or runs[-1]
    fake.Image = lambda path, caption=None: ("image", caption)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    opt = {"epochs": 1, "project": str(tmp_path / "runs" / "train"), "name": "exp", "entity": "team",
           "upload_dataset": True}
    loggers = Loggers(tmp_path, opt=opt, hyp={"lr0": 0.01})
    row = [float(i) for i in range(len(DETECT_KEYS))]
    loggers.on_fit_epoch_end(row, 0, 0.0, 0.0)
    loggers.detach()
    (run,) = runs
    assert run.init["project"] == "YOLOv5" and run.init["entity"] == "team" and run.init["config"]["hyp"]["lr0"] == 0.01
    assert run.logged == [(0, dict(zip(DETECT_KEYS, row)))] and run.finished
    warned = [s for s in log_lines if "nothing in this run" in s]
    assert len(warned) == 1 and "--upload_dataset" in warned[0] and "--entity" not in warned[0]


def test_an_installed_tracker_without_set_up_is_not_used(tmp_path, log_lines, monkeypatch):
    fake = types.ModuleType("comet_ml")
    fake.__version__ = "0.0-test"
    fake.Experiment = lambda **kw: pytest.fail("Comet started without an API key")
    monkeypatch.setitem(sys.modules, "comet_ml", fake)
    for k in ("COMET_API_KEY", "COMET_MODE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    Loggers(tmp_path, opt={"epochs": 1}).detach()
    assert any("Comet: " in s and "not set up" in s for s in log_lines)


# ---------------------------------------------------------------------------------------------------- results.png
def _results_csv(folder, rows, keys=DETECT_KEYS):
    folder.mkdir(parents=True, exist_ok=True)
    header = ("%20s," * (len(keys) + 1) % ("epoch", *keys)).rstrip(",")
    lines = [("%20.5g," * (len(keys) + 1) % tuple(r)).rstrip(",") for r in rows]
    (folder / "results.csv").write_text("\n".join([header, *lines]) + "\n")
    return folder / "results.csv"


def _noval_rows(n, n_keys):
    rows = []
    for e in range(n):
        train, lr = [1.0 - 0.1 * e] * 3, [0.01] * 3
        measured = e == n - 1
        metrics, val = ([0.6, 0.5, 0.4, 0.2], [0.05, 0.03, 0.01]) if measured else ([0.0] * 4, [0.0] * 3)
        rows.append([e, *train, *metrics, *val, *lr][:n_keys + 1])
    return rows


def test_plot_results_skips_unvalidated_epochs(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    from utils.train_plots import plot_results

    drawn = []  # (x, y) of each series, in panel order
    original = Axes.plot

    def spy(self, x, y, *args, **kwargs):
        drawn.append(([float(v) for v in x], [float(v) for v in y]))
        return original(self, x, y, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", spy)
    plot_results(_results_csv(tmp_path, _noval_rows(4, len(DETECT_KEYS))))
    assert (tmp_path / "results.png").is_file()
    series = drawn
    assert len(series) == 10
    assert [s[0] for s in series[:3]] == [[0, 1, 2, 3]] * 3  # train losses: every epoch
    assert all(s == ([3], [v]) for s, v in zip(series[3:8], [0.6, 0.5, 0.05, 0.03, 0.01]))  # P, R, val losses
    assert series[8:] == [([3], [0.4]), ([3], [0.2])]  # mAP@0.5, mAP@0.5:0.95: no zeros before the last epoch


def test_validated_rows():
    keys = ["epoch", "train/box_loss", "metrics/precision", "val/box_loss", "x/lr0"]
    rows = [[0, 1, 0, 0, 0.1], [1, 1, 0, 0.2, 0.1], [2, 1, 0, 0, 0.1], [3, 1, 0, 0, 0.1]]
    assert list(validated_rows(keys, rows)) == [False, True, False, True]  # the last row is always validated
    assert list(validated_rows(["epoch", "train/loss", "lr/0"], [[0, 1, 0.1]])) == [True]


def test_plot_results_with_masks_skips_unvalidated_epochs(tmp_path):
    from utils.engine.segmentation import SegmentationTrainer
    from utils.segment.plots import plot_results_with_masks

    keys = SegmentationTrainer.result_keys()
    rows = []
    for e in range(3):
        measured = e == 2
        metrics = [0.5] * 8 if measured else [0.0] * 8
        val = [0.1] * 4 if measured else [0.0] * 4
        rows.append([e, *[1.0] * 4, *metrics, *val, *[0.01] * 3])
    out = plot_results_with_masks(_results_csv(tmp_path, rows, keys))
    assert out.is_file()
