"""ultralytics' import paths: every name its v7.0 scripts and tutorials import, and a custom inference script written
the ultralytics way (DetectMultiBackend, LoadImages, non_max_suppression, scale_boxes, Annotator), on both backends.
Also the sample images of data/images (every script's default --source) and AutoBatch."""

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.test_detect import make_weights, read_rows
from utils.backend import NAME

# module -> names: everything ultralytics v7.0's own scripts, notebooks and README examples import from these paths
ULTRALYTICS_NAMES = {
    "utils.general": (
        "LOGGER", "ROOT", "DATASETS_DIR", "NUM_THREADS", "TQDM_BAR_FORMAT", "FONT", "CONFIG_DIR", "Profile",
        "Timeout", "WorkingDirectory", "check_amp", "check_dataset", "check_file", "check_font", "check_git_info",
        "check_git_status", "check_img_size", "check_imshow", "check_online", "check_python", "check_requirements",
        "check_suffix", "check_version", "check_yaml", "clean_str", "clip_boxes", "clip_segments",
        "coco80_to_coco91_class", "colorstr", "cv2", "download", "emojis", "file_age", "file_date", "file_size",
        "get_default_args", "get_latest_run", "git_describe", "increment_path", "init_seeds", "intersect_dicts",
        "is_ascii", "is_colab", "is_docker", "is_kaggle", "is_notebook", "is_url", "is_writeable",
        "labels_to_class_weights", "labels_to_image_weights", "logging", "make_divisible", "methods",
        "non_max_suppression", "one_cycle", "print_args", "resample_segments", "scale_boxes", "scale_segments",
        "segment2box", "segments2boxes", "set_logging", "strip_optimizer", "unzip_file", "url2file",
        "user_config_dir", "xyn2xy", "xywh2xyxy", "xywhn2xyxy", "xyxy2xywh", "xyxy2xywhn", "yaml_load", "yaml_save",
        "imwrite", "LOCAL_RANK", "RANK", "WORLD_SIZE", "TryExcept", "AUTOINSTALL", "VERBOSE", "LOGGING_NAME"),
    "utils.plots": ("Annotator", "Colors", "colors", "save_one_box", "feature_visualization", "output_to_target",
                    "plot_images", "plot_labels", "plot_results", "plot_evolve", "plot_val_study", "imshow_cls"),
    "utils.torch_utils": (
        "EarlyStopping", "ModelEMA", "copy_attr", "de_parallel", "fuse_conv_and_bn", "initialize_weights",
        "model_info", "profile", "reshape_classifier_output", "scale_img", "select_device", "smartCrossEntropyLoss",
        "smart_DDP", "smart_inference_mode", "smart_optimizer", "time_sync", "torch_distributed_zero_first",
        "device_count", "is_parallel", "intersect_dicts", "sparsity", "prune", "find_modules", "check_amp",
        "LOCAL_RANK", "RANK", "WORLD_SIZE", "LOGGER", "check_version", "colorstr", "file_date", "git_describe",
        "init_seeds", "one_cycle", "count_flops", "model_gflops", "notebook_init", "torch", "nn", "F"),
    "utils.augmentations": ("Albumentations", "augment_hsv", "classify_albumentations", "classify_transforms",
                            "copy_paste", "denormalize", "normalize", "letterbox", "mixup", "random_perspective",
                            "IMAGENET_MEAN", "IMAGENET_STD", "box_candidates"),
    "utils.dataloaders": ("IMG_FORMATS", "VID_FORMATS", "LoadImages", "LoadImagesAndLabels", "LoadStreams",
                          "create_classification_dataloader", "ClassificationDataset", "create_dataloader",
                          "exif_transpose", "img2label_paths", "InfiniteDataLoader", "verify_image_label",
                          "letterbox", "LOCAL_RANK", "RANK", "PIN_MEMORY", "HELP_URL", "NUM_THREADS", "seed_worker",
                          "exif_size", "get_hash", "autosplit"),
    "utils.segment.general": ("mask_iou", "masks2segments", "process_mask", "process_mask_upsample",
                              "process_mask_native", "scale_image", "crop_mask"),
    "utils.segment.dataloaders": ("create_dataloader", "LoadImagesAndLabelsAndMasks", "polygon2mask",
                                  "polygons2masks", "polygons2masks_overlap"),
    "utils.segment.augmentations": ("mixup", "random_perspective"),
    "utils.segment.metrics": ("KEYS", "Metrics", "ap_per_class_box_and_mask", "fitness"),
    "utils.segment.plots": ("plot_images_and_masks", "plot_results_with_masks"),
    "utils.segment.loss": ("ComputeLoss",),
    "utils.metrics": ("ConfusionMatrix", "ap_per_class", "bbox_ioa", "bbox_iou", "box_iou", "fitness"),
    "utils.loss": ("ComputeLoss",),
    "utils": ("TryExcept", "emojis", "join_threads", "notebook_init", "threaded"),
    "utils.autoanchor": ("check_anchor_order", "check_anchors", "kmean_anchors"),
    "utils.autobatch": ("autobatch", "check_train_batch_size"),
    "utils.callbacks": ("Callbacks",),
    "utils.downloads": ("attempt_download", "is_url"),
    "utils.loggers": ("Loggers", "GenericLogger"),
    "models.common": ("AutoShape", "DetectMultiBackend", "Conv", "C3", "SPPF", "Concat", "Bottleneck", "autopad"),
    "models.experimental": ("attempt_load", "MixConv2d", "attempt_download"),
    "models.yolo": ("ClassificationModel", "Detect", "DetectionModel", "Model", "Segment", "SegmentationModel"),
}


@pytest.mark.parametrize("module", sorted(ULTRALYTICS_NAMES))
def test_ultralytics_import_paths(module):
    if module == "utils.loggers" and not (ROOT / "utils" / "loggers").is_dir():
        pytest.skip("utils/loggers (the loggers part of issue 15) is not in this tree yet")
    m = importlib.import_module(module)
    missing = [n for n in ULTRALYTICS_NAMES[module] if not hasattr(m, n)]
    assert missing == [], f"from {module} import {', '.join(missing)} fails"


def test_utils_package_names_as_ultralytics(capsys):
    """``import utils; display = utils.notebook_init()`` (the tutorial's first cell), TryExcept and threaded."""
    import utils

    utils.notebook_init(verbose=True)
    out = capsys.readouterr().out
    assert "Checking setup..." in out and "Setup complete ✅ (" in out and " CPUs, " in out

    @utils.TryExcept("plotting")
    def fails():
        raise ValueError("bad values")

    assert fails() is None and "plotting: bad values" in capsys.readouterr().out
    done = []
    t = utils.threaded(lambda x: done.append(x))(3)
    t.join()
    assert done == [3] and t.daemon
    with pytest.raises(AttributeError):
        utils.not_a_name  # noqa: B018


SHIMS = ("utils/general.py", "utils/torch_utils.py", "utils/segment/general.py", "utils/segment/dataloaders.py",
         "utils/segment/augmentations.py", "utils/augmentations.py", "utils/dataloaders.py")


def test_compat_modules_only_re_export():
    """The ultralytics-path shims define nothing (not even a ``__getattr__``): their names come from elsewhere."""
    import ast

    for f in SHIMS:
        tree = ast.parse((ROOT / f).read_text())
        defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert defined == [], f"{f} defines {defined}"


def _imported_modules(tree):
    """(line, module) of every import statement in ``tree``, ``from a import b`` giving both a and a.b."""
    import ast

    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            yield from ((n.lineno, a.name) for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.module:
            yield from ((n.lineno, m) for m in [n.module] + [f"{n.module}.{a.name}" for a in n.names])


def test_the_library_imports_no_shim_and_no_compat():
    """utils/compat.py and the shims are the top layer: only tests and outside scripts import them (utils/__init__'s
    lazy ``__getattr__`` for ultralytics' ``utils.notebook_init`` aside)."""
    import ast

    top = {"utils/compat.py", *SHIMS}
    top_modules = {f[:-len(".py")].replace("/", ".") for f in top}
    users = []
    for p in sorted(ROOT.rglob("*.py")):
        rel = p.relative_to(ROOT).as_posix()
        if rel.split("/")[0] in ("tests", ".venv", ".venv-torch") or rel in top or rel == "utils/__init__.py":
            continue
        users += [f"{rel}:{line} {m}" for line, m in _imported_modules(ast.parse(p.read_text())) if m in top_modules]
    assert users == []


def test_utils_names_and_compat_load_no_framework():
    """``import utils; utils.TryExcept`` (and importing utils.compat) stays cheap: no OneFlow / PyTorch is loaded."""
    code = ("import sys, utils, utils.compat; utils.TryExcept, utils.threaded, utils.join_threads, utils.emojis; "
            "print(sorted(m for m in ('oneflow', 'torch') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr[-2000:]


def test_compat_torch_helpers_on_a_small_model():
    """ultralytics' torch_utils helpers that now live in utils/compat.py, on this backend."""
    from utils.backend import nn, torch
    from utils.torch_utils import (check_amp, device_count, find_modules, intersect_dicts, is_parallel, prune,
                                   sparsity, torch_distributed_zero_first)

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 1))
    model.module_list = list(model)  # find_modules reads ultralytics' old Darknet attribute
    assert find_modules(model) == [0, 2] and find_modules(model, nn.BatchNorm2d) == [1]
    assert not is_parallel(model) and not check_amp(model) and device_count() >= 0
    sd = model.state_dict()
    assert set(intersect_dicts(sd, sd, exclude=("1.",))) == {k for k in sd if not k.startswith("1.")}
    with torch.no_grad():  # distinct magnitudes, no zeros: pruning 50% of each conv zeroes exactly that many
        for p in model.parameters():
            p.copy_(torch.arange(1, p.numel() + 1, dtype=p.dtype).reshape(p.shape))
    convs = sum(m.weight.numel() for m in model if isinstance(m, nn.Conv2d))
    total = sum(p.numel() for p in model.parameters())
    assert sparsity(model) == 0.0
    prune(model, 0.5)
    assert sparsity(model) == sum(int(0.5 * m.weight.numel()) for m in model if isinstance(m, nn.Conv2d)) / total
    assert 0 < sparsity(model) < convs / total
    with torch_distributed_zero_first(-1):  # no process group: the block just runs
        pass


def test_is_url_and_attempt_download_of_a_url(tmp_path, monkeypatch):
    """ultralytics' utils.downloads.is_url; a URL given as weights names its file in the working folder."""
    from utils.downloads import attempt_download, is_url

    assert is_url("https://github.com/a/b.pt") and not is_url("yolov5s.pt") and not is_url("C:/w/yolov5s.pt")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "yolov5s.pt").write_bytes(b"x")
    url = "https://github.com/ultralytics/yolov5/releases/download/v7.0/yolov5s.pt"
    assert attempt_download(url) == "yolov5s.pt"
    with pytest.raises(FileNotFoundError, match="weights not found: https://example.com/w.pt .*pass its path"):
        attempt_download("https://example.com/w.pt")
    with pytest.raises(FileNotFoundError, match="^weights not found: nope.pt$"):
        attempt_download("./nope.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["yolov5s.pt"]  # no 'https:' folder made


CUSTOM_SCRIPT = r'''
"""A custom detection script written against ultralytics' module paths, as in its tutorials."""
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])  # the repository, as a user's script next to it would have on sys.path

import cv2

from models.common import DetectMultiBackend
from utils.backend import torch  # ultralytics scripts `import torch`; here the active backend's framework
from utils.dataloaders import LoadImages
from utils.general import LOGGER, Profile, check_img_size, increment_path, non_max_suppression, scale_boxes, xyxy2xywh
from utils.plots import Annotator, colors, save_one_box
from utils.torch_utils import select_device, smart_inference_mode


@smart_inference_mode()
def run(weights, source, out, imgsz=64):
    device = select_device("cpu")
    model = DetectMultiBackend(weights, device=device)
    stride, names, pt = model.stride, model.names, model.pt
    imgsz = check_img_size(imgsz, s=stride)
    save_dir = increment_path(Path(out) / "exp", mkdir=True)
    dt = Profile()
    for path, im, im0s, vid_cap, s in LoadImages(source, img_size=imgsz, stride=stride, auto=pt):
        with dt:
            im = torch.from_numpy(im).to(device).float() / 255
            im = im[None] if len(im.shape) == 3 else im
            pred = non_max_suppression(model(im), 0.25, 0.45, max_det=1000)
        for det in pred:
            annotator = Annotator(im0s.copy(), line_width=2, example=str(names))
            rows = []
            if len(det):
                det[:, :4] = scale_boxes(im.shape[2:], det[:, :4], im0s.shape).round()
                gn = torch.tensor(im0s.shape)[[1, 0, 1, 0]]
                for *xyxy, conf, cls in reversed(det):
                    xywh = (xyxy2xywh(torch.tensor(xyxy).view(1, 4)) / gn).view(-1).tolist()
                    rows.append(("%g " * 6).rstrip() % (int(cls), *xywh, float(conf)))
                    annotator.box_label(xyxy, f"{names[int(cls)]} {conf:.2f}", color=colors(int(cls), True))
                    save_one_box(xyxy, im0s, file=save_dir / "crops" / f"{Path(path).stem}.jpg", BGR=True)
            cv2.imwrite(str(save_dir / Path(path).name), annotator.result())
            (save_dir / f"{Path(path).stem}.txt").write_text("".join(r + "\n" for r in rows))
    LOGGER.info(f"custom script: {dt.t:.3f}s, results in {save_dir}")


run(sys.argv[2], sys.argv[3], sys.argv[4])
'''


def test_custom_inference_script_written_the_ultralytics_way(tmp_path):
    """The tutorial-style loop gives the same detections as detect.py on the sample images (this backend)."""
    import detect

    weights = make_weights(tmp_path / "w.pt")
    script = tmp_path / "my_detect.py"
    script.write_text(CUSTOM_SCRIPT)
    source = ROOT / "data" / "images"
    r = subprocess.run([sys.executable, str(script), str(ROOT), str(weights), str(source), str(tmp_path / "custom")],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    detect.run(weights=str(weights), source=str(source), imgsz=[64], save_txt=True, save_conf=True, nosave=True,
               project=str(tmp_path), name="detect", device="cpu")
    ours = read_rows(tmp_path / "detect" / "labels")
    custom = read_rows(tmp_path / "custom" / "exp")
    assert set(ours) == set(custom) == {"shapes_square.txt", "shapes_tall.txt", "shapes_wide.txt"}
    for name in ours:
        assert sorted(r[0] for r in custom[name]) == sorted(r[0] for r in ours[name]), name
    assert sum(len(v) for v in custom.values()) > 0 and len(list((tmp_path / "custom" / "exp").glob("*.jpg"))) == 3
    assert list((tmp_path / "custom" / "exp" / "crops").glob("*.jpg"))


# ----------------------------------------------------------------------------------------------- sample images
def test_sample_images_are_ours_and_reproducible(tmp_path):
    """data/images holds images made by utils/data/synthetic.py: regenerating them gives the same pixels."""
    import cv2

    from utils.data.synthetic import write_samples

    committed = sorted((ROOT / "data" / "images").glob("*"))
    made = write_samples(tmp_path)
    assert [p.name for p in committed] == sorted(p.name for p in made)
    for p in committed:
        a, b = cv2.imread(str(p)), cv2.imread(str(tmp_path / p.name))
        assert a.shape == b.shape and max(a.shape[:2]) == 640
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 2  # identical bytes with the same libjpeg


def test_every_default_source_exists():
    """detect.py, segment/predict.py and classify/predict.py run out of the box: their --source has images."""
    from utils import cli

    for script in ("detect", "segment/predict", "classify/predict"):
        source = cli.defaults(script)["source"]
        assert sorted(p.suffix for p in Path(source).iterdir()) == [".jpg", ".jpg", ".jpg"], script


def test_detect_py_default_source_out_of_the_box(tmp_path):
    """`python detect.py --weights w.pt` (no --source) detects on data/images and saves the three annotated images."""
    weights = make_weights(tmp_path / "w.pt")
    r = subprocess.run([sys.executable, str(ROOT / "detect.py"), "--weights", str(weights), "--img", "64",
                        "--project", str(tmp_path), "--name", "exp", "--device", "cpu"],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "exp").glob("*.jpg")) == [
        "shapes_square.jpg", "shapes_tall.jpg", "shapes_wide.jpg"]


# ---------------------------------------------------------------------------------------------------- AutoBatch
def _plain(messages):
    """Log messages as one text without colorstr's ANSI codes."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(messages))


def test_autobatch_cpu_falls_back_to_16_with_ultralytics_message():
    from tests.test_detect import log_messages
    from utils.autobatch import check_train_batch_size
    from utils.torch_utils import nn

    model = nn.Sequential(nn.Conv2d(3, 4, 3))
    with log_messages() as log:
        assert check_train_batch_size(model, imgsz=64, amp=False) == 16
    assert "AutoBatch: CUDA not detected, using default CPU batch-size 16" in _plain(log)  # ultralytics' words


def test_autobatch_fit_as_ultralytics():
    """The memory line fit: 0.8 of the free memory, capped below a failed size, default on nonsense."""
    from utils.autobatch import fit_batch_size

    sizes = [1, 2, 4, 8, 16]
    mem = [0.5 + 0.25 * b for b in sizes]  # GiB: 0.5 fixed + 0.25 per image
    b, p = fit_batch_size(sizes, mem, free=10.1, fraction=0.8)  # 30.32 (an exact 30 could fit to 29.999...)
    assert b == int((10.1 * 0.8 - 0.5) / 0.25) == 30 and np.allclose(p, [0.25, 0.5])
    assert fit_batch_size(sizes, mem, free=10.1, fraction=0.6)[0] == int((10.1 * 0.6 - 0.5) / 0.25) == 22
    assert fit_batch_size(sizes, mem[:3] + [None, None], free=10.0)[0] == 4  # 8 failed: stay below it
    assert fit_batch_size(sizes, [None] * 5, free=10.0)[0] == 16
    assert fit_batch_size(sizes, [0.0] * 5, free=10.0)[0] == 16  # flat line: no estimate


def test_autobatch_on_cuda_profiles_memory(monkeypatch):
    """The CUDA path with the memory statistics faked (no GPU here): profile -> fit -> the batch size used."""
    from tests.test_detect import log_messages
    from utils import autobatch

    class FakeDevice:
        type = "cuda"

        def __str__(self):
            return "cuda:0"

    class Model:
        def parameters(self):
            return iter([type("P", (), {"device": FakeDevice()})()])

    profiled = []

    def fake_profile(inputs, model, n, device):  # GiB reserved: 1.0 fixed + 0.45 per image
        profiled.extend(tuple(x.shape) for x in inputs)
        return [[0, 0.0, 1.0 + 0.45 * int(x.shape[0]), 0, 0, (), ()] for x in inputs]

    monkeypatch.setattr(autobatch, "cuda_memory", lambda device: ("FakeGPU", 16.0, 0.5, 0.5))  # 15 GiB free
    monkeypatch.setattr(autobatch, "profile", fake_profile)
    with log_messages() as log:
        b = autobatch.autobatch(Model(), imgsz=32)
    assert profiled == [(n, 3, 32, 32) for n in (1, 2, 4, 8, 16)]
    assert b == int((15.0 * 0.8 - 1.0) / 0.45) == 24  # fraction 0.8 of the free memory, as ultralytics v7.0
    text = _plain(log)
    assert "CUDA:0 (FakeGPU) 16.00G total, 0.50G reserved, 0.50G allocated, 15.00G free" in text
    assert "Using batch-size 24 for CUDA:0 12.80G/16.00G (80%)" in text  # (1.0 + 0.45 * 24 + 1.0) / 16

    def one_fails(inputs, model, n, device):  # out of memory from batch 8 on: stay below the first failure
        return [[0, 0.0, 1.0 + 0.45 * int(x.shape[0]), 0, 0, (), ()] if x.shape[0] < 8 else None for x in inputs]

    monkeypatch.setattr(autobatch, "profile", one_fails)
    assert autobatch.autobatch(Model(), imgsz=32) == 4


def test_train_batch_minus_one_on_cpu_trains_with_16(tmp_path):
    """train.py --batch-size -1 on the CPU: AutoBatch says so and trains with 16 (ultralytics raised nothing)."""
    import train
    from tests.test_detect import log_messages
    from tests.test_train import _opt
    from utils.data.synthetic import make_dataset

    data = make_dataset(tmp_path / "syn", n_train=16, n_val=4, imgsz=64, seed=0)
    with log_messages() as log:
        train.main(_opt(data, tmp_path, batch_size=-1, epochs=1, device="cpu"))
    assert "AutoBatch: CUDA not detected, using default CPU batch-size 16" in _plain(log)
    assert (tmp_path / "exp" / "weights" / "last.pt").is_file() and NAME in ("oneflow", "torch")
