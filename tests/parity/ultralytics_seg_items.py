"""Run BY THE ULTRALYTICS REFERENCE PYTHON: items of its segmentation dataset (LoadImagesAndLabelsAndMasks) -> .npz.

    $PEER_PY tests/parity/ultralytics_seg_items.py OUT.npz IMAGES_DIR HYP.yaml [--no-overlap] [--mask-ratio 4]
        [--rect-val VAL_IMAGES_DIR]
Each training item i is drawn after random.seed(i) and np.random.seed(i); with --rect-val, the rectangular validation
items (no augmentation, mask ratio 1) follow. The .npz keys are tr_im{i}, tr_lb{i}, tr_mk{i}, va_im{i}, va_lb{i},
va_mk{i}.
"""

import argparse
import random

import numpy as np
import yaml
from yolov5.utils.segment.dataloaders import LoadImagesAndLabelsAndMasks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("images")
    ap.add_argument("hyp")
    ap.add_argument("--no-overlap", action="store_true")
    ap.add_argument("--mask-ratio", type=int, default=4)
    ap.add_argument("--rect-val", default="")
    opt = ap.parse_args()
    with open(opt.hyp) as f:
        hyp = yaml.safe_load(f)
    res = {}
    ds = LoadImagesAndLabelsAndMasks(opt.images, 64, 4, augment=True, hyp=hyp, downsample_ratio=opt.mask_ratio,
                                     overlap=not opt.no_overlap)
    for i in range(len(ds)):
        random.seed(i)
        np.random.seed(i)
        im, lb, _, _, mk = ds[i]
        res.update({f"tr_im{i}": im.numpy(), f"tr_lb{i}": lb.numpy(), f"tr_mk{i}": mk.numpy()})
    if opt.rect_val:
        ds = LoadImagesAndLabelsAndMasks(opt.rect_val, 64, 2, rect=True, pad=0.5, overlap=not opt.no_overlap)
        for i in range(len(ds)):
            im, lb, _, _, mk = ds[i]
            res.update({f"va_im{i}": im.numpy(), f"va_lb{i}": lb.numpy(), f"va_mk{i}": mk.numpy()})
    np.savez(opt.out, **res)


if __name__ == "__main__":
    main()
