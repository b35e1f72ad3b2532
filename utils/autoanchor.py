"""AutoAnchor: check how well a model's anchors fit a dataset's boxes, and evolve better ones when they do not.

The metric is ultralytics': for a box of size wh and an anchor k, x = min(r, 1/r) over w and h with r = wh / k; a box is
"recallable" when its best anchor has x > 1/anchor_t. Best Possible Recall (BPR) is the recallable fraction; new anchors
are sought when BPR <= 0.98 (k-means on whitened wh, then a genetic algorithm). Everything runs in numpy.
"""

import random

import numpy as np
from tqdm import tqdm

from models.yolo import check_anchor_order  # noqa: F401 (ultralytics' utils.autoanchor.check_anchor_order)
from utils.backend import from_numpy, to_numpy, torch
from utils.log import LOGGER, TQDM_BAR_FORMAT, colorstr

PREFIX = colorstr("AutoAnchor: ")


def _ratio_metric(k, wh):
    """x[i, j] = worst-axis ratio of box i to anchor j (1 = perfect); best[i] = over anchors."""
    r = wh[:, None] / k[None]
    x = np.minimum(r, 1 / r).min(2)
    return x, x.max(1)


def _label_wh(dataset, imgsz, jitter=True):
    """Box sizes in pixels at ``imgsz`` (long side), optionally scaled by U(0.9, 1.1) per image as ultralytics."""
    shapes = imgsz * dataset.shapes / dataset.shapes.max(1, keepdims=True)
    if jitter:
        shapes = shapes * np.random.uniform(0.9, 1.1, size=(shapes.shape[0], 1))
    return np.concatenate([lb[:, 3:5] * s for s, lb in zip(shapes, dataset.labels)]).astype(np.float32)


def check_anchors(dataset, model, thr=4.0, imgsz=640):
    """Log the anchors' BPR on ``dataset``; replace them in ``model`` (in place) by evolved ones when BPR <= 0.98."""
    m = model.module.model[-1] if hasattr(model, "module") else model.model[-1]
    wh = _label_wh(dataset, imgsz)
    stride = to_numpy(m.stride).reshape(-1, 1, 1).astype(np.float32)
    anchors = to_numpy(m.anchors) * stride  # pixels

    def metric(k):
        x, best = _ratio_metric(k.reshape(-1, 2), wh)
        return float((best > 1 / thr).mean()), float((x > 1 / thr).sum(1).mean())

    bpr, aat = metric(anchors)
    s = f"\n{PREFIX}{aat:.2f} anchors/target, {bpr:.3f} Best Possible Recall (BPR). "
    if bpr > 0.98:
        LOGGER.info(f"{s}Current anchors are a good fit to dataset ✅")
        return False
    LOGGER.info(f"{s}Anchors are a poor fit to dataset ⚠️, attempting to improve...")
    na = m.anchors.numel() // 2
    new = kmean_anchors(dataset, n=na, img_size=imgsz, thr=thr, gen=1000, verbose=False)
    new_bpr = metric(new)[0]
    if new_bpr <= bpr:
        LOGGER.info(f"{PREFIX}Done ⚠️ (original anchors better than new anchors, proceeding with original anchors)")
        return False
    new = new.reshape(anchors.shape)
    area = new.prod(-1).mean(-1)  # keep anchor order consistent with stride order
    if (area[-1] - area[0]) * (stride[-1, 0, 0] - stride[0, 0, 0]) < 0:
        new = new[::-1].copy()
    with torch.no_grad():
        m.anchors.copy_(from_numpy((new / stride).astype(np.float32), device=m.anchors.device))
    LOGGER.info(f"{PREFIX}Done ✅ (optional: update model *.yaml to use these anchors in the future)")
    return True


def kmean_anchors(dataset, n=9, img_size=640, thr=4.0, gen=1000, verbose=True):
    """Anchors (n, 2) in pixels evolved for ``dataset`` (an object with .shapes and .labels): k-means then GA.

    Args:
        dataset: a loaded dataset (LoadImagesAndLabels); n: number of anchors; img_size: training size;
        thr: anchor_t; gen: genetic-algorithm generations; verbose: log every improvement.
    Returns:
        float32 array (n, 2) sorted by area.
    """
    from scipy.cluster.vq import kmeans  # noqa: PLC0415 (scipy is slow to import)
    thr = 1 / thr
    wh0 = _label_wh(dataset, img_size, jitter=False)

    def fitness(k):
        _, best = _ratio_metric(k, wh)
        return float((best * (best > thr)).mean())

    def report(k, verbose=True):
        k = k[np.argsort(k.prod(1))]
        x, best = _ratio_metric(k, wh0)
        bpr, aat = (best > thr).mean(), (x > thr).mean() * n
        s = (f"{PREFIX}thr={thr:.2f}: {bpr:.4f} best possible recall, {aat:.2f} anchors past thr\n"
             f"{PREFIX}n={n}, img_size={img_size}, metric_all={x.mean():.3f}/{best.mean():.3f}-mean/best, "
             f"past_thr={x[x > thr].mean() if (x > thr).any() else 0:.3f}-mean: ")
        s += ", ".join(f"{round(a)},{round(b)}" for a, b in k)
        if verbose:
            LOGGER.info(s)
        return k

    small = (wh0 < 3.0).any(1).sum()
    if small:
        LOGGER.info(f"{PREFIX}WARNING ⚠️ Extremely small objects found: {small} of {len(wh0)} labels are <3 pixels "
                    f"in size")
    wh = wh0[(wh0 >= 2.0).any(1)].astype(np.float32)
    try:
        LOGGER.info(f"{PREFIX}Running kmeans for {n} anchors on {len(wh)} points...")
        if n > len(wh):
            raise ValueError("fewer boxes than anchors")
        s = wh.std(0)
        k = kmeans(wh / s, n, iter=30)[0] * s
        if len(k) != n:
            raise ValueError("kmeans returned fewer anchors")
    except Exception:
        LOGGER.warning(f"{PREFIX}WARNING ⚠️ switching strategies from kmeans to random init")
        k = np.sort(np.random.rand(n * 2)).reshape(n, 2) * img_size
    k = report(k.astype(np.float32), verbose=False)
    f, sh, mp, s = fitness(k), k.shape, 0.9, 0.1  # fitness, shape, mutation probability, sigma
    pbar = tqdm(range(gen), bar_format=TQDM_BAR_FORMAT)
    for _ in pbar:
        v = np.ones(sh)
        while (v == 1).all():  # mutate until something changes
            v = ((np.random.random(sh) < mp) * random.random() * np.random.randn(*sh) * s + 1).clip(0.3, 3.0)
        kg = (k.copy() * v).clip(min=2.0)
        fg = fitness(kg)
        if fg > f:
            f, k = fg, kg.copy()
            pbar.desc = f"{PREFIX}Evolving anchors with Genetic Algorithm: fitness = {f:.4f}"
            if verbose:
                report(k, verbose)
    return report(k).astype(np.float32)
