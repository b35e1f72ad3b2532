"""The README's main job (``make demo``): train, validate, detect and export on the built-in synthetic dataset.

Each step is the same command a user types, printed before it runs, so the demo is also a tour of the CLI:

    python train.py  --data synthetic.yaml --cfg yolov5n.yaml --weights '' --img 128 ...   (dataset made on first use)
    python val.py    --data synthetic.yaml --weights runs/train/demo/weights/best.pt --img 128
    python detect.py --weights runs/train/demo/weights/best.pt --source '<val images>/00000*.jpg' --img 128
    python export.py --weights runs/train/demo/weights/best.pt --include onnx --img 128

Run folders are new ones (runs/train/demo, demo2, ...): an earlier demo is never overwritten. On OneFlow without a
GPU the training runs as 2 DDP processes (one per core: OneFlow's CPU kernels use one core each), which is the
fastest configuration there; --nproc 1 trains in one process.

Usage:
    python -m utils.demo                  # the OneFlow backend (default), recipe of data/synthetic.yaml
    python -m utils.demo --backend torch --epochs 10
"""

import glob
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from utils import cli, errors  # noqa: E402
from utils.files import increment_path  # noqa: E402

DATA = "synthetic.yaml"


def _run(cmd, backend):
    """Run one of the project's scripts as a user would, echoing the command; stop the demo if it fails."""
    print(f"\n$ {shlex.join(['python', *cmd])}", flush=True)
    env = dict(os.environ, YOLOV5_BACKEND=backend)
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):  # a clean launch for every step
        env.pop(k, None)
    t = time.time()
    r = subprocess.run([sys.executable, *cmd], cwd=ROOT, env=env)
    if r.returncode:
        raise SystemExit(f"demo step failed (exit {r.returncode}): python {shlex.join(cmd)}")
    return time.time() - t


def _val_map(csv_dir):
    """(mAP50, mAP50-95) of the last row of a run's results.csv."""
    import pandas as pd  # noqa: PLC0415
    df = pd.read_csv(csv_dir / "results.csv")
    df.columns = [c.strip() for c in df.columns]
    return float(df["metrics/mAP_0.5"].iloc[-1]), float(df["metrics/mAP_0.5:0.95"].iloc[-1])


def main(opt):
    import yaml  # noqa: PLC0415
    from utils.data.dataset_yaml import check_dataset  # noqa: PLC0415
    data = check_dataset(DATA)  # generates the dataset on first use (the YAML's 'generate:' key)
    recipe = yaml.safe_load((ROOT / "data" / DATA).read_text())["demo"]
    epochs, imgsz = opt.epochs or recipe["epochs"], recipe["imgsz"]
    name = increment_path(ROOT / "runs" / "train" / "demo").name  # first free name, used for every step
    train_dir, weights = ROOT / "runs" / "train" / name, ROOT / "runs" / "train" / name / "weights" / "best.pt"

    times = {}
    nproc = opt.nproc or default_nproc(opt.backend)
    launcher = "oneflow.distributed.launch" if opt.backend == "oneflow" else "torch.distributed.run"
    launch = ["-m", launcher, "--nproc_per_node", str(nproc)] if nproc > 1 else []
    workers = "0" if nproc > 1 else "2"
    times["train"] = _run([*launch, "train.py", "--data", DATA, "--cfg", "yolov5n.yaml", "--weights", "",
                           "--img", str(imgsz), "--epochs", str(epochs), "--batch-size", str(recipe["batch_size"]),
                           "--optimizer", recipe["optimizer"], "--hyp", recipe["hyp"], "--workers", workers,
                           "--name", name], opt.backend)
    times["val"] = _run(["val.py", "--data", DATA, "--weights", str(weights.relative_to(ROOT)), "--img", str(imgsz),
                         "--name", name], opt.backend)
    source = str(Path(data["val"]) / "00000*.jpg")  # a glob: the first 10 val images
    times["detect"] = _run(["detect.py", "--weights", str(weights.relative_to(ROOT)), "--img", str(imgsz),
                            "--source", source, "--name", name], opt.backend)
    exported = None
    if (ROOT / "export.py").exists():
        times["export"] = _run(["export.py", "--weights", str(weights.relative_to(ROOT)), "--include", "onnx",
                                "--img", str(imgsz)], opt.backend)
        exported = weights.with_suffix(".onnx")

    map50, map = _val_map(train_dir)
    print(f"\nDemo finished on the {opt.backend} backend: yolov5n trained from scratch for {epochs} epochs at {imgsz} "
          f"px in {times['train'] / 60:.1f} min ({nproc} process{'es' if nproc > 1 else ''}), mAP50 {map50:.3f}, "
          f"mAP50-95 {map:.3f} ({len(data['names'])} classes, {data['val']})")
    print(f"  training run     {train_dir.relative_to(ROOT)}/  (results.csv, results.png, labels.jpg, "
          f"train_batch*.jpg, PR_curve.png, confusion_matrix.png, val_batch*_pred.jpg)")
    print(f"  weights          {weights.relative_to(ROOT)}  and last.pt")
    print(f"  validation       runs/val/{name}/")
    print(f"  detections       runs/detect/{name}/  (images with boxes)")
    if exported:
        print(f"  ONNX model       {exported.relative_to(ROOT)}")
    print("Step times: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))


def default_nproc(backend, cores=None, gpu=None):
    """Training processes when --nproc is 0: one per core, up to 2, for OneFlow on a machine without a GPU (its CPU
    kernels use one core per process: the demo trains in 5.1 min instead of 7.2 on 2 cores), else 1. Read without
    importing the framework (the launcher must be the first to start it)."""
    from utils.dist import usable_cpus  # noqa: PLC0415
    cores = usable_cpus() if cores is None else cores
    gpu = bool(glob.glob("/dev/nvidia[0-9]*")) if gpu is None else gpu
    return min(cores, 2) if backend == "oneflow" and not gpu else 1


def parse_opt(argv=None):
    opt = cli.parse("utils/demo", argv)
    opt.backend = opt.backend or os.environ.get("YOLOV5_BACKEND", "oneflow")
    return opt


if __name__ == "__main__":
    with errors.guard():
        main(parse_opt())
