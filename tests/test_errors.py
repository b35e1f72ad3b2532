"""User errors: one shared hierarchy, one handler, flags refused at the parser with their range, one ERROR line per
script (issue 16's cases), tracebacks for bugs and on request."""

import argparse
import errno
import os
import signal
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT
from utils import cli, errors
from utils.errors import FlagError, InputError, Interrupted, UserError


# ------------------------------------------------------------------------------------------------- the hierarchy
def test_existing_error_classes_are_user_errors_and_keep_their_bases():
    from models.experimental import WeightsError
    from models.yolo import ModelConfigError
    from utils.backend.vision import VisionModelError
    from utils.checkpoint import CheckpointError, UnsafeCheckpointError
    from utils.checkpoint.writer import CheckpointWriteError
    from utils.data.dataset_yaml import DatasetError
    from utils.data.images import ImageError
    from utils.dist import DDPError
    from utils.downloads import DownloadError
    from utils.engine.predictor import SourceError
    from utils.engine.validator import ValidationError
    from utils.export import ExportError
    from utils.runtime import UnsupportedFormatError

    bases = {DatasetError: FileNotFoundError, ValidationError: ValueError, WeightsError: ValueError,
             CheckpointError: Exception, UnsafeCheckpointError: CheckpointError, DownloadError: RuntimeError,
             UnsupportedFormatError: ValueError, ExportError: RuntimeError, DDPError: ValueError,
             SourceError: ValueError, ModelConfigError: ValueError, VisionModelError: ValueError,
             ImageError: ValueError, CheckpointWriteError: OSError, FlagError: ValueError, InputError: ValueError}
    for cls, base in bases.items():
        assert issubclass(cls, UserError) and issubclass(cls, base), cls


def _guarded(exc, capsys, monkeypatch, traceback=False):
    monkeypatch.setenv(errors.TRACEBACK_ENV, "1" if traceback else "")
    with pytest.raises(SystemExit) as e, errors.guard():
        raise exc
    return e.value.code, capsys.readouterr().err


def test_guard_prints_one_line_and_the_exit_status(capsys, monkeypatch):
    code, err = _guarded(FlagError("--epochs 0: must be >= 1\nsecond line"), capsys, monkeypatch)
    assert code == 1 and err == "ERROR: --epochs 0: must be >= 1 second line\n"
    code, err = _guarded(Interrupted("stopped; resume with ...", signal.SIGTERM), capsys, monkeypatch)
    assert code == 143 and err.startswith("Interrupted: stopped")
    code, err = _guarded(OSError(errno.ENOSPC, "No space left on device", "/x/last.pt"), capsys, monkeypatch)
    assert code == 1 and err == "ERROR: No space left on device: /x/last.pt (free disk space, then run again)\n"
    code, err = _guarded(yaml.YAMLError("mapping values are not allowed here"), capsys, monkeypatch)
    assert code == 1 and err.startswith("ERROR: not valid YAML: mapping values")
    code, err = _guarded(FileNotFoundError("weights not found: x.pt"), capsys, monkeypatch)
    assert code == 1 and err == "ERROR: weights not found: x.pt\n"


def test_guard_keeps_tracebacks_for_bugs_and_on_request(capsys, monkeypatch):
    with pytest.raises(KeyError), errors.guard():  # not a user error: propagates (Python prints the traceback)
        raise KeyError("bug")
    with pytest.raises(ValueError), errors.guard():  # a bare ValueError is ours, not the user's
        raise ValueError("bug")
    code, err = _guarded(InputError("bad file"), capsys, monkeypatch, traceback=True)
    assert code == 1 and "Traceback (most recent call last)" in err and err.rstrip().endswith("ERROR: bad file")


def test_guard_ctrl_c_exits_130(capsys):
    with pytest.raises(SystemExit) as e, errors.guard():
        raise KeyboardInterrupt
    assert e.value.code == 130 and "Interrupted" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- flags and ranges
BAD_FLAGS = [  # (script, argv, the flag named in the message, a word of the range)
    ("train", ["--epochs", "0"], "--epochs", ">= 1"), ("train", ["--batch", "0"], "--batch-size", "-1"),
    ("train", ["--batch-size", "-2"], "--batch-size", ">= 1"), ("train", ["--img", "0"], "--imgsz", ">= 1"),
    ("train", ["--workers", "-1"], "--workers", ">= 0"), ("train", ["--seed", "-1"], "--seed", "[0, "),
    ("train", ["--label-smoothing", "1"], "--label-smoothing", "[0, 1)"),
    ("train", ["--epochs", "nan"], "--epochs", ""),
    ("val", ["--conf-thres", "-0.1"], "--conf-thres", "[0, 1]"), ("val", ["--iou-thres", "nan"], "--iou-thres", ""),
    ("val", ["--batch-size", "-1"], "--batch-size", ">= 1"),
    ("detect", ["--conf-thres", "2"], "--conf-thres", "[0, 1]"),
    ("detect", ["--iou-thres", "-1"], "--iou-thres", "[0, 1]"), ("detect", ["--max-det", "0"], "--max-det", ">= 1"),
    ("detect", ["--img", "640", "0"], "--imgsz", ">= 1"), ("detect", ["--vid-stride", "0"], "--vid-stride", ">= 1"),
    ("detect", ["--classes", "-3"], "--classes", ">= 0"), ("export", ["--opset", "0"], "--opset", ">= 1"),
    ("classify/train", ["--lr0", "0"], "--lr0", "> 0"), ("classify/train", ["--dropout", "1.5"], "--dropout", "[0, 1)"),
    ("segment/train", ["--mask-ratio", "0"], "--mask-ratio", ">= 1"),
    ("utils/flask_rest_api/restapi", ["--port", "70000"], "--port", "[1, 65535]"),
    ("utils/flask_rest_api/restapi", ["--max-mb", "0"], "--max-mb", "> 0"),
]


@pytest.mark.parametrize("script, argv, flag, word", BAD_FLAGS)
def test_out_of_range_flags_are_refused_in_one_line(script, argv, flag, word, capsys):
    with pytest.raises(SystemExit) as e:
        cli.parse(script, argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith(f"ERROR: {script}.py: argument {flag}")
    assert word in err and argv[-1] in err


def test_valid_edges_and_special_values_pass():
    opt = cli.parse("train", ["--batch", "-1", "--epochs", "1", "--seed", "0", "--workers", "0"])
    assert (opt.batch_size, opt.epochs, opt.seed, opt.workers) == (-1, 1, 0, 0)
    opt = cli.parse("detect", ["--conf-thres", "0", "--iou-thres", "1", "--img", "320", "256"])
    assert (opt.conf_thres, opt.iou_thres, opt.imgsz) == (0.0, 1.0, [320, 256])


def test_run_keywords_get_the_same_checks():
    with pytest.raises(FlagError, match=r"train.run\(epochs=0\): must be an integer >= 1.*--epochs"):
        cli.options("train", {"epochs": 0})
    with pytest.raises(FlagError, match="--conf-thres"):
        cli.options("val", {"conf_thres": 1.5})
    with pytest.raises(FlagError, match="imgsz"):
        cli.options("detect", {"imgsz": [640, -1]})
    with pytest.raises(FlagError, match="epochs"):
        cli.options("train", {"epochs": 2.5})  # not an integer
    assert cli.options("train", {"epochs": 3, "evolve": None}).epochs == 3  # None: the flag's "unset"
    assert isinstance(cli.Range(int, 1), object) and not cli.Range(float, 0, 1).valid(float("inf"))


def test_range_messages():
    assert cli.BATCH.describe() == "an integer >= 1, or -1 (AutoBatch: CUDA memory, 16 on the CPU)"
    assert cli.POSITIVE_FLOAT.describe() == "a number > 0"
    with pytest.raises(argparse.ArgumentTypeError, match="must be a number in \\[0, 1\\], not 'x'"):
        cli.FRACTION("x")


# ---------------------------------------------------------------------------------------- the hyperparameter file
def test_hyp_files_are_checked(tmp_path):
    from utils.engine.launch import HYP_KEYS, load_hyp

    good = yaml.safe_load((ROOT / "data/hyps/hyp.scratch-low.yaml").read_text())
    assert load_hyp(good) == good and set(HYP_KEYS) <= set(good)
    for text, match in [("lr0: .nan\n", "lr0: nan is not a finite number"), ("lr0: .inf\n", "not a finite"),
                        ("lr0: fast\n", "'fast' is not a finite number"), ("", "missing lr0")]:
        f = tmp_path / "hyp.yaml"
        body = {k: v for k, v in good.items() if not (text.startswith("lr0") and k == "lr0") and (text or k != "lr0")}
        f.write_text(yaml.safe_dump(body) + text)
        with pytest.raises(InputError, match=match) as e:
            load_hyp(str(f))
        assert str(f) in str(e.value)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="expected a mapping"):
        load_hyp(str(tmp_path / "list.yaml"))


# -------------------------------------------------------------------------------------- the scripts, for real
def _run(args, timeout=240):
    env = dict(os.environ)
    env.pop(errors.TRACEBACK_ENV, None)
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith(("ERROR", "Traceback"))]
    return r, lines


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from utils.data.synthetic import make_dataset

    root = tmp_path_factory.mktemp("errs")
    data = make_dataset(root / "ds", n_train=4, n_val=2, imgsz=64)
    (root / "syntax.yaml").write_text("path: [unclosed\nnames: {0: a\n")
    hyp = (ROOT / "data/hyps/hyp.scratch-low.yaml").read_text()
    (root / "hyp-nan.yaml").write_text(hyp.replace("lr0: 0.01", "lr0: .nan"))
    return {"root": root, "data": str(data)}


def _train_args(tiny, *extra):
    return ["train.py", "--data", tiny["data"], "--cfg", "yolov5n.yaml", "--weights", "", "--img", "64", "--batch",
            "4", "--workers", "0", "--epochs", "1", "--project", str(tiny["root"] / "runs"), *extra]


@pytest.mark.parametrize("case", ["data missing", "data bad syntax", "hyp nan", "resume missing", "cfg missing"])
def test_train_user_errors_are_one_line(case, tiny):
    root = tiny["root"]
    extra = {"data missing": ["--data", str(root / "missing.yaml")],
             "data bad syntax": ["--data", str(root / "syntax.yaml")],
             "hyp nan": ["--hyp", str(root / "hyp-nan.yaml")], "resume missing": ["--resume", str(root / "no.pt")],
             "cfg missing": ["--cfg", str(root / "nomodel.yaml")]}[case]  # (--batch -1 on the CPU: AutoBatch's 16)
    r, lines = _run(_train_args(tiny, *extra))
    want = {"data missing": "missing.yaml", "data bad syntax": "syntax.yaml", "hyp nan": "lr0: nan",
            "resume missing": "no.pt", "cfg missing": "nomodel.yaml"}[case]
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("ERROR: "), r.stderr[-2000:]
    assert want in lines[0]


def test_traceback_on_request(tiny):
    env = dict(os.environ, **{errors.TRACEBACK_ENV: "1"})
    r = subprocess.run([sys.executable, *_train_args(tiny, "--data", str(tiny["root"] / "missing.yaml"))], cwd=ROOT,
                       capture_output=True, text=True, env=env, timeout=240)
    assert r.returncode == 1 and "Traceback (most recent call last)" in r.stderr
    assert r.stderr.rstrip().splitlines()[-1].startswith("ERROR: ")
