"""Run a checkpoint on a saved input with the backend named by YOLOV5_BACKEND; write every eval output to an .npz.

    YOLOV5_BACKEND=torch python tests/parity/run_model.py --weights w.pt --input x.npy --out y.npz [--fuse]
Used by the cross-backend parity tests: the other backend lives in another venv, so it runs in a child process.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.experimental import attempt_load, load_checkpoint_model  # noqa: E402
from utils.backend import NAME, from_numpy, to_numpy, torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--fuse", action="store_true")
    opt = ap.parse_args()
    model = attempt_load(opt.weights, fuse=True) if opt.fuse else load_checkpoint_model(opt.weights)[0]
    with torch.no_grad():
        y = model(from_numpy(np.load(opt.input)))
    outs = [t for t in (y if isinstance(y, (list, tuple)) else [y]) if hasattr(t, "shape")]
    np.savez(opt.out, backend=NAME, **{f"out{i}": to_numpy(t) for i, t in enumerate(outs)})


if __name__ == "__main__":
    main()
