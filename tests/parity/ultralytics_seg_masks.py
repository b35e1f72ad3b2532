"""Run BY THE ULTRALYTICS REFERENCE PYTHON: its mask functions on seeded random inputs -> an .npz of inputs and outputs.

    $PEER_PY tests/parity/ultralytics_seg_masks.py OUT.npz
Covers crop_mask, process_mask (+ upsample), process_mask_upsample, process_mask_native, scale_image, masks2segments,
mask_iou (utils/segment/general.py) and polygon2mask / polygons2masks / polygons2masks_overlap (its segment loader).
"""

import sys

import numpy as np
import torch
from yolov5.utils.segment.dataloaders import polygon2mask, polygons2masks, polygons2masks_overlap
from yolov5.utils.segment.general import (crop_mask, mask_iou, masks2segments, process_mask, process_mask_native,
                                          process_mask_upsample, scale_image)


def random_boxes(rng, n, h, w):
    xy = rng.uniform(0, [w * 0.8, h * 0.8], (n, 2))
    wh = rng.uniform(4, [w * 0.6, h * 0.6], (n, 2))
    return np.concatenate((xy, np.minimum(xy + wh, [w, h])), 1).astype(np.float32)


def random_polygons(rng, n, h, w, k=9):
    out = []
    for _ in range(n):
        c = rng.uniform([0, 0], [w, h])
        r = rng.uniform(3, min(h, w) / 2.5, k)
        t = np.sort(rng.uniform(0, 2 * np.pi, k))
        out.append(np.stack((c[0] + r * np.cos(t), c[1] + r * np.sin(t)), 1).astype(np.float32))
    return out


def main():
    rng = np.random.default_rng(0)
    r = {}
    nm, mh, mw, ih, iw, n = 32, 24, 32, 96, 128, 7
    r["protos"] = rng.normal(0, 1, (nm, mh, mw)).astype(np.float32)
    r["coef"] = rng.normal(0, 0.3, (n, nm)).astype(np.float32)
    r["boxes"] = random_boxes(rng, n, ih, iw)
    r["boxes"][0] = [16.0, 8.0, 40.0, 36.0]  # on the prototype grid: crop edges fall exactly on pixel borders
    p, c, b = (torch.from_numpy(r[k]) for k in ("protos", "coef", "boxes"))
    r["crop_in"] = rng.random((n, mh, mw), dtype=np.float32)
    r["crop"] = crop_mask(torch.from_numpy(r["crop_in"]), b / 4).numpy()
    r["pm"] = process_mask(p, c, b.clone(), (ih, iw)).numpy()
    r["pm_up"] = process_mask(p, c, b.clone(), (ih, iw), upsample=True).numpy()
    r["pmu"] = process_mask_upsample(p, c, b.clone(), (ih, iw)).numpy()
    h0, w0 = 150, 210  # an original image letterboxed into (96, 128)
    r["im0_boxes"] = random_boxes(rng, n, h0, w0)
    r["pmn"] = process_mask_native(p, c, torch.from_numpy(r["im0_boxes"]), (h0, w0)).numpy()
    masks_hwn = np.ascontiguousarray(r["pmu"].transpose(1, 2, 0)).astype(np.uint8)
    r["scale"] = scale_image((ih, iw), masks_hwn, (h0, w0, 3))
    r["scale_rp"] = scale_image((ih, iw), masks_hwn, (h0, w0, 3), ratio_pad=((0.6, 0.6), (1.0, 3.0)))
    r["scale_2d"] = scale_image((ih, iw), masks_hwn[:, :, 0], (h0, w0, 3))
    segs = masks2segments(torch.from_numpy(r["pmu"]))
    segs_c = masks2segments(torch.from_numpy(r["pmu"]), strategy="concat")
    for i in range(n):
        r[f"seg{i}"], r[f"segc{i}"] = segs[i], segs_c[i]
    flat = torch.from_numpy(r["pmu"]).view(n, -1)
    r["iou"] = mask_iou(flat[:4], flat).numpy()
    polys = random_polygons(rng, 9, ih, iw)
    polys[3] = polys[2] * 0.5 + 10  # a smaller copy: overlap order matters
    for i, q in enumerate(polys):
        r[f"poly{i}"] = q
    r["p2m"] = polygon2mask((ih, iw), [polys[0].reshape(-1)], color=1, downsample_ratio=1)
    for ratio in (1, 4):
        r[f"ps{ratio}"] = polygons2masks((ih, iw), polys, color=1, downsample_ratio=ratio)
        r[f"ov{ratio}"], r[f"ov_idx{ratio}"] = polygons2masks_overlap((ih, iw), polys, downsample_ratio=ratio)
    np.savez(sys.argv[1], **r)


if __name__ == "__main__":
    main()
