"""export.py: ONNX (both backends) and TorchScript (PyTorch) files that match the native model, and their use.

The fast tests use a tiny network that has every op yolov5n exports (Conv, C3, SPPF, nearest Upsample, Concat,
Detect / Segment with Proto) at 64 px: an export through OneFlow's nn.Graph + oneflow-onnx takes ~4 s here instead
of ~12 s for yolov5n. The yolov5n / yolov5n-seg exports themselves run in the slow test.
"""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT
from tests.test_detect import log_messages, read_rows
from utils.backend import NAME, from_numpy, nn, to_numpy, torch

IMGSZ = 64
CLASS_NAMES = ("rectangle", "ellipse", "triangle", "star", "ring", "cross")  # utils/data/synthetic.py's classes
NAMES = dict(enumerate(CLASS_NAMES))
ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]


def assert_close(a, b):
    """Exported vs native outputs: pixels (up to ~500 for these random nets) and scores agree to float32 noise."""
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def tiny_yaml(head):
    """A 12-layer P3-P5 network with every op type yolov5n exports; ``head`` is [module, args]."""
    return {"nc": 6, "depth_multiple": 0.33, "width_multiple": 0.125, "anchors": ANCHORS,
            "backbone": [[-1, 1, "Conv", [64, 6, 2, 2]], [-1, 1, "Conv", [128, 3, 2]], [-1, 1, "Conv", [256, 3, 2]],
                         [-1, 1, "Conv", [512, 3, 2]], [-1, 1, "Conv", [1024, 3, 2]], [-1, 1, "SPPF", [1024, 5]]],
            "head": [[-1, 1, "nn.Upsample", [None, 2, "nearest"]], [[-1, 3], 1, "Concat", [1]],
                     [-1, 1, "C3", [256, False]], [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
                     [[-1, 2], 1, "Concat", [1]], [-1, 1, "C3", [128, False]], [[11, 8, 5], 1, *head]]}


def make_checkpoint(path, task="detect", cfg=None, seed=0, crafted=False, gain=3.0):
    """Save a checkpoint of the tiny network (or ``cfg``) and return its path.

    Default: He-initialised weights (variance gain 3, identity BatchNorm), so every output depends on the image and
    an export that converts any layer wrongly cannot match (deeper nets need a smaller gain: above 2 they amplify
    float32 rounding layer after layer, and no two runtimes agree any more).
    ``crafted``: the Detect head's kernels are zeroed and its biases chosen (as tests/test_detect.py does), so every
    image gives the same few confident boxes whose scores tie exactly within a level: NMS then keeps the same boxes
    whatever the runtime, which makes detections comparable exactly.
    """
    from models.experimental import save_weights
    from models.yolo import DetectionModel, SegmentationModel
    from utils.log import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        if task == "segment":
            model = SegmentationModel(cfg or tiny_yaml(["Segment", ["nc", "anchors", 32, 256]]))
        else:
            model = DetectionModel(cfg or tiny_yaml(["Detect", ["nc", "anchors"]]))
    finally:
        LOGGER.setLevel(level)
    rng = np.random.default_rng(seed)
    head = model.model[-1]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                w = rng.normal(0, np.sqrt(gain / fan_in), tuple(m.weight.shape))
                m.weight.copy_(from_numpy(w.astype(np.float32)))
        for conv in head.m:
            b = conv.bias.view(head.na, -1)
            b[:] = 0.0
            b[:, 4] = -2.0
            if crafted:
                conv.weight.zero_()
                b[:] = -10.0  # nothing anywhere ...
                b[:, :4] = 0.0  # ... boxes of anchor size centred in their cells
        if crafted:
            head.m[1].bias.view(head.na, -1)[0, 4] = 4.0  # P4 anchor 0: objectness 0.98, class 1 (ellipse) 0.95
            head.m[1].bias.view(head.na, -1)[0, 5 + 1] = 3.0
            head.m[2].bias.view(head.na, -1)[0, 4] = 2.0  # P5 anchor 0: objectness 0.88, class 0 (rectangle) 0.88
            head.m[2].bias.view(head.na, -1)[0, 5 + 0] = 2.0
    model.names = dict(NAMES)
    return str(save_weights(path, model, half=False))


def square_images(folder, n=3):
    """n square 64 px JPEGs of synthetic scenes (square: every runner letterboxes them to the same 64x64 input)."""
    from utils.data.synthetic import render_scene

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img, _ = render_scene(np.random.default_rng([7, i]), IMGSZ)
        p = folder / f"im{i}.jpg"
        cv2.imwrite(str(p), cv2.resize(img, (IMGSZ, IMGSZ)))
        paths.append(p)
    return paths


def onnx_io(path):
    """({input: dims}, {output: dims}, metadata) of an ONNX file; dims are ints or parameter names."""
    import onnx

    m = onnx.load(str(path))

    def dims(v):
        return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]

    return ({v.name: dims(v) for v in m.graph.input}, {v.name: dims(v) for v in m.graph.output},
            {p.key: p.value for p in m.metadata_props})


def run_onnx(path, x):
    from utils.export import onnx_session

    s = onnx_session(path)
    return s.run([o.name for o in s.get_outputs()], {s.get_inputs()[0].name: x})


def native(weights, x):
    from models.experimental import attempt_load

    model = attempt_load(weights)
    model.model[-1].export = True  # decoded outputs only: (detections,) or (detections, protos)
    with torch.no_grad():
        return [to_numpy(v) for v in model(from_numpy(x))]


def export(weights, **kw):
    import export as export_script

    kw.setdefault("imgsz", [IMGSZ])
    kw.setdefault("include", ["onnx"])
    return export_script.run(weights=weights, **kw)


def leftovers(folder):
    return sorted(p.name for p in Path(folder).glob(".*export-tmp*"))


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A tiny detection checkpoint, its static ONNX export (made at --imgsz 60 after a stale temp folder), images."""
    root = tmp_path_factory.mktemp("export")
    w = make_checkpoint(root / "tiny.pt", crafted=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = root / f".tiny.onnx.export-tmp-{int(dead.stdout)}"  # left by a process that is gone
    (stale / "graph_weights").mkdir(parents=True)
    (stale / "tiny.onnx").write_bytes(b"half-written")
    with log_messages() as log:
        files = export(w, imgsz=[IMGSZ - 4])  # not a multiple of 32: rounded up to 64 with a warning
    return {"root": root, "weights": w, "onnx": root / "tiny.onnx", "files": files, "log": log,
            "images": square_images(root / "images")}


# -------------------------------------------------------------------------------------------------------------- flags
V70_FLAGS = {  # ultralytics v7.0 export.py parse_opt()
    "data": "data/coco128.yaml", "weights": "yolov5s.pt", "imgsz": [640, 640], "batch_size": 1, "device": "cpu",
    "half": False, "inplace": False, "keras": False, "optimize": False, "int8": False, "dynamic": False,
    "simplify": False, "opset": 12, "verbose": False, "workspace": 4, "nms": False, "agnostic_nms": False,
    "topk_per_class": 100, "topk_all": 100, "iou_thres": 0.45, "conf_thres": 0.25, "include": ["torchscript"]}


def test_flags_and_defaults_match_ultralytics_v7():
    import export as export_script

    opt = vars(export_script.parse_opt([]))
    assert set(opt) == set(V70_FLAGS) | {"backend"}
    for k, v in V70_FLAGS.items():
        got = Path(str(opt[k])).as_posix().split("/")[-len(Path(v).parts):] if k in ("data", "weights") else opt[k]
        assert got == (list(Path(v).parts) if k in ("data", "weights") else v), k
    opt = export_script.parse_opt(["--img", "320", "--include", "onnx", "torchscript", "--weights", "a.pt", "b.pt"])
    assert opt.imgsz == [320] and opt.include == ["onnx", "torchscript"] and opt.weights == ["a.pt", "b.pt"]


def test_format_table_is_ultralytics_v7():
    from utils.export import export_formats

    df = export_formats()
    assert list(df.columns) == ["Format", "Argument", "Suffix", "CPU", "GPU"]
    assert list(df["Argument"]) == ["-", "torchscript", "onnx", "openvino", "engine", "coreml", "saved_model", "pb",
                                    "tflite", "edgetpu", "tfjs", "paddle"]


# ----------------------------------------------------------------------------------------------------------- ONNX
def test_static_onnx_matches_native(assets):
    f = assets["onnx"]
    assert assets["files"] == [str(f)] and f.is_file()
    log = assets["log"]
    assert any("--img-size 60 must be multiple of max stride 32, updating to 64" in m for m in log)
    assert any("removing" in m and ".tiny.onnx.export-tmp-" in m and "did not finish" in m for m in log)
    assert any("export success" in m for m in log)
    assert leftovers(assets["root"]) == []
    verified = [m for m in log if "max abs difference" in m]
    assert len(verified) == 1 and f"onnxruntime vs {NAME}" in verified[0]

    inputs, outputs, meta = onnx_io(f)
    assert inputs == {"images": [1, 3, IMGSZ, IMGSZ]}
    assert outputs == {"output0": [1, 3 * (8 * 8 + 4 * 4 + 2 * 2), 11]}  # 252 anchors x (xywh, obj, 6 classes)
    assert meta == {"stride": "32", "names": str(NAMES), "task": "detect"}  # the task is recorded, not guessed

    from utils.export import probe_images

    x = probe_images((1, 3, IMGSZ, IMGSZ), seed=3)
    (y,), (ref,) = run_onnx(f, x), native(assets["weights"], x)
    assert_close(y, ref)
    assert (ref[..., 4] > 0.25).sum() >= 3  # the comparison covers confident boxes, not only empty output


def test_dynamic_batch(tmp_path):
    from utils.export import probe_images

    w = make_checkpoint(tmp_path / "dyn.pt", seed=1)
    with log_messages() as log:
        (f,) = export(w, dynamic=True, simplify=True)
    inputs, outputs, _ = onnx_io(f)
    if NAME == "torch":  # batch and image size free, as ultralytics
        assert inputs == {"images": ["batch", 3, "height", "width"]} and outputs["output0"][:2] == ["batch", "anchors"]
        shapes = [(3, 3, IMGSZ, IMGSZ), (2, 3, 96, IMGSZ)]
    else:  # oneflow-onnx: the batch only (grids are constants of the traced graph)
        assert inputs == {"images": ["batch", 3, IMGSZ, IMGSZ]} and outputs == {"output0": ["batch", 252, 11]}
        shapes = [(3, 3, IMGSZ, IMGSZ), (1, 3, IMGSZ, IMGSZ)]
    # the export verified itself at a second batch size (and size) before it was kept
    assert any("max abs difference" in m for m in log) and any("dynamic axes: " in m for m in log)
    for shape in shapes:
        x = probe_images(shape, seed=5)
        (y,), (ref,) = run_onnx(f, x), native(w, x)
        assert_close(y, ref)


def test_segmentation_model(tmp_path):
    from utils.export import probe_images

    w = make_checkpoint(tmp_path / "seg.pt", task="segment", seed=2)
    (f,) = export(w, dynamic=True)
    inputs, outputs, _ = onnx_io(f)
    assert list(inputs) == ["images"] and list(outputs) == ["output0", "output1"]
    if NAME == "oneflow":
        assert outputs == {"output0": ["batch", 252, 43], "output1": ["batch", 32, 16, 16]}  # 43 = 5 + 6 cls + 32
    else:
        assert outputs["output0"][:2] == ["batch", "anchors"] and outputs["output1"] == [
            "batch", 32, "mask_height", "mask_width"]
    x = probe_images((2, 3, IMGSZ, IMGSZ), seed=6)
    y, ref = run_onnx(f, x), native(w, x)
    assert [a.shape for a in y] == [(2, 252, 43), (2, 32, 16, 16)] == [a.shape for a in ref]
    for a, b in zip(y, ref):
        assert_close(a, b)


# ------------------------------------------------------------------------------------- runners of the exported file
def _detections(model, x):
    from utils.nms import non_max_suppression

    with torch.no_grad():
        y = model(from_numpy(x))
    return [to_numpy(d) for d in non_max_suppression(y, 0.25, 0.45)]


def test_detect_multibackend_onnxruntime_and_dnn(assets):
    from utils.export import probe_images
    from utils.runtime import DetectMultiBackend

    pt = DetectMultiBackend(assets["weights"])
    ort = DetectMultiBackend(str(assets["onnx"]))
    dnn = DetectMultiBackend(str(assets["onnx"]), dnn=True)
    assert (ort.onnx, ort.pt, ort.stride, ort.task, ort.names) == (True, False, 32, "detect", pt.names)
    x = probe_images((1, 3, IMGSZ, IMGSZ), seed=4)
    ref = _detections(pt, x)[0]
    assert len(ref) >= 2
    for runner in (ort, dnn):
        got = _detections(runner, x)[0]
        assert_close(got, ref)
    with pytest.raises(ValueError, match=r"exported for input shape \(1, 3, 64, 64\).*--dynamic"):
        ort(from_numpy(probe_images((1, 3, 96, IMGSZ))))


def test_the_runtime_reads_the_recorded_task(assets, tmp_path):
    """The task comes from the file's metadata; only a file without it (ultralytics' own exports) is judged by its
    outputs, and a task this build does not know is refused by name."""
    import onnx

    from utils.runtime import DetectMultiBackend, UnsupportedFormatError

    def with_task(task, name):
        proto = onnx.load(str(assets["onnx"]))
        props = [(p.key, p.value) for p in proto.metadata_props if p.key != "task"]
        del proto.metadata_props[:]
        for k, v in props + ([("task", task)] if task else []):
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        onnx.save(proto, str(tmp_path / name))
        return str(tmp_path / name)

    assert DetectMultiBackend(str(assets["onnx"])).task == "detect"
    assert DetectMultiBackend(with_task(None, "unrecorded.onnx")).task == "detect"  # one (b, n, no) output
    assert DetectMultiBackend(with_task("classify", "recorded.onnx")).task == "classify"  # the record wins
    with pytest.raises(UnsupportedFormatError, match="holds a 'keypoints' model"):
        DetectMultiBackend(with_task("keypoints", "other.onnx"))


def test_detect_val_and_hub_give_native_results(assets, tmp_path):
    import detect
    import hubconf
    import val
    from utils.data.synthetic import make_dataset

    onnx, pt = str(assets["onnx"]), assets["weights"]
    runs = {}
    for name, w in (("pt", pt), ("onnx", onnx)):
        d = detect.run(weights=w, source=assets["root"] / "images", imgsz=IMGSZ, device="cpu", save_txt=True,
                       save_conf=True, nosave=True, project=tmp_path, name=name)
        runs[name] = read_rows(d / "labels")
    assert sorted(runs["pt"]) == sorted(runs["onnx"]) and sum(len(r) for r in runs["pt"].values()) >= 3
    for k, rows in runs["pt"].items():
        assert np.allclose(np.array(rows), np.array(runs["onnx"][k]), atol=2e-4), k

    data = make_dataset(tmp_path / "ds", n_train=1, n_val=4, imgsz=IMGSZ, seed=3)
    kw = dict(data=str(data), imgsz=IMGSZ, batch_size=4, workers=0, device="cpu", plots=False, project=tmp_path,
              exist_ok=True)
    preds = []
    for w in (pt, onnx):  # --task speed: square, unpadded letterbox for both, so the same input images
        with log_messages() as log:
            results, maps, _ = val.run(weights=w, task="speed", name=f"speed_{Path(w).suffix[1:]}", save_json=True,
                                       **kw)
        assert len(results) == 7 and all(np.isfinite(results)) and maps.shape == (6,)
        rows = json.loads((tmp_path / f"speed_{Path(w).suffix[1:]}" / "tiny_predictions.json").read_text())
        preds.append(sorted((r["image_id"], r["category_id"], *r["bbox"], r["score"]) for r in rows))
    assert any("Forcing --batch-size 1 square inference (1,3,64,64) for non-PyTorch models" in m for m in log)
    assert len(preds[0]) >= 8 and len(preds[0]) == len(preds[1])
    np.testing.assert_allclose([r[2:] for r in preds[0]], [r[2:] for r in preds[1]], atol=2e-3)
    assert [r[:2] for r in preds[0]] == [r[:2] for r in preds[1]]

    hub = [hubconf.custom(path=w, _verbose=False, device="cpu") for w in (pt, onnx)]
    images = [str(p) for p in assets["images"]]
    a, b = (m(images[0], size=IMGSZ).xyxy[0] for m in hub)
    assert len(a) and to_numpy(a).shape == to_numpy(b).shape
    assert np.abs(to_numpy(a) - to_numpy(b)).max() < 1e-3
    assert hub[1].names == hub[0].names == NAMES


def test_torchscript(assets, tmp_path):
    from utils.export import ExportError, probe_images

    if NAME == "oneflow":
        with pytest.raises(ExportError, match="(?s)not supported on this backend/platform.*TorchScript.*--backend"):
            export(assets["weights"], include=["torchscript"])
        return
    from utils.runtime import DetectMultiBackend

    w = tmp_path / "ts.pt"
    w.write_bytes(Path(assets["weights"]).read_bytes())
    with log_messages() as log:
        (f,) = export(str(w), include=["torchscript"])
    assert f.endswith("ts.torchscript") and any("torch.jit vs eager max abs difference" in m for m in log)
    jit = DetectMultiBackend(f)
    assert jit.jit and jit.names == NAMES and jit.stride == 32
    x = probe_images((2, 3, IMGSZ, IMGSZ))
    np.testing.assert_allclose(to_numpy(jit(from_numpy(x))), native(str(w), x)[0], atol=1e-4)


# ------------------------------------------------------------------------------------------------------ bad input
def test_bad_input_is_one_clear_error(assets, tmp_path):
    from utils.export import ExportError

    w = assets["weights"]
    cases = [
        (dict(weights=str(tmp_path / "absent.pt")), "file not found"),
        (dict(include=["onnx", "foo"]), r"Invalid --include \['foo'\], valid --include arguments are \('torchscript'"),
        # only refused formats (with one it can write, export.py writes that one: see test_export_ultralytics.py)
        (dict(include=["tflite", "engine"]),
         r"not supported on this backend/platform:\n  tflite: TensorFlow.*\n  engine: TensorRT"),
        (dict(half=True), "--half only compatible with GPU export"),
    ]
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(Path(w).read_bytes()[:5000])  # truncated download
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    cases += [(dict(weights=str(corrupt)), "cannot be loaded|not a readable"),
              (dict(weights=str(garbage)), "cannot be loaded|not a readable")]
    for kwargs, message in cases:
        kwargs.setdefault("weights", w)
        with pytest.raises(ExportError, match=message):
            export(**kwargs)
    assert not list(tmp_path.glob("*.onnx")) and leftovers(tmp_path) == []


def test_failed_verification_leaves_nothing_behind(assets, tmp_path, monkeypatch):
    """A file that does not reproduce the model is never renamed into place, and the temp folder goes away."""
    import onnx
    from onnx import TensorProto, helper

    from utils.backend import export as backend_export
    from utils.export import ExportError

    def wrong_export(model, im, f, **kw):  # a valid ONNX graph that ignores the model: images -> output0 = images
        graph = helper.make_graph([helper.make_node("Identity", ["images"], ["output0"])], "wrong",
                                  [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(im.shape))],
                                  [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(im.shape))])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)]), str(f))
        return {}

    w = tmp_path / "w.pt"
    w.write_bytes(Path(assets["weights"]).read_bytes())
    monkeypatch.setattr(backend_export, "write_onnx", wrong_export)
    with pytest.raises(ExportError, match=r"export failed for onnx: ONNX at input \(1, 3, 64, 64\): output 0 has "
                                          r"shape \(1, 3, 64, 64\), the native model gives \(1, 252, 11\)"):
        export(str(w))
    assert not (tmp_path / "w.onnx").exists() and leftovers(tmp_path) == []

    busy = tmp_path / f".w.onnx.export-tmp-{os.getppid()}"  # another live process is exporting the same file
    busy.mkdir()
    with pytest.raises(ExportError, match=f"being exported by another process \\(pid {os.getppid()}"):
        export(str(w))
    assert busy.is_dir()


def test_cli_reports_errors_without_traceback(tmp_path):
    env = dict(os.environ, YOLOV5_BACKEND=NAME)
    r = subprocess.run([sys.executable, str(ROOT / "export.py"), "--weights", str(tmp_path / "missing.pt"),
                        "--include", "onnx"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1 and "ERROR: --weights" in r.stdout + r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------------------------------------------------------ slow
@pytest.mark.slow
@pytest.mark.parametrize("task", ["detect", "segment"])
def test_yolov5n_exports_static_and_dynamic(tmp_path, task):
    from utils.export import probe_images

    cfg = ROOT / "models" / ("segment/yolov5n-seg.yaml" if task == "segment" else "yolov5n.yaml")
    from models.yolo import load_model_yaml

    y = load_model_yaml(cfg)
    y["nc"] = 3
    w = make_checkpoint(tmp_path / f"{task}.pt", task=task, cfg=y, gain=2.0)
    for dynamic in (False, True):
        (f,) = export(w, dynamic=dynamic, imgsz=[96, 128])
        x = probe_images((2 if dynamic else 1, 3, 96, 128), seed=9)
        for a, b in zip(run_onnx(f, x), native(w, x)):
            assert_close(a, b)
