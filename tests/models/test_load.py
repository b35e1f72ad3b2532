"""attempt_load / our checkpoints: official-layout files forged by hand, our own files, and every refusal."""

import subprocess
import sys
import zipfile

import numpy as np
import pytest

from models.common import Conv
from models.experimental import WeightsError, attempt_load, load_checkpoint_model, save_weights
from models.yolo import ClassificationModel, DetectionModel, SegmentationModel
from tests.conftest import ROOT
from tests.utils import ckpt_forge
from utils import checkpoint
from utils.backend import from_numpy, nn, nn_module_path, to_numpy, torch
from utils.downloads import DownloadError


def _randomise(model, seed=0):
    """Non-trivial weights and BatchNorm statistics, so that loading the wrong thing cannot pass unnoticed."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype != torch.float32 or name.endswith("anchors"):
                continue
            a = rng.normal(0, 0.05, tuple(t.shape)).astype(np.float32)
            if name.endswith("running_var") or name.endswith("bn.weight"):
                a = np.abs(a) * 10 + 0.5
            t.copy_(from_numpy(a))
    return model


def _module_node(m, memo, half=True):
    """Our module as the forge's Node, with the class paths ultralytics' files carry (models.*, torch.nn.modules.*)."""
    if id(m) in memo:
        return memo[id(m)]
    cls = type(m)
    path = f"{cls.__module__}.{cls.__name__}" if cls.__module__.startswith("models.") else nn_module_path(m)

    def arr(t):
        a = to_numpy(t)
        return a.astype(np.float16) if half and a.dtype == np.float32 else a

    attrs = {}
    for k in ("i", "f", "type", "np", "nc", "no", "nl", "na", "inplace", "yaml", "yaml_file", "save", "names", "d"):
        if k in m.__dict__:
            attrs[k] = m.__dict__[k]
    if "stride" in m.__dict__ and hasattr(m.__dict__["stride"], "shape"):
        attrs["stride"] = arr(m.__dict__["stride"]) if "Detect" in path or "Segment" in path else to_numpy(m.stride)
    if path.endswith(("Detect", "Segment")):
        attrs["grid"] = [np.zeros((1, 3, 2, 2, 2), np.float16)]  # stale caches, as in real files: must be ignored
        attrs["anchor_grid"] = [np.zeros((1, 3, 2, 2, 2), np.float16)]
    node = ckpt_forge.Node(
        path, attrs,
        params={k: arr(v) for k, v in m._parameters.items() if v is not None},
        buffers={k: arr(v) for k, v in m._buffers.items() if v is not None},
    )
    memo[id(m)] = node
    node.children.update({k: _module_node(c, memo, half) for k, c in m._modules.items() if c is not None})
    return node


def forge_official(path, model, cls_path=None, style="torch1"):
    node = _module_node(model, {})
    if cls_path:
        node.cls = cls_path
    ckpt_forge.forge_ultralytics_checkpoint(path, node, style=style)
    return path


def _outputs(model, x):
    with torch.no_grad():
        y = model(x)
    return [to_numpy(t) for t in (y if isinstance(y, (list, tuple)) else [y]) if hasattr(t, "shape")]


def _half_rounded(model):
    """The model as an FP16 file holds it: weights rounded to float16 (what a loaded official file must reproduce)."""
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.dtype == torch.float32:
                t.copy_(from_numpy(to_numpy(t).astype(np.float16).astype(np.float32)))
    return model


@pytest.mark.parametrize("cls_path", ["models.yolo.DetectionModel", "models.yolo.Model", "yolov5.models.yolo.DetectionModel"])
def test_official_detection_file_loads_and_matches(tmp_path, cls_path):
    model = _half_rounded(_randomise(DetectionModel("yolov5n.yaml", nc=3)))
    model.names = {0: "cat", 1: "dog", 2: "bird"}
    path = forge_official(tmp_path / "official.pt", model, cls_path)
    loaded, ckpt = load_checkpoint_model(path)
    assert ckpt["epoch"] == -1 and isinstance(ckpt["opt"]["weights"], str)  # PosixPath -> str
    assert loaded.names == {0: "cat", 1: "dog", 2: "bird"} and loaded.nc == 3
    x = torch.rand(1, 3, 64, 64)
    model.eval()
    ref = _outputs(model, x)[0]
    np.testing.assert_allclose(_outputs(loaded, x)[0], ref, rtol=1e-5, atol=1e-4)
    fused = attempt_load(str(path))
    assert not any(hasattr(m, "bn") for m in fused.modules() if isinstance(m, Conv))
    np.testing.assert_allclose(_outputs(fused, x)[0], ref, rtol=1e-4, atol=1e-3)


def test_official_segmentation_file(tmp_path):
    model = _half_rounded(_randomise(SegmentationModel("yolov5n-seg.yaml", nc=2), seed=1)).eval()
    path = forge_official(tmp_path / "seg.pt", model, style="torch2")
    loaded, _ = load_checkpoint_model(path)
    assert isinstance(loaded, SegmentationModel)
    x = torch.rand(1, 3, 64, 64)
    for a, b in zip(_outputs(loaded, x)[:2], _outputs(model, x)[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_official_classification_file_without_yaml(tmp_path):
    model = ClassificationModel(model=DetectionModel("yolov5n.yaml"), nc=7, cutoff=10)
    model = _half_rounded(_randomise(model, seed=2)).eval()
    del model.yaml  # official -cls files carry no YAML: the structure is read off the tensor shapes
    path = forge_official(tmp_path / "cls.pt", model)
    loaded, _ = load_checkpoint_model(path)
    assert isinstance(loaded, ClassificationModel) and loaded.nc == 7
    x = torch.rand(2, 3, 64, 64)
    np.testing.assert_allclose(_outputs(loaded, x)[0], _outputs(model, x)[0], rtol=1e-5, atol=1e-4)


def test_our_checkpoint_round_trip_is_exact(tmp_path):
    model = _randomise(DetectionModel("yolov5n.yaml", nc=2), seed=3).eval()
    model.names = {0: "a", 1: "b"}
    path = save_weights(tmp_path / "ours.pt", model, half=False, epoch=5, opt={"imgsz": 64})
    ckpt = checkpoint.read(path)
    assert set(ckpt) >= {"model", "ema", "epoch", "opt"} and ckpt["model"]["task"] == "detect"
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(ckpt["model"]["state_dict"][k], to_numpy(v))
    loaded, _ = load_checkpoint_model(path)
    x = torch.rand(1, 3, 64, 64)
    np.testing.assert_array_equal(_outputs(loaded, x)[0], _outputs(model, x)[0])
    assert loaded.names == {0: "a", 1: "b"}


def test_our_checkpoint_opens_in_pytorch_weights_only(tmp_path):
    torch_ = pytest.importorskip("torch")  # runs in the PyTorch venv (make test runs both)
    model = DetectionModel("yolov5n-seg.yaml" if False else "yolov5n.yaml", nc=2)
    path = save_weights(tmp_path / "ours.pt", model, half=True)
    ckpt = torch_.load(path, weights_only=True, map_location="cpu")
    sd = ckpt["model"]["state_dict"]
    assert sd["model.0.conv.weight"].dtype == torch_.float16
    assert sd["model.0.bn.num_batches_tracked"].dtype == torch_.int64
    assert ckpt["model"]["names"] == {0: "0", 1: "1"} and ckpt["model"]["yaml"]["nc"] == 2


def test_wrong_shapes_are_named(tmp_path):
    model = DetectionModel("yolov5n.yaml", nc=2)
    node = _module_node(model, {})
    node.attrs["yaml"] = dict(model.yaml, nc=5)  # YAML says 5 classes, tensors were made for 2
    path = tmp_path / "mismatch.pt"
    ckpt_forge.forge_ultralytics_checkpoint(path, node)
    with pytest.raises(WeightsError, match=r"mismatch\.pt.*wrong shapes.*model\.24\.m\.0\.weight"):
        load_checkpoint_model(path)


def test_unknown_class_and_non_models_refused(tmp_path):
    model = DetectionModel("yolov5n.yaml", nc=1)
    node = _module_node(model, {})
    node.cls = "models.yolo.EvilModel"
    path = tmp_path / "evil.pt"
    ckpt_forge.forge_ultralytics_checkpoint(path, node)
    with pytest.raises(checkpoint.UnsafeCheckpointError, match="models.yolo.EvilModel"):
        attempt_load(str(path))
    plain = tmp_path / "plain.pt"
    checkpoint.write({"hello": 1}, plain)
    with pytest.raises(checkpoint.CheckpointError, match="not a YOLOv5 checkpoint"):
        attempt_load(str(plain))


def test_truncated_and_garbage_files(tmp_path):
    model = DetectionModel("yolov5n.yaml", nc=1)
    good = save_weights(tmp_path / "good.pt", model)
    data = good.read_bytes() if hasattr(good, "read_bytes") else open(good, "rb").read()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a checkpoint" * 100)
    for bad in (cut, junk):
        with pytest.raises(checkpoint.CheckpointError, match=bad.name):
            attempt_load(str(bad))


def test_missing_weights(tmp_cwd, monkeypatch):
    with pytest.raises(FileNotFoundError, match="my_weights.pt"):
        attempt_load("my_weights.pt")
    import urllib.request

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DownloadError, match=r"yolov5s\.pt is not here.*put it at"):
        attempt_load("yolov5s.pt")
    assert not list(tmp_cwd.glob("*.part")) and not (tmp_cwd / "yolov5s.pt").exists()


def test_ensemble_of_two(tmp_path):
    a = save_weights(tmp_path / "a.pt", _randomise(DetectionModel("yolov5n.yaml", nc=2), 4), half=False)
    b = save_weights(tmp_path / "b.pt", _randomise(DetectionModel("yolov5n.yaml", nc=2), 5), half=False)
    ens = attempt_load([str(a), str(b)])
    x = torch.rand(1, 3, 64, 64)
    y, _ = ens(x)
    assert tuple(y.shape) == (1, 2 * 3 * (64 + 16 + 4), 7) and ens.nc == 2
    c = save_weights(tmp_path / "c.pt", DetectionModel("yolov5n.yaml", nc=3))
    with pytest.raises(WeightsError, match="different class counts"):
        attempt_load([str(a), str(c)])


def test_checkpoint_write_is_atomic(tmp_path):
    model = DetectionModel("yolov5n.yaml", nc=1)
    path = save_weights(tmp_path / "last.pt", model)
    before = open(path, "rb").read()
    with pytest.raises(TypeError):
        save_weights(path, model, opt={"bad": object()})
    assert open(path, "rb").read() == before and zipfile.is_zipfile(path)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_loading_never_imports_a_framework_it_does_not_need(tmp_path):
    """Reading a checkpoint needs neither framework: utils.checkpoint imports neither."""
    code = ("import sys; sys.path.insert(0, '.'); from utils import checkpoint; "
            "import sys as s; print('torch' in s.modules, 'oneflow' in s.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["False", "False"], r.stderr
    assert isinstance(nn.Module, type)
