"""one-yolov5 checkpoints (``oneflow.save``) load everywhere a weights file is taken, on both backends, safely.

The files are written by OneFlow itself in the OneFlow venv (tests/models/oneflow_save.py): v1.2.0 ``last.of`` and
release ``yolov5n.of`` folders, a v1.0 ``weights/last`` folder, the single-file layout of later OneFlow builds, and
segmentation / classification checkpoints. Each must give the outputs OneFlow computed when it saved them.
"""

import os
import pickle
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from models.experimental import attempt_load, is_checkpoint_path, read_weights
from tests.conftest import ROOT, VENVS, other_env
from utils import checkpoint
from utils.backend import NAME, from_numpy, to_numpy, torch
from utils.data.synthetic import make_dataset

SAVER = ROOT / "tests" / "models" / "oneflow_save.py"


@pytest.fixture(scope="session")
def of_files(tmp_path_factory):
    """The folder oneflow_save.py filled (needs the OneFlow venv)."""
    py = VENVS["oneflow"]
    if not py.exists():
        pytest.skip("the OneFlow venv (.venv) is needed to write oneflow.save checkpoints (make venv)")
    out = tmp_path_factory.mktemp("oneflow-saved")
    r = subprocess.run([str(py), str(SAVER), str(out)], capture_output=True, text=True, timeout=600,
                       env=other_env("oneflow"), cwd=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return out


def _outputs(model, x):
    with torch.no_grad():
        y = model(from_numpy(x))
    y = y if isinstance(y, (list, tuple)) else [y]
    return [to_numpy(t) for t in y if hasattr(t, "shape")]


@pytest.mark.parametrize("name", ["yolov5n.of", "single.of", "run/weights/last.of", "weights/last"])
def test_detection_checkpoints_give_oneflows_outputs(of_files, name):
    expected = np.load(of_files / "expected.npz")
    model = attempt_load(str(of_files / name))  # fused, eval, as detect.py loads it
    assert model.names[3] == "star" and model.nc == 6
    np.testing.assert_allclose(_outputs(model, expected["x"])[0], expected["detect"], rtol=1e-3, atol=2e-3)


def test_segmentation_and_classification_checkpoints(of_files):
    expected = np.load(of_files / "expected.npz")
    seg = attempt_load(str(of_files / "seg.of"))
    y = _outputs(seg, expected["x"])
    np.testing.assert_allclose(y[0], expected["seg0"], rtol=1e-3, atol=2e-3)
    np.testing.assert_allclose(y[1], expected["seg1"], rtol=1e-3, atol=2e-3)
    cls = attempt_load(str(of_files / "cls.of"))
    assert cls.names == {i: f"c{i}" for i in range(4)}
    np.testing.assert_allclose(_outputs(cls, expected["x"])[0], expected["cls"], rtol=1e-3, atol=1e-4)


def test_training_checkpoint_reads_in_our_form(of_files):
    """What resuming reads: epoch, EMA weights (one-yolov5 pickles them as a module), no foreign optimizer state."""
    ckpt, main, ema = read_weights(str(of_files / "run/weights/last.of"), prefer_ema=False)
    assert ckpt["epoch"] == 0 and ckpt["updates"] == 7 and ckpt["best_fitness"] == 0.25
    assert ckpt["optimizer"] is None and ckpt["opt"]["save_dir"] == "runs/train/exp"  # PosixPath -> str
    assert ckpt["ema"]["state_dict"]["model.0.conv.weight"].dtype == np.float16
    assert main["state"]["model.0.conv.weight"].dtype == np.float32  # v1.2.0 saved the training model in FP32
    assert ema["task"] == main["task"] == "detect"
    legacy = checkpoint.read(str(of_files / "weights/last"))
    assert isinstance(legacy["model"].names, list)  # v1.0 kept names as a list; attempt_load makes it a dict


def test_weights_names(of_files):
    assert is_checkpoint_path(of_files / "weights" / "last") and is_checkpoint_path("best.of")
    assert is_checkpoint_path("best.pt") and not is_checkpoint_path("best.onnx")
    assert not is_checkpoint_path(of_files)  # a plain folder


# ------------------------------------------------------------------------------------------------------ safety
class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _tamper(folder, obj):
    (folder / "pickled_data").write_bytes(pickle.dumps({"protocol_version": 1, "data": obj}))


def test_pickled_code_is_refused_and_never_runs(of_files, tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.of"
    shutil.copytree(of_files / "yolov5n.of", bad)
    _tamper(bad, {"model": _Evil(marker)})
    with pytest.raises(checkpoint.UnsafeCheckpointError, match="posix.system|os.system"):
        attempt_load(str(bad))
    single = tmp_path / "evil-single.of"
    single.write_bytes(pickle.dumps({"protocol_version": 1, "oneflow": None, "data": _Evil(marker)}))
    with pytest.raises(checkpoint.UnsafeCheckpointError):
        checkpoint.read(single)
    assert not marker.exists()


def test_tensor_records_stay_inside_the_folder_and_are_checked(of_files, tmp_path):
    bad = tmp_path / "bad.of"
    shutil.copytree(of_files / "yolov5n.of", bad)
    data = (bad / "pickled_data").read_bytes()
    name = next(p.name for p in sorted(bad.iterdir()) if p.name.startswith("tensor_") and p.name.encode() in data)
    # an escaping reference of the same length, so the pickle's frame lengths stay valid
    (bad / "pickled_data").write_bytes(data.replace(name.encode(), b"../" + name.encode()[3:], 1))
    with pytest.raises(checkpoint.CheckpointError, match="not a tensor folder"):
        checkpoint.read(bad)
    cut = tmp_path / "cut.of"
    shutil.copytree(of_files / "yolov5n.of", cut)
    out = cut / name / "out"
    out.write_bytes(out.read_bytes()[:-2])
    with pytest.raises(checkpoint.CheckpointError, match="truncated or corrupt"):
        checkpoint.read(cut)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(checkpoint.CheckpointError, match="bare pickle"):
        checkpoint.read(plain)
    empty = tmp_path / "empty.of"
    empty.mkdir()
    with pytest.raises(checkpoint.CheckpointError, match="is a directory"):
        checkpoint.read(empty)


# ------------------------------------------------------------------------------------------------- the scripts
@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("syn-of"), n_train=8, n_val=4, imgsz=64, seed=0)


def test_detect_val_and_hub_take_of_weights(of_files, syn, tmp_path):
    import detect
    import hubconf
    import val

    w = str(of_files / "yolov5n.of")
    save_dir = detect.run(weights=w, source=str(syn.parent / "images" / "val"), imgsz=64, conf_thres=0.001,
                          project=str(tmp_path), name="det", save_txt=True, device="cpu")
    assert len(list((save_dir / "labels").glob("*.txt"))) > 0
    results = val.run(str(syn), weights=str(of_files / "weights" / "last"), imgsz=64, batch_size=4, workers=0,
                      project=str(tmp_path), name="val", plots=False)[0]
    assert len(results) == 7 and all(np.isfinite(results))
    model = hubconf.custom(path=w, _verbose=False, device="cpu")
    assert model.names[5] == "cross"


def test_export_takes_of_weights(of_files, tmp_path):
    """export.py --weights yolov5n.of (a oneflow.save folder): the exported file holds the same model."""
    from utils.export import export

    w = tmp_path / "yolov5n.of"
    shutil.copytree(of_files / "yolov5n.of", w)
    (f,) = export(str(w), include=["ultralytics"], imgsz=[64])
    assert f == str(tmp_path / "yolov5n_ultralytics.pt")
    expected = np.load(of_files / "expected.npz")
    np.testing.assert_allclose(_outputs(attempt_load(f), expected["x"])[0], expected["detect"], rtol=1e-3, atol=2e-3)


def test_train_starts_from_of_weights(of_files, syn, tmp_path):
    """train.py --weights yolov5n.of (a one-yolov5 release-style file): every tensor transferred, then trained."""
    import train
    from tests.test_detect import log_messages
    from tests.test_train import _opt

    with log_messages() as log:
        train.main(_opt(syn, tmp_path, weights=str(of_files / "yolov5n.of"), cfg="", epochs=1, batch_size=8))
    n = len(read_weights(str(of_files / "yolov5n.of"))[1]["state"])
    assert any(f"Transferred {n}/{n} items from" in m for m in log), [m for m in log if "Transferred" in m]
    ckpt = checkpoint.read(tmp_path / "exp" / "weights" / "last.pt")
    assert ckpt["model"]["names"][3] == "star" and ckpt["model"]["yaml"]["nc"] == 6


def test_resume_a_one_yolov5_run(of_files, syn, tmp_path):
    """train.py --resume runs/train/exp/weights/last.of: one-yolov5's flags and EMA weights, one more epoch."""
    import train

    run = tmp_path / "exp"
    shutil.copytree(of_files / "run", run)
    opt = yaml.safe_load((run / "opt.yaml").read_text())  # one-yolov5's own keys stay (bbox_iou_optim)
    opt.update(data=str(syn), imgsz=64, batch_size=8, workers=0, epochs=2, noplots=True, noautoanchor=True,
               project=str(tmp_path), name="exp", hyp=str(ROOT / "data/hyps/hyp.scratch-low.yaml"), device="cpu",
               save_dir="runs/train/exp")  # as one-yolov5 wrote it: relative to its own working folder
    (run / "opt.yaml").write_text(yaml.safe_dump(opt))
    resumed = train.parse_opt(known=True)
    resumed.resume, resumed.backend = str(run / "weights" / "last.of"), None
    train.main(resumed)
    rows = (run / "results.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].split(",")[0].strip() == "1"  # epoch 0 was one-yolov5's, epoch 1 is ours
    assert checkpoint.read(run / "weights" / "last.pt")["model"]["names"][3] == "star"
    assert NAME in ("oneflow", "torch")
