"""--graph's gain: eager vs compiled inference forward (and an nn.Graph training step, for reference) of yolov5n.

    python benchmarks/graph_speed.py --graph            # OneFlow: --graph keeps its VM settings (see utils/backend)
    python benchmarks/graph_speed.py --graph --backend torch

Prints milliseconds per call, eager and compiled alternately (``--reps`` pairs), with the load average of the
machine. The training-step graph here (forward, loss, backward, SGD with a fixed lr and momentum, one batch reused)
is a measurement only: --graph does not use it, because it cannot follow the trainer's warmup and accumulation
exactly (see utils/backend/graph.py).
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from models.yolo import DetectionModel  # noqa: E402
from utils.backend import IS_ONEFLOW, NAME, VERSION, inference_mode, nn, torch  # noqa: E402
from utils.backend.graph import compile_forward  # noqa: E402
from utils.loss import ComputeLoss  # noqa: E402


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    float(out[0].sum()) if isinstance(out, (list, tuple)) else float(out.sum())  # wait for lazy/async work
    return (time.perf_counter() - t) * 1e3


def batch(bs, imgsz, seed=0):
    g = torch.Generator()
    g.manual_seed(seed)
    im = torch.rand(bs, 3, imgsz, imgsz, generator=g)
    n = 4 * bs
    cls = torch.randint(0, 80, (n, 1), generator=g).float()
    xy, wh = torch.rand(n, 2, generator=g) * 0.6 + 0.2, torch.rand(n, 2, generator=g) * 0.3 + 0.05
    img = torch.arange(bs).repeat_interleave(4).view(-1, 1).float()
    return im, torch.cat((img, cls, xy, wh), 1)


def train_parts(imgsz):
    hyp = yaml.safe_load((ROOT / "data" / "hyps" / "hyp.scratch-low.yaml").read_text())
    model = DetectionModel(ROOT / "models" / "yolov5n.yaml", nc=80).train()
    loss = ComputeLoss(model, hyp)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.937, nesterov=True)
    return model, loss, opt


def eager_step(model, loss, opt, im, targets):
    total, items = loss(model(im), targets)
    total.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
    opt.step()
    opt.zero_grad()
    return items


def graph_step(model, loss, opt):
    """An nn.Graph of the same step (OneFlow only), for timing."""

    class Step(nn.Graph):
        def __init__(self):
            super().__init__()
            self.model = model
            self.add_optimizer(opt)

        def build(self, im, targets):
            total, items = loss(self.model(im), targets)
            total.backward()
            return items

    for g in opt.param_groups:
        g["clip_grad_max_norm"], g["clip_grad_norm_type"] = 10.0, 2.0
    return Step()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--graph", action="store_true", help="(read by utils.backend at import)")
    p.add_argument("--backend", default=None)
    p.add_argument("--no-train", action="store_true")
    p.add_argument("--fuse", action="store_true", help="fold BatchNorm into biased convs (what val.py/detect.py run)")
    opt = p.parse_args()
    torch.manual_seed(0)
    im, targets = batch(opt.batch_size, opt.imgsz)
    print(f"{NAME}-{VERSION} yolov5n{' fused' if opt.fuse else ''} {opt.imgsz}px batch {opt.batch_size}; "
          f"ONEFLOW_VM_ENABLE_SCHEDULE_YIELD={os.environ.get('ONEFLOW_VM_ENABLE_SCHEDULE_YIELD', '(default)')}")
    model = DetectionModel(ROOT / "models" / "yolov5n.yaml", nc=80).eval()
    model = model.fuse() if opt.fuse else model
    fwd = compile_forward(model, log=print)
    with inference_mode():
        t = time.perf_counter()
        timed(fwd, im)
        print(f"inference: first compiled call (compile) {time.perf_counter() - t:.1f} s")
        timed(model, im)
        for r in range(opt.reps):
            te, tg = timed(model, im), timed(fwd, im)
            print(f"inference forward  eager {te:7.0f} ms  compiled {tg:7.0f} ms  ratio {te / tg:.2f}  "
                  f"load {os.getloadavg()[0]:.2f}")
    if opt.no_train or not IS_ONEFLOW:
        return
    m1, l1, o1 = train_parts(opt.imgsz)
    m2, l2, o2 = train_parts(opt.imgsz)
    m2.load_state_dict(m1.state_dict())
    step = graph_step(m2, l2, o2)
    t = time.perf_counter()
    try:
        timed(step, im, targets)
    except Exception as e:  # OneFlow 0.9.0: the loss's boolean-mask indexing is eager-only
        print(f"train step: no nn.Graph ({str(e).strip().splitlines()[-1][:200]}); eager only")
        step = None
    else:
        print(f"train step: first graph call (compile) {time.perf_counter() - t:.1f} s")
    timed(eager_step, m1, l1, o1, im, targets)
    if step is None:
        for r in range(opt.reps):
            print(f"train step         eager {timed(eager_step, m1, l1, o1, im, targets):7.0f} ms  "
                  f"load {os.getloadavg()[0]:.2f}")
        return
    for r in range(opt.reps):
        te, tg = timed(eager_step, m1, l1, o1, im, targets), timed(step, im, targets)
        print(f"train step         eager {te:7.0f} ms  graph    {tg:7.0f} ms  ratio {te / tg:.2f}  "
              f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
