"""Parity of the classification task modules with ultralytics YOLOv5 v7.0 (the reference venv, as a child process).

tests/parity/ultralytics_cls_data.py runs the reference on a synthetic class-folder dataset and a few non-square
images; ours must give the same eval transform (within 1e-6), the same samples and classes, the same validation
batches, the same training items without albumentations, the same shuffled order on PyTorch (OneFlow has another
random generator), the same top-1/top-5/loss from the same logits, and the same results.csv text.

Runs under either backend (YOLOV5_BACKEND=oneflow or torch); the reference runs once per session (~15 s).
"""

import importlib.util
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import reference_env
from utils.backend import IS_ONEFLOW, from_numpy, to_numpy
from utils.classify.dataset import ClassificationDataset, create_classification_dataloader
from utils.classify.loss import classification_loss
from utils.classify.metrics import ClassifyMetrics, results_csv_header, results_csv_row, results_keys
from utils.classify.transforms import classify_transforms
from utils.data.synthetic import make_dataset

pytestmark = pytest.mark.reference

SCRIPT = Path(__file__).with_name("ultralytics_cls_data.py")
IMGSZ = 40
SHAPES = [(37, 53), (64, 30), (48, 48), (20, 90), (41, 41)]  # (h, w): landscape, portrait, square, odd sizes


@pytest.fixture(scope="module")
def case(reference_python, tmp_path_factory):
    """(dataset folder, image files, the reference's records)."""
    tmp = tmp_path_factory.mktemp("cls-parity")
    data = tmp / "data"
    make_dataset(data, n_train=24, n_val=12, imgsz=48, seed=3, task="classify")
    rng = np.random.default_rng(1)
    images = []
    for i, (h, w) in enumerate(SHAPES):
        images.append(str(tmp / f"{i}.png"))
        cv2.imwrite(images[-1], rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    out = tmp / "ref.npz"
    cmd = [reference_python, str(SCRIPT), "--data", str(data), "--images", *images, "--imgsz", str(IMGSZ),
           "--out", str(out)]
    r = subprocess.run(cmd, env=reference_env(), cwd=tmp, capture_output=True, text=True, timeout=600)
    if r.returncode:
        pytest.fail(f"the reference failed (rc {r.returncode}):\n{' '.join(cmd)}\n{r.stdout[-2000:]}\n"
                    f"{r.stderr[-4000:]}", pytrace=False)
    return data, images, dict(np.load(out))


def test_eval_transform(case):
    _, images, ref = case
    t = classify_transforms(IMGSZ)
    ours = np.stack([to_numpy(t(cv2.imread(f))) for f in images])
    assert ours.shape == ref["transform"].shape == (len(SHAPES), 3, IMGSZ, IMGSZ)
    assert np.abs(ours - ref["transform"]).max() <= 1e-6


def test_samples_and_classes(case):
    data, _, ref = case
    ds = ClassificationDataset(data / "train", imgsz=IMGSZ)
    assert ds.classes == ref["classes"].tolist()
    assert [str(Path(f).relative_to(data)) for f, _ in ds.samples] == ref["train_files"].tolist()
    assert ds.targets == ref["train_targets"].tolist()


def test_validation_batches(case):
    data, _, ref = case
    loader = create_classification_dataloader(data / "val", IMGSZ, 8, augment=False, workers=0, shuffle=False)
    images, targets = zip(*[(to_numpy(x), to_numpy(t)) for x, t in loader], strict=True)
    assert np.array_equal(np.concatenate(targets), ref["val_targets"])
    assert np.abs(np.concatenate(images) - ref["val_images"]).max() <= 1e-6


def test_training_items_without_albumentations(case):
    if importlib.util.find_spec("albumentations"):
        pytest.skip("albumentations is installed here: training items are augmented (the reference has none)")
    data, _, ref = case
    ds = ClassificationDataset(data / "train", augment=True, imgsz=IMGSZ)
    ours = np.stack([to_numpy(ds[i][0]) for i in range(len(ref["aug_images"]))])
    assert np.abs(ours - ref["aug_images"]).max() <= 1e-6


def test_shuffled_order(case):
    if IS_ONEFLOW:
        pytest.skip("OneFlow's random generator differs from PyTorch's: same seed, another permutation")
    data, _, ref = case
    loader = create_classification_dataloader(data / "train", IMGSZ, 8, augment=False, workers=0, shuffle=True)
    assert np.concatenate([to_numpy(t) for _, t in loader]).tolist() == ref["shuffle_targets"].tolist()


def test_accuracy_and_loss_from_the_same_logits(case):
    _, _, ref = case
    metrics, criterion = ClassifyMetrics(), classification_loss(0.1)
    for i in range(0, len(ref["logits"]), 8):  # the reference's batches of 8
        y, t = from_numpy(ref["logits"][i:i + 8]), from_numpy(ref["val_targets"][i:i + 8])
        metrics.update(y, t, criterion(y, t))
    top1, top5, loss = metrics.compute()
    assert (top1, top5) == (float(ref["top1"]), float(ref["top5"]))
    assert abs(loss - float(ref["loss"])) < 1e-5


def test_results_csv_text(case):
    _, _, ref = case
    rows = [[2.31, 2.2, float(ref["top1"]), float(ref["top5"]), 0.001], [1.123456789, 1.9876543, 0.5, 1.0, 0.000901]]
    text = "\n".join([results_csv_header(results_keys("val")), *(results_csv_row(e, r) for e, r in enumerate(rows))])
    assert text + "\n" == str(ref["csv"])
