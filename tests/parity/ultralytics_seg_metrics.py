"""Run BY THE ULTRALYTICS REFERENCE PYTHON: segment/val.py's box and mask matching and the box + mask metrics on
seeded random images -> an .npz of the inputs and results.

    $PEER_PY tests/parity/ultralytics_seg_metrics.py OUT.npz
Per image i: dets{i} (n, 6), labels{i} (m, 5), pred masks pm{i} (n, 24, 32) and ground truth at full resolution (96 x
128) both as an overlap index image ov{i} (1, 96, 128) and per instance gt{i} (m, 96, 128); results tpm_ov{i},
tpm{i}, tpb{i}, and over all images the 8 mean results, per-class maps and fitness.
"""

import sys

import numpy as np
import torch
from yolov5.segment.val import process_batch
from yolov5.utils.segment.metrics import Metrics, ap_per_class_box_and_mask, fitness


def blob(rng, h, w):
    m = np.zeros((h, w), np.float32)
    y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
    m[y:y + rng.integers(6, h // 2), x:x + rng.integers(6, w // 2)] = 1
    return m


def main():
    rng = np.random.default_rng(0)
    iouv = torch.linspace(0.5, 0.95, 10)
    r, stats = {}, []
    for i in range(6):
        m, n = int(rng.integers(1, 5)), int(rng.integers(1, 8))
        gt = np.stack([blob(rng, 96, 128) for _ in range(m)])
        ov = np.zeros((1, 96, 128), np.float32)
        for k in range(m):
            ov[0][gt[k] > 0] = k + 1
        gt = np.stack([(ov[0] == k + 1).astype(np.float32) for k in range(m)])  # what the index image holds
        pm = np.zeros((n, 24, 32), np.float32)
        for k in range(n):  # near a label's mask (shifted) or random
            src = gt[rng.integers(m)] if rng.random() < 0.7 else blob(rng, 96, 128)
            src = np.roll(src, rng.integers(-6, 7, 2), (0, 1))
            pm[k] = src.reshape(24, 4, 32, 4).mean((1, 3)) > 0.5
        cls = rng.integers(0, 3, m).astype(np.float32)
        boxes = np.array([[x.min(), y.min(), x.max() + 1, y.max() + 1] for y, x in
                          (np.nonzero(g) if g.any() else (np.array([0]), np.array([0])) for g in gt)], np.float32)
        labels = np.concatenate((cls[:, None], boxes), 1)
        dets = np.zeros((n, 6), np.float32)
        dets[:, :4] = boxes[rng.integers(m, size=n)] + rng.normal(0, 4, (n, 4))
        dets[:, 4] = np.sort(rng.random(n))[::-1]
        dets[:, 5] = np.where(rng.random(n) < 0.8, cls[rng.integers(m, size=n)], rng.integers(0, 3, n))
        d, lb = torch.from_numpy(dets), torch.from_numpy(labels)
        tpm_ov = process_batch(d, lb, iouv, torch.from_numpy(pm), torch.from_numpy(ov), overlap=True, masks=True)
        tpm = process_batch(d, lb, iouv, torch.from_numpy(pm), torch.from_numpy(gt), overlap=False, masks=True)
        tpb = process_batch(d, lb, iouv)
        r.update({f"dets{i}": dets, f"labels{i}": labels, f"pm{i}": pm, f"ov{i}": ov, f"gt{i}": gt,
                  f"tpm_ov{i}": tpm_ov.numpy(), f"tpm{i}": tpm.numpy(), f"tpb{i}": tpb.numpy()})
        stats.append((tpm.numpy(), tpb.numpy(), dets[:, 4], dets[:, 5], cls))
    cols = [np.concatenate(x, 0) for x in zip(*stats)]
    metrics = Metrics()
    metrics.update(ap_per_class_box_and_mask(*cols, names={0: "a", 1: "b", 2: "c"}))  # its default names=() fails
    r["mean_results"] = np.array(metrics.mean_results())
    r["maps"] = metrics.get_maps(3)
    r["fitness"] = fitness(r["mean_results"].reshape(1, -1))
    np.savez(sys.argv[1], **r)


if __name__ == "__main__":
    main()
