"""Train a YOLOv5 detection model on a dataset, on OneFlow (default) or PyTorch.

Usage - from scratch (the built-in synthetic dataset; `make demo` runs this):
    python train.py --data datasets/synthetic/synthetic.yaml --cfg yolov5n.yaml --weights '' --img 256 --epochs 30
Usage - from pretrained weights, any ultralytics dataset YAML:
    python train.py --data coco128.yaml --weights yolov5s.pt --img 640
Usage - resume the most recent (or a given) run:
    python train.py --resume [runs/train/exp/weights/last.pt]
Usage - PyTorch backend:
    python train.py --backend torch ...
Usage - multi-process DDP (--batch-size is the total; one process per CPU core or per GPU):
    python -m oneflow.distributed.launch --nproc_per_node 2 train.py --batch 16 ... [--device 0,1]
    torchrun --nproc_per_node 2 train.py --backend torch --batch 16 ... [--device 0,1]
"""

import argparse
import os
import sys
from pathlib import Path

FILE = Path(__file__).resolve()
ROOT = FILE.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

import yaml  # noqa: E402

from utils import dist  # noqa: E402  (no framework import here: dist.preflight() must run before it)
from utils.callbacks import Callbacks  # noqa: E402
from utils.cli import add_backend_arg, print_args  # noqa: E402
from utils.files import find_file, increment_path  # noqa: E402
from utils.log import LOGGER  # noqa: E402


def parse_opt(known=False):
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", type=str, default=ROOT / "yolov5s.pt", help="initial weights path")
    parser.add_argument("--cfg", type=str, default="", help="model.yaml path")
    parser.add_argument("--data", type=str, default=ROOT / "data/coco128.yaml", help="dataset.yaml path")
    parser.add_argument("--hyp", type=str, default=ROOT / "data/hyps/hyp.scratch-low.yaml", help="hyperparameters path")
    parser.add_argument("--epochs", type=int, default=100, help="total training epochs")
    parser.add_argument("--batch-size", type=int, default=16, help="total batch size for all GPUs, -1 for autobatch")
    parser.add_argument("--imgsz", "--img", "--img-size", type=int, default=640, help="train, val image size (pixels)")
    parser.add_argument("--rect", action="store_true", help="rectangular training")
    parser.add_argument("--resume", nargs="?", const=True, default=False, help="resume most recent training")
    parser.add_argument("--nosave", action="store_true", help="only save final checkpoint")
    parser.add_argument("--noval", action="store_true", help="only validate final epoch")
    parser.add_argument("--noautoanchor", action="store_true", help="disable AutoAnchor")
    parser.add_argument("--noplots", action="store_true", help="save no plot files")
    parser.add_argument("--evolve", type=int, nargs="?", const=300, help="evolve hyperparameters for x generations")
    parser.add_argument("--bucket", type=str, default="", help="gsutil bucket")
    parser.add_argument("--cache", type=str, nargs="?", const="ram", help="image --cache ram/disk")
    parser.add_argument("--image-weights", action="store_true", help="use weighted image selection for training")
    parser.add_argument("--device", default="", help="cuda device, i.e. 0 or 0,1,2,3 or cpu")
    parser.add_argument("--multi-scale", action="store_true", help="vary img-size +/- 50%%")
    parser.add_argument("--single-cls", action="store_true", help="train multi-class data as single-class")
    parser.add_argument("--optimizer", type=str, choices=["SGD", "Adam", "AdamW"], default="SGD", help="optimizer")
    parser.add_argument("--sync-bn", action="store_true", help="use SyncBatchNorm, only available in DDP mode")
    parser.add_argument("--workers", type=int, default=8, help="max dataloader workers (per RANK in DDP mode)")
    parser.add_argument("--project", default=ROOT / "runs/train", help="save to project/name")
    parser.add_argument("--name", default="exp", help="save to project/name")
    parser.add_argument("--exist-ok", action="store_true", help="existing project/name ok, do not increment")
    parser.add_argument("--quad", action="store_true", help="quad dataloader")
    parser.add_argument("--cos-lr", action="store_true", help="cosine LR scheduler")
    parser.add_argument("--label-smoothing", type=float, default=0.0, help="Label smoothing epsilon")
    parser.add_argument("--patience", type=int, default=100, help="EarlyStopping patience (epochs without improvement)")
    parser.add_argument("--freeze", nargs="+", type=int, default=[0], help="Freeze layers: backbone=10, first3=0 1 2")
    parser.add_argument("--save-period", type=int, default=-1, help="Save checkpoint every x epochs (disabled if < 1)")
    parser.add_argument("--seed", type=int, default=0, help="Global training seed")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=-1,
                        help="Automatic DDP Multi-GPU argument, do not modify")
    parser.add_argument("--entity", default=None, help="Entity")
    parser.add_argument("--upload_dataset", nargs="?", const=True, default=False, help='Upload data, "val" option')
    parser.add_argument("--bbox_interval", type=int, default=-1, help="Set bounding-box image logging interval")
    parser.add_argument("--artifact_alias", type=str, default="latest", help="Version of dataset artifact to use")
    add_backend_arg(parser)
    return parser.parse_known_args()[0] if known else parser.parse_args()


def get_latest_run(search_dir="."):
    """Path of the most recently written last*.pt under search_dir (for a bare --resume)."""
    runs = sorted(Path(search_dir).rglob("last*.pt"), key=os.path.getmtime)
    return runs[-1] if runs else None


def resolve_resume(opt):
    """--resume [path]: reload the run's opt.yaml (or the checkpoint's opt) and continue in the same folder."""
    if isinstance(opt.resume, str):
        last = Path(opt.resume)
    else:
        last = get_latest_run(ROOT / "runs") or get_latest_run()
    if last is None or not last.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint found ({opt.resume if isinstance(opt.resume, str) else 'no last.pt under runs/'})")
    opt_yaml = last.parent.parent / "opt.yaml"
    if opt_yaml.is_file():
        with open(opt_yaml, errors="ignore") as f:
            d = yaml.safe_load(f)
    else:
        from utils import checkpoint  # noqa: PLC0415
        d = checkpoint.read(last).get("opt") or {}
    backend_flag = opt.backend
    opt = argparse.Namespace(**d)
    opt.cfg, opt.weights, opt.resume, opt.exist_ok = "", str(last), True, True
    opt.backend = backend_flag or getattr(opt, "backend", None)
    return opt


def main(opt, callbacks=None):
    from utils.backend import banner, select_device  # noqa: PLC0415
    callbacks = callbacks or Callbacks()
    if opt.resume and not opt.evolve:
        opt = resolve_resume(opt)
    else:
        opt.data = find_file(opt.data, ("data",)) if opt.data else opt.data
        opt.cfg = find_file(opt.cfg, ("models",)) if opt.cfg else opt.cfg
        opt.hyp = find_file(opt.hyp, ("data",)) if not isinstance(opt.hyp, dict) else opt.hyp
        opt.weights, opt.project = str(opt.weights), str(opt.project)
        if opt.evolve:
            if opt.project == str(ROOT / "runs/train"):
                opt.project = str(ROOT / "runs/evolve")
            opt.exist_ok, opt.resume = opt.resume, False
        opt.save_dir = str(increment_path(Path(opt.project) / opt.name, exist_ok=opt.exist_ok))
    print_args(vars(opt))
    LOGGER.debug(banner())
    ddp = dist.setup(opt, log=LOGGER.info)  # launched: checks, device, process group; else a no-op Dist()
    if opt.batch_size < 1:
        raise ValueError("--batch-size -1 (AutoBatch) needs a CUDA device; pass a positive batch size on the CPU")
    device = ddp.device if ddp.ddp else select_device(opt.device, batch_size=opt.batch_size, log=LOGGER.info)
    if isinstance(opt.hyp, dict):  # resumed runs carry the hyp dict itself in opt.yaml
        hyp = dict(opt.hyp)
    else:
        with open(opt.hyp, errors="ignore") as f:
            hyp = yaml.safe_load(f)
    if opt.evolve:
        from utils.evolve import evolve  # noqa: PLC0415
        return evolve(opt, hyp, device, callbacks)
    from utils.engine.trainer import DetectionTrainer  # noqa: PLC0415
    try:
        return DetectionTrainer(opt, hyp, callbacks, device, dist=ddp).fit()
    finally:
        ddp.close()


def run(**kwargs):
    """python train.py with keyword arguments, e.g. run(data='coco128.yaml', imgsz=320, weights='yolov5n.pt')."""
    opt = parse_opt(True)
    for k, v in kwargs.items():
        setattr(opt, k, v)
    main(opt)
    return opt


if __name__ == "__main__":
    dist.preflight()  # under a launcher: tie this process to it, check MASTER_PORT (before `import oneflow`)
    dist.call_main(main, parse_opt())
