"""What the two reference loss dumps share (ultralytics_loss.py, ultralytics_seg_loss.py), run BY THE ULTRALYTICS
REFERENCE PYTHON: their common arguments, the seeded model and the .npz they write."""

import argparse
import json

import numpy as np
import torch


def parser():
    """--cfg (model YAML), --out (.npz), --nc, --imgsz; each dump adds its own."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--cfg", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--nc", type=int, default=3)
    ap.add_argument("--imgsz", type=int, default=96)
    return ap


def seeded(model, rng, hyp):
    """``model`` with N(0, 0.02) added to its float weights (anchors kept), ``hyp`` set, in training mode."""
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if v.dtype == torch.float32 and "anchors" not in k:
                v.add_(torch.from_numpy(rng.normal(0, 0.02, tuple(v.shape)).astype(np.float32)))
    model.hyp = hyp
    return model.train()


def save(out, model, hyp, loss, items, **arrays):
    """The .npz our side reads: the arrays given, the loss and its items, yaml, hyp and the state_dict (sd/...)."""
    sd = {f"sd/{k}": v.detach().numpy() for k, v in model.state_dict().items()}
    np.savez(out, loss=loss.detach().numpy(), items=items.numpy(), yaml=json.dumps(model.yaml), hyp=json.dumps(hyp),
             **arrays, **sd)
