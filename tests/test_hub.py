"""hubconf.py and AutoShape/Detections: loading a local checkpoint, every input kind, every Detections method."""

import inspect
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT
from tests.test_detect import make_images, make_weights
from utils.backend import NAME, to_numpy, torch

SIZE = 128


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    import hubconf

    root = tmp_path_factory.mktemp("hub")
    weights = make_weights(root / "crafted.pt")
    model = hubconf.custom(path=str(weights), _verbose=False, device="cpu")
    return {"root": root, "weights": weights, "model": model, "images": make_images(root)}


def test_entry_points_match_ultralytics():
    import hubconf

    sizes = ("n", "s", "m", "l", "x")
    for name in [f"yolov5{s}" for s in sizes] + [f"yolov5{s}6" for s in sizes]:
        params = list(inspect.signature(getattr(hubconf, name)).parameters)
        assert params == ["pretrained", "channels", "classes", "autoshape", "_verbose", "device"], name
    assert list(inspect.signature(hubconf.custom).parameters) == ["path", "autoshape", "_verbose", "device"]
    assert list(inspect.signature(hubconf._create).parameters)[:7] == [
        "name", "pretrained", "channels", "classes", "autoshape", "verbose", "device"]


def test_custom_returns_autoshape_with_ultralytics_defaults(hub):
    from utils.autoshape import AutoShape
    from models.common import AutoShape as AutoShapeFromCommon
    from models.common import DetectMultiBackend

    model = hub["model"]
    assert AutoShapeFromCommon is AutoShape and isinstance(model, AutoShape)
    assert isinstance(model.model, DetectMultiBackend) and model.model.pt and model.stride == 32
    assert (model.conf, model.iou, model.agnostic, model.multi_label, model.classes, model.max_det) == (
        0.25, 0.45, False, False, None, 1000)
    assert model.names == {0: "rectangle", 1: "ellipse", 2: "triangle"}


def test_every_input_kind(hub):
    model, paths = hub["model"], hub["images"]
    bgr = cv2.imread(str(paths[2]))
    inputs = [str(paths[0]), Path(paths[1]), Image.open(paths[2]), bgr[..., ::-1], bgr[..., ::-1].transpose(2, 0, 1),
              cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), Image.open(paths[0]).convert("RGBA"),
              np.zeros((70, 90, 3), np.float64)]
    r = model(inputs, size=SIZE)
    assert len(r) == len(inputs) == r.n
    assert r.files[:3] == [paths[0].name, paths[1].name, paths[2].name] and r.files[3] == "image3.jpg"
    shapes = [im.shape for im in r.ims]
    assert shapes[2] == shapes[3] == shapes[4] == bgr.shape and shapes[5] == bgr.shape  # HWC, 3 channels
    assert shapes[6] == cv2.imread(str(paths[0])).shape and shapes[7] == (70, 90, 3)
    # the same picture given as a path, a PIL image, RGB HWC, CHW or gray (3 identical channels aside) -> same boxes
    ref = to_numpy(r.xyxy[2])
    for k in (3, 4):
        assert np.allclose(to_numpy(r.xyxy[k]), ref)
    # a single image, not in a list; a batch tensor (raw model output, as ultralytics)
    single, listed = model(str(paths[0]), size=SIZE), model([str(paths[0])], size=SIZE)
    assert len(single) == 1 and np.allclose(to_numpy(single.xyxy[0]), to_numpy(listed.xyxy[0]))
    out = model(torch.zeros(2, 3, SIZE, SIZE))
    assert to_numpy(out).shape[0] == 2 and to_numpy(out).shape[-1] == 8


def test_detections_coordinates_and_methods(hub, tmp_path):
    model, paths = hub["model"], hub["images"]
    r = model([str(p) for p in paths], size=SIZE)
    for im, xyxy, xywh, xyxyn, xywhn in zip(r.ims, r.xyxy, r.xywh, r.xyxyn, r.xywhn):
        xyxy, xywh, xyxyn, xywhn = (to_numpy(t) for t in (xyxy, xywh, xyxyn, xywhn))
        assert len(xyxy) and xyxy.shape[1] == 6
        h, w = im.shape[:2]
        assert (xyxy[:, 0] >= 0).all() and (xyxy[:, 2] <= w).all() and (xyxy[:, 3] <= h).all()
        assert np.allclose(xywh[:, :2], (xyxy[:, :2] + xyxy[:, 2:4]) / 2, atol=1e-4)
        assert np.allclose(xywh[:, 2:4], xyxy[:, 2:4] - xyxy[:, :2], atol=1e-4)
        assert np.allclose(xyxyn[:, :4] * [w, h, w, h], xyxy[:, :4], atol=1e-3)
        assert np.allclose(xywhn[:, :4] * [w, h, w, h], xywh[:, :4], atol=1e-3)
        assert np.allclose(xywhn[:, 4:], xyxy[:, 4:])

    text = str(r)
    assert text.startswith("image 1/3: ") and "ellipses" in text
    assert "Speed: " in text and f"per image at shape (3, 3, {SIZE}, 96)" in text
    r.print()

    df = r.pandas().xyxy[0]
    assert list(df.columns) == ["xmin", "ymin", "xmax", "ymax", "confidence", "class", "name"]
    assert len(df) == len(r.xyxy[0]) and set(df["name"]) <= {"rectangle", "ellipse"}
    assert list(r.pandas().xywhn[1].columns) == ["xcenter", "ycenter", "width", "height", "confidence", "class",
                                                 "name"]
    assert [len(d) for d in r.tolist()] == [1, 1, 1]

    originals = [im.copy() for im in r.ims]
    save_dir = r.save(save_dir=tmp_path / "exp")
    assert sorted(p.name for p in Path(save_dir).glob("*.jpg")) == sorted(p.name for p in paths)
    assert all(np.array_equal(a, b) for a, b in zip(originals, r.ims))  # saving leaves the results untouched
    crops = r.crop(save_dir=tmp_path / "exp")
    assert len(crops) == sum(len(x) for x in r.xyxy)
    assert {"box", "conf", "cls", "label", "im"} <= set(crops[0])
    saved = list((tmp_path / "exp2" / "crops").rglob("*.jpg"))
    assert len(saved) == len(crops) and {p.parent.name for p in saved} <= {"rectangle", "ellipse"}
    no_save = r.crop(save=False)
    assert len(no_save) == len(crops)
    rendered = r.render()
    assert any(not np.array_equal(a, b) for a, b in zip(originals, rendered))


def test_nms_attributes(hub):
    model, path = hub["model"], str(hub["images"][0])
    base = model(path, size=SIZE)
    classes = set(to_numpy(base.xyxy[0][:, 5]).astype(int).tolist())
    assert classes == {0, 1}
    try:
        model.classes = [0]
        assert set(to_numpy(model(path, size=SIZE).xyxy[0][:, 5]).astype(int).tolist()) == {0}
        model.classes, model.max_det = None, 3
        assert len(model(path, size=SIZE).xyxy[0]) == 3
        model.max_det, model.conf = 1000, 0.99
        assert len(model(path, size=SIZE).xyxy[0]) == 0
        assert "(no detections)" in str(model(path, size=SIZE))
    finally:
        model.classes, model.max_det, model.conf = None, 1000, 0.25


def test_fresh_and_partly_pretrained_models(hub, tmp_path):
    import hubconf
    from models.yolo import DetectionModel

    m = hubconf.yolov5n(pretrained=False, channels=1, classes=3, _verbose=False, device="cpu")
    assert isinstance(m, DetectionModel) and m.yaml["nc"] == 3 and m.yaml["ch"] == 1
    # 'name' that has a YAML: classes != 80 builds the YAML network and copies the fitting tensors in
    named = tmp_path / "yolov5n.pt"
    named.write_bytes(Path(hub["weights"]).read_bytes())
    m = hubconf._create(str(named), pretrained=True, classes=3, verbose=False, device="cpu")
    ref = hub["model"].model.model  # fused copy of the same weights: compare the head, which fusion leaves alone
    assert np.allclose(to_numpy(m.model[-1].m[1].bias), to_numpy(ref.model[-1].m[1].bias))
    assert m.names == {0: "rectangle", 1: "ellipse", 2: "triangle"}


def test_plain_import_without_autoshape(hub):
    import hubconf
    from models.common import DetectMultiBackend

    m = hubconf.custom(path=str(hub["weights"]), autoshape=False, _verbose=False, device="cpu")
    assert isinstance(m, DetectMultiBackend)
    with pytest.raises(Exception, match="not found"):
        hubconf.custom(path=str(hub["root"] / "absent.pt"), _verbose=False, device="cpu")


@pytest.mark.skipif(NAME != "torch", reason="torch.hub exists on the PyTorch backend only")
def test_torch_hub_load_local(hub):
    import torch as real_torch

    model = real_torch.hub.load(str(ROOT), "custom", path=str(hub["weights"]), source="local", _verbose=False,
                                device="cpu")
    r = model(str(hub["images"][0]), size=SIZE)
    assert isinstance(model, real_torch.nn.Module) and len(r.xyxy[0])


@pytest.mark.parametrize("task", ["segment", "classify"])
def test_custom_on_segment_and_classify_weights_warns_and_returns_the_model(task, tmp_path, monkeypatch):
    """As ultralytics: AutoShape is detection-only; a -seg / -cls file comes back unwrapped, with a warning."""
    import hubconf
    from models.experimental import save_weights
    from models.yolo import ClassificationModel, DetectionModel, SegmentationModel
    from utils.autoshape import AutoShape
    from utils.log import LOGGER

    model = (SegmentationModel("segment/yolov5n-seg.yaml", nc=3) if task == "segment" else
             ClassificationModel(model=DetectionModel("yolov5n.yaml", nc=3), nc=3))
    w = save_weights(tmp_path / f"{task}.pt", model, half=False)
    warnings = []
    monkeypatch.setattr(LOGGER, "warning", lambda m, *a, **k: warnings.append(str(m)))
    loaded = hubconf.custom(path=str(w), _verbose=False, device="cpu")
    assert not isinstance(loaded, AutoShape) and loaded.task == task
    kind = "SegmentationModel" if task == "segment" else "ClassificationModel"
    assert any(f"YOLOv5 {kind} is not yet AutoShape compatible" in m for m in warnings)
