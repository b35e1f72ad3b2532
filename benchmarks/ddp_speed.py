"""Training throughput on this machine: one process vs N DDP processes (images/s), per backend.

Each set-up trains yolov5n from scratch on the built-in synthetic data with the same total batch, image size and
epochs, one set-up after the other (never two at once; with --repeat, alternating, and the best run of each counts,
which filters out bursts of other load). The time is the training loop only, from the trainer's own
callbacks on rank 0 (epoch start -> end of the epoch's last batch; validation and start-up excluded); the first epoch
is a warm-up and not counted. Set-ups:

  1 process     python train.py ...                      (PyTorch: its default intra-op threads)
  N processes   the backend's launcher, --nproc_per_node N (oneflow.distributed.launch / torchrun; 1 thread each)

Usage:
    python benchmarks/ddp_speed.py                                   # every backend whose venv exists
    python benchmarks/ddp_speed.py --backends oneflow --nproc 2 --img 128 --batch 16 --epochs 4 --n-train 64
Numbers are noisy when other programs share the CPU: compare runs made back to back on a quiet machine.
"""

import argparse
import json
import os
import platform
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
LAUNCHERS = {"oneflow": "oneflow.distributed.launch", "torch": "torch.distributed.run"}
LAUNCH_ENV_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                   "TORCHELASTIC_RUN_ID", "PYTHONPATH")


def parse_opt():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", nargs="+", default=["oneflow", "torch"], choices=list(PYTHONS))
    p.add_argument("--nproc", type=int, default=None, help="DDP processes (default: the number of usable CPU cores)")
    p.add_argument("--img", type=int, default=128, help="image size")
    p.add_argument("--batch", type=int, default=16, help="total batch size (split over the processes)")
    p.add_argument("--epochs", type=int, default=4, help="epochs per run; the first is a warm-up")
    p.add_argument("--n-train", type=int, default=64, help="training images")
    p.add_argument("--workers", type=int, default=0, help="dataloader workers per process")
    p.add_argument("--repeat", type=int, default=1, help="runs per set-up, alternating; the best one is reported")
    p.add_argument("--timeout", type=float, default=1800, help="seconds allowed per run")
    return p.parse_args()


# ---------------------------------------------------------------------------------------------------- the worker
def worker(config_file):
    """One training run (or one rank of it): train.main with timing callbacks; rank 0 writes the result JSON."""
    from utils import dist
    d = dist.preflight()  # before the framework import, as train.py
    cfg = json.loads(Path(config_file).read_text())
    sys.argv = [sys.argv[0]]  # train's parser must not see our arguments
    import train
    from utils.callbacks import Callbacks

    opt = train.parse_opt(known=True)
    for k, v in cfg["opt"].items():
        setattr(opt, k, v)
    times, state = [], {}

    def epoch_start(*args, **kwargs):
        state["t0"] = time.perf_counter()

    def batch_end(*args, **kwargs):
        state["t1"] = time.perf_counter()

    def epoch_end(*args, **kwargs):
        times.append(state["t1"] - state["t0"])

    cb = Callbacks()
    cb.register_action("on_train_epoch_start", "speed", epoch_start)
    cb.register_action("on_train_batch_end", "speed", batch_end)
    cb.register_action("on_train_epoch_end", "speed", epoch_end)
    dist.call_main(train.main, opt, callbacks=cb)
    if d.main:
        from utils import backend
        Path(cfg["result"]).write_text(json.dumps(dict(epoch_s=times, backend=backend.NAME, version=backend.VERSION,
                                                       world=d.world_size)))


# ---------------------------------------------------------------------------------------------------- the driver
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_setup(backend_name, nproc, args, data, work):
    """images/s of one set-up (nproc 1: plain process; else the launcher), or an error string."""
    tag = f"{backend_name}-{nproc}p"
    result = work / f"{tag}.json"
    cfg = dict(result=str(result), opt=dict(
        data=str(data), cfg="yolov5n.yaml", weights="", imgsz=args.img, epochs=args.epochs, batch_size=args.batch,
        workers=args.workers, device="cpu", project=str(work / "runs"), name=tag, exist_ok=True, noval=True,
        nosave=True, noplots=True, noautoanchor=True, patience=0))
    config = work / f"{tag}.cfg.json"
    config.write_text(json.dumps(cfg))
    py = str(PYTHONS[backend_name])
    script = [str(Path(__file__).resolve()), "worker", str(config)]
    cmd = [py, *script] if nproc == 1 else [py, "-m", LAUNCHERS[backend_name], "--nproc_per_node", str(nproc),
                                           "--master_port", str(free_port()), *script]
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV_KEYS}
    env.update(YOLOV5_BACKEND=backend_name, MPLBACKEND="Agg")
    log = work / f"{tag}.log"
    t0 = time.time()
    with open(log, "w") as f:
        try:
            rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=args.timeout,
                                start_new_session=True).returncode
        except subprocess.TimeoutExpired:
            return None, f"timed out after {args.timeout:.0f} s (log: {log})"
    if rc != 0 or not result.exists():
        return None, f"exit {rc} after {time.time() - t0:.0f} s (log: {log})"
    r = json.loads(result.read_text())
    timed = r["epoch_s"][1:] or r["epoch_s"]  # epoch 0 is the warm-up
    return dict(images_per_s=args.n_train * len(timed) / sum(timed), version=r["version"], epochs=len(timed)), None


def main():
    args = parse_opt()
    from utils.data.synthetic import make_dataset
    from utils.dist import usable_cpus

    nproc = args.nproc or max(usable_cpus(), 2)
    if args.batch % nproc:
        raise SystemExit(f"--batch {args.batch} must be a multiple of --nproc {nproc}")
    print(f"DDP speed: yolov5n, {args.n_train} images at {args.img} px, total batch {args.batch}, {args.epochs} epochs "
          f"(first one not timed), workers {args.workers}; {platform.processor() or platform.machine()}, "
          f"{usable_cpus()} usable CPU cores, Python {platform.python_version()}")
    print("Note: timings are noisy when other programs share the CPU.\n")
    with tempfile.TemporaryDirectory(prefix="ddp_speed_") as tmp:
        work = Path(tmp)
        data = make_dataset(work / "data", n_train=args.n_train, n_val=8, imgsz=args.img, seed=0)
        rows = []
        for name in args.backends:
            if not PYTHONS[name].exists():
                print(f"{name}: venv {PYTHONS[name].parent.parent} not found, skipped")
                continue
            res = {1: None, nproc: None}
            for _ in range(args.repeat):
                for n in (1, nproc):
                    r, err = run_setup(name, n, args, data, work)
                    print(f"  {name:8s} {n} process{'es' if n > 1 else '  '}: "
                          + (f"{r['images_per_s']:7.1f} images/s" if r else f"failed: {err}"), flush=True)
                    if r and (res[n] is None or r["images_per_s"] > res[n]["images_per_s"]):
                        res[n] = r
            if res[1] and res[nproc]:
                rows.append((name, res[1]["version"], res[1]["images_per_s"], res[nproc]["images_per_s"]))
        if rows:
            print(f"\nbest of {args.repeat} run(s) each:")
            print(f"{'backend':18s}{'1 process':>14s}{f'{nproc} processes':>16s}{'speed-up':>10s}")
            for name, version, one, many in rows:
                print(f"{name + '-' + version:18s}{one:10.1f} im/s{many:12.1f} im/s{many / one:9.2f}x")


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker(sys.argv[2])
    else:
        main()
