"""Faults during training: SIGINT / SIGTERM stop at a safe point (last.pt loadable, a resume command, status 130 /
143), a full disk keeps the previous last.pt and says so, --epochs 0 is refused."""

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from tests.test_train import _opt, tiny_data  # noqa: F401 (fixture)
from utils import checkpoint
from utils.checkpoint import writer
from utils.checkpoint.writer import CheckpointWriteError
from utils.errors import Interrupted


def _signal_at_batch(n, signum):
    """Callbacks sending ``signum`` to this process at the end of training batch ``n`` (counted over epochs)."""
    from utils.callbacks import Callbacks

    cb, seen = Callbacks(), []

    def hit(*_):
        seen.append(1)
        if len(seen) == n:
            os.kill(os.getpid(), signum)

    cb.register_action("on_train_batch_end", callback=hit)
    return cb


@pytest.mark.parametrize("signum, batch, finished", [(signal.SIGINT, 3, False), (signal.SIGTERM, 1, False)])
def test_signal_stops_between_batches_and_keeps_last_pt(signum, batch, finished, tiny_data, tmp_path):  # noqa: F811
    import train

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted) as e:  # 16 images, batch 8: 2 batches per epoch
        train.main(_opt(tiny_data, tmp_path, epochs=3, noval=True), callbacks=_signal_at_batch(batch, signum))
    assert e.value.exit_code == 128 + signum and signal.getsignal(signal.SIGINT) is before  # handlers restored
    last = tmp_path / "exp" / "weights" / "last.pt"
    msg = str(e.value)
    assert f"stopped by {signal.Signals(signum).name} during epoch {(batch - 1) // 2}" in msg
    if batch > 2:  # epoch 0 finished and was saved: loadable, with the optimizer for --resume
        ckpt = checkpoint.read(last)
        assert ckpt["epoch"] == 0 and ckpt["optimizer"] is not None and ckpt["ema"] is not None
        assert f"{last} holds epoch 0: resume with python" in msg and f"--resume {last}" in msg
    else:
        assert not last.exists() and "nothing to resume" in msg


def test_interrupted_run_resumes(tiny_data, tmp_path):  # noqa: F811
    import argparse

    import train

    with pytest.raises(Interrupted):
        train.main(_opt(tiny_data, tmp_path, epochs=2, noval=True), callbacks=_signal_at_batch(3, signal.SIGINT))
    last = tmp_path / "exp" / "weights" / "last.pt"
    resumed = argparse.Namespace(**vars(train.parse_opt(known=True)))
    resumed.resume, resumed.backend = str(last), None
    train.main(resumed)
    assert checkpoint.read(last)["epoch"] == -1  # finished (stripped)
    assert len((tmp_path / "exp" / "results.csv").read_text().splitlines()) == 3  # header + epochs 0 and 1


def test_disk_full_keeps_the_previous_checkpoint(tiny_data, tmp_path, monkeypatch):  # noqa: F811
    import train
    from utils.callbacks import Callbacks

    real, state = writer._add_record, {"saves": 0}
    cb = Callbacks()
    cb.register_action("on_model_save", callback=lambda *a: state.update(saves=state["saves"] + 1))

    def add_record(zf, fh, name, data):
        if state["saves"] >= 1 and name.endswith("data.pkl"):  # epoch 1's write fails half-way
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(zf, fh, name, data)

    monkeypatch.setattr(writer, "_add_record", add_record)
    with pytest.raises(CheckpointWriteError) as e:
        train.main(_opt(tiny_data, tmp_path, epochs=3, noval=True), callbacks=cb)
    wdir = tmp_path / "exp" / "weights"
    msg = str(e.value)
    assert e.value.errno == errno.ENOSPC and "could not save epoch 1" in msg and "No space left on device" in msg
    assert "the previous last.pt (epoch 0) is intact" in msg and f"--resume {wdir / 'last.pt'}" in msg
    assert checkpoint.read(wdir / "last.pt")["epoch"] == 0  # loadable, untouched
    assert sorted(p.name for p in wdir.iterdir()) == ["best.pt", "last.pt"]  # no temp file left behind


def test_checkpoint_write_error_leaves_file_intact(tmp_path, monkeypatch):
    f = tmp_path / "last.pt"
    checkpoint.write({"epoch": 3}, f)
    before = f.read_bytes()
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(CheckpointWriteError, match="cannot write checkpoint .*last.pt: No space left"):
        checkpoint.write({"epoch": 4}, f)
    assert f.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_signal_to_the_process_group(signum, tiny_data, tmp_path):  # noqa: F811
    """As a terminal's Ctrl-C does: the signal reaches the trainer and its data-loader workers together."""
    cmd = [sys.executable, str(ROOT / "train.py"), "--data", str(tiny_data), "--cfg", "yolov5n.yaml", "--weights", "",
           "--img", "64", "--batch", "8", "--epochs", "100", "--workers", "2", "--noval", "--noplots", "--project",
           str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    last = tmp_path / "exp" / "weights" / "last.pt"
    try:
        t0 = time.time()
        while not last.exists() and time.time() - t0 < 240 and proc.poll() is None:
            time.sleep(0.5)
        assert last.exists()
        os.killpg(proc.pid, signum)  # our own process group (start_new_session)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signum, out[-3000:]
    assert f"Interrupted: training stopped by {signal.Signals(signum).name}" in out and "--resume" in out
    assert "Traceback" not in out
    assert checkpoint.read(last)["optimizer"] is not None
