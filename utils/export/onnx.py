"""The ONNX writer (``--include onnx``, both backends): export, onnx.checker, onnxruntime vs the native model, keep.

Why a module of its own: every export format is one writer module of utils/export/ (see its ``__init__``). The
framework call is the backend's (utils/backend/export.py write_onnx); the file is checked here with the inference
side's onnxruntime session (utils/runtime/onnx.py), so what export verifies is what detect.py / val.py will run.
The model's task is written into the metadata (key ``task``, beside ``stride`` and ``names``) for the runtime to read.
"""

import os
from pathlib import Path

import numpy as np

from models.yolo import TASKS, model_task
from utils import backend
from utils.backend import export as backend_export
from utils.export.verify import (ExportError, check_shapes, compare_outputs, native_outputs, probe_images,
                                 tolerance_text, work_dir)
from utils.log import LOGGER, colorstr
from utils.runtime.onnx import onnx_session


def onnx_output_names(model):
    """ultralytics' output names: 'output0' (detections or class scores), and 'output1' (mask protos) for -seg."""
    return list(TASKS[model_task(model)].head.outputs)


def onnx_dynamic_axes(model):
    """ultralytics' dynamic axes: batch, height and width of the images, and each output's as its head declares
    them (detections: batch and anchors; -seg protos: batch and mask size; class scores: none of their own)."""
    axes = {"images": {0: "batch", 2: "height", 3: "width"}}
    axes.update({k: v for k, v in TASKS[model_task(model)].head.outputs.items() if v})
    return axes


def _simplify(model_onnx, prefix):
    """onnxsim's simplified graph, or the graph unchanged (with a warning) when onnxsim is absent or fails."""
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


def _write(model, im, tmp_file, opset, dynamic):
    """The backend's ONNX file at ``tmp_file``, loaded and checked; returns (model proto, freed axes)."""
    import onnx  # noqa: PLC0415

    try:
        # through the module attribute: tests replace the backend's writer with a wrong one
        axes = backend_export.write_onnx(model, im, tmp_file, opset=opset, dynamic=dynamic, input_names=["images"],
                                         output_names=onnx_output_names(model), dynamic_axes=onnx_dynamic_axes(model),
                                         work_dir=tmp_file.parent)
        model_onnx = onnx.load(str(tmp_file))
        onnx.checker.check_model(model_onnx)
    except backend_export.ExportUnsupportedError as e:
        raise ExportError(str(e)) from None
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"{backend.NAME} could not export the model to ONNX: {type(e).__name__}: {e}") from e
    return model_onnx, axes


def export_onnx(model, im, file, opset=12, dynamic=False, simplify=False, metadata=None, half=False):
    """Export, verify and keep ``file``.onnx; returns (path, max abs difference vs the native model).

    ``metadata`` ({key: value}, e.g. stride and names) is stored as the file's metadata_props; the model's task is
    added under ``task`` when the caller did not give it.
    """
    import onnx  # noqa: PLC0415

    prefix = colorstr("ONNX:")
    f = Path(file).with_suffix(".onnx")
    LOGGER.info(f"\n{prefix} starting export with onnx {onnx.__version__} ({backend.NAME}-{backend.VERSION}, "
                f"opset {opset})...")
    metadata = dict(metadata or {})
    metadata.setdefault("task", model_task(model))
    with work_dir(f) as tmp:
        tmp_file = tmp / f.name
        model_onnx, axes = _write(model, im, tmp_file, opset, dynamic)
        if dynamic:
            freed = "; ".join(f"{k}: {', '.join(v.values())}" for k, v in axes.items())
            fixed = ("" if backend_export.ONNX_DYNAMIC_IMAGE_SIZE else
                     f" (image size fixed at {tuple(im.shape[2:])} on oneflow)")
            LOGGER.info(f"{prefix} dynamic axes: {freed}{fixed}")
        for k, v in metadata.items():
            meta = model_onnx.metadata_props.add()
            meta.key, meta.value = k, str(v)
        if simplify:
            model_onnx = _simplify(model_onnx, prefix)
        onnx.save(model_onnx, str(tmp_file))
        diff = verify_onnx(tmp_file, model, check_shapes(tuple(im.shape), int(metadata.get("stride", 32)), axes), half)
        LOGGER.info(f"{prefix} verified: onnx.checker passed; onnxruntime vs {backend.NAME} max abs difference "
                    f"{diff:.2e} (tolerance {tolerance_text(half)})")
        os.replace(tmp_file, f)
    return f, diff
