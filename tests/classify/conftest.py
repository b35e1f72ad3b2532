"""Fixtures of the classification tests: a small synthetic class-folder dataset, made once per session."""

import pytest

from utils.data.synthetic import CLASS_NAMES, make_dataset


@pytest.fixture(scope="session")
def cls_data(tmp_path_factory):
    """A dataset folder with train/ (24 images) and val/ (12 images), 4 and 2 per class, 48 px, 6 classes."""
    out = tmp_path_factory.mktemp("cls") / "shapes"
    make_dataset(out, n_train=24, n_val=12, imgsz=48, seed=0, task="classify")
    return out


@pytest.fixture(scope="session")
def class_names():
    return sorted(CLASS_NAMES)


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
