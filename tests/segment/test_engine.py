"""segment/train.py, val.py and predict.py end to end on synthetic polygons (tiny: 64 px, a few images, 1 epoch)."""

import numpy as np
import pandas as pd
import pytest

from utils import checkpoint
from utils.data.synthetic import make_dataset

IMGSZ = 64


@pytest.fixture(scope="module")
def seg_data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("seg") / "ds", n_train=8, n_val=4, imgsz=IMGSZ, seed=3, task="segment")


@pytest.fixture(scope="module")
def trained(seg_data, tmp_path_factory):
    from segment import train

    project = tmp_path_factory.mktemp("train-seg")
    train.run(data=str(seg_data), cfg="yolov5n-seg.yaml", weights="", imgsz=IMGSZ, epochs=1, batch_size=4, workers=0,
              project=str(project), name="exp", noautoanchor=True)
    return project / "exp"


def test_run_folder_and_results_like_ultralytics(trained):
    for f in ("hyp.yaml", "opt.yaml", "results.csv", "results.png", "labels.jpg", "train_batch0.jpg",
              "val_batch0_labels.jpg", "val_batch0_pred.jpg", "confusion_matrix.png", "weights/best.pt"):
        assert (trained / f).is_file(), f
    df = pd.read_csv(trained / "results.csv")
    assert [c.strip() for c in df.columns] == [
        "epoch", "train/box_loss", "train/seg_loss", "train/obj_loss", "train/cls_loss", "metrics/precision(B)",
        "metrics/recall(B)", "metrics/mAP_0.5(B)", "metrics/mAP_0.5:0.95(B)", "metrics/precision(M)",
        "metrics/recall(M)", "metrics/mAP_0.5(M)", "metrics/mAP_0.5:0.95(M)", "val/box_loss", "val/seg_loss",
        "val/obj_loss", "val/cls_loss", "x/lr0", "x/lr1", "x/lr2"]
    assert len((trained / "results.csv").read_text().splitlines()[0].split(",")[0]) == 23  # GenericLogger's width
    assert (df.iloc[:, 1:5].values > 0).all() and (df.iloc[:, 13:17].values > 0).all(), "train and val losses"
    ckpt = checkpoint.read(trained / "weights" / "best.pt")
    assert ckpt["model"]["task"] == "segment" and ckpt["opt"]["mask_ratio"] == 4 and ckpt["opt"]["no_overlap"] is False


def test_val_returns_box_and_mask_metrics_and_writes_json(trained, seg_data, tmp_path):
    from segment import val

    results, maps, speeds = val.run(data=str(seg_data), weights=str(trained / "weights" / "best.pt"), imgsz=IMGSZ,
                                    batch_size=4, workers=0, save_json=True, save_txt=True, project=str(tmp_path),
                                    name="v", conf_thres=0.0, max_det=5)
    assert len(results) == 12 and all(0 <= x <= 1 for x in results[:8]) and results[8:] == (0.0,) * 4
    assert len(maps) == 6 and len(speeds) == 3
    import json

    import cv2
    rows = json.loads(next((tmp_path / "v").glob("*_predictions.json")).read_text())
    shapes = {int(p.stem): list(cv2.imread(str(p)).shape[:2]) for p in (seg_data.parent / "images" / "val").glob("*")}
    assert rows and all(r["segmentation"]["size"] == shapes[r["image_id"]] and r["segmentation"]["counts"]
                        for r in rows), "RLE masks at each original image's size"
    assert len(list((tmp_path / "v" / "labels").glob("*.txt"))) == 4


def test_predict_draws_masks_and_writes_polygons(trained, seg_data, tmp_path):
    import cv2

    from segment import predict

    src = seg_data.parent / "images" / "val"
    for retina in (False, True):
        save_dir = predict.run(weights=str(trained / "weights" / "best.pt"), source=str(src), imgsz=IMGSZ,
                               conf_thres=0.0, max_det=3, save_txt=True, save_conf=True, retina_masks=retina,
                               project=str(tmp_path), name=f"r{int(retina)}")
        images = sorted(save_dir.glob("*.jpg"))
        assert len(images) == 4
        for f in images:
            a, b = cv2.imread(str(src / f.name)), cv2.imread(str(f))
            assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() > 0.5  # masks and boxes drawn
        for f in (save_dir / "labels").glob("*.txt"):
            for line in f.read_text().splitlines():
                v = [float(x) for x in line.split()]
                assert len(v) % 2 == 0 and v[0] in range(6) and 0 <= v[-1] <= 1  # cls, x y pairs, conf
                assert all(0 <= x <= 1 for x in v[1:-1]), "normalised polygon points"


def test_wrong_task_weights_are_refused(trained, seg_data, tmp_path):
    import val as det_val
    from segment import val
    from utils.engine.validator import ValidationError

    with pytest.raises(ValidationError, match="holds a segment model: val.py validates detect models; use "
                                              "segment/val.py"):
        det_val.run(data=str(seg_data), weights=str(trained / "weights" / "best.pt"), imgsz=IMGSZ,
                    project=str(tmp_path))
    from models.experimental import save_weights
    from models.yolo import DetectionModel
    det = save_weights(tmp_path / "det.pt", DetectionModel("yolov5n.yaml", nc=6), half=False)
    with pytest.raises(ValidationError, match="holds a detect model: segment/val.py validates segment models"):
        val.run(data=str(seg_data), weights=str(det), imgsz=IMGSZ, project=str(tmp_path))


def test_quad_is_refused(seg_data, tmp_path):
    from segment import train

    with pytest.raises(ValueError, match="--quad is not supported for segmentation"):
        train.run(data=str(seg_data), cfg="yolov5n-seg.yaml", weights="", imgsz=IMGSZ, epochs=1, batch_size=4,
                  workers=0, project=str(tmp_path), quad=True, noautoanchor=True)


def test_fine_tune_from_an_official_layout_seg_checkpoint(seg_data, tmp_path, monkeypatch):
    """An ultralytics-style yolov5n-seg.pt (80 classes, pickled modules) starts a 6-class training: every tensor but
    the class-dependent head outputs transfers, as ultralytics' intersect_dicts does."""
    from models.yolo import SegmentationModel
    from segment import train
    from tests.models.test_load import forge_official
    from utils.log import LOGGER

    official = forge_official(tmp_path / "yolov5n-seg.pt", SegmentationModel("segment/yolov5n-seg.yaml", nc=80))
    logs = []
    monkeypatch.setattr(LOGGER, "info", lambda m, *a, **k: logs.append(str(m)))
    train.run(data=str(seg_data), weights=str(official), imgsz=IMGSZ, epochs=1, batch_size=4, workers=0,
              project=str(tmp_path), name="ft", noautoanchor=True, noval=True, noplots=True)
    line = next(m for m in logs if m.startswith("Transferred "))
    n, total = map(int, line.split()[1].split("/"))
    assert total - n == 6 and total > 300, line  # weights and biases of the 3 Segment output convs (class count)
    assert (tmp_path / "ft" / "weights" / "best.pt").is_file()


def test_onnx_export_runs_in_segment_val_and_predict(trained, seg_data, tmp_path):
    """export.py on a -seg model writes output0 (detections) and output1 (prototypes); segment/val.py and
    segment/predict.py run on the .onnx and give the .pt's numbers."""
    import onnx

    import export
    from segment import predict, val

    w = tmp_path / "best.pt"
    w.write_bytes((trained / "weights" / "best.pt").read_bytes())
    f = export.run(weights=str(w), include=["onnx"], imgsz=[IMGSZ, IMGSZ])[-1]
    assert [o.name for o in onnx.load(f).graph.output] == ["output0", "output1"]
    kw = dict(data=str(seg_data), imgsz=IMGSZ, batch_size=1, workers=0, conf_thres=0.0, max_det=5, plots=False,
              project=str(tmp_path))
    r_onnx = val.run(weights=f, name="onnx", **kw)[0]
    r_pt = val.run(weights=str(w), name="pt", **kw)[0]
    np.testing.assert_allclose(r_onnx[:8], r_pt[:8], atol=0.02)  # square (export) vs rect (.pt) letterboxing
    save_dir = predict.run(weights=f, source=str(seg_data.parent / "images" / "val"), imgsz=IMGSZ, conf_thres=0.0,
                           max_det=2, save_txt=True, project=str(tmp_path), name="pred")
    assert len(list(save_dir.glob("*.jpg"))) == 4 and len(list((save_dir / "labels").glob("*.txt"))) == 4


def test_tensorboard_event_file_holds_the_results_csv(trained):
    """TensorBoard by default: every results.csv column per epoch, then the final validation's metrics at step
    'epochs' and the result images at epoch + 1 (ultralytics' segmentation GenericLogger)."""
    pytest.importorskip("tensorboard")
    from tests.utils.tb_events import read_run

    df, scalars, images = read_run(trained)
    assert set(scalars) == set(df.columns[1:])
    for tag in df.columns[1:]:
        assert scalars[tag][0] == (0, pytest.approx(df[tag][0], rel=1e-4, abs=1e-9)), tag
    assert {"results", "confusion_matrix", "val_batch0_pred"} <= set(images)


def test_graph_compiles_the_optimizer_step_with_the_same_results(seg_data, tmp_path, monkeypatch):
    """--graph on segment/train.py (OneFlow): the training step stays eager (no fixed-shape segmentation loss), the
    optimizer step (clipping, SGD with the warmup, EMA) runs compiled, once compiled, and results.csv is eager's."""
    from utils.backend import IS_ONEFLOW
    if not IS_ONEFLOW:
        pytest.skip("nn.Graph is OneFlow's (PyTorch's --graph refusal: tests/test_graph.py)")
    from segment import train
    from utils.backend import graph as graph_mod

    graphs, step = [], graph_mod.OptimizerStepGraph.__call__

    def counted(self):
        norm = step(self)
        graphs.append(id(self.graph))
        return norm

    monkeypatch.setattr(graph_mod.OptimizerStepGraph, "__call__", counted)
    monkeypatch.setenv(graph_mod.GRAPH_OPTIMIZER_ENV, "1")  # compiled on a CPU too (not by default: slower there)
    rows = []
    for name, graph in (("eager", False), ("graph", True)):
        train.run(data=str(seg_data), cfg="yolov5n-seg.yaml", weights="", imgsz=IMGSZ, epochs=1, batch_size=4,
                  workers=0, project=str(tmp_path), name=name, noautoanchor=True, noplots=True, graph=graph, seed=0)
        rows.append(pd.read_csv(tmp_path / name / "results.csv").to_numpy(dtype=float))
    assert len(graphs) == 2 and len(set(graphs)) == 1  # warmup: one optimizer step per batch, one graph
    np.testing.assert_allclose(rows[1], rows[0], rtol=1e-3, atol=2e-4)
