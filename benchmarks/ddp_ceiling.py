"""The most N training processes could gain on this CPU: N independent processes side by side vs one process.

No DDP at all: each process runs only the forward, loss and backward of yolov5n on a fixed synthetic batch (no data
loading, no optimizer, no communication), so the ratio is an upper bound for what `--nproc_per_node N` can reach.
Set-ups, one after the other (never two set-ups at once):

  1 process      batch B on every core (OneFlow: its Python and VM threads on different cores)
  N processes    batch B/N each, side by side, each bound to its share of the cores as a CPU-only DDP rank is
                 (utils/backend: one core each -> ONEFLOW_VM_ENABLE_SCHEDULE_YIELD=1)

The figure is the median step time (first steps are warm-up); the ceiling is N * t(1 process) / (N * t(N processes))
in images per second, i.e. t(1) / t(N). With --graph the step is the compiled TrainStepGraph (OneFlow).

Usage:
    python benchmarks/ddp_ceiling.py                       # OneFlow, N 2, batch 16, 128 px, eager and compiled
    python benchmarks/ddp_ceiling.py --modes eager --repeat 3
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PYTHON = ROOT / ".venv/bin/python"
# a launcher's variables: the processes here are independent (ddp_speed.py's list; `benchmarks` is also the name of
# the top-level benchmarks.py, so the folder's scripts cannot import each other)
LAUNCH_ENV_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                   "TORCHELASTIC_RUN_ID", "PYTHONPATH")


def parse_opt():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--batch", type=int, default=16, help="the one process's batch; each of N gets batch/N")
    p.add_argument("--img", type=int, default=128)
    p.add_argument("--steps", type=int, default=14, help="steps per process (the first 4 are not counted)")
    p.add_argument("--modes", nargs="+", default=["eager", "graph"], choices=["eager", "graph"])
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--worker", type=str, default="", help=argparse.SUPPRESS)  # internal: JSON settings of one process
    return p.parse_args()


def worker(settings):
    """One process: time `steps` training steps, print the median (ms) as JSON."""
    cores = settings.get("cores")
    if cores:  # bound as utils.backend binds a CPU rank: before the framework starts its threads
        os.sched_setaffinity(0, cores)
        if len(cores) == 1:
            os.environ.setdefault("ONEFLOW_VM_ENABLE_SCHEDULE_YIELD", "1")
    import numpy as np  # noqa: PLC0415

    from models.yolo import Model  # noqa: PLC0415
    from utils.backend import to_numpy, torch  # noqa: PLC0415
    from utils.backend.graph import TrainStepGraph  # noqa: PLC0415
    from utils.loss import ComputeLoss  # noqa: PLC0415

    torch.manual_seed(0)
    model = Model(str(ROOT / "models/yolov5n.yaml"), nc=6, ch=3).train()
    loss = ComputeLoss(model, dict(box=0.05, cls=0.5, cls_pw=1.0, obj=1.0, obj_pw=1.0, iou_t=0.2, anchor_t=4.0,
                                   fl_gamma=0.0, label_smoothing=0.0))
    bs, rng = settings["batch"], np.random.default_rng(0)
    t = np.zeros((5 * bs, 6), np.float32)
    t[:, 0] = np.sort(rng.integers(0, bs, len(t)))
    t[:, 1] = rng.integers(0, 6, len(t))
    t[:, 2:4] = rng.uniform(0.05, 0.95, (len(t), 2))
    t[:, 4:6] = rng.uniform(0.02, 0.6, (len(t), 2))
    imgs, targets = torch.rand(bs, 3, settings["img"], settings["img"]), torch.tensor(t)
    graph = TrainStepGraph(model, loss) if settings["mode"] == "graph" else None
    times = []
    for _ in range(settings["steps"]):
        t0 = time.perf_counter()
        model.zero_grad()
        if graph is not None:
            items = graph(imgs, targets)[1]
        else:
            total, items = loss(model(imgs), targets)
            total.backward()
        to_numpy(items), to_numpy(next(model.parameters()).grad)
        times.append(time.perf_counter() - t0)
    counted = sorted(times[4:])
    print(json.dumps({"median_ms": 1e3 * counted[len(counted) // 2]}), flush=True)


def run(opt, mode, nproc):
    """Median step time (ms) of each of `nproc` processes started together."""
    cpus = sorted(os.sched_getaffinity(0))
    share = max(len(cpus) // nproc, 1)
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV_KEYS}  # independent processes, no DDP
    env.update(YOLOV5_BACKEND="oneflow", YOLOV5_CPU_AFFINITY="0")
    procs = []
    for i in range(nproc):
        cores = cpus[i * share:(i + 1) * share] if nproc > 1 else None
        settings = dict(mode=mode, batch=opt.batch // nproc, img=opt.img, steps=opt.steps, cores=cores)
        procs.append(subprocess.Popen([str(PYTHON), __file__, "--worker", json.dumps(settings)], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
        if p.returncode or not lines:
            raise SystemExit(f"a benchmark process failed (exit {p.returncode})")
        out.append(json.loads(lines[-1])["median_ms"])
    return out


def main(opt):
    if not PYTHON.exists():
        raise SystemExit(f"{PYTHON} is missing: run `make venv` first")
    print(f"yolov5n forward+loss+backward, {opt.img} px; 1 process: batch {opt.batch} on {len(os.sched_getaffinity(0))}"
          f" cores; {opt.nproc} processes: batch {opt.batch // opt.nproc} each, bound to their cores")
    for mode in opt.modes:
        for r in range(opt.repeat):
            one = run(opt, mode, 1)[0]
            many = run(opt, mode, opt.nproc)
            slowest = max(many)
            print(f"{mode:6s} round {r + 1}: 1 process {one:.0f} ms; {opt.nproc} processes "
                  f"{' / '.join(f'{t:.0f}' for t in many)} ms; ceiling {one / slowest:.2f}x")


if __name__ == "__main__":
    opt = parse_opt()
    if opt.worker:
        worker(json.loads(opt.worker))
    else:
        main(opt)
