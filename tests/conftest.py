"""Shared fixtures: the active backend, the other backend's interpreter, and the ultralytics reference interpreter."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from utils import backend  # noqa: E402

VENVS = {"oneflow": ROOT / ".venv" / "bin" / "python", "torch": ROOT / ".venv-torch" / "bin" / "python"}


def _python_with(module, candidates):
    for py in candidates:
        if py and Path(py).exists():
            r = subprocess.run([str(py), "-c", f"import {module}"], capture_output=True, timeout=120)
            if r.returncode == 0:
                return str(py)
    return None


@pytest.fixture(scope="session")
def backend_name():
    return backend.NAME


@pytest.fixture(scope="session")
def other_backend():
    """(name, python) of the backend this process does not run, or skip when its venv is absent."""
    name = "torch" if backend.NAME == "oneflow" else "oneflow"
    env_py = os.environ.get("YOLOV5_OTHER_PYTHON")
    py = _python_with("torch" if name == "torch" else "oneflow", [env_py, VENVS[name]])
    if py is None:
        pytest.skip(f"the {name} backend's venv is not installed (make venv-{'torch' if name == 'torch' else ''})")
    return name, py


@pytest.fixture(scope="session")
def reference_python():
    """Interpreter of the ultralytics YOLOv5 v7.0 reference venv (../shared/tools/ultralytics-reference), or skip."""
    venv = os.environ.get("PEER_VENV") or os.path.join(os.environ.get("TMPDIR", "/tmp"), "ultralytics-ref")
    py = _python_with("yolov5.models.yolo", [os.environ.get("PEER_PY"), Path(venv) / "bin" / "python"])
    if py is None:
        pytest.skip("ultralytics reference venv not found (make reference)")
    return py


def reference_env():
    """Environment for running the reference offline (what its env.sh sets)."""
    env = dict(os.environ)
    venv = Path(os.environ.get("PEER_VENV") or os.path.join(os.environ.get("TMPDIR", "/tmp"), "ultralytics-ref"))
    env.update(YOLOV5_CONFIG_DIR=str(venv / "cfg"), YOLO_CONFIG_DIR=str(venv / "cfg" / "ultralytics"),
               YOLO_OFFLINE="1", YOLO_AUTOINSTALL="false", TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1",
               WANDB_MODE="disabled", MPLBACKEND="Agg", GIT_TERMINAL_PROMPT="0",
               PYTHONWARNINGS="ignore::DeprecationWarning,ignore::FutureWarning,ignore::UserWarning")
    env.pop("PYTHONPATH", None)
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):  # set by `import oneflow`
        env.pop(k, None)
    return env


def other_env(name):
    env = dict(os.environ, YOLOV5_BACKEND=name)
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture
def tmp_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


__all__ = ["ROOT", "reference_env", "other_env", "shutil"]


@pytest.fixture
def log_lines(monkeypatch):
    """Messages logged through LOGGER.info / LOGGER.warning during the test (the handler writes to the real
    stdout, which capsys does not see)."""
    from utils.log import LOGGER  # noqa: PLC0415 (fixture-local: only tests that read the log need it)

    lines = []
    for level in ("info", "warning"):
        original = getattr(LOGGER, level)

        def record(msg, *args, _original=original, **kwargs):
            lines.append(str(msg))
            return _original(msg, *args, **kwargs)

        monkeypatch.setattr(LOGGER, level, record)
    return lines


@pytest.fixture
def logs():
    """Messages of every level the 'yolov5' logger emits during the test (a handler on it)."""
    import logging  # noqa: PLC0415

    from utils.log import LOGGER  # noqa: PLC0415

    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda r: records.append(r.getMessage())
    LOGGER.addHandler(handler)
    yield records
    LOGGER.removeHandler(handler)
