"""Training speed: one epoch of yolov5n (-seg, -cls) on built-in synthetic data, OneFlow vs PyTorch vs ultralytics.

Each backend trains in its own process (its own venv), one after the other, never at the same time: PyTorch CPU
timings collapse when another busy process shares the cores. Each run trains one epoch from scratch with the same
data, image size, batch, hyperparameters and workers, and the time is taken from the trainer's own callbacks:

  - images/s      training images of the epoch / wall time from the first batch to the end of the last one
  - data          waiting for the dataloader (gap between one batch's end and the next one's start)
  - forward       model forward pass            (ours only: measured with forward hooks)
  - loss          ComputeLoss                    (ours only)
  - backward+     backward pass and the rest of the step (warm-up lr updates, progress bar)
  - optim+EMA     gradient clipping, optimizer step, zero_grad, EMA update (ours only)

Each phase ends with a device synchronisation (OneFlow runs its ops asynchronously), so the parts add up to the step.

Usage:
    python benchmarks/train_speed.py                          # oneflow, torch and ultralytics when their venvs exist
    python benchmarks/train_speed.py --backends oneflow torch --img 256 --batch 16 --n-train 256
    python benchmarks/train_speed.py --task classify --img 128 --batch 64   # yolov5n cut into a classifier
"""

import argparse
import json
import os
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
PHASES = ("data", "forward", "loss", "backward+", "optim+EMA", "mask loss")  # mask loss: the segment part of loss


class StepClock:
    """Accumulates wall time per phase of the training step from the trainer's callbacks (and hooks, for ours)."""

    def __init__(self, sync=lambda: None):
        self.sync = sync
        self.totals = {k: 0.0 for k in PHASES}  # "mask loss" is a part of "loss" (not added to the step)
        self.images = 0
        self.batches = 0
        self.t_first = self.t_last = self.t_mark = None

    def batch_start(self, *args, **kwargs):
        now = time.perf_counter()
        if self.t_first is None:
            self.t_first = now
        elif self.t_last is not None:
            self.totals["data"] += now - self.t_last
        self.t_mark = now

    def phase(self, name, wait=None):
        wait() if wait else self.sync()
        now = time.perf_counter()
        self.totals[name] += now - self.t_mark
        self.t_mark = now

    def batch_end(self, model, ni, imgs, *args, **kwargs):
        self.sync()
        now = time.perf_counter()
        self.totals["backward+"] += now - self.t_mark
        self.t_last, self.t_mark = now, now
        self.images += int(imgs.shape[0])
        self.batches += 1

    def register(self, callbacks):
        callbacks.register_action("on_train_batch_start", "speed", self.batch_start)
        callbacks.register_action("on_train_batch_end", "speed", self.batch_end)

    def result(self, **extra):
        wall = self.t_last - self.t_first
        return dict(images=self.images, batches=self.batches, wall_s=wall, images_per_s=self.images / wall,
                    phases_s=self.totals, **extra)


class TimedLoader:
    """A training loader that tells a StepClock where batches start and end (for trainers without callbacks)."""

    def __init__(self, loader, clock):
        self.loader, self.clock = loader, clock

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def __iter__(self):
        previous = None
        for batch in self.loader:
            if previous is not None:
                self.clock.batch_end(None, 0, previous[0])
            self.clock.batch_start()
            previous = batch
            yield batch
        if previous is not None:
            self.clock.batch_end(None, 0, previous[0])


# ----------------------------------------------------------------------------------------------------- workers
def _train_opt(opt_ns, args, project, model="yolov5n.yaml"):
    if args.task == "classify":  # classify/train.py: --model (a detector cut at layer 10), always validates
        base = dict(model=model, data=args.data, imgsz=args.img, epochs=1, batch_size=args.batch,
                    workers=args.workers, project=project, name="speed", exist_ok=True, device="cpu")
    else:
        base = dict(data=args.data, cfg="yolov5n-seg.yaml" if args.task == "segment" else "yolov5n.yaml",
                    weights="", imgsz=args.img, epochs=1, batch_size=args.batch, workers=args.workers,
                    project=project, name="speed", exist_ok=True, noplots=True, noval=True, noautoanchor=True,
                    device="cpu")
    for k, v in base.items():
        setattr(opt_ns, k, v)
    return opt_ns


def worker_ours(args, project):
    """Our train.py (segment/train.py) on the active backend, with forward/loss/optimizer timed inside the step."""
    import train
    from classify import train as classify_train
    from segment import train as segment_train
    from utils.backend import NAME, VERSION, to_numpy
    from utils.callbacks import Callbacks
    from utils.engine.classification import ClassificationTrainer
    from utils.engine.detection import DetectionTrainer
    from utils.engine.segmentation import SegmentationTrainer

    script, trainer_class = {"detect": (train, DetectionTrainer), "segment": (segment_train, SegmentationTrainer),
                             "classify": (classify_train, ClassificationTrainer)}[args.task]

    state = {}

    def sync():
        m = state.get("model")
        if m is not None:  # a value that depends on the last finished op of the step: reading it waits for it
            p = next(m.parameters())
            to_numpy((p.grad if p.grad is not None else p).reshape(-1)[:1])

    clock = StepClock(sync)
    callbacks = Callbacks()
    clock.register(callbacks)
    base_setup = trainer_class.setup

    def setup(self):
        base_setup(self)
        state["model"] = self.model
        loss_fn, step_fn = self.compute_loss, self.optimizer_step
        def wait_all(out):  # every output map: one map being ready says nothing about the other heads
            for t in out if isinstance(out, (list, tuple)) else [out]:
                wait_all(t) if isinstance(t, (list, tuple)) else to_numpy(t.reshape(-1)[:1])

        self.model.register_forward_hook(lambda m, i, out: clock.phase("forward", lambda: wait_all(out)))

        def timed_loss(*a, **k):
            out = loss_fn(*a, **k)
            to_numpy(out[0])
            clock.phase("loss")
            return out

        def timed_step():
            clock.phase("backward+")
            step_fn()
            clock.phase("optim+EMA")

        self.compute_loss, self.optimizer_step = timed_loss, timed_step
        if hasattr(self.loss, "mask_loss"):  # segmentation: time its mask term on its own (part of "loss")
            mask_fn = self.loss.mask_loss

            def timed_mask(*a, **k):
                t0 = time.perf_counter()
                out = mask_fn(*a, **k)
                to_numpy(out.reshape(-1)[:1])
                clock.totals["mask loss"] += time.perf_counter() - t0
                return out

            self.loss.mask_loss = timed_mask

    trainer_class.setup = setup
    sys.argv = sys.argv[:1]  # train.parse_opt reads sys.argv (where '--worker' would pass for '--workers')
    opt = _train_opt(script.parse_opt(known=True), args, project)
    script.main(opt, callbacks)
    return clock.result(framework=f"{NAME} {VERSION}")


def worker_ultralytics(args, project):
    """The reference's train.py (PyPI yolov5 7.0.x), timed by the same callbacks (no split inside the step)."""
    from importlib.metadata import version
    sys.argv = sys.argv[:1]
    # its checkpoints pickle 'models.yolo' names: our package must not shadow them in the reference's process
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    os.chdir(project if Path(project).is_dir() else tempfile.gettempdir())
    from yolov5.utils.callbacks import Callbacks
    if args.task == "segment":
        from yolov5.segment import train as ref_train
    elif args.task == "classify":
        from yolov5.classify import train as ref_train
    else:
        from yolov5 import train as ref_train

    clock = StepClock()
    callbacks = Callbacks()
    clock.register(callbacks)
    if args.task == "segment":  # its segment/train.py runs no batch callbacks: time the batches at the loader
        make = ref_train.create_dataloader

        def create_dataloader(*a, **k):
            loader, dataset = make(*a, **k)
            return (TimedLoader(loader, clock) if k.get("augment") else loader), dataset

        ref_train.create_dataloader = create_dataloader
    if args.task == "classify":  # no callbacks either; its --model takes a file: the same detector, saved by torch
        from yolov5.models.yolo import DetectionModel
        make_cls = ref_train.create_classification_dataloader

        def create_classification_dataloader(*a, **k):
            loader = make_cls(*a, **k)
            return TimedLoader(loader, clock) if k.get("augment", True) else loader

        ref_train.create_classification_dataloader = create_classification_dataloader
        det = Path(project) / "yolov5n-det.pt"
        det.parent.mkdir(parents=True, exist_ok=True)
        ref_train.torch.save({"model": DetectionModel(str(ROOT / "models/yolov5n.yaml"), nc=80), "epoch": -1}, det)
        opt = _train_opt(ref_train.parse_opt(known=True), args, project, model=str(det))
        ref_train.main(opt)
        return clock.result(framework=f"ultralytics yolov5 (torch {version('torch')})")
    opt = _train_opt(ref_train.parse_opt(known=True), args, project)
    opt.hyp = str(ROOT / "data/hyps/hyp.scratch-low.yaml")
    ref_train.main(opt, callbacks=callbacks)
    return clock.result(framework=f"ultralytics yolov5 (torch {version('torch')})")


# ------------------------------------------------------------------------------------------------------ parent
def _reference_env():
    env = dict(os.environ, YOLOV5_CONFIG_DIR=str(PEER_VENV / "cfg"), YOLO_CONFIG_DIR=str(PEER_VENV / "cfg/ultralytics"),
               YOLO_OFFLINE="1", YOLO_AUTOINSTALL="false", TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1",
               WANDB_MODE="disabled", MPLBACKEND="Agg", GIT_TERMINAL_PROMPT="0",
               PYTHONWARNINGS="ignore::DeprecationWarning,ignore::FutureWarning,ignore::UserWarning")
    for k in ("PYTHONPATH", "RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


def run_one(name, args, work):
    out = work / f"{name}.json"
    if name == "ultralytics":
        python, env = PEER_VENV / "bin/python", _reference_env()
    else:
        python, env = PYTHONS[name], dict(os.environ, YOLOV5_BACKEND=name)
        for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
            env.pop(k, None)
    if not Path(python).exists():
        print(f"{name:12s} skipped: {python} not found")
        return None
    cmd = [str(python), __file__, "--worker", name, "--out", str(out), "--task", args.task, "--data", args.data,
           "--img", str(args.img),
           "--batch", str(args.batch), "--workers", str(args.workers), "--project", str(work / name)]
    t = time.time()
    r = subprocess.run(cmd, env=env, cwd=str(ROOT), capture_output=True, text=True)
    if r.returncode or not out.exists():
        print(f"{name:12s} FAILED (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
        return None
    res = json.loads(out.read_text())
    res["process_s"] = time.time() - t
    return res


def print_table(results, args):
    ref = results.get("ultralytics")
    model = {"segment": "yolov5n-seg", "classify": "yolov5n cut into a classifier"}.get(args.task, "yolov5n")
    print(f"\n{model}, 1 epoch, {args.n_train} synthetic images, --img {args.img} --batch {args.batch} "
          f"--workers {args.workers}, CPU ({os.cpu_count()} cores)")
    head = f"{'backend':12s} {'framework':32s} {'images/s':>9s} {'vs ultra':>9s} " + \
        " ".join(f"{p:>10s}" for p in PHASES) + "   (ms per image)"
    print(head + "\n" + "-" * len(head))
    for name, r in results.items():
        if r is None:
            continue
        ratio = f"{r['images_per_s'] / ref['images_per_s']:.2f}x" if ref else "-"
        ph = r["phases_s"]
        cells = " ".join(f"{1000 * ph[p] / r['images']:10.1f}" if ph[p] else f"{'-':>10s}" for p in PHASES)
        if name == "ultralytics":  # only data and the whole step are known for the reference
            step = sum(ph.values()) - ph["data"]
            cells = f"{1000 * ph['data'] / r['images']:10.1f} {'step':>10s} {1000 * step / r['images']:10.1f}" + \
                " " * 22
        print(f"{name:12s} {r['framework'][:32]:32s} {r['images_per_s']:9.1f} {ratio:>9s} {cells}")


def parse_opt():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", nargs="+", default=["oneflow", "torch", "ultralytics"],
                   choices=["oneflow", "torch", "ultralytics"])
    p.add_argument("--task", default="detect", choices=["detect", "segment", "classify"],
                   help="train.py, segment/train.py or classify/train.py")
    p.add_argument("--img", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--n-train", type=int, default=256, help="synthetic training images (one epoch)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data", default="", help="dataset YAML (default: generate the synthetic set)")
    p.add_argument("--worker", default="", help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help=argparse.SUPPRESS)
    p.add_argument("--project", default="", help=argparse.SUPPRESS)
    return p.parse_args()


def main():
    args = parse_opt()
    if args.worker:
        fn = worker_ultralytics if args.worker == "ultralytics" else worker_ours
        res = fn(args, args.project)
        Path(args.out).write_text(json.dumps(res))
        return
    with tempfile.TemporaryDirectory(prefix="yolov5-speed-") as tmp:
        work = Path(tmp)
        if not args.data:
            from utils.data.synthetic import make_dataset
            data = make_dataset(work / "synthetic", n_train=args.n_train, n_val=8, imgsz=args.img, seed=0,
                                task=args.task)
            args.data = str(Path(data).parent if args.task == "classify" else data)  # classify: the class folders
        results = {}
        for name in args.backends:
            print(f"training one epoch on {name} ...", flush=True)
            results[name] = run_one(name, args, work)
        print_table(results, args)


if __name__ == "__main__":
    main()
