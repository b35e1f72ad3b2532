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
