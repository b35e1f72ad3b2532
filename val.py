"""Validate a trained YOLOv5 detection model on a detection dataset, on OneFlow (default) or PyTorch.

Usage:
    python val.py --weights yolov5s.pt --data coco128.yaml --img 640
    python val.py --weights runs/train/exp/weights/best.pt --data datasets/synthetic/synthetic.yaml --img 256
    python val.py --weights a.pt b.pt --data coco128.yaml          # ensemble
    python val.py --weights yolov5s.pt --data coco128.yaml --augment  # test-time augmentation
    python val.py --task speed --data coco.yaml --batch 1 --weights yolov5n.pt yolov5s.pt
    python val.py --task study --data coco.yaml --iou 0.7 --weights yolov5n.pt yolov5s.pt
    python val.py --backend torch ...                                 # PyTorch backend

Python (what train.py calls every epoch):
    (mp, mr, map50, map, *losses), maps, times = val.run(data_dict, model=ema, dataloader=loader, save_dir=dir,
                                                         plots=False, callbacks=callbacks, compute_loss=loss_fn)

Weights formats: .pt (official ultralytics v7.0 files and checkpoints written by train.py), and the files export.py
writes: .onnx (onnxruntime, or OpenCV DNN with --dnn) and .torchscript (PyTorch backend); exported formats run one
image at a time (--batch-size 1), as in ultralytics.
"""

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np

FILE = Path(__file__).resolve()
ROOT = FILE.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from utils.cli import add_backend_arg, print_args  # noqa: E402
from utils.files import find_file  # noqa: E402
from utils.log import LOGGER  # noqa: E402

STUDY_SIZES = tuple(range(256, 1536 + 128, 128))  # --task study image sizes (x axis)


def run(data, weights=None, batch_size=32, imgsz=640, conf_thres=0.001, iou_thres=0.6, max_det=300, task="val",
        device="", workers=8, single_cls=False, augment=False, verbose=False, save_txt=False, save_hybrid=False,
        save_conf=False, save_json=False, project=ROOT / "runs/val", name="exp", exist_ok=False, half=True, dnn=False,
        model=None, dataloader=None, save_dir=Path(""), plots=True, callbacks=None, compute_loss=None):
    """Validate once; returns ((P, R, mAP50, mAP50-95, box_loss, obj_loss, cls_loss), per-class mAP50-95 (nc,),
    (pre-process, inference, NMS) ms per image).

    ``model`` / ``dataloader`` / ``compute_loss`` are given by train.py (the model it trains, in eval mode); otherwise
    ``weights`` are loaded on ``device`` and ``data[task]`` is loaded with rectangular batches.
    """
    args = dict(data=data, weights=weights, batch_size=batch_size, imgsz=imgsz, conf_thres=conf_thres,
                iou_thres=iou_thres, max_det=max_det, task=task, device=device, workers=workers, single_cls=single_cls,
                augment=augment, verbose=verbose, save_txt=save_txt, save_hybrid=save_hybrid, save_conf=save_conf,
                save_json=save_json, project=project, name=name, exist_ok=exist_ok, half=half, dnn=dnn)
    from utils.engine.validator import DetectionValidator  # noqa: PLC0415 (imports the backend)

    return DetectionValidator(model=model, dataloader=dataloader, save_dir=save_dir, plots=plots, callbacks=callbacks,
                              compute_loss=compute_loss, **args)()


def parse_opt(known=False):
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=str, default=ROOT / "data/coco128.yaml", help="dataset.yaml path")
    parser.add_argument("--weights", nargs="+", type=str, default=ROOT / "yolov5s.pt", help="model path(s)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size")
    parser.add_argument("--imgsz", "--img", "--img-size", type=int, default=640, help="inference size (pixels)")
    parser.add_argument("--conf-thres", type=float, default=0.001, help="confidence threshold")
    parser.add_argument("--iou-thres", type=float, default=0.6, help="NMS IoU threshold")
    parser.add_argument("--max-det", type=int, default=300, help="maximum detections per image")
    parser.add_argument("--task", default="val", help="train, val, test, speed or study")
    parser.add_argument("--device", default="", help="cuda device, i.e. 0 or 0,1,2,3 or cpu")
    parser.add_argument("--workers", type=int, default=8, help="max dataloader workers (per RANK in DDP mode)")
    parser.add_argument("--single-cls", action="store_true", help="treat as single-class dataset")
    parser.add_argument("--augment", action="store_true", help="augmented inference")
    parser.add_argument("--verbose", action="store_true", help="report mAP by class")
    parser.add_argument("--save-txt", action="store_true", help="save results to *.txt")
    parser.add_argument("--save-hybrid", action="store_true", help="save label+prediction hybrid results to *.txt")
    parser.add_argument("--save-conf", action="store_true", help="save confidences in --save-txt labels")
    parser.add_argument("--save-json", action="store_true", help="save a COCO-JSON results file")
    parser.add_argument("--project", default=ROOT / "runs/val", help="save to project/name")
    parser.add_argument("--name", default="exp", help="save to project/name")
    parser.add_argument("--exist-ok", action="store_true", help="existing project/name ok, do not increment")
    parser.add_argument("--half", action="store_true", help="use FP16 half-precision inference")
    parser.add_argument("--dnn", action="store_true", help="use OpenCV DNN for ONNX inference")
    add_backend_arg(parser)
    opt = parser.parse_known_args()[0] if known else parser.parse_args()
    opt.data = find_file(opt.data, ("data",))
    opt.save_json |= str(opt.data).endswith("coco.yaml")
    opt.save_txt |= opt.save_hybrid
    print_args(vars(opt))
    return opt


def main(opt):
    """Run --task val/train/test once, or the speed / study sweeps over every --weights."""
    from utils.data.dataset_yaml import DatasetError  # noqa: PLC0415
    from utils.engine.validator import TASKS, ValidationError  # noqa: PLC0415

    if opt.task not in TASKS:
        raise SystemExit(f"ERROR: --task {opt.task} not in {TASKS}")
    kwargs = {k: v for k, v in vars(opt).items() if k != "backend"}
    try:
        if opt.task in ("train", "val", "test"):
            if opt.conf_thres > 0.001:  # https://github.com/ultralytics/yolov5/issues/1466
                LOGGER.info(f"WARNING ⚠️ confidence threshold {opt.conf_thres} > 0.001 produces invalid results")
            if opt.save_hybrid:
                LOGGER.info("WARNING ⚠️ --save-hybrid will return high mAP from hybrid labels, "
                            "not from predictions alone")
            return run(**kwargs)
        from utils.backend import cuda_available  # noqa: PLC0415
        kwargs["half"] = cuda_available() and opt.device != "cpu"  # FP16 for fastest results
        weights = opt.weights if isinstance(opt.weights, list) else [opt.weights]
        if opt.task == "speed":
            kwargs.update(conf_thres=0.25, iou_thres=0.45, save_json=False)
            return [run(**dict(kwargs, weights=w, plots=False)) for w in weights]
        return study(kwargs, weights)
    except (ValidationError, DatasetError) as e:
        raise SystemExit(f"ERROR: {e}") from e


def study(kwargs, weights):
    """--task study: mAP and speed at every STUDY_SIZES image size.

    Writes one study_<data>_<weights>.txt per model into the current folder (10 columns: P, R, mAP50, mAP50-95,
    3 losses, 3 speeds), zips them into study.zip and plots study.png.
    """
    from utils.plots import plot_val_study  # noqa: PLC0415

    files = []
    for w in weights:
        f = Path(f"study_{Path(kwargs['data']).stem}_{Path(w).stem}.txt")
        rows = []
        for size in STUDY_SIZES:
            LOGGER.info(f"\nRunning {f} --imgsz {size}...")
            r, _, t = run(**dict(kwargs, weights=w, imgsz=size, plots=False))
            rows.append(list(r) + list(t))
        np.savetxt(f, rows, fmt="%10.4g")
        files.append(f)
    with zipfile.ZipFile("study.zip", "w") as z:
        for f in files:
            z.write(f)
    plot_val_study(x=list(STUDY_SIZES))
    return files


if __name__ == "__main__":
    main(parse_opt())
