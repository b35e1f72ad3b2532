"""export.py --include ultralytics: our weights as ultralytics' own release-file layout, and export.py's per-format
behaviour (refused formats reported, the others written).

The `_ultralytics.pt` file is written without PyTorch (utils/checkpoint/torch_modules.py). Here it is read back through
our allow-list reader on either backend; the `reference` test loads it with ultralytics YOLOv5 v7.0 itself
(attempt_load, hubconf.custom, detect.py, val.py, export.py) and compares with ours on the original weights.
"""

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, reference_env
from tests.test_detect import _iou, log_messages, read_rows
from utils import checkpoint
from utils.backend import NAME, from_numpy, to_numpy, torch
from utils.data.synthetic import CLASS_NAMES

IMGSZ = 320  # detect comparison size; the random test model below gives ~125 distinct boxes on data/images at 320


def random_model(task="detect", seed=0, obj=-2.0, head_gain=80.0):
    """yolov5n-sized model with random weights and BatchNorm statistics; the Detect kernels are scaled so that
    scores vary from image to image (about 40 boxes per sample image above 0.4 at 320 px, all scores distinct)."""
    from models.yolo import ClassificationModel, DetectionModel, SegmentationModel
    from utils.log import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        if task == "classify":
            model = ClassificationModel(model=DetectionModel("yolov5n.yaml"), nc=len(CLASS_NAMES), cutoff=10)
        else:
            model = (SegmentationModel if task == "segment" else DetectionModel)(
                f"yolov5n{'-seg' if task == 'segment' else ''}.yaml", nc=len(CLASS_NAMES))
    finally:
        LOGGER.setLevel(level)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for k, t in model.state_dict().items():
            if t.dtype == torch.float32 and not k.endswith("anchors"):
                a = rng.normal(0, 0.05, tuple(t.shape)).astype(np.float32)
                if k.endswith(("running_var", "bn.weight")):
                    a = np.abs(a) * 10 + 0.5
                t.copy_(from_numpy(a))
        if task != "classify":
            head = model.model[-1]
            for conv in head.m:
                conv.weight.mul_(head_gain)
                conv.bias.view(head.na, -1)[:, 4] += obj
    model.names = dict(enumerate(CLASS_NAMES))
    return model.eval()


def saved(tmp_path, task="detect", name="best.pt"):
    from models.experimental import save_weights

    return Path(save_weights(tmp_path / name, random_model(task), half=True, opt={"imgsz": 64, "epochs": 3}))


def _outputs(model, x):
    with torch.no_grad():
        y = model(from_numpy(x))
    flat = []

    def walk(v):
        if isinstance(v, (list, tuple)):
            for z in v:
                walk(z)
        elif hasattr(v, "shape"):
            flat.append(to_numpy(v))

    walk(y)
    return flat


@pytest.mark.parametrize("task", ["detect", "segment", "classify"])
def test_layout_and_round_trip(tmp_path, task):
    from models.experimental import attempt_load, load_checkpoint_model
    from utils.export import export

    w = saved(tmp_path, task)
    (f,) = export(str(w), include=["ultralytics"], imgsz=[64])
    assert f == str(tmp_path / "best_ultralytics.pt")
    ckpt = checkpoint.read(f)
    assert set(ckpt) == {"epoch", "best_fitness", "model", "ema", "updates", "optimizer", "opt", "git", "date"}
    assert ckpt["epoch"] == -1 and ckpt["ema"] is None and ckpt["optimizer"] is None and ckpt["opt"]["epochs"] == 3
    rec = ckpt["model"]
    kind = {"detect": "DetectionModel", "segment": "SegmentationModel", "classify": "ClassificationModel"}[task]
    assert rec.cls == f"models.yolo.{kind}" and rec.names == dict(enumerate(CLASS_NAMES))
    assert rec.stride.dtype == np.float32 and not rec.training
    layer0 = rec.model._modules["0"]
    assert layer0.cls == "models.common.Conv" and layer0.i == 0 and layer0.f == -1
    conv = layer0.conv
    assert conv.cls == "torch.nn.modules.conv.Conv2d" and conv.kernel_size == (6, 6) and conv.padding == (2, 2)
    assert conv._parameters["bias"] is None and conv.weight.dtype == np.float16  # torch's layout, FP16
    assert layer0.bn.eps == 0.001 and layer0.bn.num_batches_tracked.dtype == np.int64
    if task != "classify":
        head = rec.model._modules["24"]
        assert head.grid == [] or all(g.size == 0 for g in head.grid)
        assert head.stride.dtype == np.float16 and "export" not in head.attrs
        assert (head.get("detect") == "models.yolo.Detect.forward") == (task == "segment")
    x = np.random.default_rng(1).random((1, 3, 64, 64), dtype=np.float32)
    original, _ = load_checkpoint_model(str(w))
    for a, b in zip(_outputs(attempt_load(f, fuse=False), x), _outputs(original, x)):
        np.testing.assert_array_equal(a, b)  # FP16 weights in both files: the same numbers


def test_refused_formats_are_reported_and_the_others_written(tmp_path):
    from utils.export import ExportError, export

    w = saved(tmp_path)
    with log_messages() as log:
        files = export(str(w), include=["tflite", "ultralytics", "engine"], imgsz=[64])
    assert files == [str(tmp_path / "best_ultralytics.pt")]
    assert any("--include tflite refused: TensorFlow" in m for m in log)
    assert any("not exported: tflite, engine" in m for m in log)
    with pytest.raises(ExportError, match=r"(?s)not supported on this backend/platform:\n  tflite.*\n  engine"):
        export(str(w), include=["tflite", "engine"], imgsz=[64])


def test_default_torchscript_on_oneflow_says_what_to_do(tmp_path):
    """ultralytics' default --include torchscript: on OneFlow it names --backend torch and the alternatives."""
    if NAME != "oneflow":
        pytest.skip("TorchScript is exported on the PyTorch backend")
    r = subprocess.run([sys.executable, str(ROOT / "export.py"), "--weights", str(saved(tmp_path)), "--img", "64"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "Traceback" not in out
    assert "TorchScript export needs torch.jit" in out and "--backend torch" in out and "--include onnx" in out


# ------------------------------------------------------------------------------------------------------ reference
def compare_rows(ref_dir, our_dir, iou_min=0.9, conf_tol=0.01, xy_tol=2e-3):
    """(matched, reference rows, extra rows of ours) of two --save-txt label folders: one-to-one greedy matching on
    class, confidence and IoU, or on near-equal coordinates (boxes clipped to zero width at the border have no IoU)."""
    ref, ours = read_rows(ref_dir), read_rows(our_dir)
    matched = total = extra = 0
    for name in sorted(set(ref) | set(ours)):
        r, o, used = ref.get(name, []), list(ours.get(name, [])), set()
        total += len(r)
        for row in sorted(r, key=lambda x: -x[5]):
            for j, cand in enumerate(o):
                same = max(abs(a - b) for a, b in zip(row[1:5], cand[1:5])) <= xy_tol
                if j not in used and cand[0] == row[0] and abs(cand[5] - row[5]) <= conf_tol and (
                        same or _iou(row[1:5], cand[1:5]) >= iou_min):
                    used.add(j)
                    matched += 1
                    break
        extra += len(o) - len(used)
    return matched, total, extra


REFERENCE_CHECK = r"""
import json, os, sys
import numpy as np
import torch
import yolov5
sys.path.insert(0, os.path.dirname(yolov5.__file__))  # the github layout: models.yolo, utils.general, hubconf
from models.experimental import attempt_load
import hubconf
f, x_file, out = sys.argv[1:4]
x = torch.from_numpy(np.load(x_file))
model = attempt_load(f, device="cpu", fuse=True)
with torch.no_grad():
    y = model(x)[0].numpy()
hub = hubconf.custom(path=f, _verbose=False, device="cpu")
np.save(out, y)
print(json.dumps({"names": {str(k): v for k, v in model.names.items()}, "stride": [float(s) for s in model.stride],
                  "type": type(model).__module__ + "." + type(model).__name__, "hub": type(hub).__name__,
                  "hub_names": {str(k): v for k, v in hub.names.items()}}))
"""


@pytest.mark.slow
@pytest.mark.reference
def test_ultralytics_tools_use_the_exported_file(reference_python, tmp_path):
    """ultralytics' attempt_load / hubconf.custom / detect.py / val.py / export.py on `best_ultralytics.pt` give what
    ours give on `best.pt`: the same decoded outputs and the same detections on data/images."""
    import json

    import detect
    from models.experimental import attempt_load
    from utils.data.synthetic import make_dataset
    from utils.export import export

    w = saved(tmp_path)
    (f,) = export(str(w), include=["ultralytics"], imgsz=[64])
    env = reference_env()

    def reference(*args, timeout=900):
        r = subprocess.run([reference_python, *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=timeout)
        assert r.returncode == 0, f"reference {args[:2]} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
        return r.stdout

    # 1. attempt_load (fused) and hubconf.custom: the same decoded outputs as our attempt_load on the original
    x = np.random.default_rng(2).random((1, 3, 128, 128), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "check.py").write_text(REFERENCE_CHECK)
    info = json.loads(reference(str(tmp_path / "check.py"), f, str(tmp_path / "x.npy"),
                                str(tmp_path / "y.npy")).strip().splitlines()[-1])
    assert info["type"] == "models.yolo.DetectionModel" and info["hub"] == "AutoShape"
    assert info["names"] == info["hub_names"] == {str(k): v for k, v in enumerate(CLASS_NAMES)}
    assert info["stride"] == [8.0, 16.0, 32.0]
    ours = _outputs(attempt_load(str(w)), x)[0]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), ours, rtol=1e-3, atol=2e-2)

    # 2. detect.py: ultralytics' on the exported file, ours on the original, the same boxes on data/images
    flags = ["--source", str(ROOT / "data" / "images"), "--img", str(IMGSZ), "--conf-thres", "0.4", "--save-txt",
             "--save-conf", "--nosave", "--project", str(tmp_path / "detect"), "--device", "cpu"]
    reference("-m", "yolov5.detect", "--weights", f, *flags, "--name", "ref")
    detect.run(weights=str(w), source=str(ROOT / "data" / "images"), imgsz=[IMGSZ], conf_thres=0.4, save_txt=True,
               save_conf=True, nosave=True, project=str(tmp_path / "detect"), name="ours", device="cpu")
    matched, total, extra = compare_rows(tmp_path / "detect" / "ref" / "labels",
                                               tmp_path / "detect" / "ours" / "labels")
    print(f"detect.py parity: {matched}/{total} reference boxes matched, {extra} extra")
    assert total >= 50 and matched >= 0.98 * total and extra <= 0.02 * total

    # 3. val.py and export.py (TorchScript) of ultralytics run on it
    data = make_dataset(tmp_path / "ds", n_train=2, n_val=4, imgsz=64, seed=0)
    out = reference("-m", "yolov5.val", "--weights", f, "--data", str(data), "--img", "64", "--batch-size", "4",
                    "--workers", "0", "--project", str(tmp_path / "val"), "--device", "cpu")
    assert "Results saved to" in out or (tmp_path / "val" / "exp").is_dir()
    reference("-m", "yolov5.export", "--weights", f, "--include", "torchscript", "--img", "64", "--device", "cpu")
    assert (tmp_path / "best_ultralytics.torchscript").is_file()
