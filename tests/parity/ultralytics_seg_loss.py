"""Run BY THE ULTRALYTICS REFERENCE PYTHON: its segmentation ComputeLoss on a seeded model, batch, targets and masks.

    $PEER_PY tests/parity/ultralytics_seg_loss.py --cfg models/segment/yolov5n-seg.yaml --out seg.npz \
        [--no-overlap] [--mask-ratio 4] [--nc 3]
Each target is an ellipse inside its box, rasterised by the reference's own polygon -> mask functions (overlap index
images reorder each image's targets by decreasing area, as its loader does). The .npz holds the model's state_dict
(float32), the yaml, input, targets, masks, hyps and the loss values, so our loss can run on exactly the same numbers.
"""

import numpy as np
import torch
from reference_loss import parser, save, seeded
from yolov5.models.yolo import SegmentationModel
from yolov5.utils.segment.dataloaders import polygons2masks, polygons2masks_overlap
from yolov5.utils.segment.loss import ComputeLoss


def ellipse(box, n=24):
    """Pixel polygon (n, 2) of the ellipse inscribed in an xyxy box."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    cx, cy, rx, ry = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    return np.stack((cx + rx * np.cos(t), cy + ry * np.sin(t)), 1).astype(np.float32)


def make_batch(rng, bs, imgsz, nc, ratio, overlap, per_image=(3, 5, 1)):
    rows, masks = [], []
    for i in range(bs):
        n = per_image[i % len(per_image)]
        xywh = np.concatenate((rng.uniform(0.2, 0.8, (n, 2)), rng.uniform(0.05, 0.5, (n, 2))), 1).astype(np.float32)
        if i == 0:
            xywh[0] = [0.25, 0.5, 0.1, 0.1]  # on cell boundaries at every level
        box = np.concatenate((xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2), 1) * imgsz
        polygons = [ellipse(b) for b in box]
        lb = np.concatenate((np.full((n, 1), i), rng.integers(0, nc, (n, 1)), xywh), 1).astype(np.float32)
        if overlap:
            index, order = polygons2masks_overlap((imgsz, imgsz), polygons, downsample_ratio=ratio)
            masks.append(index[None])
            lb = lb[order]
        else:
            masks.append(polygons2masks((imgsz, imgsz), polygons, color=1, downsample_ratio=ratio))
        rows.append(lb)
    return np.concatenate(rows, 0), np.concatenate(masks, 0).astype(np.float32)


def main():
    ap = parser()
    ap.add_argument("--mask-ratio", type=int, default=4)
    ap.add_argument("--no-overlap", action="store_true")
    opt = ap.parse_args()
    overlap = not opt.no_overlap
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    hyp = {"box": 0.05, "cls": 0.5, "cls_pw": 1.0, "obj": 1.0, "obj_pw": 1.0, "anchor_t": 4.0, "fl_gamma": 0.0,
           "label_smoothing": 0.0}
    model = seeded(SegmentationModel(opt.cfg, ch=3, nc=opt.nc), rng, hyp)
    bs = 3
    x = torch.from_numpy(rng.random((bs, 3, opt.imgsz, opt.imgsz), dtype=np.float32))
    targets, masks = make_batch(rng, bs, opt.imgsz, opt.nc, opt.mask_ratio, overlap)
    loss, items = ComputeLoss(model, overlap=overlap)(model(x), torch.from_numpy(targets), torch.from_numpy(masks))
    save(opt.out, model, hyp, loss, items, x=x.numpy(), targets=targets, masks=masks, overlap=overlap)


if __name__ == "__main__":
    main()
