"""Training plots: results.png from results.csv, labels.jpg / labels_correlogram.jpg, evolve.png."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from utils.log import LOGGER  # noqa: E402
from utils.loggers import validated_columns, validated_rows  # noqa: E402


def plot_results(file="path/to/results.csv", dir=""):
    """results.png: the 10 loss/metric columns of results.csv against epoch (2 x 5 panels), as ultralytics; the
    metric and validation-loss panels show only the epochs that were validated (see validated_rows)."""
    save_dir = Path(file).parent if file else Path(dir)
    fig, ax = plt.subplots(2, 5, figsize=(12, 6), tight_layout=True)
    ax = ax.ravel()
    files = list(save_dir.glob("results*.csv"))
    if not files:
        LOGGER.warning(f"WARNING ⚠️ No results.csv files found in {save_dir.resolve()}, nothing to plot.")
        return
    for f in files:
        try:
            data = pd.read_csv(f)
            s = [x.strip() for x in data.columns]
            x = data.values[:, 0]
            measured = validated_rows(s, data.values)  # --noval: validation columns only where validated
            for i, j in enumerate([1, 2, 3, 4, 5, 8, 9, 10, 6, 7]):
                y = data.values[:, j].astype("float")
                keep = measured if j in validated_columns(s) else slice(None)
                ax[i].plot(x[keep], y[keep], marker=".", label=f.stem, linewidth=2, markersize=8)
                ax[i].set_title(s[j], fontsize=12)
        except Exception as e:
            LOGGER.info(f"Warning: Plotting error for {f}: {e}")
    for a in ax[1:]:
        a.set_xlim(ax[0].get_xlim())  # the epoch axis of every panel, also where only the last epoch was validated
    ax[1].legend()
    fig.savefig(save_dir / "results.png", dpi=200)
    plt.close(fig)


def plot_labels(labels, names=(), save_dir=Path("")):
    """labels.jpg (class counts, box centres and sizes) and labels_correlogram.jpg from (n, 5) [cls, x, y, w, h]."""
    import seaborn as sn  # noqa: PLC0415 (slow import)
    save_dir = Path(save_dir)
    LOGGER.info(f"Plotting labels to {save_dir / 'labels.jpg'}... ")
    c, b = labels[:, 0], labels[:, 1:].transpose()
    nc = int(c.max() + 1) if len(c) else 1
    x = pd.DataFrame(b.transpose(), columns=["x", "y", "width", "height"])
    sn.pairplot(x, corner=True, diag_kind="auto", kind="hist", diag_kws=dict(bins=50), plot_kws=dict(pmax=0.9))
    plt.savefig(save_dir / "labels_correlogram.jpg", dpi=200)
    plt.close()
    fig, ax = plt.subplots(2, 2, figsize=(8, 8), tight_layout=True)
    ax = ax.ravel()
    ax[0].hist(c, bins=np.linspace(0, nc, nc + 1) - 0.5, rwidth=0.8)
    ax[0].set_ylabel("instances")
    names = list(names.values()) if isinstance(names, dict) else list(names)
    if 0 < len(names) < 30:
        ax[0].set_xticks(range(len(names)))
        ax[0].set_xticklabels(names, rotation=90, fontsize=10)
    else:
        ax[0].set_xlabel("classes")
    ax[1].scatter(x["x"], x["y"], s=2, alpha=0.3)
    ax[1].set_xlabel("x")
    ax[1].set_ylabel("y")
    ax[2].scatter(x["width"], x["height"], s=2, alpha=0.3)
    ax[2].set_xlabel("width")
    ax[2].set_ylabel("height")
    boxes = np.concatenate([0.5 - b[2:4].T / 2, 0.5 + b[2:4].T / 2], 1)[:1000] * 1000 if len(c) else np.zeros((0, 4))
    canvas = np.full((1000, 1000, 3), 255, dtype=np.uint8)
    import cv2  # noqa: PLC0415
    for cls, box in zip(c[:1000], boxes):
        color = tuple(int(v) for v in (np.array(plt.cm.tab20(int(cls) % 20)[:3]) * 255))
        cv2.rectangle(canvas, (int(box[0]), int(box[1])), (int(box[2]), int(box[3])), color, 1)
    ax[3].imshow(canvas)
    ax[3].axis("off")
    for a in (0, 1, 2, 3):
        for s in ("top", "right", "left", "bottom"):
            ax[a].spines[s].set_visible(False)
    plt.savefig(save_dir / "labels.jpg", dpi=200)
    plt.close()


def plot_evolve(evolve_csv, n_results, fit):
    """evolve.png: every hyp's values against fitness (``fit`` of the first ``n_results`` columns), best marked."""
    data = pd.read_csv(evolve_csv)
    keys = [x.strip() for x in data.columns]
    x = data.values
    f = fit(x)
    j = int(np.argmax(f))
    n = len(keys) - n_results
    cols = 6
    fig = plt.figure(figsize=(12, 2 * ((n + cols - 1) // cols) + 2), tight_layout=True)
    for i, k in enumerate(keys[n_results:]):
        v = x[:, n_results + i]
        plt.subplot((n + cols - 1) // cols, cols, i + 1)
        plt.scatter(v, f, c=f, cmap="viridis", alpha=0.8, edgecolors="none")
        plt.plot(v[j], f.max(), "k+", markersize=15)
        plt.title(f"{k} = {v[j]:.3g}", fontdict={"size": 9})
        if i % cols:
            plt.yticks([])
    fig.savefig(Path(evolve_csv).with_suffix(".png"), dpi=200)
    plt.close(fig)
    LOGGER.info(f"Saved {Path(evolve_csv).with_suffix('.png')}")
