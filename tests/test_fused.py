"""one-yolov5's --bbox_iou_optim and --multi_tensor_optimizer: accepted on every backend and device, fused only where
OneFlow's CUDA kernels exist, and there they give the plain path's numbers."""

import numpy as np
import pandas as pd
import pytest

from utils.backend import NAME, torch
from utils.backend import fused
from utils.boxes import bbox_iou
from utils.data.synthetic import make_dataset

CUDA_FUSED = fused.fused_kernels_available("cuda")
NO_CUDA = (f"the fused kernels exist only in OneFlow's CUDA build; this run: {NAME}, "
           f"CUDA {'available' if torch.cuda.is_available() else 'not available'}")


@pytest.fixture
def notices(monkeypatch):
    said = []
    monkeypatch.setattr(fused.LOGGER, "info", lambda msg, *a, **k: said.append(str(msg)))
    return said


def test_refused_on_cpu_with_one_notice(notices):
    assert fused.fused_paths("cpu") == (False, False) and notices == []
    assert fused.fused_paths("cpu", True, True) == (False, False)
    assert len(notices) == 1 and "--bbox_iou_optim and --multi_tensor_optimizer" in notices[0]
    assert "plain path runs" in notices[0]
    assert not fused.fused_kernels_available("cpu")


def test_plain_optimizer_and_ema_when_not_fused():
    from utils.training import ModelEMA, smart_optimizer
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    opt = smart_optimizer(model, "SGD", 0.01, 0.9, 5e-4, multi_tensor_optimizer=False)
    assert all(not dict(g.items()).get("fused", False) for g in opt.param_groups)
    assert fused.optimizer_options(False) == {} and fused.optimizer_options(True) == {"fused": True}
    ema = ModelEMA(model, multi_tensor=False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.ones_like(p))
    before = {k: v.clone() for k, v in ema.ema.state_dict().items()}
    ema.update(model)
    d = ema.decay(ema.updates)
    msd = model.state_dict()
    for k, v in ema.ema.state_dict().items():
        if v.is_floating_point():
            want = before[k] * d + msd[k] * (1 - d)
            assert np.allclose(v.numpy(), want.numpy(), atol=1e-6), k


def test_training_with_the_flags_equals_plain_training(tmp_path, notices):
    """On this machine the flags fall back: the run must be the plain run, number for number."""
    import train
    data = make_dataset(tmp_path / "syn", n_train=16, n_val=8, imgsz=64, seed=0)
    runs = {}
    for name, on in (("plain", False), ("flags", True)):
        opt = train.parse_opt(known=True)
        for k, v in dict(data=str(data), cfg="yolov5n.yaml", weights="", imgsz=64, epochs=1, batch_size=8, workers=0,
                         project=str(tmp_path), name=name, noplots=True, noautoanchor=True, bbox_iou_optim=on,
                         multi_tensor_optimizer=on).items():
            setattr(opt, k, v)
        train.main(opt)
        runs[name] = pd.read_csv(tmp_path / name / "results.csv")
    assert np.array_equal(runs["plain"].to_numpy(), runs["flags"].to_numpy())
    assert sum("fused CUDA kernels are not available" in n for n in notices) == (0 if CUDA_FUSED else 1)


def _boxes(n, seed):
    g = np.random.default_rng(seed)
    xy, wh = g.uniform(0, 20, (n, 2)), g.uniform(0.5, 8, (n, 2))
    return torch.tensor(np.concatenate((xy, wh), 1), dtype=torch.float32, device="cuda")


@pytest.mark.skipif(not CUDA_FUSED, reason=NO_CUDA)
def test_fused_ciou_equals_plain_ciou():
    a, b = _boxes(500, 0), _boxes(500, 1)
    plain = bbox_iou(a, b, CIoU=True)
    assert np.allclose(fused.fused_ciou(a, b).cpu().numpy(), plain.cpu().numpy(), atol=1e-5)


@pytest.mark.skipif(not CUDA_FUSED, reason=NO_CUDA)
def test_fused_sgd_and_ema_equal_plain():
    from utils.training import ModelEMA, smart_optimizer

    def steps(multi):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.SiLU()).cuda()
        opt = smart_optimizer(model, "SGD", 0.01, 0.937, 5e-4, multi_tensor_optimizer=multi)
        ema = ModelEMA(model, multi_tensor=multi)
        x = torch.randn(4, 3, 16, 16, device="cuda")
        for _ in range(3):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
            ema.update(model)
        return {k: v.cpu().numpy() for k, v in ema.ema.state_dict().items() if v.is_floating_point()}

    plain, multi = steps(False), steps(True)
    for k in plain:
        assert np.allclose(plain[k], multi[k], atol=1e-5), k

