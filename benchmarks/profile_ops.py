"""Where the time goes on this machine: one yolov5n training step and one validation batch, by phase and by op type.

For the active backend (``--backend`` / YOLOV5_BACKEND), on the built-in synthetic data:

  training step   data (the mosaic loader, workers 0: its cost, not its overlap), forward, loss, backward,
                  optimizer + EMA, each ended by a synchronisation (OneFlow runs ops asynchronously);
  validation      pre-process (the val loader and the uint8 -> float conversion), forward of the fused model, NMS
                  at val.py's thresholds (conf 0.001, IoU 0.6), per image;
  by op type      every leaf module of the model (Conv2d, BatchNorm2d, SiLU, ...) run on its own with the input shape
                  it gets inside the model: forward ms and backward ms summed per type, for the training model and
                  for the fused inference model. OneFlow 0.9's own profiler needs CUDA, hence this measurement.

Usage (one backend per process; run them back to back on a quiet machine):
    .venv/bin/python benchmarks/profile_ops.py --img 128 --batch 16
    .venv-torch/bin/python benchmarks/profile_ops.py --backend torch
"""

import argparse
import sys
import time
from collections import defaultdict
from copy import deepcopy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_opt():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default=None, help="oneflow or torch (default: $YOLOV5_BACKEND, else oneflow)")
    p.add_argument("--img", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=5, help="timed training steps (after 2 warm-up steps)")
    p.add_argument("--reps", type=int, default=5, help="repetitions per op in the by-op table")
    return p.parse_args()


def main(opt):
    import numpy as np
    import yaml

    from models.yolo import DetectionModel
    from utils.backend import NAME, VERSION, to_numpy, torch
    from utils.data.build import create_dataloader
    from utils.data.synthetic import make_dataset
    from utils.loss import ComputeLoss
    from utils.nms import non_max_suppression
    from utils.training import ModelEMA, smart_optimizer

    def wait(x):  # reading one value of a result waits for every op it depends on
        for t in x if isinstance(x, (list, tuple)) else [x]:
            wait(t) if isinstance(t, (list, tuple)) else to_numpy(t.reshape(-1)[:1])

    def clock(fn, *a):
        t = time.perf_counter()
        out = fn(*a)
        wait(out) if out is not None else None
        return out, 1000 * (time.perf_counter() - t)

    data = yaml.safe_load(Path(make_dataset(Path("/tmp") / f"profile-ops-{opt.img}", n_train=8 * opt.batch,
                                            n_val=2 * opt.batch, imgsz=opt.img, seed=0)).read_text())
    hyp = yaml.safe_load((ROOT / "data/hyps/hyp.scratch-low.yaml").read_text())
    torch.manual_seed(0)
    model = DetectionModel("yolov5n.yaml", nc=len(data["names"])).train()
    model.hyp = hyp
    loss_fn = ComputeLoss(model, hyp)
    optimizer = smart_optimizer(model, "SGD", 0.01, 0.937, 5e-4)
    ema = ModelEMA(model)
    loader, _ = create_dataloader(str(Path(data["path"]) / data["train"]), opt.img, opt.batch, 32, hyp=hyp,
                                  augment=True, workers=0, shuffle=True)

    phases = defaultdict(list)
    it = iter(loader)
    for step in range(2 + opt.steps):
        t = time.perf_counter()
        imgs, targets, _, _ = next(it)
        imgs = imgs.float() / 255
        t_data = 1000 * (time.perf_counter() - t)
        pred, t_fwd = clock(model, imgs)
        (loss, items), t_loss = clock(loss_fn, pred, targets)
        _, t_bwd = clock(lambda: (loss.backward(), next(model.parameters()).grad)[1])
        t = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad()
        ema.update(model)
        wait(next(ema.ema.parameters()))
        t_opt = 1000 * (time.perf_counter() - t)
        if step >= 2:
            for k, v in zip(("data", "forward", "loss", "backward", "optimizer+EMA"),
                            (t_data, t_fwd, t_loss, t_bwd, t_opt)):
                phases[k].append(v)

    val_loader, _ = create_dataloader(str(Path(data["path"]) / data["val"]), opt.img, opt.batch, 32, hyp=hyp,
                                      rect=True, pad=0.5, workers=0)
    fused = deepcopy(model).eval().fuse()
    vphases, n_images = defaultdict(float), 0
    with torch.no_grad():
        for rep in range(2):
            for imgs, _, _, _ in val_loader:
                t = time.perf_counter()
                x = imgs.float() / 255
                wait(x)
                t_pre = 1000 * (time.perf_counter() - t)
                out, t_fwd = clock(lambda: fused(x)[0])
                _, t_nms = clock(lambda: non_max_suppression(out, 0.001, 0.6, multi_label=True, max_det=300) and None)
                if rep:  # the first pass warms up
                    n_images += imgs.shape[0]
                    for k, v in (("pre-process", t_pre), ("forward (fused)", t_fwd), ("NMS", t_nms)):
                        vphases[k] += v

    print(f"\n{NAME} {VERSION}: yolov5n, --img {opt.img}, batch {opt.batch}, synthetic data, CPU")
    print(f"\ntraining step (ms per step, median of {opt.steps}): " + ", ".join(
        f"{k} {np.median(v):.1f}" for k, v in phases.items()) +
        f"; total {sum(np.median(v) for v in phases.values()):.1f}")
    print("validation (ms per image): " + ", ".join(f"{k} {v / n_images:.2f}" for k, v in vphases.items()) +
          f"; total {sum(vphases.values()) / n_images:.2f}")

    for title, net, train in (("training model", model, True), ("fused inference model", fused, False)):
        table = by_op_type(net, torch.zeros(opt.batch, 3, opt.img, opt.img), train, opt.reps, wait)
        fwd_total = sum(r[1] for r in table.values())
        print(f"\nby op type, {title} (ms per batch of {opt.batch}; each op alone at its in-model input shape)")
        print(f"{'op':18s} {'calls':>6s} {'forward':>9s} {'share':>6s}" + (f" {'backward':>9s}" if train else ""))
        for name, (calls, fwd, bwd) in sorted(table.items(), key=lambda kv: -kv[1][1] - kv[1][2]):
            print(f"{name:18s} {calls:6d} {fwd:9.1f} {100 * fwd / fwd_total:5.0f}%" +
                  (f" {bwd:9.1f}" if train else ""))


def by_op_type(net, x, train, reps, wait):
    """{module type: (calls, forward ms, backward ms)} over the leaf modules of ``net``, each timed on its own
    (convolutions as the model runs them: conv_with_bias, i.e. OneFlow CPU's unbiased conv + add)."""
    from utils.backend import conv_with_bias, torch, whole_conv_calls
    def detached(a):  # a module's positional arguments: tensors, or a list of tensors (Concat)
        return [detached(t) for t in a] if isinstance(a, (list, tuple)) else a.detach()

    def fresh(a):  # leaf copies that collect gradients
        return [fresh(t) for t in a] if isinstance(a, list) else a.clone().requires_grad_(train)

    def leaves(a):
        return [x for t in a for x in leaves(t)] if isinstance(a, list) else [a]

    inputs, capturing = [], [True]  # OneFlow's register_forward_pre_hook returns no handle: switch the hooks off

    def capture(m, a):
        if capturing[0]:
            inputs.append((m, detached(list(a))))

    for m in net.modules():
        if not list(m.children()):
            m.register_forward_pre_hook(capture)
    with torch.no_grad(), whole_conv_calls():  # every convolution a module call, so that its hook sees it
        net(x)
    capturing[0] = False
    table = defaultdict(lambda: [0, 0.0, 0.0])
    for m, args in inputs:
        if getattr(m, "inplace", False):  # in place on a leaf that needs a gradient is refused: time the copy
            m = deepcopy(m)
            m.inplace = False
        fwd, bwd = [], []
        for _ in range(reps):
            a = fresh(args)
            t0 = time.perf_counter()
            with torch.set_grad_enabled(train):
                y = conv_with_bias(m, a[0]) if isinstance(m, torch.nn.Conv2d) else m(*a) if len(a) > 1 else m(a[0])
            wait(y)
            t1 = time.perf_counter()
            if train and y.requires_grad:
                y.backward(torch.ones_like(y))
                wait([t.grad for t in leaves(a)])
            fwd.append(t1 - t0)
            bwd.append(time.perf_counter() - t1)
        row = table[type(m).__name__]
        row[0] += 1
        row[1] += 1000 * sorted(fwd)[len(fwd) // 2]
        row[2] += 1000 * sorted(bwd)[len(bwd) // 2] if train else 0.0
    return {k: tuple(v) for k, v in table.items()}


if __name__ == "__main__":
    opt = parse_opt()
    if opt.backend:
        import os
        os.environ["YOLOV5_BACKEND"] = opt.backend
    main(opt)
