"""Validation plots: PR / F1 / P / R curves, the confusion matrix, labelled image mosaics, the speed/mAP study.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot state, safe from any thread); image
mosaics are drawn with OpenCV. File names are ultralytics' (PR_curve.png, F1_curve.png, P_curve.png, R_curve.png,
confusion_matrix.png, val_batch0_labels.jpg, val_batch0_pred.jpg, study.png).
"""

import math
from pathlib import Path

import cv2
import numpy as np

from utils.annotator import colors, feature_visualization  # noqa: F401 (models.yolo imports it from here)
from utils.annotator import Annotator, Colors, save_one_box  # noqa: F401 (ultralytics' utils.plots names)
from utils.backend import is_tensor, to_numpy
from utils.boxes import xywh2xyxy, xyxy2xywh
from utils.log import LOGGER
from utils.metrics import smooth


def _figure(figsize=(9, 6)):
    """A matplotlib Figure on its own Agg canvas, and one axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 (matplotlib is slow to import)
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=figsize, tight_layout=True)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _finish(fig, ax, title, xlabel, ylabel, file, legend=True):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    if legend:
        ax.legend(bbox_to_anchor=(1.04, 1), loc="upper left")
    ax.set_title(title)
    fig.savefig(file, dpi=250)


# ------------------------------------------------------------------------------------------------------------ curves
def plot_pr_curve(px, py, ap, save_dir=Path("pr_curve.png"), names=()):
    """Precision-recall curves at IoU 0.5: one line per class (legend when < 21 classes) and their mean in blue."""
    fig, ax = _figure()
    py = np.stack(py, axis=1) if len(py) else np.zeros((len(px), 0))
    if 0 < len(names) < 21:
        for i, y in enumerate(py.T):
            ax.plot(px, y, linewidth=1, label=f"{names[i]} {ap[i, 0]:.3f}")
    elif py.shape[1]:
        ax.plot(px, py, linewidth=1, color="grey")
    mean_ap = ap[:, 0].mean() if len(ap) else 0.0
    if py.shape[1]:
        ax.plot(px, py.mean(1), linewidth=3, color="blue", label=f"all classes {mean_ap:.3f} mAP@0.5")
    _finish(fig, ax, "Precision-Recall Curve", "Recall", "Precision", save_dir, legend=py.shape[1] > 0)


def plot_mc_curve(px, py, save_dir=Path("mc_curve.png"), names=(), xlabel="Confidence", ylabel="Metric"):
    """Metric against confidence: one line per class and the smoothed class mean, with its maximum in the legend."""
    fig, ax = _figure()
    if 0 < len(names) < 21:
        for i, y in enumerate(py):
            ax.plot(px, y, linewidth=1, label=f"{names[i]}")
    else:
        ax.plot(px, py.T, linewidth=1, color="grey")
    y = smooth(py.mean(0), 0.05)
    ax.plot(px, y, linewidth=3, color="blue", label=f"all classes {y.max():.2f} at {px[y.argmax()]:.3f}")
    _finish(fig, ax, f"{ylabel}-Confidence Curve", xlabel, ylabel, save_dir)


def plot_ap_curves(curves, names, save_dir, prefix=""):
    """PR_curve.png, F1_curve.png, P_curve.png, R_curve.png from the ``curves`` that ap_per_class filled.

    Legends name only the classes that have labels, in order (as ultralytics).
    """
    names = dict(enumerate(v for k, v in dict(names).items() if k in curves["classes"]))
    save_dir, px = Path(save_dir), curves["px"]
    plot_pr_curve(px, curves["py"], curves["ap"], save_dir / f"{prefix}PR_curve.png", names)
    plot_mc_curve(px, curves["f1"], save_dir / f"{prefix}F1_curve.png", names, ylabel="F1")
    plot_mc_curve(px, curves["p"], save_dir / f"{prefix}P_curve.png", names, ylabel="Precision")
    plot_mc_curve(px, curves["r"], save_dir / f"{prefix}R_curve.png", names, ylabel="Recall")


def plot_confusion_matrix(matrix, nc, normalize=True, save_dir="", names=()):
    """confusion_matrix.png: columns (true class) normalised to 1, cells below 0.005 left blank.

    Class names label the axes when there are fewer than 99 and one per class; cells carry values when nc < 30.
    """
    array = matrix / ((matrix.sum(0).reshape(1, -1) + 1e-9) if normalize else 1)
    array = np.where(array < 0.005, np.nan, array)  # blank, not "0.00"
    shown = np.nan_to_num(array, nan=0.0)
    vmax = max(float(shown.max()), 1e-9)
    fig, ax = _figure(figsize=(12, 9))
    fig.colorbar(ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax), ax=ax)
    ticks = (list(names) + ["background"]) if 0 < len(names) < 99 and len(names) == nc else None
    if ticks:
        ax.set_xticks(range(nc + 1))
        ax.set_yticks(range(nc + 1))
        ax.set_xticklabels(ticks, rotation=90, fontsize=8 if nc >= 50 else 10)
        ax.set_yticklabels(ticks, fontsize=8 if nc >= 50 else 10)
    if nc < 30:
        for (r, c), v in np.ndenumerate(array):
            if not np.isnan(v):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if v > 0.5 * vmax else "black")
    ax.set_xlabel("True")
    ax.set_ylabel("Predicted")
    ax.set_title("Confusion Matrix")
    fig.savefig(Path(save_dir) / "confusion_matrix.png", dpi=250)


# ---------------------------------------------------------------------------------------------------- image mosaics
def output_to_target(output, max_det=300):
    """NMS output (list of (n, 6+) per image) -> (k, 7) numpy rows [image index, class, x, y, w, h, conf] (pixels)."""
    rows = []
    for i, o in enumerate(output):
        o = to_numpy(o[:max_det, :6]).astype(np.float32)
        box, conf, cls = o[:, :4], o[:, 4:5], o[:, 5:6]
        rows.append(np.concatenate((np.full((len(o), 1), i, dtype=np.float32), cls, xyxy2xywh(box), conf), 1))
    return np.concatenate(rows, 0) if rows else np.zeros((0, 7), np.float32)


def _mosaic(images, ns, h, w):
    mosaic = np.full((int(ns * h), int(ns * w), 3), 255, dtype=np.uint8)
    for i, im in enumerate(images):
        x, y = int(w * (i // ns)), int(h * (i % ns))  # column-major grid, as ultralytics
        mosaic[y:y + h, x:x + w] = im.transpose(1, 2, 0)
    return mosaic


def _draw_label(im, box, text, color, lw):
    p1, p2 = (int(box[0]), int(box[1])), (int(box[2]), int(box[3]))
    cv2.rectangle(im, p1, p2, color, thickness=lw, lineType=cv2.LINE_AA)
    if text:
        tf, scale = max(lw - 1, 1), lw / 3
        tw, th = cv2.getTextSize(text, 0, fontScale=scale, thickness=tf)[0]
        above = p1[1] - th >= 3
        corner = (p1[0] + tw, p1[1] - th - 3 if above else p1[1] + th + 3)
        cv2.rectangle(im, p1, corner, color, -1, cv2.LINE_AA)
        org = (p1[0], p1[1] - 2 if above else p1[1] + th + 2)
        cv2.putText(im, text, org, 0, scale, (255, 255, 255), thickness=tf, lineType=cv2.LINE_AA)


def plot_images(images, targets, paths=None, fname="images.jpg", names=None, max_size=1920, max_subplots=16):
    """Save a grid of up to 16 images with their boxes, e.g. val_batch0_labels.jpg / val_batch0_pred.jpg.

    Args:
        images: (b, 3, h, w) tensor or array, RGB, 0-1 floats or 0-255.
        targets: (n, 6) [image index, class, x, y, w, h] labels, or (n, 7) with a confidence column (predictions;
            only those above 0.25 are drawn). Coordinates normalised (max <= 1.01) or in pixels.
        paths: image paths, whose file names are written in each tile.
        names: {class index: name}.
    """
    targets = grid_targets(targets)
    mosaic, tiles, scale, lw = image_grid(images, max_size, max_subplots)
    for i, tile in enumerate(tiles):
        draw_tile(mosaic, tile, targets[targets[:, 0] == i], paths[i] if paths else None, names, scale, lw)
    cv2.imwrite(str(fname), cv2.cvtColor(mosaic, cv2.COLOR_RGB2BGR))
    return mosaic


def grid_targets(targets):
    """Labels or predictions for image_grid() as a float32 numpy array ((0, 6) when empty)."""
    return np.asarray(to_numpy(targets), dtype=np.float32) if len(targets) else np.zeros((0, 6), np.float32)


def image_grid(images, max_size=1920, max_subplots=16):
    """Tile a batch column-major into one RGB mosaic (white background), shrunk to fit ``max_size``.

    Args:
        images: (b, 3, h, w) tensor or array, RGB, 0-1 floats or 0-255; at most ``max_subplots`` are used.
    Returns:
        (mosaic (H, W, 3) uint8 contiguous, [(x, y, w, h)] tile of each image in the mosaic, scale applied to the
        images (1 when not shrunk), line width for drawing).
    """
    images = to_numpy(images.float() if is_tensor(images) else images).astype(np.float32)
    bs, _, h, w = images.shape
    bs = min(bs, max_subplots)
    ns = np.ceil(bs**0.5)
    if images.size and images[0].max() <= 1:
        images = images * 255
    mosaic = _mosaic(images[:bs].clip(0, 255).astype(np.uint8), ns, h, w)
    scale = max_size / ns / max(h, w)
    if scale < 1:
        h, w = math.ceil(scale * h), math.ceil(scale * w)
        mosaic = cv2.resize(mosaic, (int(w * ns), int(h * ns)))
    lw = max(round((h + w) * ns * 0.01 / 10), 1)
    tiles = [(int(w * (i // ns)), int(h * (i % ns)), w, h) for i in range(bs)]
    return np.ascontiguousarray(mosaic), tiles, scale, lw


def draw_tile(mosaic, tile, ti, path, names, scale, lw):
    """One tile of image_grid(): its border, file name and boxes (ti rows [image index, class, xywh(, conf)])."""
    x, y, w, h = tile
    cv2.rectangle(mosaic, (x, y), (x + w - 1, y + h - 1), (255, 255, 255), 2)
    if path:
        cv2.putText(mosaic, Path(path).name[:40], (x + 5, y + 15), 0, lw / 3, (220, 220, 220), 1, cv2.LINE_AA)
    _draw_targets(mosaic, ti, tile, scale, names, lw)


def _draw_targets(mosaic, ti, tile, scale, names, lw):
    """Boxes of one tile: ti rows [image index, class, x, y, w, h(, conf)]."""
    if not len(ti):
        return
    x, y, w, h = tile
    boxes = xywh2xyxy(ti[:, 2:6])
    if boxes.max() <= 1.01:  # normalised
        boxes[:, [0, 2]] *= w
        boxes[:, [1, 3]] *= h
    elif scale < 1:
        boxes *= scale
    boxes[:, [0, 2]] += x
    boxes[:, [1, 3]] += y
    is_label = ti.shape[1] == 6
    for j, box in enumerate(boxes):
        c = int(ti[j, 1])
        name = _class_name(names, c)
        if is_label or ti[j, 6] > 0.25:
            _draw_label(mosaic, box, f"{name}" if is_label else f"{name} {ti[j, 6]:.1f}", colors(c), lw)


def _class_name(names, c):
    if isinstance(names, dict):
        return names.get(c, c)
    return names[c] if names is not None and 0 <= c < len(names) else c


# ---------------------------------------------------------------------------------------------------------- study
def plot_val_study(file="", dir="", x=None):
    """study.png from the study_*.txt files val.py --task study writes: mAP@0.5:0.95 against inference ms/img.

    Each file has one row per image size: P, R, mAP@0.5, mAP@0.5:0.95, 3 losses, then pre-process / inference / NMS
    ms per image.
    """
    save_dir = Path(file).parent if file else Path(dir)
    fig, ax = _figure(figsize=(8, 4))
    for f in sorted(save_dir.glob("study*.txt")):
        y = np.loadtxt(f, dtype=np.float32, ndmin=2)
        ax.plot(y[:, 8], y[:, 3] * 100, ".-", linewidth=2, markersize=8, label=f.stem.replace("study_", ""))
        if x is not None:
            for xi, yi, ti in zip(x, y[:, 3] * 100, y[:, 8]):
                ax.annotate(str(xi), (ti, yi), fontsize=7)
    ax.grid(alpha=0.2)
    ax.set_xlabel("Inference (ms/img)")
    ax.set_ylabel("mAP@0.5:0.95 (%)")
    ax.legend(loc="lower right")
    out = save_dir / "study.png"
    LOGGER.info(f"Saving {out}...")
    fig.savefig(out, dpi=300)
    return out


def __getattr__(name):
    """ultralytics' utils.plots names that live in modules importing pyplot / seaborn: loaded on first use only."""
    if name in ("plot_results", "plot_labels", "plot_evolve"):
        from utils import train_plots  # noqa: PLC0415 (heavy import, ultralytics path)

        return getattr(train_plots, name)
    if name == "imshow_cls":
        from utils.classify.plots import imshow_cls  # noqa: PLC0415

        return imshow_cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
