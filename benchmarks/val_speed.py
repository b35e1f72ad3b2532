"""Validation speed per image: our val.py on OneFlow and on PyTorch vs ultralytics' val.py, same weights and images.

Each program runs in its own process, one after the other (never two at once), ``--repeat`` rounds in turn; every run
prints val.py's own "Speed: pre-process, inference, NMS per image" line, which this script collects. The weights are
one of ours (default: the README demo's best.pt); ultralytics reads the same weights from the file that
`export.py --include ultralytics` writes next to them. Images: a synthetic val set (``--n-val`` images at ``--img``).

Usage:
    python benchmarks/val_speed.py                                 # after `make demo`
    python benchmarks/val_speed.py --weights best.pt --img 128 --batch 32 --n-val 128 --repeat 3
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PYTHONS = {"oneflow": ROOT / ".venv/bin/python", "torch": ROOT / ".venv-torch/bin/python"}
PEER_VENV = Path(os.environ.get("PEER_VENV") or Path(os.environ.get("TMPDIR", "/tmp")) / "ultralytics-ref")
SPEED = re.compile(r"Speed: ([\d.]+)ms pre-process, ([\d.]+)ms inference, ([\d.]+)ms NMS per image")


def parse_opt():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=str(ROOT / "runs/train/demo/weights/best.pt"))
    p.add_argument("--backends", nargs="+", default=["oneflow", "torch", "ultralytics"],
                   choices=["oneflow", "torch", "ultralytics"])
    p.add_argument("--img", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--n-val", type=int, default=128)
    p.add_argument("--repeat", type=int, default=3, help="rounds; each round runs every program once")
    return p.parse_args()


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env.update(MPLBACKEND="Agg", **extra)
    return env


def command(name, weights, data, opt, project):
    flags = ["--data", str(data), "--img", str(opt.img), "--batch-size", str(opt.batch), "--project", str(project),
             "--name", name, "--exist-ok"]
    if name == "ultralytics":
        env = clean_env(YOLOV5_CONFIG_DIR=str(PEER_VENV / "cfg"), YOLO_OFFLINE="1",
                        TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", PYTHONWARNINGS="ignore")
        ref_weights = Path(weights).with_name(Path(weights).stem + "_ultralytics.pt")
        return [str(PEER_VENV / "bin/python"), "-m", "yolov5.val", "--weights", str(ref_weights), *flags], env
    return [str(PYTHONS[name]), str(ROOT / "val.py"), "--weights", str(weights), *flags], clean_env(YOLOV5_BACKEND=name)


def main(opt):
    from utils.data.synthetic import make_dataset
    weights = Path(opt.weights).resolve()
    if not weights.is_file():
        raise SystemExit(f"ERROR: {weights} not found: run `make demo` first or pass --weights")
    names = [n for n in opt.backends if n != "ultralytics" or (PEER_VENV / "bin/python").exists()]
    if "ultralytics" in names:  # ultralytics reads our weights from their export in its own layout
        r = subprocess.run([str(PYTHONS["torch"]), str(ROOT / "export.py"), "--weights", str(weights), "--include",
                            "ultralytics"], env=clean_env(YOLOV5_BACKEND="torch"), capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"ERROR: export --include ultralytics failed:\n{r.stdout[-1500:]}{r.stderr[-1500:]}")
    with tempfile.TemporaryDirectory(prefix="yolov5-valspeed-") as tmp:
        data = make_dataset(Path(tmp) / "data", n_train=8, n_val=opt.n_val, imgsz=opt.img, seed=1)
        times = {n: [] for n in names}
        for rnd in range(opt.repeat):
            for name in names:
                cmd, env = command(name, weights, data, opt, Path(tmp) / "runs")
                r = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True)
                m = SPEED.search(r.stdout + r.stderr)
                if r.returncode or not m:
                    print(f"{name}: FAILED (exit {r.returncode})\n{(r.stdout + r.stderr)[-2500:]}")
                    continue
                times[name].append(tuple(map(float, m.groups())))
                print(f"round {rnd + 1} {name:12s} pre-process {m[1]:>5s} ms, inference {m[2]:>6s} ms, "
                      f"NMS {m[3]:>5s} ms per image", flush=True)
    ref = [sum(t) for t in times.get("ultralytics", [])]
    print(f"\nval.py per image (pre-process + inference + NMS), {opt.n_val} images at {opt.img} px, batch {opt.batch}, "
          f"{weights.name}, CPU ({os.cpu_count()} cores); each round back to back")
    for name, ts in times.items():
        totals = [sum(t) for t in ts]
        ratio = " ".join(f"{a / b:.2f}x" for a, b in zip(totals, ref)) if ref and name != "ultralytics" else ""
        print(f"{name:12s} ms/image {' '.join(f'{t:6.1f}' for t in totals)}   time vs ultralytics {ratio}")


if __name__ == "__main__":
    main(parse_opt())
