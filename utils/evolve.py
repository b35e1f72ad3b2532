"""Hyperparameter evolution (train.py --evolve N): mutate the best of earlier generations, train, record.

Each generation trains with validation on the last epoch only, appends [7 metrics, hyps] to evolve.csv, and keeps the
best hyps in hyp_evolve.yaml; evolve.png plots every hyp against fitness at the end.
"""

import random
import time
from copy import deepcopy
from pathlib import Path

import numpy as np
import yaml

from utils.callbacks import Callbacks
from utils.log import LOGGER, colorstr

# hyp: (mutation scale (0 = fixed), lower limit, upper limit)
META = {
    "lr0": (1, 1e-5, 1e-1), "lrf": (1, 0.01, 1.0), "momentum": (0.3, 0.6, 0.98), "weight_decay": (1, 0.0, 0.001),
    "warmup_epochs": (1, 0.0, 5.0), "warmup_momentum": (1, 0.0, 0.95), "warmup_bias_lr": (1, 0.0, 0.2),
    "box": (1, 0.02, 0.2), "cls": (1, 0.2, 4.0), "cls_pw": (1, 0.5, 2.0), "obj": (1, 0.2, 4.0), "obj_pw": (1, 0.5, 2.0),
    "iou_t": (0, 0.1, 0.7), "anchor_t": (1, 2.0, 8.0), "anchors": (2, 2.0, 10.0), "fl_gamma": (0, 0.0, 2.0),
    "hsv_h": (1, 0.0, 0.1), "hsv_s": (1, 0.0, 0.9), "hsv_v": (1, 0.0, 0.9), "degrees": (1, 0.0, 45.0),
    "translate": (1, 0.0, 0.9), "scale": (1, 0.0, 0.9), "shear": (1, 0.0, 10.0), "perspective": (0, 0.0, 0.001),
    "flipud": (1, 0.0, 1.0), "fliplr": (0, 0.0, 1.0), "mosaic": (1, 0.0, 1.0), "mixup": (1, 0.0, 1.0),
    "copy_paste": (1, 0.0, 1.0)}
KEYS = ("metrics/precision", "metrics/recall", "metrics/mAP_0.5", "metrics/mAP_0.5:0.95", "val/box_loss",
        "val/obj_loss", "val/cls_loss")


def _fitness(x):
    return (np.asarray(x)[:, :4] * np.array([0.0, 0.0, 0.1, 0.9])).sum(1)


def mutate(hyp, evolve_csv, rng=np.random):
    """New hyps from the top-5 rows of evolve.csv (one parent chosen by fitness), each gene scaled by ~N(1, 0.2)."""
    x = np.loadtxt(evolve_csv, ndmin=2, delimiter=",", skiprows=1)
    n = min(5, len(x))
    x = x[np.argsort(-_fitness(x))][:n]
    w = _fitness(x) - _fitness(x).min() + 1e-6
    x = x[random.choices(range(n), weights=w)[0]]
    keys = list(hyp.keys())
    g = np.array([META[k][0] if k in META else 0 for k in keys])
    v = np.ones(len(keys))
    while all(v == 1):
        v = (g * (rng.random(len(keys)) < 0.8) * rng.randn(len(keys)) * rng.random() * 0.2 + 1).clip(0.3, 3.0)
    return {k: float(x[i + len(KEYS)] * v[i]) for i, k in enumerate(keys)}


def clip_hyp(hyp):
    for k, (_, lo, hi) in META.items():
        if k in hyp:
            hyp[k] = round(min(max(hyp[k], lo), hi), 5)
    return hyp


def record(results, hyp, save_dir):
    """Append one generation to evolve.csv; rewrite hyp_evolve.yaml with the best row so far."""
    evolve_csv, evolve_yaml = Path(save_dir) / "evolve.csv", Path(save_dir) / "hyp_evolve.yaml"
    keys = tuple(KEYS) + tuple(hyp.keys())
    vals = tuple(results) + tuple(hyp.values())
    header = "" if evolve_csv.exists() else (("%20s," * len(keys) % keys).rstrip(",") + "\n")
    with open(evolve_csv, "a") as f:
        f.write(header + ("%20.5g," * len(vals) % vals).rstrip(",") + "\n")
    data = np.loadtxt(evolve_csv, ndmin=2, delimiter=",", skiprows=1)
    best = int(np.argmax(_fitness(data)))
    with open(evolve_yaml, "w") as f:
        f.write(f"# YOLOv5 Hyperparameter Evolution Results\n# Best generation: {best}\n"
                f"# Last generation: {len(data) - 1}\n")
        yaml.safe_dump({k: float(v) for k, v in zip(hyp.keys(), data[best, len(KEYS):])}, f, sort_keys=False)
    LOGGER.info(colorstr("evolve: ") + f"generation {len(data) - 1}: " +
                ", ".join(f"{k}={v:.5g}" for k, v in zip(KEYS, results)))


def evolve(opt, hyp, device, callbacks=None):
    """Run opt.evolve generations of training with mutated hyps; returns the path of hyp_evolve.yaml."""
    from utils.engine.trainer import DetectionTrainer  # noqa: PLC0415
    opt.noval, opt.nosave = True, True
    save_dir = Path(opt.save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    hyp = dict(hyp)
    if opt.noautoanchor:
        hyp.pop("anchors", None)
    else:
        hyp.setdefault("anchors", 3)
    evolve_csv = save_dir / "evolve.csv"
    rng = np.random.RandomState(int(time.time()) % (2**31))
    for gen in range(opt.evolve):
        if evolve_csv.exists():
            hyp = mutate(hyp, evolve_csv, rng)
        hyp = clip_hyp(hyp)
        gen_opt = deepcopy(opt)
        gen_opt.save_dir = str(save_dir / f"gen{gen}")
        results = DetectionTrainer(gen_opt, dict(hyp), Callbacks(), device).fit()
        record(results[:7], hyp, save_dir)
    LOGGER.info(f"Hyperparameter evolution finished {opt.evolve} generations\n"
                f"Results saved to {colorstr('bold', save_dir)}\n"
                f"Usage example: $ python train.py --hyp {save_dir / 'hyp_evolve.yaml'}")
    plot_evolve(evolve_csv)
    return save_dir / "hyp_evolve.yaml"


def plot_evolve(evolve_csv):
    """evolve.png: every hyp's values against fitness, best marked."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415
    data = pd.read_csv(evolve_csv)
    keys = [x.strip() for x in data.columns]
    x = data.values
    f = _fitness(x)
    j = int(np.argmax(f))
    n = len(keys) - len(KEYS)
    cols = 6
    fig = plt.figure(figsize=(12, 2 * ((n + cols - 1) // cols) + 2), tight_layout=True)
    for i, k in enumerate(keys[len(KEYS):]):
        v = x[:, len(KEYS) + i]
        plt.subplot((n + cols - 1) // cols, cols, i + 1)
        plt.scatter(v, f, c=f, cmap="viridis", alpha=0.8, edgecolors="none")
        plt.plot(v[j], f.max(), "k+", markersize=15)
        plt.title(f"{k} = {v[j]:.3g}", fontdict={"size": 9})
        if i % cols:
            plt.yticks([])
    fig.savefig(Path(evolve_csv).with_suffix(".png"), dpi=200)
    plt.close(fig)
    LOGGER.info(f"Saved {Path(evolve_csv).with_suffix('.png')}")
