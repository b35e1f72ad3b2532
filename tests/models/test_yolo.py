"""Model family: building from YAML, published parameter/GFLOP figures, heads, fusion, summaries, bad YAML."""

import logging
import subprocess
import sys

import numpy as np
import pytest
import yaml

from models.common import Conv
from models.yolo import (ClassificationModel, Detect, DetectionModel, Model, ModelConfigError, Segment,
                         SegmentationModel, parse_activation)
from tests.conftest import ROOT
from utils.backend import nn, to_numpy, torch
from utils.model_tools import model_info

# ultralytics v7.0 model summaries: (unfused params, fused params, GFLOPs@640 of conv+BN only). Our counter, like ultralytics' thop, also
# counts nearest-upsample outputs, so the printed figure sits up to ~1% above that column (the exact agreement with
# ultralytics' own printout is asserted in tests/parity/test_ultralytics.py).
PUBLISHED = {
    "yolov5n.yaml": (1872157, 1867405, 4.49), "yolov5s.yaml": (7235389, 7225885, 16.48),
    "yolov5m.yaml": (21190557, 21172173, 48.96),
    "yolov5n6.yaml": (3246940, 3239884, 4.56), "yolov5s6.yaml": (12626620, 12612508, 16.80),
    "yolov5n-seg.yaml": (1991549, 1986637, 7.07), "yolov5s-seg.yaml": (7621277, 7611485, 26.36),
}
PUBLISHED_SLOW = {
    "yolov5l.yaml": (46563709, 46533693, 109.14), "yolov5x.yaml": (86749405, 86705005, 205.67),
    "yolov5m6.yaml": (35731932, 35704908, 49.91), "yolov5l6.yaml": (76770172, 76726332, 111.24),
    "yolov5x6.yaml": (140794780, 140730220, 209.56), "yolov5m-seg.yaml": (21990397, 21971597, 70.83),
    "yolov5l-seg.yaml": (47924957, 47894397, 147.71), "yolov5x-seg.yaml": (88819517, 88774445, 265.64),
}
CLS_PUBLISHED = {"yolov5n.yaml": (2493000, 2489464), "yolov5s.yaml": (5453480, 5447688)}


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


def _check_published(cfg, expected):
    params, fused_params, gflops = expected
    model = (SegmentationModel if "seg" in cfg else DetectionModel)(cfg)
    _, n_p, n_g, g = model_info(model)
    assert n_p == params and n_g == params
    assert gflops - 0.01 <= g <= gflops * 1.01 + 0.1, f"{cfg}: {g:.2f} GFLOPs vs published {gflops}"
    model.fuse()
    assert _n_params(model) == fused_params


@pytest.mark.parametrize("cfg", list(PUBLISHED))
def test_published_params_and_gflops(cfg):
    _check_published(cfg, PUBLISHED[cfg])


@pytest.mark.slow
@pytest.mark.parametrize("cfg", list(PUBLISHED_SLOW))
def test_published_params_and_gflops_large(cfg):
    _check_published(cfg, PUBLISHED_SLOW[cfg])


@pytest.mark.parametrize("cfg", list(CLS_PUBLISHED))
def test_classification_params(cfg):
    params, fused = CLS_PUBLISHED[cfg]
    model = ClassificationModel(model=DetectionModel(cfg), nc=1000, cutoff=10)
    assert _n_params(model) == params
    assert type(model.model[-1]).__name__ == "Classify" and model.model[-1].i == 9
    model.eval()
    out = model(torch.rand(2, 3, 64, 64))
    assert tuple(out.shape) == (2, 1000)
    ref = to_numpy(out)
    model.fuse()
    assert _n_params(model) == fused
    np.testing.assert_allclose(to_numpy(model(torch.rand(2, 3, 64, 64) * 0 + 0.5)).shape, (2, 1000))
    assert np.isfinite(ref).all()


def test_yolov5s_structure_facts():
    model = Model("yolov5s.yaml")  # Model is the pre-v6.2 alias of DetectionModel
    assert Model is DetectionModel
    sd = model.state_dict()
    assert len(sd) == 349
    assert model.save == [4, 6, 10, 14, 17, 20, 23]
    assert to_numpy(model.stride).tolist() == [8.0, 16.0, 32.0]
    det = model.model[-1]
    assert isinstance(det, Detect) and (det.nc, det.no, det.nl, det.na) == (80, 85, 3, 3)
    np.testing.assert_allclose(to_numpy(det.anchors[0]), [[1.25, 1.625], [2.0, 3.75], [4.125, 2.875]])
    assert tuple(sd["model.24.m.0.weight"].shape) == (255, 128, 1, 1)
    assert [(m.i, m.f, m.type) for m in model.model][24] == (24, [17, 20, 23], "models.yolo.Detect")
    assert model.model[11].type == "torch.nn.modules.upsampling.Upsample"
    bn = model.model[0].bn
    assert (bn.eps, bn.momentum) == (1e-3, 0.03)
    # every Conv shares one activation object, as in official checkpoints
    acts = {id(m.act) for m in model.modules() if isinstance(m, Conv)}
    assert len(acts) == 1


def test_bias_priors():
    model = DetectionModel("yolov5n.yaml")
    det = model.model[-1]
    b = to_numpy(det.m[0].bias).reshape(3, -1)
    # conv bias init is random in +-1/sqrt(fan_in); the prior shifts it by log(8 / (640 / 8)^2) and log(0.6 / 79.00001)
    assert np.all(np.abs(b[:, 4] - np.log(8 / 80**2)) < 0.2)
    assert np.all(np.abs(b[:, 5:] - np.log(0.6 / (80 - 0.99999))) < 0.2)


def test_detect_outputs_train_and_eval():
    model = DetectionModel("yolov5n.yaml", nc=3)
    x = torch.rand(2, 3, 64, 96)
    model.train()
    maps = model(x)
    assert [tuple(m.shape) for m in maps] == [(2, 3, 8, 12, 8), (2, 3, 4, 6, 8), (2, 3, 2, 3, 8)]
    model.eval()
    y, raw = model(x)
    assert tuple(y.shape) == (2, 3 * (96 + 24 + 6), 8)
    y = to_numpy(y)
    assert (y[..., 4:] >= 0).all() and (y[..., 4:] <= 1).all()
    # decoding: xy = (2 sigmoid(t) - 0.5 + cell) * stride, wh = (2 sigmoid(t))^2 * anchor_px
    t = to_numpy(raw[0])[0, 1, 2, 3]
    sig = 1 / (1 + np.exp(-t))
    anchor_px = to_numpy(model.model[-1].anchors[0, 1]) * 8
    expected = [(sig[0] * 2 - 0.5 + 3) * 8, (sig[1] * 2 - 0.5 + 2) * 8, *((sig[2:4] * 2) ** 2 * anchor_px)]
    row = y[0, 1 * 8 * 12 + 2 * 12 + 3]  # anchor, then y, then x
    np.testing.assert_allclose(row[:4], expected, rtol=1e-5, atol=1e-4)


def test_segment_outputs():
    model = SegmentationModel("yolov5n-seg.yaml", nc=2)
    seg = model.model[-1]
    assert isinstance(seg, Segment) and seg.no == 2 + 5 + 32 and seg.npr == 64
    x = torch.rand(1, 3, 64, 64)
    model.train()
    maps, proto = model(x)
    assert tuple(proto.shape) == (1, 32, 16, 16) and tuple(maps[0].shape) == (1, 3, 8, 8, 39)
    model.eval()
    y, proto, raw = model(x)
    assert tuple(y.shape) == (1, 3 * (64 + 16 + 4), 39) and tuple(proto.shape) == (1, 32, 16, 16)
    # mask coefficients stay raw (not sigmoided)
    np.testing.assert_allclose(to_numpy(y)[0, 0, 7:], to_numpy(raw[0])[0, 0, 0, 0, 7:], rtol=1e-6)


@pytest.mark.parametrize("cfg", ["yolov5n.yaml", "yolov5n-seg.yaml", "yolov5s-ghost.yaml", "yolov3-tiny.yaml"])
def test_fuse_keeps_outputs(cfg):
    model = (SegmentationModel if "seg" in cfg else DetectionModel)(cfg)
    # non-trivial BatchNorm statistics so that fusing actually has something to fold
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.tensor(rng.normal(0, 0.1, n).astype(np.float32)))
                m.running_var.copy_(torch.tensor(rng.uniform(0.5, 1.5, n).astype(np.float32)))
                m.weight.copy_(torch.tensor(rng.uniform(0.5, 1.5, n).astype(np.float32)))
    model.eval()
    x = torch.rand(1, 3, 64, 64)
    before = to_numpy(model(x)[0])
    n_modules = len(list(model.modules()))
    model.fuse()
    after = to_numpy(model(x)[0])
    assert len(list(model.modules())) < n_modules
    assert not any(hasattr(m, "bn") for m in model.modules() if isinstance(m, Conv))
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-3)


def test_activation_key_applies_to_that_model_only():
    leaky = DetectionModel("yolov5s-LeakyReLU.yaml")
    acts = {type(m.act).__name__ for m in leaky.modules() if isinstance(m, Conv)}
    assert acts == {"LeakyReLU"}
    assert abs(next(m.act for m in leaky.modules() if isinstance(m, Conv)).negative_slope - 0.1) < 1e-9
    plain = DetectionModel("yolov5n.yaml")  # ultralytics leaks the activation into later models; we do not
    assert {type(m.act).__name__ for m in plain.modules() if isinstance(m, Conv)} == {"SiLU"}


def test_parse_activation_is_not_eval(tmp_path):
    assert type(parse_activation("nn.ReLU()")).__name__ == "ReLU"
    for bad in ("__import__('os').system('touch x')", "nn.Conv2d(3, 3, 1)", "nn.LeakyReLU(x)", "nn.SiLU("):
        with pytest.raises(ModelConfigError, match="activation"):
            parse_activation(bad)


def test_summary_line_format(caplog):
    caplog.set_level(logging.INFO, logger="yolov5")
    logger = logging.getLogger("yolov5")
    logger.addHandler(caplog.handler)
    try:
        DetectionModel("yolov5n.yaml")
    finally:
        logger.removeHandler(caplog.handler)
    text = caplog.text
    assert "YOLOv5n summary: 214 layers, 1872157 parameters, 1872157 gradients, 4.6 GFLOPs" in text
    assert "  0                -1  1      1760  models.common.Conv                      [3, 16, 6, 2, 2]" in text


def test_yolo_py_cli_prints_summary():
    r = subprocess.run([sys.executable, "models/yolo.py", "--cfg", "yolov5n.yaml"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith("YOLOv5 🚀") and "Python-" in first and ("oneflow-" in first or "torch-" in first)
    assert "YOLOv5n summary: 214 layers, 1872157 parameters" in r.stdout


def _write(tmp_path, d, name="bad.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(d) if isinstance(d, dict) else d)
    return p


def _base():
    return yaml.safe_load((ROOT / "models" / "yolov5n.yaml").read_text())


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["backbone"][3].__setitem__(2, "Conv9000"), "layer 3: unknown module 'Conv9000'"),
        (lambda d: d["backbone"][1].__setitem__(3, [64, 3, 2, 1, 1, 1, 1, 1, 1]), "layer 1: cannot build Conv"),
        (lambda d: d["head"][2].__setitem__(0, [-1, 30]), "layer 12: 'from' index 30 does not name an earlier layer"),
        (lambda d: d.pop("backbone"), "missing key 'backbone'"),
        (lambda d: d["head"].__setitem__(0, [-1, 1, "Conv"]), "expected [from, number, module, args]"),
        (lambda d: d.__setitem__("activation", "os.system('x')"), "activation"),
    ],
)
def test_malformed_yaml_errors_name_file_and_layer(tmp_path, mutate, message):
    d = _base()
    mutate(d)
    path = _write(tmp_path, d)
    with pytest.raises(ModelConfigError) as e:
        DetectionModel(str(path))
    assert message in str(e.value)
    assert "bad.yaml" in str(e.value) or "activation" in message


def test_yaml_that_is_not_a_mapping(tmp_path):
    for text in ("- just\n- a list\n", "nc: [unclosed\n"):
        with pytest.raises(ModelConfigError, match="bad.yaml"):
            DetectionModel(str(_write(tmp_path, text)))


def test_missing_cfg_file():
    with pytest.raises(FileNotFoundError, match="yolov5q.yaml"):
        DetectionModel("yolov5q.yaml")


def test_integer_anchors_and_overrides():
    d = _base()
    d["anchors"] = 3
    model = DetectionModel(d, nc=4)
    det = model.model[-1]
    assert tuple(det.anchors.shape) == (3, 3, 2) and det.nc == 4 and model.yaml["nc"] == 4
