"""The backend layer: selection, isolation of the frameworks, guarded CUDA, seeding, NMS, AMP shims."""

import ast
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT
from utils import backend
from utils.backend import torch

FRAMEWORKS = {"oneflow", "torch", "torchvision", "flowvision"}


def _framework_imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names
                  if n.split(".")[0] in FRAMEWORKS]
    return found


def test_only_backend_imports_frameworks():
    offenders = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {"tests", ".venv", ".venv-torch", ".git"} or rel.parts[:2] == ("utils", "backend"):
            continue
        offenders += _framework_imports(path)
    assert not offenders, "only the utils/backend/ package may import a framework:\n" + "\n".join(offenders)


def test_import_checker_catches_an_import(tmp_path):
    bad = ROOT / "utils" / "_tmp_bad_import_probe.py"
    bad.write_text("def f():\n    import torch.nn as nn\n    from oneflow import nn as fnn\n")
    try:
        assert len(_framework_imports(bad)) == 2
    finally:
        bad.unlink()


@pytest.mark.parametrize(
    "argv, env, expected",
    [
        ([], {}, "oneflow"),
        ([], {"YOLOV5_BACKEND": "torch"}, "torch"),
        (["train.py", "--backend", "torch"], {"YOLOV5_BACKEND": "oneflow"}, "torch"),
        (["x.py", "--backend=oneflow"], {"YOLOV5_BACKEND": "torch"}, "oneflow"),
        ([], {"YOLOV5_BACKEND": "PyTorch"}, "torch"),
    ],
)
def test_backend_selection_order(argv, env, expected):
    assert backend._requested_backend(argv, env) == expected


def test_unknown_backend_is_one_clear_error():
    with pytest.raises(SystemExit, match="unknown backend 'jax'"):
        backend._requested_backend(["--backend", "jax"], {})


def test_missing_backend_is_one_clear_error():
    missing = [n for n in ("oneflow", "torch") if importlib.util.find_spec(n) is None]
    if not missing:
        pytest.skip("both frameworks are installed in this interpreter")
    r = subprocess.run([sys.executable, "-c", "import utils.backend"], cwd=ROOT, capture_output=True, text=True,
                       env={"YOLOV5_BACKEND": missing[0], "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode != 0
    assert f"backend '{missing[0]}' is not importable" in r.stderr and "make venv" in r.stderr
    assert "Traceback" not in r.stderr


def test_banner_names_backend_and_version():
    line = backend.banner()
    assert f"{backend.NAME}-{backend.VERSION}" in line and line.startswith("YOLOv5")


def test_select_device_cpu_and_refusals():
    dev = backend.select_device("cpu")
    assert str(dev).startswith("cpu")
    if backend.cuda_available():
        pytest.skip("a GPU is present: the refusal below is for CPU-only machines")
    with pytest.raises(ValueError, match="Invalid CUDA '--device 0' requested"):
        backend.select_device("0")
    with pytest.raises(ValueError, match="Invalid --device"):
        backend.select_device("gpu")
    assert str(backend.select_device("")).startswith("cpu")


def test_cuda_calls_do_not_abort_without_gpu():
    # On OneFlow, an unguarded CUDA call on a GPU-less machine aborts the process: run them in a child.
    code = ("from utils import backend as b\n"
            "b.init_seeds(1); b.cuda_synchronize(); print(b.cuda_available(), b.cuda_device_count(), "
            "b.cuda_memory_reserved_gb(), b.time_sync() > 0)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    if not backend.cuda_available():
        assert r.stdout.split()[:3] == ["False", "0", "0.0"]


def test_oneflow_vm_settings_respect_user_environment():
    code = "import os; from utils import backend; print(os.environ.get('ONEFLOW_VM_ENABLE_SCHEDULE_YIELD'))"
    env = {"YOLOV5_BACKEND": backend.NAME, "PATH": "/usr/bin:/bin", "ONEFLOW_VM_ENABLE_SCHEDULE_YIELD": "1"}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"  # the user's value wins over ours
    if backend.IS_ONEFLOW and not backend._gpu_present():
        env.pop("ONEFLOW_VM_ENABLE_SCHEDULE_YIELD")
        r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
        assert r.stdout.strip() == "0"


CPUINFO = "processor\t: 0\nvendor_id\t: {vendor}\nmodel name\t: {model}\nflags\t\t: fpu sse2 {extra}\n\n"


@pytest.mark.parametrize("vendor, extra, expected", [("AuthenticAMD", "avx2 fma avx", True),
                                                     ("AuthenticAMD", "avx", False),
                                                     ("GenuineIntel", "avx2 fma avx512f", False)])
def test_openblas_core_type_only_for_amd_with_avx2(tmp_path, vendor, extra, expected):
    f = tmp_path / "cpuinfo"
    f.write_text(CPUINFO.format(vendor=vendor, model="AMD EPYC" if "AMD" in vendor else "Intel Xeon", extra=extra))
    assert backend._amd_with_avx2(str(f)) is expected
    assert backend._amd_with_avx2(str(tmp_path / "absent")) is False


def test_openblas_core_type_respects_user_environment():
    code = "import os; from utils import backend; print(os.environ.get('OPENBLAS_CORETYPE'))"
    env = {"YOLOV5_BACKEND": backend.NAME, "PATH": "/usr/bin:/bin", "OPENBLAS_CORETYPE": "Haswell"}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "Haswell", r.stderr
    env.pop("OPENBLAS_CORETYPE")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    want = "Zen" if backend.IS_ONEFLOW and backend._amd_with_avx2() else "None"
    assert r.stdout.strip() == want, r.stderr


def test_quiet_import_hides_framework_noise():
    r = subprocess.run([sys.executable, "-c", "import utils.backend"], cwd=ROOT, capture_output=True, text=True,
                       env={"YOLOV5_BACKEND": backend.NAME, "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode == 0
    assert "libibverbs" not in r.stderr and "CUDA driver" not in r.stderr


def test_init_seeds_reproducible():
    backend.init_seeds(3)
    a = (torch.rand(4).tolist(), float(np.random.rand()))
    backend.init_seeds(3)
    b = (torch.rand(4).tolist(), float(np.random.rand()))
    assert a == b


def _greedy_nms_reference(boxes, scores, thr):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        ok = True
        for j in keep:
            x1, y1 = max(boxes[i][0], boxes[j][0]), max(boxes[i][1], boxes[j][1])
            x2, y2 = min(boxes[i][2], boxes[j][2]), min(boxes[i][3], boxes[j][3])
            inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
            if inter / (area(boxes[i]) + area(boxes[j]) - inter) > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nms_matches_greedy_definition(seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (200, 2))
    wh = rng.uniform(5, 40, (200, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.permutation(200).astype(np.float32) / 200  # distinct scores: one right answer
    expected = _greedy_nms_reference(boxes.tolist(), scores.tolist(), 0.45)
    assert _host_nms(boxes, scores, 0.45) == expected
    assert _host_nms(boxes, scores, 0.45, max_keep=5) == expected[:5]
    for block in (1, 7, 500):  # box by box, blocks, all at once: the same greedy answer
        with pytest.MonkeyPatch.context() as m:
            m.setattr("utils.nms.BLOCK", block)
            assert _host_nms(boxes, scores, 0.45) == expected


def _host_nms(boxes, scores, iou_thres, max_keep=10**6):
    """utils.nms's host greedy NMS on unsorted boxes -> kept indices into them, by score."""
    from utils.nms import greedy_nms
    order = np.argsort(-scores, kind="stable")
    return order[greedy_nms(boxes[order], np.zeros(len(boxes)), iou_thres, max_keep)].tolist()


def test_nms_hand_made_case():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    # box 3 (0.95) wins; box 0 overlaps it with IoU 0.9 -> gone; box 1 vs box 3: IoU 72/118 = 0.61 -> gone
    assert _host_nms(boxes, scores, 0.5) == [3, 2]
    assert _host_nms(boxes, scores, 0.95) == [3, 0, 1, 2]
    assert _host_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5) == []
    if not backend.native_nms_available("cpu"):  # CPU: no kernel is offered (the host path is used instead)
        with pytest.raises(RuntimeError, match="no NMS kernel"):
            backend.nms(backend.from_numpy(boxes), backend.from_numpy(scores), 0.5)


def test_grad_scaler_and_autocast_shims():
    scaler = backend.GradScaler(enabled=False)
    loss = torch.ones(1)
    assert scaler.scale(loss) is loss and scaler.state_dict() == {}
    with backend.autocast(enabled=False):
        pass
    if backend.IS_ONEFLOW:
        with pytest.raises(RuntimeError, match="AMP training is not available on the oneflow backend"):
            backend.GradScaler(enabled=True)
    assert backend.amp_supported("cpu") is False


def test_capabilities_report():
    caps = backend.capabilities()
    for key in ("backend", "version", "cuda", "amp", "fp16_cpu", "sync_bn_cpu", "channels_last", "native_nms"):
        assert key in caps
    assert caps["backend"] == backend.NAME and caps["sync_bn_cpu"] is False
    if backend.IS_ONEFLOW:
        assert caps["fp16_cpu"] is False and caps["channels_last"] is False and caps["graph"] is True


def test_numpy_round_trip_and_meshgrid():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = backend.from_numpy(a)
    a[0, 0] = 99  # from_numpy copies: the tensor does not alias the array
    assert backend.to_numpy(t)[0, 0] == 0
    yv, xv = backend.meshgrid_ij(torch.arange(2), torch.arange(3))
    assert tuple(yv.shape) == (2, 3) and backend.to_numpy(xv)[1].tolist() == [0, 1, 2]


def test_multihead_attention_shape_and_keys():
    mha = backend.MultiheadAttention(embed_dim=8, num_heads=2)
    keys = sorted(mha.state_dict().keys())
    assert keys == ["in_proj_bias", "in_proj_weight", "out_proj.bias", "out_proj.weight"]
    x = torch.rand(5, 2, 8)
    out, w = mha(x, x, x)
    assert tuple(out.shape) == (5, 2, 8) and tuple(w.shape) == (2, 5, 5)
