"""--graph (utils/backend/graph.py): the compiled inference forward equals eager, val.py and train.py give the same
numbers with and without it, and on PyTorch the flag compiles or says why not and runs eager."""

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.yolo import DetectionModel  # noqa: E402
from utils import backend  # noqa: E402
from utils.backend import IS_ONEFLOW, inference_mode, to_numpy, torch  # noqa: E402
from utils.backend import graph as graph_mod  # noqa: E402
from utils.backend.graph import compile_forward, optimizer_step_note, train_step_note  # noqa: E402
from utils.log import LOGGER  # noqa: E402

IMGSZ = 64
ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
TINY = {"nc": 6, "depth_multiple": 0.33, "width_multiple": 0.125, "anchors": ANCHORS,
        "backbone": [[-1, 1, "Conv", [64, 6, 2, 2]], [-1, 1, "Conv", [128, 3, 2]], [-1, 1, "C3", [128]],
                     [-1, 1, "Conv", [256, 3, 2]], [-1, 1, "Conv", [512, 3, 2]], [-1, 1, "SPPF", [512, 5]]],
        "head": [[-1, 1, "nn.Upsample", [None, 2, "nearest"]], [[-1, 3], 1, "Concat", [1]], [-1, 1, "C3", [128, False]],
                 [[2, 8, 5], 1, "Detect", ["nc", "anchors"]]]}

oneflow_only = pytest.mark.skipif(not IS_ONEFLOW, reason="nn.Graph is OneFlow's (PyTorch: see the torch tests)")
torch_only = pytest.mark.skipif(IS_ONEFLOW, reason="torch.compile is PyTorch's")


def _tiny_model(seed=0):
    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        torch.manual_seed(seed)
        model = DetectionModel(dict(TINY))
    finally:
        LOGGER.setLevel(level)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so eval mode differs from identity
        for m in model.modules():
            if hasattr(m, "running_var"):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _close(a, b, atol=1e-4):
    a, b = to_numpy(a), to_numpy(b)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=atol)


def _assert_same_outputs(y1, y2):
    _close(y1[0], y2[0], atol=1e-3)  # pixel boxes, up to ~IMGSZ
    assert len(y1[1]) == len(y2[1])
    for a, b in zip(y1[1], y2[1]):
        _close(a, b)


# ------------------------------------------------------------------------------------------------- OneFlow nn.Graph
@oneflow_only
def test_graph_forward_equals_eager_per_shape():
    model = _tiny_model()
    fwd = compile_forward(model)
    x1, x2 = torch.rand(2, 3, IMGSZ, IMGSZ), torch.rand(1, 3, IMGSZ, IMGSZ + 32)  # two letterbox shapes
    with inference_mode():
        _assert_same_outputs(fwd(x1), model(x1))
        _assert_same_outputs(fwd(x2), model(x2))
        _assert_same_outputs(fwd(x1), model(x1))  # cached graph reused
        assert len(fwd.graphs) == 2
        head = model.model[-1]
        assert backend.is_tensor(head.stride) and not any(getattr(g, "is_lazy", False) for g in head.grid)
        next(model.parameters()).mul_(0.5)  # in place, as the EMA update: the compiled graphs read it
        _assert_same_outputs(fwd(x1), model(x1))
        assert len(fwd.graphs) == 2


@oneflow_only
def test_graph_recompiles_after_fuse_and_runs_eager_for_tta():
    model = _tiny_model(1)
    fwd = compile_forward(model)
    x = torch.rand(2, 3, IMGSZ, IMGSZ)
    with inference_mode():
        before = to_numpy(fwd(x)[0])
        level = LOGGER.level
        LOGGER.setLevel(logging.WARNING)
        model.fuse()  # new conv tensors: the cached graph would read the old ones
        LOGGER.setLevel(level)
        _assert_same_outputs(fwd(x), model(x))
        _close(fwd(x)[0], before, atol=1e-3)
        assert len(fwd.graphs) == 1
        _close(fwd(x, augment=True)[0], model(x, augment=True)[0], atol=1e-3)  # TTA runs eager
    model.train()
    assert isinstance(fwd(x), list)  # training mode: eager raw maps


@oneflow_only
def test_yolov5n_graph_forward_equals_eager():
    torch.manual_seed(0)
    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    model = DetectionModel(ROOT / "models" / "yolov5n.yaml", nc=80).eval()
    LOGGER.setLevel(level)
    x = torch.rand(2, 3, 128, 128)
    with inference_mode():
        _assert_same_outputs(compile_forward(model)(x), model(x))


def test_nothing_compiled_under_oneflow_ddp(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert graph_mod.ddp_graphs_hang() == IS_ONEFLOW
    assert ("nothing is compiled" in train_step_note("DDP")) == IS_ONEFLOW
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not graph_mod.ddp_graphs_hang()


def test_train_step_note_says_what_and_why():
    assert "nn.Graph" in train_step_note() and "backward" in train_step_note()
    note = train_step_note("the reason")
    assert note.startswith("--graph:") and note.endswith("training step stays eager: the reason")
    assert "EMA" in optimizer_step_note() and optimizer_step_note("why").endswith("optimizer step stays eager: why")


# ------------------------------------------------------------------------------------------ compiled training step
def _targets(rng, n, batch):
    t = np.zeros((n, 6), np.float32)
    t[:, 0] = np.sort(rng.integers(0, batch, n))
    t[:, 1] = rng.integers(0, 6, n)
    t[:, 2:4] = rng.uniform(0.05, 0.95, (n, 2))
    t[:, 4:6] = rng.uniform(0.02, 0.7, (n, 2))
    return torch.tensor(t)


HYP = dict(box=0.05, cls=0.5, cls_pw=1.0, obj=1.0, obj_pw=1.0, iou_t=0.2, anchor_t=4.0, fl_gamma=0.0)


@pytest.mark.parametrize("fl_gamma,smoothing", [(0.0, 0.0), (1.5, 0.1)])
def test_static_loss_equals_loss(fl_gamma, smoothing):
    """The fixed-shape loss (padding masked, every candidate kept) == ComputeLoss, with and without targets."""
    from utils.loss import ComputeLoss  # noqa: PLC0415
    model = _tiny_model().train()
    loss = ComputeLoss(model, dict(HYP, fl_gamma=fl_gamma, label_smoothing=smoothing))
    rng = np.random.default_rng(1)
    preds = model(torch.rand(4, 3, IMGSZ, IMGSZ))
    for n in (0, 1, 37):
        targets = _targets(rng, n, 4)
        padded = torch.cat((targets, torch.full((64 - n, 6), 7.0)))  # padding values must not matter
        valid = torch.tensor((np.arange(64) < n).astype(np.float32))
        eager, static = loss(preds, targets), loss.static(preds, padded, valid)
        _close(static[1], eager[1], atol=1e-6)
        _close(static[0], eager[0], atol=1e-6)
    assert loss.has_static_form()


def test_segment_loss_has_no_static_form():
    from utils.segment.loss import ComputeLoss  # noqa: PLC0415
    assert not ComputeLoss.has_static_form(object.__new__(ComputeLoss))


@oneflow_only
def test_compiled_train_step_gradients_equal_eager():
    """Two accumulated steps: the same loss items, .grad and BatchNorm statistics as eager backward; one graph."""
    from utils.backend.graph import TrainStepGraph  # noqa: PLC0415
    from utils.loss import ComputeLoss  # noqa: PLC0415
    model = _tiny_model().train()
    loss = ComputeLoss(model, HYP)
    assert TrainStepGraph.supported(model, loss) == ""
    rng = np.random.default_rng(2)
    batches = [(torch.rand(4, 3, IMGSZ, IMGSZ), _targets(rng, n, 4)) for n in (9, 30)]
    start = {k: v.clone() for k, v in model.state_dict().items()}
    results = []
    for compiled in (False, True):
        model.load_state_dict(start)
        model.zero_grad()
        step = TrainStepGraph(model, loss, loss_scale=2.0) if compiled else None
        for imgs, targets in batches:
            if compiled:
                items = step(imgs, targets)[1]
            else:
                total, items = loss(model(imgs), targets)
                (total * 2.0).backward()
        results.append((to_numpy(items), {k: to_numpy(p.grad).copy() for k, p in model.named_parameters()},
                        {k: to_numpy(v).copy() for k, v in model.state_dict().items() if "running" in k}))
    (items_e, grads_e, bn_e), (items_g, grads_g, bn_g) = results
    np.testing.assert_allclose(items_g, items_e, rtol=1e-5)
    scale = max(float(np.abs(g).max()) for g in grads_e.values())
    for k in grads_e:
        np.testing.assert_allclose(grads_g[k], grads_e[k], rtol=1e-3, atol=1e-5 * scale, err_msg=k)
    for k in bn_e:
        np.testing.assert_allclose(bn_g[k], bn_e[k], rtol=1e-5, atol=1e-7, err_msg=k)
    assert step.compiled == 1 and set(model.state_dict()) == set(start)  # the taps are not part of the model


def test_compiled_train_step_refuses_what_it_cannot_do():
    from utils.backend import nn  # noqa: PLC0415
    from utils.backend.graph import TrainStepGraph  # noqa: PLC0415
    from utils.loss import ComputeLoss  # noqa: PLC0415
    model = _tiny_model().train()
    loss = ComputeLoss(model, HYP)
    if not IS_ONEFLOW:
        assert "no nn.Graph" in TrainStepGraph.supported(model, loss)
        return
    assert "DDP" in TrainStepGraph.supported(model, loss, ddp=True)
    assert "AMP" in TrainStepGraph.supported(model, loss, amp=True)
    assert "fixed-shape" in TrainStepGraph.supported(model, object())
    model.model[0].extra = nn.Linear(2, 2)
    assert "Linear" in TrainStepGraph.supported(model, loss)


# ------------------------------------------------------------------------------------------ compiled optimizer step
def _sgd_and_ema(model):
    from utils.training import ModelEMA, smart_optimizer  # noqa: PLC0415
    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        optimizer = smart_optimizer(model, "SGD", 0.01, 0.937, 5e-4)
    finally:
        LOGGER.setLevel(level)
    return optimizer, ModelEMA(model, tau=3)  # tau 3: the EMA decay moves a lot within the test's steps


@oneflow_only
def test_compiled_optimizer_step_equals_eager(monkeypatch):
    """Warmup-like steps (lr and momentum change every call, clipping active or not): the parameters, momentum
    buffers, EMA (parameters and BatchNorm statistics) and the optimizer's state_dict equal the eager step's, and a
    replaced optimizer state (resume) is followed."""
    from utils.backend import clip_grad_norm_  # noqa: PLC0415
    from utils.backend.graph import OptimizerStepGraph  # noqa: PLC0415
    models = [_tiny_model().train() for _ in range(2)]
    (opt_e, ema_e), (opt_g, ema_g) = (_sgd_and_ema(m) for m in models)
    monkeypatch.delenv(graph_mod.GRAPH_OPTIMIZER_ENV, raising=False)
    assert OptimizerStepGraph.supported(opt_g, device="cuda") == ""
    step = OptimizerStepGraph(models[1], opt_g, ema_g)
    x = torch.rand(2, 3, IMGSZ, IMGSZ)
    for i in range(5):
        for opt in (opt_e, opt_g):
            for j, g in enumerate(opt.param_groups):
                g["lr"] = [0.1 - 0.02 * i, 0.002 * i, 0.003 * i][j]
                g["momentum"] = 0.8 + 0.03 * i
        scale = 1e4 if i % 2 else 1.0  # odd steps: a norm far above 10, clipped
        for m in models:
            (sum(p.float().square().sum() for p in m(x * (1 + i))) * scale * 1e-4).backward()
        clip_grad_norm_(models[0].parameters(), 10.0)
        opt_e.step()
        opt_e.zero_grad()
        ema_e.update(models[0])
        step()
        opt_g.zero_grad()
        for a, b in ((models[0], models[1]), (ema_e.ema, ema_g.ema)):
            for (k, u), v in zip(a.state_dict().items(), b.state_dict().values()):
                _close(v, u, atol=1e-6)
        for p, q in zip(models[0].parameters(), models[1].parameters()):
            _close(opt_g._state[q]["momentum_buf"], opt_e._state[p]["momentum_buf"], atol=1e-5)
    assert ema_g.updates == ema_e.updates == 5
    assert opt_g.state_dict()["state"].keys() == opt_e.state_dict()["state"].keys()
    compiled = step.graph
    opt_g.load_state_dict(opt_e.state_dict())  # resume: new momentum buffers -> compiled again, for them
    step()
    assert step.graph is not compiled


def test_compiled_optimizer_step_refuses_what_it_cannot_do(monkeypatch):
    from utils.backend.graph import GRAPH_OPTIMIZER_ENV, OptimizerStepGraph  # noqa: PLC0415
    model = _tiny_model().train()
    optimizer, _ = _sgd_and_ema(model)
    if not IS_ONEFLOW:
        assert "no nn.Graph" in OptimizerStepGraph.supported(optimizer)
        return
    monkeypatch.delenv(GRAPH_OPTIMIZER_ENV, raising=False)
    assert "slower than eager" in OptimizerStepGraph.supported(optimizer, device="cpu")  # the default on a CPU
    assert OptimizerStepGraph.supported(optimizer, device="cuda:0") == ""
    monkeypatch.setenv(GRAPH_OPTIMIZER_ENV, "0")
    assert OptimizerStepGraph.supported(optimizer, device="cuda:0") == f"{GRAPH_OPTIMIZER_ENV}=0"
    monkeypatch.setenv(GRAPH_OPTIMIZER_ENV, "1")
    assert OptimizerStepGraph.supported(optimizer, device="cpu") == ""
    assert "DDP" in OptimizerStepGraph.supported(optimizer, ddp=True)
    assert "AMP" in OptimizerStepGraph.supported(optimizer, amp=True)
    assert "Adam" in OptimizerStepGraph.supported(torch.optim.Adam(model.parameters()))
    optimizer.param_groups[1]["nesterov"] = False
    assert "Nesterov" in OptimizerStepGraph.supported(optimizer)


# ---------------------------------------------------------------------------------------------------- torch.compile
@torch_only
def test_torch_compile_failure_says_so_and_runs_eager(monkeypatch):
    model = _tiny_model()
    messages = []

    def broken(x):
        raise RuntimeError("no C++ compiler\nmore")

    fwd = compile_forward(model, log=messages.append)
    monkeypatch.setattr(fwd, "compiled", broken)
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    with inference_mode():
        _assert_same_outputs(fwd(x), model(x))
        _assert_same_outputs(fwd(x), model(x))
    failed = [m for m in messages if "failed" in m]
    assert len(failed) == 1 and "torch.compile failed (RuntimeError: no C++ compiler); running eager" in failed[0]


@torch_only
@pytest.mark.slow
def test_torch_compiled_forward_equals_eager():
    model = _tiny_model()
    messages = []
    fwd = compile_forward(model, log=messages.append)
    x = torch.rand(2, 3, IMGSZ, IMGSZ)
    with inference_mode():
        _assert_same_outputs(fwd(x), model(x))
    assert not fwd.failed, messages


# ------------------------------------------------------------------------------------------------- val.py / train.py
@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from models.experimental import save_weights  # noqa: PLC0415
    from utils.data.synthetic import make_dataset  # noqa: PLC0415
    root = tmp_path_factory.mktemp("graph")
    data = make_dataset(root / "ds", n_train=8, n_val=6, imgsz=IMGSZ, seed=3)
    model = _tiny_model(2)
    model.names = {i: f"c{i}" for i in range(6)}
    head = model.model[-1]
    with torch.no_grad():  # confident objectness, so NMS keeps boxes and the metrics are not all zero
        for conv in head.m:
            conv.bias.view(head.na, head.no)[:, 4] = 2.0
    weights = save_weights(root / "tiny.pt", model, half=False)
    return {"root": root, "data": str(data), "weights": str(weights)}


def test_val_graph_same_metrics(assets, monkeypatch):
    import val  # noqa: PLC0415
    if not IS_ONEFLOW:  # PyTorch: the compile itself is covered above; here the flag's wiring, without inductor's wait
        monkeypatch.setattr(graph_mod.TorchCompiledForward, "__init__", _eager_torch_init)
    kw = dict(weights=assets["weights"], imgsz=IMGSZ, batch_size=4, workers=0, device="cpu", exist_ok=True,
              project=str(assets["root"] / "runs"), conf_thres=0.001, save_txt=True, save_conf=True)
    eager, maps_e, _ = val.run(assets["data"], name="eager", **kw)
    compiled, maps_g, _ = val.run(assets["data"], name="graph", graph=True, **kw)
    np.testing.assert_allclose(compiled, eager, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(maps_g, maps_e, rtol=1e-4, atol=1e-6)
    _assert_same_label_files(assets["root"] / "runs" / "eager", assets["root"] / "runs" / "graph")


def _assert_same_label_files(run1, run2):
    """The saved predictions (labels/*.txt: class, box, confidence) of two runs are the same boxes."""
    labels = [{p.name: np.loadtxt(p, ndmin=2) for p in sorted((Path(r) / "labels").glob("*.txt"))}
              for r in (run1, run2)]
    assert labels[0] and labels[0].keys() == labels[1].keys()
    for name in labels[0]:
        np.testing.assert_allclose(labels[1][name], labels[0][name], rtol=1e-4, atol=1e-5)


def _eager_torch_init(self, model, log=None):
    graph_mod._CompiledForward.__init__(self, model, log)
    self.compiled, self.failed = model, False


@oneflow_only
def test_train_graph_same_losses_and_metrics(assets, tmp_path, monkeypatch):
    import train  # noqa: PLC0415
    compiled, compile_once = [], graph_mod.GraphForward._compile
    monkeypatch.setattr(graph_mod.GraphForward, "_compile", lambda self, x: compiled.append(x.shape) or
                        compile_once(self, x))
    steps, compile_step = [], graph_mod.TrainStepGraph._compile
    monkeypatch.setattr(graph_mod.TrainStepGraph, "_compile", lambda self: steps.append(1) or compile_step(self))
    monkeypatch.setenv(graph_mod.GRAPH_OPTIMIZER_ENV, "1")  # compiled on a CPU too (not by default: slower there)
    optimizer_graphs, optimizer_step = [], graph_mod.OptimizerStepGraph.__call__

    def counted_step(self):
        norm = optimizer_step(self)
        optimizer_graphs.append(self.graph)
        return norm

    monkeypatch.setattr(graph_mod.OptimizerStepGraph, "__call__", counted_step)
    rows = []
    for name, graph in (("eager", False), ("graph", True)):
        opt = train.parse_opt(known=True)
        for k, v in dict(data=assets["data"], cfg="", weights=assets["weights"], imgsz=IMGSZ, epochs=2, batch_size=4,
                         workers=0, project=str(tmp_path), name=name, noplots=True, noautoanchor=True,
                         patience=100, graph=graph, seed=0, device="cpu").items():
            setattr(opt, k, v)
        train.main(opt)
        rows.append(pd.read_csv(tmp_path / name / "results.csv").to_numpy(dtype=float))
    assert len(compiled) == 1  # the validation forward of the EMA model, compiled once and reused every epoch
    assert len(steps) == 1  # the training step (full batches of 4 at 64 px), compiled once
    assert len(optimizer_graphs) >= 4 and len(set(map(id, optimizer_graphs))) == 1  # warmup: a step per batch;
    # the optimizer step compiled once for the whole run (the lr, momentum and EMA decay are inputs)
    diff = np.abs(rows[1] - rows[0])
    print("results.csv |graph - eager| per column:", diff.max(0))
    # epoch 0: the same numbers; epoch 1 starts from weights that differ in float rounding (the compiled backward
    # sums in another order), and this tiny model's near-zero mAPs move by a few 1e-5 then
    np.testing.assert_allclose(rows[1][0], rows[0][0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(rows[1], rows[0], rtol=1e-3, atol=2e-4)


def test_detect_graph_same_labels(assets, monkeypatch):
    import detect  # noqa: PLC0415
    if not IS_ONEFLOW:
        monkeypatch.setattr(graph_mod.TorchCompiledForward, "__init__", _eager_torch_init)
    src = Path(assets["data"]).parent / "images" / "val"
    kw = dict(weights=assets["weights"], source=str(src), imgsz=IMGSZ, device="cpu", conf_thres=0.001, save_txt=True,
              save_conf=True, nosave=True, project=str(assets["root"] / "detect"), exist_ok=True)
    _assert_same_label_files(*(detect.run(name=name, graph=graph, **kw) for name, graph in (("eager", False),
                                                                                            ("graph", True))))
