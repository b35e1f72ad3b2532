"""Segmentation plots: batch mosaics with boxes and masks, results.png of segment training, masks drawn on images.

The mosaic grid and its boxes are utils/plots.py's (image_grid, draw_tile); here each tile's instance masks are then
blended in (60% class colour), as ultralytics' plot_images_and_masks does. draw_masks() is ultralytics'
Annotator.masks for the predictor, as a function on our Annotator.
"""

from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from utils.annotator import colors
from utils.backend import from_numpy, is_tensor, to_numpy, torch
from utils.log import LOGGER
from utils.loggers import validated_columns, validated_rows
from utils.plots import draw_tile, grid_targets, image_grid
from utils.segment.masks import scale_image, split_overlap_mask

# results.csv columns (after 'epoch' = 0) drawn in the 16 panels: losses, B metrics, val losses, mAPs B then M
_RESULT_COLUMNS = (1, 2, 3, 4, 5, 6, 9, 10, 13, 14, 15, 16, 7, 8, 11, 12)


# ---------------------------------------------------------------------------------------------------- mosaics
def plot_images_and_masks(images, targets, masks, paths=None, fname="images.jpg", names=None, overlap=None,
                          max_size=1920, max_subplots=16):
    """Save a grid of up to 16 images with boxes and masks (train_batch*.jpg, val_batch*_labels.jpg / _pred.jpg).

    Args:
        images, targets, paths, names: as utils.plots.plot_images (targets with a 7th conf column are predictions,
            drawn above 0.25).
        masks: the batch's masks: overlap index images (B, h, w), or one 0/1 mask per target row (N, h, w), at any
            resolution (resized to the tiles).
        overlap: whether ``masks`` are index images; None guesses as ultralytics (any value above 1), which is
            wrong for a batch of index images holding at most one instance each: pass it.
    """
    targets = grid_targets(targets)
    masks = np.asarray(to_numpy(masks)).astype(np.int64) if len(masks) else np.zeros((0, 1, 1), np.int64)
    overlap = bool(masks.max() > 1) if overlap is None and masks.size else bool(overlap)
    mosaic, tiles, scale, lw = image_grid(images, max_size, max_subplots)
    for i, tile in enumerate(tiles):
        rows = targets[:, 0] == i
        ti = targets[rows]
        draw_tile(mosaic, tile, ti, paths[i] if paths else None, names, scale, lw)
        if len(ti) and len(masks):
            tile_masks = split_overlap_mask(masks[i], len(ti)) if overlap else masks[rows]
            _blend_masks(mosaic, tile, ti, tile_masks)
    cv2.imwrite(str(fname), cv2.cvtColor(mosaic, cv2.COLOR_RGB2BGR))
    return mosaic


def _blend_masks(mosaic, tile, ti, tile_masks):
    """Colour each drawn row's mask into its tile: 40% image, 60% class colour (RGB mosaic)."""
    x, y, w, h = tile
    region = mosaic[y:y + h, x:x + w]
    for j, row in enumerate(ti[:len(tile_masks)]):
        if ti.shape[1] == 7 and row[6] <= 0.25:
            continue
        m = tile_masks[j]
        if m.shape != (h, w):
            m = cv2.resize(m.astype(np.uint8), (w, h))
        m = m.astype(bool)
        region[m] = region[m] * 0.4 + np.array(colors(int(row[1]))) * 0.6


# ----------------------------------------------------------------------------------------------------- results
def plot_results_with_masks(file="path/to/results.csv", dir="", best=True):
    """results.png of segment training: 16 panels (2 x 8), each marking the best epoch (by fitness) or the last one.

    Args:
        file: a results.csv (its folder is searched for results*.csv), or '' with ``dir``.
        best: mark the epoch of highest 0.1 mAP@0.5 + 0.9 mAP@0.5:0.95 of boxes plus masks; else the last epoch.
    """
    import pandas as pd  # noqa: PLC0415 (slow import, only for this plot)

    save_dir = Path(file).parent if file else Path(dir)
    files = sorted(save_dir.glob("results*.csv"))
    if not files:
        LOGGER.warning(f"WARNING ⚠️ No results.csv files found in {save_dir.resolve()}, nothing to plot.")
        return None
    fig = Figure(figsize=(18, 6), tight_layout=True)
    FigureCanvasAgg(fig)
    ax = [fig.add_subplot(2, 8, k + 1) for k in range(16)]
    for f in files:
        try:
            data = pd.read_csv(f)
            v = data.values
            names = [c.strip() for c in data.columns]
            measured = validated_rows(names, v)  # --noval: validation columns only where validated
            fit = 0.9 * v[:, 8] + 0.1 * v[:, 7] + 0.9 * v[:, 12] + 0.1 * v[:, 11]
            k = int(np.argmax(np.where(measured, fit.astype(float), -np.inf))) if best else -1
            for a, j in zip(ax, _RESULT_COLUMNS):
                y = v[:, j].astype(float)
                keep = measured if j in validated_columns(names) else slice(None)
                a.plot(v[keep, 0], y[keep], marker=".", label=f.stem, linewidth=2, markersize=2)
                a.scatter(v[k, 0], y[k], color="r", label=f"best:{k}" if best else "last", marker="*", linewidth=3)
                a.set_title(f"{names[j]}\n{round(y[k], 5)}")
        except Exception as e:  # one malformed file must not stop the others
            LOGGER.info(f"Warning: Plotting error for {f}: {e}")
    for a in ax[1:]:
        a.set_xlim(ax[0].get_xlim())  # the epoch axis of every panel, also where only the last epoch was validated
    ax[1].legend()
    out = save_dir / "results.png"
    fig.savefig(out, dpi=200)
    return out


# ------------------------------------------------------------------------------------------------ on an image
def draw_masks(annotator, masks, colors, im_gpu=None, alpha=0.5, retina_masks=False):
    """Blend instance masks into an Annotator's image (ultralytics' Annotator.masks).

    Args:
        annotator: utils.annotator.Annotator of the original image (BGR, or PIL).
        masks: (n, h, w) 0/1 masks (tensor), in the network input's frame (or the original's with retina_masks).
        colors: n BGR colours (0-255), e.g. [colors(c, True) for c in det[:, 5]].
        im_gpu: the letterboxed network input (3, h, w) RGB 0-1 tensor: the masks are blended into it with cumulative
            transparency (later masks under earlier ones), and the result, letterbox removed, replaces the image.
            None: the masks, mapped to the original image (scale_image), are blended into it directly.
        alpha: mask opacity. retina_masks: with im_gpu, the masks and im_gpu already are in the original's frame.
    """
    if annotator.pil:
        annotator.im = np.asarray(annotator.im).copy()
    if im_gpu is None:
        _blend_numpy(annotator.im, masks, colors, alpha)
    else:
        _blend_tensor(annotator.im, masks, colors, im_gpu, alpha, retina_masks)
    if annotator.pil:
        annotator.fromarray(annotator.im)


def _blend_numpy(im, masks, colors, alpha):
    if len(masks) == 0:
        return
    m = np.asarray(to_numpy(masks)).astype(np.uint8).transpose(1, 2, 0)
    m = scale_image(m.shape[:2], m, im.shape).astype(np.float32)
    cover = m.sum(2, keepdims=True).clip(0, 1)
    color = (m @ np.asarray(colors, dtype=np.float32)).clip(0, 255)
    im[:] = color * alpha + im * (1 - cover * alpha)


def _blend_tensor(im, masks, colors, im_gpu, alpha, retina_masks):
    """Each mask k shows through (1 - alpha)^(k-1) of the ones before it; the weights of the image and all colours
    sum to 1 (ultralytics' cumprod includes mask k itself, hence its factor 2, exact for alpha = 0.5)."""
    base = im_gpu.flip(0).permute(1, 2, 0).contiguous()  # RGB CHW -> BGR HWC
    if len(masks):
        masks = (masks if is_tensor(masks) else from_numpy(masks)).to(base.device).float()[..., None]
        c = torch.tensor(np.asarray(colors, np.float32) / 255.0, device=base.device).reshape(-1, 1, 1, 3)
        keep = (1 - masks * alpha).cumprod(0)
        base = base * keep[-1] + (masks * (c * alpha) * keep).sum(0) * 2
    out = to_numpy((base.clamp(0, 1) * 255).to(torch.uint8))
    im[:] = out if retina_masks else scale_image(out.shape, out, im.shape)
