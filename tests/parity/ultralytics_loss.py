"""Run BY THE ULTRALYTICS REFERENCE PYTHON: its ComputeLoss on a seeded model, batch and targets -> an .npz.

    $PEER_PY tests/parity/ultralytics_loss.py --cfg models/yolov5n.yaml --out loss.npz [--nc 3] [--fl-gamma 0]
The .npz holds the model's state_dict (float32), the yaml, the input, the targets, the hyps and the loss values, so
our ComputeLoss can be run on exactly the same numbers.
"""

import numpy as np
import torch
import yaml
from reference_loss import parser, save, seeded
from yolov5.models.yolo import Model
from yolov5.utils.loss import ComputeLoss


def main():
    ap = parser()
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--fl-gamma", type=float, default=0.0)
    opt = ap.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    with open(opt.cfg) as f:
        cfg = yaml.safe_load(f)
    hyp = {"box": 0.05, "cls": 0.5, "cls_pw": 1.0, "obj": 1.0, "obj_pw": 1.0, "anchor_t": 4.0,
           "fl_gamma": opt.fl_gamma, "label_smoothing": opt.label_smoothing}
    model = seeded(Model(cfg, ch=3, nc=opt.nc), rng, hyp)
    x = torch.from_numpy(rng.random((2, 3, opt.imgsz, opt.imgsz), dtype=np.float32))
    n = 9
    t = np.zeros((n, 6), np.float32)
    t[:, 0] = rng.integers(0, 2, n)
    t[:, 1] = rng.integers(0, opt.nc, n)
    t[:, 2:4] = rng.uniform(0.1, 0.9, (n, 2))
    t[:, 4:6] = rng.uniform(0.03, 0.6, (n, 2))
    t[0, 2:6] = [0.25, 0.5, 0.1, 0.1]  # on cell boundaries at every level
    loss, items = ComputeLoss(model)(model(x), torch.from_numpy(t))
    save(opt.out, model, hyp, loss, items, x=x.numpy(), targets=t)


if __name__ == "__main__":
    main()
