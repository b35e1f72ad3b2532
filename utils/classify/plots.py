"""Classification plots: the labelled image grid (train_images.jpg, test_images.jpg) and results.png.

imshow_cls draws what ultralytics' does: up to 25 images of a normalised batch, de-normalised, on a grid of
min(8, round(sqrt(n))) columns, each titled with its true class, or 'true—predicted' when predictions are given,
saved at 300 dpi. (ultralytics crashes on a batch of 2 or 3 images, where that formula gives a single column; here
any n works.) ultralytics v7.0 writes no results.png for classification; plot_cls_results draws one panel per
results.csv column (losses, top-1, top-5, learning rate) against the epoch.

Figures use matplotlib's object API on their own Agg canvas (no pyplot state), as utils/plots.py.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from utils.backend import to_numpy
from utils.classify.transforms import denormalize
from utils.log import LOGGER


def _figure(rows, cols, figsize=None):
    """A Figure on its own Agg canvas and its axes as a flat array."""
    fig = Figure(figsize=figsize) if figsize else Figure()
    FigureCanvasAgg(fig)
    return fig, np.asarray(fig.subplots(rows, cols), dtype=object).ravel()


def _class_name(names, i):
    i = int(i)
    if isinstance(names, dict):
        return str(names.get(i, f"class{i}"))
    return str(names[i]) if i < len(names) else f"class{i}"


def imshow_cls(im, labels=None, pred=None, names=None, nmax=25, verbose=False, f=Path("images.jpg")):
    """Save a grid of the first ``nmax`` images of a normalised batch, titled with labels (and predictions).

    Args:
        im: (b, 3, h, w) tensor normalised with the ImageNet mean/std (a loader batch).
        labels: (b,) true classes, or None for untitled images. pred: (b,) predicted classes, or None.
        names: class names (list or {index: name}); default 'class0', 'class1', ...
        nmax: most images shown. verbose: log the file and the label/prediction lists.
        f: output file (e.g. train_images.jpg).
    Returns:
        ``f``.
    """
    names = names or {}
    images = to_numpy(denormalize(im.detach().float().cpu())).clip(0.0, 1.0)
    labels = None if labels is None else [int(x) for x in to_numpy(labels).reshape(-1)]
    pred = None if pred is None else [int(x) for x in to_numpy(pred).reshape(-1)]
    n = min(len(images), nmax)
    m = min(8, round(n**0.5))
    fig, ax = _figure(math.ceil(n / m), m)
    for a in ax[n:]:
        a.axis("off")
    for i in range(n):
        ax[i].imshow(images[i].transpose(1, 2, 0))
        ax[i].axis("off")
        if labels is not None:
            title = _class_name(names, labels[i]) + (f"—{_class_name(names, pred[i])}" if pred is not None else "")
            ax[i].set_title(title, fontsize=8, verticalalignment="top")
    fig.savefig(f, dpi=300, bbox_inches="tight")
    if verbose:
        LOGGER.info(f"Saving {f}")
        if labels is not None:
            LOGGER.info("True:     " + " ".join(f"{_class_name(names, i):3s}" for i in labels[:nmax]))
        if pred is not None:
            LOGGER.info("Predicted:" + " ".join(f"{_class_name(names, i):3s}" for i in pred[:nmax]))
    return f


def plot_cls_results(file="path/to/results.csv"):
    """results.png beside a classification results.csv: one panel per column against the epoch.

    Returns:
        the path of results.png, or None when the CSV is missing or empty (a warning is logged).
    """
    file = Path(file)
    try:
        data = pd.read_csv(file)
    except (FileNotFoundError, pd.errors.EmptyDataError) as e:
        LOGGER.warning(f"WARNING ⚠️ cannot plot {file}: {e}")
        return None
    keys = [c.strip() for c in data.columns]
    x = data.values[:, 0]
    fig, ax = _figure(1, len(keys) - 1, figsize=(2.6 * (len(keys) - 1), 3))
    for i, key in enumerate(keys[1:]):
        ax[i].plot(x, data.values[:, i + 1].astype(float), marker=".", label=file.stem, linewidth=2, markersize=8)
        ax[i].set_title(key, fontsize=12)
        ax[i].set_xlabel("epoch")
    ax[0].legend()
    fig.tight_layout()
    out = file.with_name("results.png")
    fig.savefig(out, dpi=200)
    return out
