"""Model export (what export.py runs): ONNX on both backends, TorchScript on PyTorch, every file verified before kept.

Each export is written into a private temporary folder next to its destination, checked, run and compared with the
native model, and only then renamed into place: a failed or interrupted export never leaves a half-written file
under the final name. What the verification does:
  1. ``onnx.checker`` on the written file (ONNX);
  2. the file is run (onnxruntime / torch.jit) on synthetic scenes letterboxed to the export shape, and, for a
     ``--dynamic`` export, again at another batch size (and image size where the backend frees it);
  3. its outputs are compared with the native model's: the export fails unless, element by element,
     ``|exported - native| <= atol + rtol * |native|`` with TOLERANCE (1e-3, 1e-3) in FP32 and (1e-2, 1e-2) in FP16.
     Outputs are pixels and probabilities, so this is about 0.6 px at 640 and 0.001 in a score.
The maximum absolute difference is logged for every export.

Formats are ultralytics v7.0's ``export_formats()``, plus ``ultralytics``: the weights in ultralytics' own checkpoint
layout (``<stem>_ultralytics.pt``, utils/ultralytics_format.py), for its attempt_load / detect.py / val.py / export.py
/ torch.hub. As in ultralytics, every requested format is attempted on its own: one that this build or backend cannot
produce is reported with the reason and what to use instead, one that fails is reported, and the others are written.
"""

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from models.experimental import WeightsError, attempt_load, is_checkpoint_path
from models.yolo import ClassificationModel, Detect, DetectionModel, SegmentationModel
from utils import backend
from utils.backend import NAME, capabilities, from_numpy, inference_mode, to_numpy
from utils.backend import export as backend_export
from utils.backend.export import load_torchscript
from utils.checkpoint import CheckpointError
from utils.cli import check_img_size
from utils.data.augment import letterbox
from utils.data.synthetic import render_scene
from utils.downloads import DownloadError
from utils.errors import UserError
from utils.files import ROOT
from utils.log import LOGGER, colorstr
from utils.ultralytics_format import FormatError, read_back, ultralytics_file, write_ultralytics

# Format, --include argument, file suffix, CPU, GPU: ultralytics v7.0 export_formats(), in its order
EXPORT_FORMATS = (
    ("PyTorch", "-", ".pt", True, True),
    ("TorchScript", "torchscript", ".torchscript", True, True),
    ("ONNX", "onnx", ".onnx", True, True),
    ("OpenVINO", "openvino", "_openvino_model", True, False),
    ("TensorRT", "engine", ".engine", False, True),
    ("CoreML", "coreml", ".mlmodel", True, False),
    ("TensorFlow SavedModel", "saved_model", "_saved_model", True, True),
    ("TensorFlow GraphDef", "pb", ".pb", True, True),
    ("TensorFlow Lite", "tflite", ".tflite", True, False),
    ("TensorFlow Edge TPU", "edgetpu", "_edgetpu.tflite", False, False),
    ("TensorFlow.js", "tfjs", "_web_model", False, False),
    ("PaddlePaddle", "paddle", "_paddle_model", True, True),
)
_TF = "TensorFlow exports rebuild the network in Keras/TensorFlow, which this build does not include"
NOT_BUILT = {  # formats that need a toolchain this project does not install, on any backend
    "openvino": "OpenVINO export needs Intel's openvino package (model optimizer), which this build does not install",
    "engine": "TensorRT export needs an NVIDIA GPU with the tensorrt package, which this build does not install",
    "coreml": "CoreML export needs coremltools and a torch.jit trace, which this build does not install",
    "saved_model": _TF, "pb": _TF, "tflite": _TF, "edgetpu": _TF + " (nor the Edge TPU compiler)", "tfjs": _TF,
    "paddle": "PaddlePaddle export needs paddlepaddle and x2paddle, which this build does not install",
}
TOLERANCE = {"fp32": (1e-3, 1e-3), "fp16": (1e-2, 1e-2)}  # (atol, rtol), see the module docstring
FRAMEWORK_NAMES = {"torch": "PyTorch", "oneflow": "OneFlow"}
TMP_TAG = ".export-tmp-"  # <folder>/.<file name>.export-tmp-<pid>/: one export's private work folder


class ExportError(UserError, RuntimeError):
    """An export that cannot run or did not pass its verification; the message says why and what to do."""


def export_formats():
    """ultralytics' table of formats as a pandas DataFrame (Format, Argument, Suffix, CPU, GPU)."""
    import pandas as pd  # noqa: PLC0415

    return pd.DataFrame(EXPORT_FORMATS, columns=["Format", "Argument", "Suffix", "CPU", "GPU"])


OURS = ("ultralytics",)  # --include arguments beyond ultralytics' table (written by this build on any backend)


def unavailable(argument):
    """Why the --include ``argument`` cannot be produced with this backend/build, or None when it can."""

    if argument == "torchscript" and not capabilities()["torchscript"]:
        return (f"TorchScript export needs torch.jit, which the {NAME} backend does not have: run export.py with "
                f"--backend torch for TorchScript, or use --include onnx (runs everywhere TorchScript does) or "
                f"--include ultralytics (a .pt for ultralytics' own tools)")
    return NOT_BUILT.get(argument)


def check_include(include):
    """Split --include into (formats to export, {refused format: reason}), lower-cased and de-duplicated.

    Raises:
        ExportError: an unknown format (named with the valid ones), or not a single format this build can write.
    """
    include = [str(x).lower().strip() for x in ([include] if isinstance(include, str) else include)]
    valid = tuple(a for _, a, *_ in EXPORT_FORMATS[1:]) + OURS
    unknown = [x for x in include if x not in valid]
    if unknown or not include:
        raise ExportError(f"Invalid --include {unknown or include}, valid --include arguments are {valid}")
    include = list(dict.fromkeys(include))
    refused = {x: unavailable(x) for x in include if unavailable(x)}
    if len(refused) == len(include):
        raise ExportError("not supported on this backend/platform:\n  " +
                          "\n  ".join(f"{x}: {r}" for x, r in refused.items()))
    return [x for x in include if x not in refused], refused


def file_size(path):
    """Size in MB of a file or of everything in a folder."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size / 1e6
    return sum(f.stat().st_size for f in p.glob("**/*") if f.is_file()) / 1e6 if p.is_dir() else 0.0


# --------------------------------------------------------------------------------------------------- temp folders
def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def work_dir(file):
    """A private folder beside ``file`` for one export, removed afterwards whatever happens.

    Folders left by an earlier export of the same file that did not finish (killed, machine stopped) are removed
    with a warning; one that belongs to a process still running is another export of the same file: refused.
    """
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    for stale in sorted(file.parent.glob(f".{file.name}{TMP_TAG}*")):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            raise ExportError(f"{file} is being exported by another process (pid {pid}, working in {stale}); wait "
                              f"for it to finish, or stop it and delete {stale}")
        LOGGER.warning(f"WARNING ⚠️ removing {stale}, left behind by an earlier export of {file.name} that did not "
                       f"finish")
        shutil.rmtree(stale, ignore_errors=True)
        if stale.exists():
            raise ExportError(f"cannot remove the stale temporary folder {stale} (left by an earlier failed "
                              f"export): delete it by hand and export again")
    d = file.parent / f".{file.name}{TMP_TAG}{os.getpid()}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------- verification
def probe_images(shape, seed=0):
    """(b, 3, h, w) float32 RGB 0-1 batch of synthetic scenes (shapes on textured backgrounds), letterboxed."""

    b, _, h, w = shape
    out = np.empty((b, 3, h, w), np.float32)
    for i in range(b):
        img, _ = render_scene(np.random.default_rng([seed, i]), max(h, w))
        img = letterbox(img, (h, w), auto=False)[0]
        out[i] = img[..., ::-1].transpose(2, 0, 1) / 255.0
    return out


def native_outputs(model, x, half=False):
    """The native model's outputs on numpy batch ``x`` as a list of float32 numpy arrays."""

    p = next(model.parameters())
    t = from_numpy(x, p.device)
    t = t.half() if half else t.float()
    with inference_mode():
        y = model(t)
    return [to_numpy(v).astype(np.float32) for v in _flat(y)]


def _flat(y):
    """Nested output lists/tuples (eval-mode heads return (detections, [feature maps])) as one flat list."""
    return [z for v in y for z in _flat(v)] if isinstance(y, (list, tuple)) else [y]


def compare_outputs(exported, native, half=False, what="export"):
    """Max |exported - native| over all outputs; ExportError on a shape mismatch or an element out of TOLERANCE."""
    atol, rtol = TOLERANCE["fp16" if half else "fp32"]
    if len(exported) != len(native):
        raise ExportError(f"{what}: {len(exported)} output(s), the native model gives {len(native)}")
    worst = 0.0
    for i, (a, b) in enumerate(zip(exported, native)):
        a = np.asarray(a, np.float32)
        if a.shape != b.shape:
            raise ExportError(f"{what}: output {i} has shape {a.shape}, the native model gives {b.shape}")
        err = np.abs(a - b)
        worst = max(worst, float(err.max()) if err.size else 0.0)
        bad = ~(err <= atol + rtol * np.abs(b))  # NaN counts as bad
        if bad.any():
            j = np.unravel_index(int(np.argmax(np.where(bad, err, -1))), err.shape)
            raise ExportError(f"{what}: output {i} differs from the native model by up to {worst:.3g} "
                              f"(at {tuple(int(k) for k in j)}: {a[j]:.6g} vs {b[j]:.6g}); tolerance "
                              f"{atol:g} + {rtol:g} * |native|")
    return worst


def check_shapes(shape, gs, dynamic_axes):
    """Input shapes to verify on: the export shape, plus a bigger batch (and size) for each freed axis."""
    b, c, h, w = shape
    axes = set((dynamic_axes or {}).get("images", {}))
    shapes = [(b, c, h, w)]
    if axes:
        shapes.append((b + 1 if 0 in axes else b, c, h + gs if 2 in axes else h, w + gs if 3 in axes else w))
    return shapes


def onnx_session(path, cuda=False):
    """An onnxruntime InferenceSession for ``path`` (CUDA first when asked and available)."""
    import onnxruntime as ort  # noqa: PLC0415

    providers = ["CPUExecutionProvider"]
    if cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), providers=providers)


def verify_onnx(path, model, shapes, half=False):
    """onnx.checker, then onnxruntime vs the native model on each input shape; returns the max abs difference."""
    import onnx  # noqa: PLC0415

    try:
        onnx.checker.check_model(str(path))
    except Exception as e:
        raise ExportError(f"onnx.checker rejects the exported file: {e}") from None
    session = onnx_session(path, cuda=next(model.parameters()).device.type == "cuda")
    name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs()]
    worst = 0.0
    for shape in shapes:
        x = probe_images(shape)
        try:
            y = session.run(outputs, {name: x.astype(np.float16 if half else np.float32)})
        except Exception as e:
            raise ExportError(f"onnxruntime cannot run the exported file on input {shape}: {e}") from None
        worst = max(worst, compare_outputs(y, native_outputs(model, x, half), half, f"ONNX at input {shape}"))
    return worst


# ----------------------------------------------------------------------------------------------------------- ONNX
def onnx_output_names(model):

    return ["output0", "output1"] if isinstance(model, SegmentationModel) else ["output0"]


def onnx_dynamic_axes(model):
    """ultralytics' dynamic axes: batch, height and width of the images; batch and anchors of detections (and the
    mask size of -seg protos); classifiers' outputs follow from the input's batch."""

    axes = {"images": {0: "batch", 2: "height", 3: "width"}}
    if isinstance(model, DetectionModel):
        axes["output0"] = {0: "batch", 1: "anchors"}
    if isinstance(model, SegmentationModel):
        axes["output1"] = {0: "batch", 2: "mask_height", 3: "mask_width"}
    return axes


def _simplify(model_onnx, prefix):
    try:
        import onnxsim  # noqa: PLC0415
    except ImportError:
        LOGGER.warning(f"{prefix} WARNING ⚠️ --simplify needs onnxsim (pip install onnxsim): exporting "
                       f"unsimplified")
        return model_onnx
    try:
        LOGGER.info(f"{prefix} simplifying with onnxsim {getattr(onnxsim, '__version__', '')}...")
        simplified, ok = onnxsim.simplify(model_onnx)
        if not ok:
            raise RuntimeError("onnxsim's own check failed")
        return simplified
    except Exception as e:
        LOGGER.warning(f"{prefix} WARNING ⚠️ simplifier failure ({e}): exporting unsimplified")
        return model_onnx


def export_onnx(model, im, file, opset=12, dynamic=False, simplify=False, metadata=None, half=False):
    """Export, verify and keep ``file``.onnx; returns (path, max abs difference vs the native model)."""
    import onnx  # noqa: PLC0415


    prefix = colorstr("ONNX:")
    f = Path(file).with_suffix(".onnx")
    LOGGER.info(f"\n{prefix} starting export with onnx {onnx.__version__} ({backend.NAME}-{backend.VERSION}, "
                f"opset {opset})...")
    names = onnx_output_names(model)
    with work_dir(f) as tmp:
        tmp_file = tmp / f.name
        try:
            axes = backend_export.write_onnx(model, im, tmp_file, opset=opset, dynamic=dynamic, input_names=["images"],
                                       output_names=names, dynamic_axes=onnx_dynamic_axes(model), work_dir=tmp)
            model_onnx = onnx.load(str(tmp_file))
            onnx.checker.check_model(model_onnx)
        except backend_export.ExportUnsupportedError as e:
            raise ExportError(str(e)) from None
        except ExportError:
            raise
        except Exception as e:
            raise ExportError(f"{backend.NAME} could not export the model to ONNX: {type(e).__name__}: {e}") from e
        if dynamic:
            freed = "; ".join(f"{k}: {', '.join(v.values())}" for k, v in axes.items())
            fixed = ("" if backend_export.ONNX_DYNAMIC_IMAGE_SIZE else
                     f" (image size fixed at {tuple(im.shape[2:])} on oneflow)")
            LOGGER.info(f"{prefix} dynamic axes: {freed}{fixed}")
        for k, v in (metadata or {}).items():
            meta = model_onnx.metadata_props.add()
            meta.key, meta.value = k, str(v)
        if simplify:
            model_onnx = _simplify(model_onnx, prefix)
        onnx.save(model_onnx, str(tmp_file))
        gs = int((metadata or {}).get("stride", 32))
        diff = verify_onnx(tmp_file, model, check_shapes(tuple(im.shape), gs, axes), half)
        LOGGER.info(f"{prefix} verified: onnx.checker passed; onnxruntime vs {backend.NAME} max abs difference "
                    f"{diff:.2e} (tolerance {TOLERANCE['fp16' if half else 'fp32'][0]:g} + "
                    f"{TOLERANCE['fp16' if half else 'fp32'][1]:g} * |native|)")
        os.replace(tmp_file, f)
    return f, diff


# ---------------------------------------------------------------------------------------------------- TorchScript
def verify_torchscript(path, model, shapes, half=False):

    p = next(model.parameters())
    module, _ = load_torchscript(path, p.device)
    worst = 0.0
    for shape in shapes:
        x = probe_images(shape)
        t = from_numpy(x, p.device)
        with inference_mode():
            y = module(t.half() if half else t)
        y = [to_numpy(v).astype(np.float32) for v in (y if isinstance(y, (list, tuple)) else [y])]
        worst = max(worst, compare_outputs(y, native_outputs(model, x, half), half, f"TorchScript at {shape}"))
    return worst


def export_torchscript(model, im, file, optimize=False, metadata=None, half=False):
    """Trace, verify and keep ``file``.torchscript; returns (path, max abs difference vs the native model)."""

    prefix = colorstr("TorchScript:")
    f = Path(file).with_suffix(".torchscript")
    LOGGER.info(f"\n{prefix} starting export with {backend.NAME} {backend.VERSION}...")

    task = "segment" if isinstance(model, SegmentationModel) else "classify" if isinstance(
        model, ClassificationModel) else "detect"
    extra = {"config.txt": json.dumps({"shape": list(im.shape), **(metadata or {}), "task": task})}
    with work_dir(f) as tmp:
        tmp_file = tmp / f.name
        try:
            backend_export.write_torchscript(model, im, tmp_file, extra_files=extra, optimize=optimize)
        except backend_export.ExportUnsupportedError as e:
            raise ExportError(str(e)) from None
        except Exception as e:
            raise ExportError(f"torch.jit.trace failed: {type(e).__name__}: {e}") from e
        diff = verify_torchscript(tmp_file, model, [tuple(im.shape)], half)
        LOGGER.info(f"{prefix} verified: torch.jit vs eager max abs difference {diff:.2e}")
        os.replace(tmp_file, f)
    return f, diff


# ----------------------------------------------------------------------------------------- ultralytics' layout
def export_ultralytics(weights, shape):
    """Write ``<stem>_ultralytics.pt`` (a pickled FP16 model as ultralytics' release files hold it), read it back
    through our allow-list reader and check it against the original weights; returns (path, max abs difference)."""
    prefix = colorstr("ultralytics:")
    f = ultralytics_file(weights)
    LOGGER.info(f"\n{prefix} starting export of {weights} in ultralytics' checkpoint layout (pickled model, FP16)...")
    with work_dir(f) as tmp:
        tmp_file = tmp / f.name
        try:
            _, model = write_ultralytics(weights, tmp_file)
            kind, classes, back = read_back(tmp_file)
        except FormatError as e:
            raise ExportError(str(e)) from None
        x = probe_images(shape)
        diff = compare_outputs(native_outputs(back, x), native_outputs(model, x), half=True,
                               what=f"{f.name} read back")
        LOGGER.info(f"{prefix} verified: read back through the allow-list reader (a pickled {kind}, {len(classes)} "
                    f"module classes), max abs difference {diff:.2e} vs the original weights (FP16 storage)")
        os.replace(tmp_file, f)
    return f, diff


# ------------------------------------------------------------------------------------------------------------- run
IGNORED_HERE = {  # flags of formats this build does not export: named in a warning when set
    "keras": False, "int8": False, "nms": False, "agnostic_nms": False, "verbose": False, "workspace": 4,
    "topk_per_class": 100, "topk_all": 100, "iou_thres": 0.45, "conf_thres": 0.25}


def load_model(weights, device, inplace=False, dynamic_hw=False):
    """attempt_load() for export: fused, eval, Detect set to export mode; bad weights become one ExportError."""

    w = str(weights[0] if isinstance(weights, (list, tuple)) else weights)
    if Path(w).is_dir() and not is_checkpoint_path(w):  # one-yolov5's oneflow.save folders are checkpoints
        raise ExportError(f"--weights {w} is a folder; pass a .pt checkpoint file")
    try:
        model = attempt_load(w, device=device, inplace=True, fuse=True)
    except FileNotFoundError as e:
        raise ExportError(f"--weights {w}: file not found ({e})") from None
    except (CheckpointError, WeightsError, DownloadError) as e:
        raise ExportError(f"--weights {w} cannot be loaded: {e}") from None
    except Exception as e:  # anything else a damaged file can raise while being read
        raise ExportError(f"--weights {w} is not a readable YOLOv5 checkpoint ({type(e).__name__}: {e})") from None
    model.eval()
    for m in model.modules():
        if isinstance(m, Detect):
            m.inplace = inplace
            m.dynamic = dynamic_hw
            m.export = True
            m.stride = tuple(float(s) for s in to_numpy(m.stride).ravel())  # constants, also inside nn.Graph
    return model, w


def export(weights=ROOT / "yolov5s.pt", imgsz=(640, 640), batch_size=1, device="cpu", include=("torchscript", "onnx"),
           half=False, inplace=False, optimize=False, dynamic=False, simplify=False, opset=12, data=None, **ignored):
    """Export ``weights`` to every --include format; returns the written paths (str), in --include order.

    A format this build or backend cannot produce is skipped with a warning naming the reason (an error only when
    none of the requested formats can be produced).

    Raises:
        ExportError: bad flags, unreadable weights, no requested format available here, or an export that failed
            (the others are still attempted first; every failure is named).
    """

    t = time.time()
    include, refused = check_include(include)
    unknown = set(ignored) - set(IGNORED_HERE)
    if unknown:
        raise TypeError(f"unknown export argument(s): {sorted(unknown)}")
    used = [f"--{k.replace('_', '-')}" for k, v in ignored.items() if v != IGNORED_HERE[k]]
    if used:
        LOGGER.warning(f"WARNING ⚠️ {', '.join(used)} only affect TensorFlow/TensorRT/CoreML/OpenVINO exports: "
                       f"ignored for --include {' '.join(include)}")
    imgsz = list(imgsz) if isinstance(imgsz, (list, tuple)) else [imgsz]
    imgsz *= 2 if len(imgsz) == 1 else 1
    if len(imgsz) != 2 or batch_size < 1:
        raise ExportError(f"--imgsz takes one or two sizes (h w) and --batch-size must be >= 1, got {imgsz}, "
                          f"{batch_size}")
    device = backend.select_device(device, log=LOGGER.info)
    if half and device.type == "cpu":
        raise ExportError("--half only compatible with GPU export, i.e. use --device 0")
    if half and dynamic:
        raise ExportError("--half not compatible with --dynamic, i.e. use either --half or --dynamic but not both")
    if optimize and device.type != "cpu":
        raise ExportError("--optimize not compatible with cuda devices, i.e. use --device cpu")
    dynamic_hw = dynamic and backend_export.ONNX_DYNAMIC_IMAGE_SIZE
    model, w = load_model(weights, device, inplace=inplace, dynamic_hw=dynamic_hw)
    gs = int(float(model.stride.max()))
    imgsz = [check_img_size(x, gs) for x in imgsz]
    im = backend.torch.zeros(batch_size, 3, *imgsz).to(device)
    with backend.inference_mode():
        for _ in range(2):  # dry runs: build the grids the graphs keep as constants
            y = model(im)
    if half:
        im, model = im.half(), model.half()
    shape = tuple((y[0] if isinstance(y, (list, tuple)) else y).shape)
    metadata = {"stride": gs, "names": dict(model.names)}
    framework = colorstr(FRAMEWORK_NAMES.get(backend.NAME, backend.NAME) + ":")
    LOGGER.info(f"\n{framework} starting from {w} with output shape {shape} ({file_size(w):.1f} MB)")

    written, failed = [], []
    for fmt, reason in refused.items():
        LOGGER.warning(f"WARNING ⚠️ --include {fmt} refused: {reason}")
    for fmt in include:
        t0 = time.time()
        prefix = colorstr({"onnx": "ONNX:", "torchscript": "TorchScript:", "ultralytics": "ultralytics:"}[fmt])
        try:
            with backend.inference_mode():
                if fmt == "onnx":
                    f, _ = export_onnx(model, im, w, opset=opset, dynamic=dynamic, simplify=simplify,
                                       metadata=metadata, half=half)
                elif fmt == "ultralytics":
                    f, _ = export_ultralytics(w, tuple(im.shape))
                else:
                    f, _ = export_torchscript(model, im, w, optimize=optimize, metadata=metadata, half=half)
        except ExportError as e:
            LOGGER.info(f"{prefix} export failure ❌ {time.time() - t0:.1f}s: {e}")
            failed.append(f"{fmt}: {e}")
            continue
        LOGGER.info(f"{prefix} export success ✅ {time.time() - t0:.1f}s, saved as {f} ({file_size(f):.1f} MB)")
        written.append(str(f))
    if failed:
        raise ExportError("export failed for " + "; ".join(failed))
    _summary(model, written, half, t, refused)
    return written


def _summary(model, files, half, t0, refused=None):

    seg, cls = isinstance(model, SegmentationModel), isinstance(model, ClassificationModel)
    folder = Path("segment" if seg else "classify" if cls else "")
    h = " --half" if half else ""
    kind = "SegmentationModel" if seg else "ClassificationModel" if cls else ""
    note = f"  # WARNING ⚠️ {kind} not yet supported for PyTorch Hub AutoShape inference" if kind else ""
    f = files[-1]
    LOGGER.info(f"\nExport complete ({time.time() - t0:.1f}s)"
                f"\nResults saved to {colorstr('bold', Path(f).parent.resolve())}"
                f"\nDetect:          python {folder / ('predict.py' if seg or cls else 'detect.py')} --weights {f}{h}"
                f"\nValidate:        python {folder / 'val.py'} --weights {f}{h}"
                f"\nPyTorch Hub:     model = torch.hub.load('ultralytics/yolov5', 'custom', '{f}'){note}"
                f"\nVisualize:       https://netron.app")
    if refused:
        LOGGER.warning(f"WARNING ⚠️ not exported: {', '.join(refused)} (see the reasons above)")

