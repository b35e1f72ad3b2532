"""Hyperparameter evolution (train.py --evolve N): mutate the best of earlier generations, train, record.

Each generation trains with validation on the last epoch only, appends [validation results, hyps] to evolve.csv, and keeps the
best hyps in hyp_evolve.yaml; evolve.png plots every hyp against fitness at the end.
"""

import random
import time
from pathlib import Path

import numpy as np
import yaml

from utils.callbacks import Callbacks
from utils.log import LOGGER, colorstr
from utils.metrics import fitness
from utils.train_plots import plot_evolve

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


def mutate(hyp, evolve_csv, n_results, fit=fitness, rng=np.random):
    """New hyps from the top-5 rows of evolve.csv (one parent chosen by fitness), each gene scaled by ~N(1, 0.2).

    Rows are ``n_results`` result values followed by the hyps; ``fit`` maps result rows to fitness."""
    x = np.loadtxt(evolve_csv, ndmin=2, delimiter=",", skiprows=1)
    n = min(5, len(x))
    x = x[np.argsort(-fit(x))][:n]
    w = fit(x) - fit(x).min() + 1e-6
    x = x[random.choices(range(n), weights=w)[0]]
    keys = list(hyp.keys())
    g = np.array([META[k][0] if k in META else 0 for k in keys])
    v = np.ones(len(keys))
    while all(v == 1):
        v = (g * (rng.random(len(keys)) < 0.8) * rng.randn(len(keys)) * rng.random() * 0.2 + 1).clip(0.3, 3.0)
    return {k: float(x[i + n_results] * v[i]) for i, k in enumerate(keys)}


def clip_hyp(hyp):
    for k, (_, lo, hi) in META.items():
        if k in hyp:
            hyp[k] = round(min(max(hyp[k], lo), hi), 5)
    return hyp


def record(results, result_keys, hyp, save_dir, fit=fitness):
    """Append one generation to evolve.csv; rewrite hyp_evolve.yaml with the best row so far."""
    evolve_csv, evolve_yaml = Path(save_dir) / "evolve.csv", Path(save_dir) / "hyp_evolve.yaml"
    keys = tuple(result_keys) + tuple(hyp.keys())
    vals = tuple(results) + tuple(hyp.values())
    header = "" if evolve_csv.exists() else (("%20s," * len(keys) % keys).rstrip(",") + "\n")
    with open(evolve_csv, "a") as f:
        f.write(header + ("%20.5g," * len(vals) % vals).rstrip(",") + "\n")
    data = np.loadtxt(evolve_csv, ndmin=2, delimiter=",", skiprows=1)
    best = int(np.argmax(fit(data)))
    with open(evolve_yaml, "w") as f:
        f.write(f"# YOLOv5 Hyperparameter Evolution Results\n# Best generation: {best}\n"
                f"# Last generation: {len(data) - 1}\n")
        yaml.safe_dump({k: float(v) for k, v in zip(hyp.keys(), data[best, len(result_keys):])}, f, sort_keys=False)
    LOGGER.info(colorstr("evolve: ") + f"generation {len(data) - 1}: " +
                ", ".join(f"{k}={v:.5g}" for k, v in zip(result_keys, results)))


def evolve(cfg, trainer_class, device, callbacks=None):
    """Run cfg.evolve generations of ``trainer_class`` with mutated hyps; returns the path of hyp_evolve.yaml.

    Each generation validates its final epoch only and saves only its final checkpoint (ultralytics' --evolve).
    """
    save_dir = cfg.save_dir
    save_dir.mkdir(parents=True, exist_ok=True)
    hyp = dict(cfg.hyp)
    if cfg.noautoanchor:
        hyp.pop("anchors", None)
    else:
        hyp.setdefault("anchors", 3)
    keys = trainer_class.metric_keys + tuple(f"val/{n}" for n in trainer_class.loss_names)
    evolve_csv = save_dir / "evolve.csv"
    rng = np.random.RandomState(int(time.time()) % (2**31))
    for gen in range(cfg.evolve):
        if evolve_csv.exists():
            hyp = mutate(hyp, evolve_csv, len(keys), trainer_class.fitness_rows, rng)
        hyp = clip_hyp(hyp)
        gen_cfg = cfg.replace(hyp=dict(hyp), noval=True, nosave=True, save_dir=save_dir / f"gen{gen}")
        results = trainer_class(gen_cfg, Callbacks(), device).fit()
        record(results[:len(keys)], keys, hyp, save_dir, trainer_class.fitness_rows)
    LOGGER.info(f"Hyperparameter evolution finished {cfg.evolve} generations\n"
                f"Results saved to {colorstr('bold', save_dir)}\n"
                f"Usage example: $ python train.py --hyp {save_dir / 'hyp_evolve.yaml'}")
    plot_evolve(evolve_csv, len(keys), trainer_class.fitness_rows)
    return save_dir / "hyp_evolve.yaml"
