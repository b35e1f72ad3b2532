"""Dump reference facts from ultralytics YOLOv5 v7.0 (the PyPI ``yolov5`` 7.0.14 package) for the parity tests.

This script runs under the REFERENCE interpreter (its own venv with torch and ``yolov5``); nothing in one-yolov5
imports it. tests/parity/test_ultralytics.py starts it as a subprocess and reads what it writes.

Modes (both may be given to one process, which saves the reference's ~7 s import):
    --configs OUT.json [YAML ...] [--cls-sizes nsmlx] [--root REPO]
        For every model YAML (given, or globbed from REPO/models, models/hub/yolo*, models/segment), build the
        reference DetectionModel / SegmentationModel (chosen by the head) from that very file and record: ordered
        state_dict (key, shape, dtype), the layer table (i, from, params, type), save list, unfused and fused
        (layers, parameters, gradients, GFLOPs) as the reference's model_info prints them plus the unrounded GFLOPs
        from its own thop count, strides and anchors (grid units). Also ClassificationModel(model=Model(
        'yolov5{size}.yaml'), nc=1000, cutoff=10) for each of --cls-sizes.
    --checkpoint DIR --cfg NAME [NAME ...] [--seg] [--cls]
        For each NAME (a YAML, or NAME-cls: the classifier cut from NAME.yaml; --cls: all of them), build a seeded
        reference model, give its BatchNorms random affine weights and matching (slightly perturbed) running
        statistics, save it as an official-layout release file (the dict of train.py + strip_optimizer, whole
        pickled model in FP16 with class paths ``models.yolo.*`` / ``models.common.*``) to DIR/<name>.pt (for -cls
        also DIR/<name>-notransforms.pt, without classify/train.py's ``model.transforms``), reload it the
        ultralytics way and write DIR/<name>.npz (the input and the eval outputs of the fused attempt_load model and
        of the unfused torch.load(...)['model'].float().eval()) and DIR/<name>.json (task, names, stride, pickled
        classes).
"""

import argparse
import contextlib
import json
import logging
import re
import sys
import time
from copy import deepcopy
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

import yolov5.models.common as ycommon
import yolov5.models.experimental as yexperimental
import yolov5.models.yolo as yyolo
import yolov5.utils.torch_utils as ytorch_utils
from yolov5.utils.general import LOGGER

SUMMARY = re.compile(r"summary: (\d+) layers, (\d+) parameters, (\d+) gradients(?:, ([\d.]+) GFLOPs)?")
CLS_SIZES = "nsmlx"


# --------------------------------------------------------------------------------------------------- capture helpers
class _Capture(logging.Handler):
    """Collects the reference LOGGER's messages while installed."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def capture_info():
    """Yield a list that receives one dict per model_info call made inside the block.

    Each dict holds what the reference printed (layers, params, gradients, the one-decimal GFLOPs string) and the
    raw thop count it printed from (ops, stride of the profiling input), so the unrounded GFLOPs can be compared.
    """
    handler, calls, profiled = _Capture(), [], []
    real_profile = ytorch_utils.thop.profile

    def recording_profile(model, inputs, *args, **kwargs):
        out = real_profile(model, inputs, *args, **kwargs)
        profiled.append((float(out[0]), int(inputs[0].shape[-1])))
        return out

    ytorch_utils.thop.profile = recording_profile
    LOGGER.addHandler(handler)
    try:
        yield calls
    finally:
        LOGGER.removeHandler(handler)
        ytorch_utils.thop.profile = real_profile
        summaries = [SUMMARY.search(s) for s in handler.lines]
        summaries = [s for s in summaries if s]
        for s, (ops, stride) in zip(summaries, profiled):
            calls.append({"layers": int(s[1]), "params": int(s[2]), "gradients": int(s[3]),
                          "gflops_printed": s[4], "ops": ops, "stride": stride})
        if len(summaries) != len(profiled):
            raise RuntimeError(f"{len(summaries)} summaries but {len(profiled)} thop calls: {handler.lines}")


def gflops_at(info, imgsz):
    """The reference's own scaling of its thop count (model_info: ops / 1e9 * 2 * (imgsz / stride)^2)."""
    return info["ops"] / 1e9 * 2 * imgsz / info["stride"] * imgsz / info["stride"]


DEFAULT_ACT = ycommon.Conv.default_act  # the one SiLU that every Conv of a fresh process shares


def reset_default_act():
    """ultralytics sets Conv.default_act globally from a YAML's `activation`; undo it after every build.

    The very same object is restored: a Conv built later must share it with the earlier ones, or the module count
    (model_info's 'layers', which counts a shared module once) would differ from a fresh process's.
    """
    ycommon.Conv.default_act = DEFAULT_ACT


def model_summary(model, info):
    sd = model.state_dict()
    return {"layers": info["layers"], "params": info["params"], "gradients": info["gradients"],
            "gflops_printed": info["gflops_printed"], "gflops": gflops_at(info, 640), "gflops_224": gflops_at(info, 224),
            "state_dict": [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in sd.items()]}


def layer_table(model):
    """(index, from, params, type) of every layer, with the github code's type strings."""
    return [{"i": m.i, "f": m.f, "params": sum(p.numel() for p in m.parameters()),
             "type": m.type[len("yolov5."):] if m.type.startswith("yolov5.models.") else m.type} for m in model.model]


def record_model(model, unfused_info):
    """Everything the config test compares, for a built (unfused) reference model; fuses it."""
    rec = {"unfused": model_summary(model, unfused_info), "table": layer_table(model),
           "save": list(model.save)}
    head = model.model[-1]
    if isinstance(head, yyolo.Detect):
        rec["stride"] = head.stride.tolist()
        rec["anchors"] = head.anchors.tolist()
        rec["nc"], rec["na"], rec["nl"], rec["no"] = head.nc, head.na, head.nl, head.no
    else:
        rec["stride"] = model.stride.tolist()
    with capture_info() as calls:
        model.fuse()
    rec["fused"] = model_summary(model, calls[-1])
    return rec


def yaml_files(root):
    root = Path(root)
    found = sorted(root.glob("models/*.yaml")) + sorted(root.glob("models/hub/yolo*.yaml"))
    return found + sorted(root.glob("models/segment/*.yaml"))


def model_class(cfg):
    import yaml  # noqa: PLC0415
    d = yaml.safe_load(Path(cfg).read_text())
    return yyolo.SegmentationModel if d["head"][-1][2] == "Segment" else yyolo.DetectionModel


def dump_configs(out, cfgs, cls_sizes, root):
    result = {"reference": {"yolov5": __import__("yolov5").__version__, "torch": torch.__version__},
              "configs": {}, "classify": {}}
    for cfg in cfgs:
        t0 = time.time()
        cfg = Path(cfg)
        name = str(cfg.relative_to(root)) if root and cfg.is_relative_to(root) else cfg.name
        torch.manual_seed(0)
        try:
            with capture_info() as calls:
                model = model_class(cfg)(str(cfg))
            reset_default_act()
            result["configs"][name] = record_model(model.eval(), calls[-1])
        except Exception as e:  # recorded, so the test reports it for that config only
            reset_default_act()
            result["configs"][name] = {"error": f"{type(e).__name__}: {e}"}
        params = result["configs"][name].get("unfused", {}).get("params", "ERROR")
        print(f"{name}: {params} parameters, {time.time() - t0:.1f} s", file=sys.stderr)
    for size in cls_sizes:
        cfg = Path(root) / "models" / f"yolov5{size}.yaml"
        torch.manual_seed(0)
        with capture_info():
            det = yyolo.DetectionModel(str(cfg))
        reset_default_act()
        model = yyolo.ClassificationModel(model=det, nc=1000, cutoff=10)
        with capture_info() as calls:
            ytorch_utils.model_info(model)
        result["classify"][f"yolov5{size}-cls"] = record_model(model.eval(), calls[-1])
    Path(out).write_text(json.dumps(result, indent=1))


# ------------------------------------------------------------------------------------------------ official checkpoint
@contextlib.contextmanager
def official_class_paths():
    """Pickle the yolov5 package's classes as the github code's release files do: models.yolo.X, models.common.X,
    utils.augmentations.X (instead of yolov5.models.yolo.X ...): alias the modules and rename the classes' module."""
    import yolov5.models as ymodels  # noqa: PLC0415
    import yolov5.utils as yutils  # noqa: PLC0415
    import yolov5.utils.augmentations as yaugmentations  # noqa: PLC0415
    mods = {"models": ymodels, "models.yolo": yyolo, "models.common": ycommon, "models.experimental": yexperimental,
            "utils": yutils, "utils.augmentations": yaugmentations}
    saved_modules = {k: sys.modules.get(k) for k in mods}
    changed = []
    for alias, mod in mods.items():
        sys.modules[alias] = mod
        for obj in vars(mod).values():
            if isinstance(obj, type) and obj.__module__ == mod.__name__:
                changed.append((obj, obj.__module__))
                obj.__module__ = alias
    try:
        yield
    finally:
        for obj, m in changed:
            obj.__module__ = m
        for k, v in saved_modules.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def calibrate_batchnorm(model, seed, imgsz):
    """Random affine weights, then the running statistics those produce (a few train-mode passes), then a small
    random perturbation of the statistics: outputs depend on every BN tensor and stay in a sane range (neither
    saturated sigmoids nor activations that grow layer after layer)."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            c = m.num_features
            m.weight.copy_(torch.empty(c).uniform_(0.5, 1.5, generator=g))
            m.bias.copy_(torch.empty(c).normal_(0.0, 0.3, generator=g))
            m.momentum = None  # cumulative average over the calibration batches
            m.reset_running_stats()
        model.train()
        for _ in range(3):
            model(torch.rand(2, 3, *imgsz, generator=g))
        for m in bns:
            c = m.num_features
            m.momentum = 0.03
            m.running_mean.add_(torch.empty(c).normal_(0.0, 0.02, generator=g) * m.running_var.sqrt())
            m.running_var.mul_(torch.empty(c).uniform_(0.9, 1.1, generator=g))
    return model


def official_checkpoint(model, cls):
    """The dict ultralytics' train.py + strip_optimizer write for a release file (classify/train.py for -cls)."""
    opt = {"weights": "", "cfg": model.yaml_file if hasattr(model, "yaml_file") else "", "data": "coco128.yaml",
           "hyp": {"lr0": 0.01, "lrf": 0.01, "momentum": 0.937}, "epochs": 300, "batch_size": 64, "imgsz": 640,
           "rect": False, "noval": False, "device": "", "single_cls": False, "optimizer": "SGD", "workers": 8,
           "project": "runs/train", "name": "exp", "seed": 0, "save_dir": Path("runs/train/exp")}
    m = deepcopy(model).half()
    for p in m.parameters():
        p.requires_grad = False
    return {"epoch": -1, "best_fitness": None, "model": m, "ema": None, "updates": None, "optimizer": None,
            "opt": opt, "git": {}, "date": datetime(2022, 11, 22, 12, 0, 0).isoformat()}


def to_numpy_tree(prefix, out, dst):
    if isinstance(out, torch.Tensor):
        dst[prefix] = out.detach().float().numpy()
    elif isinstance(out, (list, tuple)):
        for i, o in enumerate(out):
            to_numpy_tree(f"{prefix}_{i}", o, dst)


def dump_checkpoint(out_dir, cfg, seg, cls, seed, imgsz, batch):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    cfg = Path(cfg)
    with capture_info():
        model = (yyolo.SegmentationModel if seg else yyolo.DetectionModel)(str(cfg))
    reset_default_act()
    if cls:
        model = yyolo.ClassificationModel(model=model, nc=1000, cutoff=10)
    gs = int(max(model.stride))
    calibrate_batchnorm(model, seed, imgsz)  # at the test's size: statistics of deep levels need enough pixels
    for m in model.modules():  # the github code's layer types, as release files carry them
        if isinstance(getattr(m, "type", None), str) and m.type.startswith("yolov5.models."):
            m.type = m.type[len("yolov5."):]
    name = cfg.stem + ("-cls" if cls else "")
    nc = 1000 if cls else model.model[-1].nc
    if cls:  # classify/train.py: names = ImageFolder classes (a list), inference transforms attached
        from yolov5.utils.augmentations import classify_transforms  # noqa: PLC0415
        model.names = [f"n{i:08d}" for i in range(nc)]
        model.transforms = classify_transforms(224)
    else:  # train.py: names dict, nc, hyp, class weights (a float32 attribute that .half() leaves alone)
        model.names = {i: f"class{i}" for i in range(nc)}
        model.nc = nc
        model.hyp = {"box": 0.05, "cls": 0.5, "obj": 1.0, "anchor_t": 4.0, "fl_gamma": 0.0}
        model.class_weights = torch.rand(nc, generator=torch.Generator().manual_seed(seed)) * nc
    model.eval()
    with torch.no_grad():  # the EMA of a release file was validated: Detect's cached grids are populated (stale)
        model(torch.zeros(1, 3, 2 * gs, 3 * gs))
    path = out_dir / f"{name}.pt"
    with official_class_paths():
        torch.save(official_checkpoint(model, cls), path)
        if cls:  # the same model without the torchvision transforms, for a loader that refuses them
            plain = deepcopy(model)
            del plain.transforms
            torch.save(official_checkpoint(plain, cls), out_dir / f"{name}-notransforms.pt")
        ckpt = torch.load(path, map_location="cpu", weights_only=False)  # as the github code would
        classes = sorted({type(m).__module__ + "." + type(m).__name__ for m in ckpt["model"].modules()})
        fused = yexperimental.attempt_load(str(path), device="cpu", fuse=True)
    unfused = ckpt["model"].float().eval()

    g = torch.Generator().manual_seed(seed + 1)
    im = torch.rand(batch, 3, *imgsz, generator=g)
    arrays = {"im": im.numpy()}
    with torch.no_grad():
        to_numpy_tree("fused", fused(im), arrays)
        to_numpy_tree("unfused", unfused(im), arrays)
    np.savez(out_dir / f"{name}.npz", **arrays)
    names = dict(enumerate(model.names)) if isinstance(model.names, list) else model.names
    meta = {"name": name, "classes": classes, "names": {str(k): v for k, v in names.items()}, "keys": list(ckpt), "nc": nc,
            "task": "classify" if cls else "segment" if seg else "detect",
            "stride": [float(s) for s in unfused.stride], "pickled_size": path.stat().st_size,
            "outputs": {k: list(v.shape) for k, v in arrays.items()}}
    (out_dir / f"{name}.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta))


def resolve_cfg(name, root):
    """A YAML path, or a file name looked up among --root's model YAMLs."""
    cfg = Path(name)
    if cfg.is_file():
        return cfg.resolve()
    found = [p for p in yaml_files(root) if p.name == cfg.name or p.stem == cfg.name]
    if not found:
        raise SystemExit(f"no model YAML '{name}' under {root}/models")
    return found[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[2]), help="one-yolov5 repository root")
    ap.add_argument("--configs", metavar="OUT.json", help="write the per-config records here")
    ap.add_argument("yamls", nargs="*", help="--configs: model YAMLs (default: every one under --root)")
    ap.add_argument("--cls-sizes", default=CLS_SIZES, help="--configs: also yolov5{these}-cls ('' for none)")
    ap.add_argument("--checkpoint", metavar="DIR", help="write official-layout checkpoints and their outputs here")
    ap.add_argument("--cfg", nargs="+", default=["yolov5n.yaml"],
                    help="--checkpoint: model YAMLs (paths or names under --root); NAME-cls = classifier cut from NAME")
    ap.add_argument("--seg", action="store_true", help="--checkpoint: require Segment heads (they are also detected)")
    ap.add_argument("--cls", action="store_true", help="--checkpoint: classifiers cut from every --cfg")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--imgsz", type=int, nargs=2, default=[256, 320], help="--checkpoint: input height width")
    ap.add_argument("--batch", type=int, default=2, help="--checkpoint: input batch size")
    opt = ap.parse_args(argv)
    if not (opt.configs or opt.checkpoint):
        ap.error("give --configs OUT.json and/or --checkpoint DIR")
    torch.set_num_threads(1)  # measured here: 3-4x faster than 2 threads on the 2-core machine, and deterministic
    LOGGER.setLevel(logging.INFO)
    root = Path(opt.root).resolve()
    if opt.configs:
        cfgs = [Path(y).resolve() for y in opt.yamls] or yaml_files(root)
        dump_configs(opt.configs, cfgs, opt.cls_sizes, root)
    for name in opt.cfg if opt.checkpoint else []:
        stem = Path(name).name.removesuffix(".yaml")
        cls = opt.cls or stem.endswith("-cls")
        cfg = resolve_cfg(stem.removesuffix("-cls") + ".yaml" if stem.endswith("-cls") else name, root)
        seg = model_class(cfg) is yyolo.SegmentationModel
        if opt.seg and not seg:
            raise SystemExit(f"--seg: {cfg} has no Segment head")
        dump_checkpoint(opt.checkpoint, cfg, seg, cls, opt.seed, opt.imgsz, opt.batch)


if __name__ == "__main__":
    main()
