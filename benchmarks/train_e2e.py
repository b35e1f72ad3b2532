"""End-to-end training time: the whole `train.py` command (start-up, epochs with validation, final validation, plots),
OneFlow in one process, with the DDP launcher (one process per core) and with --graph (compiled training step and
validation forward, compile time included), our PyTorch backend, and ultralytics.

Each program runs alone, one after the other, ``--repeat`` rounds in turn, on the same synthetic data (``--n-train``
images at ``--img`` px) with the same flags: yolov5n from scratch, ``--epochs`` epochs, batch 16, validation every
epoch. The figure is wall time; speed vs ultralytics is its time divided by ours.

Usage:
    python benchmarks/train_e2e.py                                  # 1024 images, 128 px, 3 epochs
    python benchmarks/train_e2e.py --programs oneflow oneflow-ddp --repeat 1
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PYTHONS = {"oneflow": ROOT / ".venv/bin/python", "torch": ROOT / ".venv-torch/bin/python"}
PEER_VENV = Path(os.environ.get("PEER_VENV") or Path(os.environ.get("TMPDIR", "/tmp")) / "ultralytics-ref")
PROGRAMS = ("oneflow", "oneflow-ddp", "oneflow-graph", "torch", "ultralytics")


def parse_opt():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--programs", nargs="+", default=list(PROGRAMS), choices=PROGRAMS)
    p.add_argument("--img", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--n-train", type=int, default=1024)
    p.add_argument("--n-val", type=int, default=128)
    p.add_argument("--nproc", type=int, default=os.cpu_count() or 2, help="processes of oneflow-ddp")
    p.add_argument("--repeat", type=int, default=3)
    return p.parse_args()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(name, data, opt, project):
    flags = ["--data", str(data), "--cfg", str(ROOT / "models/yolov5n.yaml"), "--weights", "", "--img", str(opt.img),
             "--epochs", str(opt.epochs), "--batch-size", "16", "--project", str(project), "--name", name,
             "--exist-ok"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env["MPLBACKEND"] = "Agg"
    if name == "ultralytics":
        env.update(YOLOV5_CONFIG_DIR=str(PEER_VENV / "cfg"), YOLO_OFFLINE="1", WANDB_MODE="disabled",
                   TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1",
                   PYTHONWARNINGS="ignore")
        return [str(PEER_VENV / "bin/python"), "-m", "yolov5.train", *flags], env
    backend = name.split("-")[0]
    env["YOLOV5_BACKEND"] = backend
    if name.endswith("-ddp"):  # one process per core; their loaders run inline (workers 0)
        launch = ["-m", "oneflow.distributed.launch", "--nproc_per_node", str(opt.nproc), "--master_port",
                  str(free_port())]
        return [str(PYTHONS[backend]), *launch, str(ROOT / "train.py"), *flags, "--workers", "0"], env
    graph = ["--graph"] if name.endswith("-graph") else []  # the compiled training step (utils/backend/graph.py)
    return [str(PYTHONS[backend]), str(ROOT / "train.py"), *flags, *graph], env


def main(opt):
    from utils.data.synthetic import make_dataset
    names = [n for n in opt.programs if n != "ultralytics" or (PEER_VENV / "bin/python").exists()]
    with tempfile.TemporaryDirectory(prefix="yolov5-e2e-") as tmp:
        data = make_dataset(Path(tmp) / "data", n_train=opt.n_train, n_val=opt.n_val, imgsz=opt.img, seed=0)
        times = {n: [] for n in names}
        for rnd in range(opt.repeat):
            for name in names:
                cmd, env = command(name, data, opt, Path(tmp) / "runs")
                t = time.time()
                r = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True)
                secs = time.time() - t
                if r.returncode:
                    print(f"{name}: FAILED (exit {r.returncode})\n{(r.stdout + r.stderr)[-2500:]}")
                    continue
                times[name].append(secs)
                print(f"round {rnd + 1} {name:12s} {secs:6.1f} s", flush=True)
    ref = times.get("ultralytics", [])
    print(f"\ntrain.py end to end: yolov5n from scratch, {opt.n_train} images at {opt.img} px, {opt.epochs} epochs "
          f"with validation, batch 16, CPU ({os.cpu_count()} cores); each round back to back")
    for name, ts in times.items():
        ratio = " ".join(f"{b / a:.2f}x" for a, b in zip(ts, ref)) if ref and name != "ultralytics" else ""
        print(f"{name:12s} seconds {' '.join(f'{t:6.1f}' for t in ts)}   speed vs ultralytics {ratio}")


if __name__ == "__main__":
    main(parse_opt())
