"""classify/train.py, val.py and predict.py end to end on the synthetic class folders (tiny: 48 px, 1-2 epochs)."""

import numpy as np
import pandas as pd
import pytest

from utils import checkpoint


@pytest.fixture(scope="module")
def trained(cls_data, tmp_path_factory):
    """One run of classify/train.py: yolov5n cut at layer 10, from scratch, 2 epochs; returns its run folder."""
    from classify import train

    project = tmp_path_factory.mktemp("train-cls")
    train.run(model="yolov5n.yaml", pretrained="False", data=str(cls_data), imgsz=48, epochs=2, batch_size=8,
              workers=0, project=str(project), name="exp", seed=0)
    return project / "exp"


def test_run_folder_like_ultralytics(trained):
    for f in ("opt.yaml", "results.csv", "results.png", "train_images.jpg", "test_images.jpg", "weights/best.pt",
              "weights/last.pt"):
        assert (trained / f).is_file(), f
    df = pd.read_csv(trained / "results.csv")
    df.columns = [c.strip() for c in df.columns]
    assert list(df.columns) == ["epoch", "train/loss", "val/loss", "metrics/accuracy_top1",
                                               "metrics/accuracy_top5", "lr/0"]
    header = (trained / "results.csv").read_text().splitlines()[0]
    assert header.startswith(" " * 18 + "epoch,"), "23-character columns, as ultralytics' classification logger"
    top1 = df["metrics/accuracy_top1"]
    assert list(df["epoch"]) == [0, 1] and ((top1 >= 0) & (top1 <= 1)).all()
    np.testing.assert_allclose(df["lr/0"], [0.001 * (1 - 1 / 2 * 0.99), 0.001 * 0.01], rtol=1e-4)  # next epoch's lr


def test_checkpoint_is_a_classifier_with_names(trained, class_names):
    from models.experimental import attempt_load
    from models.yolo import ClassificationModel

    ckpt = checkpoint.read(trained / "weights" / "best.pt")
    assert ckpt["model"]["task"] == "classify" and ckpt["model"]["yaml"]["cls_nc"] == 6 and ckpt["optimizer"] is None
    model = attempt_load(str(trained / "weights" / "best.pt"))
    assert isinstance(model, ClassificationModel) and list(model.names.values()) == class_names


def test_val_matches_the_model_on_the_same_images(trained, cls_data):
    """classify/val.py's top-1 equals the argmax agreement of the same model on the same pre-processed images."""
    from classify import val
    from models.experimental import attempt_load
    from utils.backend import inference_mode, to_numpy
    from utils.classify.dataset import create_classification_dataloader

    (top1, top5, loss), _, speeds = val.run(weights=str(trained / "weights" / "best.pt"), data=str(cls_data),
                                            imgsz=48, batch_size=8, workers=0, project=str(trained.parent / "val"))
    model = attempt_load(str(trained / "weights" / "best.pt"))
    hits, n = 0, 0
    with inference_mode():
        for images, labels in create_classification_dataloader(cls_data / "val", 48, 8, augment=False, workers=0):
            hits += int((to_numpy(model(images)).argmax(1) == to_numpy(labels)).sum())
            n += len(labels)
    assert n == 12 and top1 == pytest.approx(hits / n) and top1 <= top5 <= 1 and loss == 0.0 and len(speeds) == 3


def test_predict_writes_top5_on_images_and_txt(trained, cls_data, tmp_path):
    from classify import predict

    save_dir = predict.run(weights=str(trained / "weights" / "best.pt"), source=str(cls_data / "val" / "star"),
                           imgsz=48, save_txt=True, project=str(tmp_path), name="exp")
    images = sorted(save_dir.glob("*.jpg"))
    assert len(images) == 2 and len(list((save_dir / "labels").glob("*.txt"))) == 2
    lines = next((save_dir / "labels").glob("*.txt")).read_text().splitlines()
    probs = [float(x.split()[0]) for x in lines]
    assert len(lines) == 5 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001


def test_bad_models_and_data(cls_data, tmp_path):
    from classify import train
    from utils.data.dataset_yaml import DatasetError

    with pytest.raises(ValueError, match="--model not_a_model not found"):
        train.run(model="not_a_model", data=str(cls_data), imgsz=48, epochs=1, project=str(tmp_path))
    with pytest.raises(DatasetError, match="no such dataset folder"):
        train.run(model="yolov5n.yaml", data=str(tmp_path / "missing"), epochs=1, project=str(tmp_path))
    assert not list(tmp_path.glob("exp*/weights/*.pt"))


def test_detection_weights_are_cut_and_validation_refuses_other_tasks(cls_data, tmp_path):
    from classify import val
    from models.experimental import save_weights
    from models.yolo import DetectionModel
    from utils.engine.validator import ValidationError

    det = save_weights(tmp_path / "det.pt", DetectionModel("yolov5n.yaml", nc=6), half=False)
    with pytest.raises(ValidationError, match="holds a detect model: classify/val.py validates classify models; use "
                                              "val.py"):
        val.run(weights=str(det), data=str(cls_data), imgsz=48, project=str(tmp_path))


def test_tensorboard_event_file_holds_the_results_csv(trained):
    """TensorBoard by default: every results.csv column per epoch, train_images at the start, test_images at the end."""
    pytest.importorskip("tensorboard")
    from tests.utils.tb_events import read_run

    df, scalars, images = read_run(trained)
    assert sorted(scalars) == sorted(df.columns[1:])
    for tag in df.columns[1:]:
        np.testing.assert_allclose([v for _, v in scalars[tag]], df[tag], rtol=1e-4, atol=1e-9, err_msg=tag)
        assert [s for s, _ in scalars[tag]] == list(df["epoch"])
    assert set(images) == {"train_images", "test_images"} and images["test_images"][0][0] == 1
