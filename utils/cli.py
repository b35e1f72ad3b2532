"""Every command-line flag of every script, declared once, and the parsers built from them.

ultralytics YOLOv5 v7.0 declares ``--imgsz`` in nine scripts, each with its own default and help text. Here a flag is
one entry of ``FLAGS`` (option strings + argparse arguments); a script is one entry of ``SCRIPTS``: the flags it takes,
in ultralytics' order, with the few settings that differ per script (default, nargs, help). ``parser(script)`` builds
the ArgumentParser, ``defaults(script)`` gives what ``run(**kwargs)`` starts from, and ``options(script, kwargs)``
turns keyword arguments into the same Namespace the command line would give (unknown names are an error). Every
script also takes ``--backend`` (read by utils.backend when it is first imported).

Values are checked at the flag: a number outside its valid range (``--epochs 0``, ``--conf-thres 2``) is refused by
its type (``Range``) with the range in the message, on the command line (one ``ERROR:`` line, exit 2) and in
``run(**kwargs)`` alike (``FlagError``).

Also here: the start-up echo of the arguments and the image-size check every entry point applies.
"""

import argparse
import inspect
import math
from pathlib import Path
from typing import NamedTuple

from utils.errors import FlagError
from utils.files import ROOT
from utils.log import LOGGER, colorstr


class TaskScripts(NamedTuple):
    """The scripts of one task, as ``SCRIPTS`` keys: training, validation and prediction."""

    train: str
    val: str
    predict: str

    def file(self, role):
        """The script file of ``role`` ('train', 'val', 'predict'), e.g. 'segment/val.py'."""
        return f"{getattr(self, role)}.py"

    def run_folder(self, role):
        """Where ``role``'s runs go by default: its script's --project default (runs/train-seg, runs/val, ...)."""
        return Path(_script_flags(getattr(self, role))["project"][1]["default"])


# The command line's task table: task -> its three scripts (whose --project defaults are its run folders). The other
# task tables are models/yolo.py's TASKS (model class, head) and utils/engine/tasks.py's (trainer, validator,
# predictor); a new task is one row in each, plus its scripts' entries in SCRIPTS.
TASKS = {
    "detect": TaskScripts("train", "val", "detect"),
    "segment": TaskScripts("segment/train", "segment/val", "segment/predict"),
    "classify": TaskScripts("classify/train", "classify/val", "classify/predict"),
}


def _flag(*names, **kwargs):
    return names, kwargs


class Range:
    """An argparse ``type``: an int or float in [lo, hi] (either end optional, ``open_hi`` excludes hi), or one of the
    ``also`` values (``-1`` for AutoBatch). Refuses NaN and infinities; the message states the valid range."""

    def __init__(self, kind, lo=None, hi=None, also=(), open_lo=False, open_hi=False, note=""):
        self.kind, self.lo, self.hi, self.also, self.note = kind, lo, hi, tuple(also), note
        self.open_lo, self.open_hi = open_lo, open_hi
        self.__name__ = kind.__name__  # argparse names the type in some messages

    def describe(self):
        what = "an integer" if self.kind is int else "a number"
        if self.lo is not None and self.hi is not None:
            what += f" in {'(' if self.open_lo else '['}{self.lo}, {self.hi}{')' if self.open_hi else ']'}"
        elif self.lo is not None:
            what += f" {'>' if self.open_lo else '>='} {self.lo}"
        return what + "".join(f", or {a}" for a in self.also) + (f" ({self.note})" if self.note else "")

    def valid(self, x):
        if x in self.also:
            return True
        if not math.isfinite(x):
            return False
        if self.lo is not None and (x <= self.lo if self.open_lo else x < self.lo):
            return False
        return self.hi is None or (x < self.hi if self.open_hi else x <= self.hi)

    def __call__(self, value):
        try:
            if isinstance(value, bool) or (self.kind is int and isinstance(value, float)):
                raise ValueError
            x = self.kind(value)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, not {value!r}") from None
        if not self.valid(x):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, not {value!r}")
        return x


POSITIVE = Range(int, 1)
NON_NEGATIVE = Range(int, 0)
FRACTION = Range(float, 0, 1)  # thresholds
BELOW_ONE = Range(float, 0, 1, open_hi=True)  # label smoothing, dropout
POSITIVE_FLOAT = Range(float, 0, open_lo=True)
BATCH = Range(int, 1, also=(-1,), note="AutoBatch: CUDA memory, 16 on the CPU")


# dest -> (option strings, argparse keyword arguments). Defaults are the most common ones; SCRIPTS override the rest.
FLAGS = {
    "weights": _flag("--weights", type=str, default=ROOT / "yolov5s.pt", help="initial weights path"),
    "cfg": _flag("--cfg", type=str, default="", help="model.yaml path"),
    "model": _flag("--model", type=str, default="yolov5s-cls.pt", help="initial weights path"),
    "data": _flag("--data", type=str, default=ROOT / "data/coco128.yaml", help="dataset.yaml path"),
    "hyp": _flag("--hyp", type=str, default=ROOT / "data/hyps/hyp.scratch-low.yaml", help="hyperparameters path"),
    "source": _flag("--source", type=str, default=ROOT / "data/images", help="file/dir/URL/glob/screen/0(webcam)"),
    "epochs": _flag("--epochs", type=POSITIVE, default=100, help="total training epochs"),
    "batch_size": _flag("--batch-size", type=BATCH, default=16,
                         help="total batch size for all GPUs, -1 for autobatch"),
    "imgsz": _flag("--imgsz", "--img", "--img-size", type=POSITIVE, default=640, help="train, val image size (pixels)"),
    "rect": _flag("--rect", action="store_true", help="rectangular training"),
    "resume": _flag("--resume", nargs="?", const=True, default=False, help="resume most recent training"),
    "nosave": _flag("--nosave", action="store_true", help="only save final checkpoint"),
    "noval": _flag("--noval", action="store_true", help="only validate final epoch"),
    "noautoanchor": _flag("--noautoanchor", action="store_true", help="disable AutoAnchor"),
    "noplots": _flag("--noplots", action="store_true", help="save no plot files"),
    "evolve": _flag("--evolve", type=POSITIVE, nargs="?", const=300, help="evolve hyperparameters for x generations"),
    "bucket": _flag("--bucket", type=str, default="", help="gsutil bucket"),
    "cache": _flag("--cache", type=str, nargs="?", const="ram", help="image --cache ram/disk"),
    "image_weights": _flag("--image-weights", action="store_true", help="use weighted image selection for training"),
    "device": _flag("--device", default="", help="cuda device, i.e. 0 or 0,1,2,3 or cpu"),
    "multi_scale": _flag("--multi-scale", action="store_true", help="vary img-size +/- 50%%"),
    "single_cls": _flag("--single-cls", action="store_true", help="train multi-class data as single-class"),
    "optimizer": _flag("--optimizer", type=str, choices=["SGD", "Adam", "AdamW"], default="SGD", help="optimizer"),
    "sync_bn": _flag("--sync-bn", action="store_true", help="use SyncBatchNorm, only available in DDP mode"),
    "workers": _flag("--workers", type=NON_NEGATIVE, default=8, help="max dataloader workers (per RANK in DDP mode)"),
    "project": _flag("--project", default=ROOT / "runs/train", help="save to project/name"),
    "name": _flag("--name", default="exp", help="save to project/name"),
    "exist_ok": _flag("--exist-ok", action="store_true", help="existing project/name ok, do not increment"),
    "quad": _flag("--quad", action="store_true", help="quad dataloader"),
    "cos_lr": _flag("--cos-lr", action="store_true", help="cosine LR scheduler"),
    "label_smoothing": _flag("--label-smoothing", type=BELOW_ONE, default=0.0, help="Label smoothing epsilon"),
    "patience": _flag("--patience", type=NON_NEGATIVE, default=100,
                        help="EarlyStopping patience (epochs without improvement)"),
    "freeze": _flag("--freeze", nargs="+", type=NON_NEGATIVE, default=[0],
                      help="Freeze layers: backbone=10, first3=0 1 2"),
    "save_period": _flag("--save-period", type=int, default=-1,
                         help="Save checkpoint every x epochs (disabled if < 1)"),
    "seed": _flag("--seed", type=Range(int, 0, 2**32 - 1), default=0, help="Global training seed"),
    "local_rank": _flag("--local_rank", "--local-rank", type=Range(int, -1), default=-1,
                        help="Automatic DDP Multi-GPU argument, do not modify"),
    "entity": _flag("--entity", default=None, help="Entity"),
    "upload_dataset": _flag("--upload_dataset", nargs="?", const=True, default=False, help='Upload data, "val" option'),
    "bbox_interval": _flag("--bbox_interval", type=int, default=-1, help="Set bounding-box image logging interval"),
    "artifact_alias": _flag("--artifact_alias", type=str, default="latest", help="Version of dataset artifact to use"),
    "mask_ratio": _flag("--mask-ratio", type=POSITIVE, default=4, help="Downsample the truth masks to save memory"),
    "no_overlap": _flag("--no-overlap", action="store_true", help="Overlap masks train faster at slightly less mAP"),
    "pretrained": _flag("--pretrained", nargs="?", const=True, default=True, help="start from i.e. --pretrained False"),
    "lr0": _flag("--lr0", type=POSITIVE_FLOAT, default=0.001, help="initial learning rate"),
    "decay": _flag("--decay", type=Range(float, 0), default=5e-5, help="weight decay"),
    "cutoff": _flag("--cutoff", type=NON_NEGATIVE, default=None, help="Model layer cutoff index for Classify() head"),
    "dropout": _flag("--dropout", type=BELOW_ONE, default=None, help="Dropout (fraction)"),
    "conf_thres": _flag("--conf-thres", type=FRACTION, default=0.25, help="confidence threshold"),
    "iou_thres": _flag("--iou-thres", type=FRACTION, default=0.45, help="NMS IoU threshold"),
    "max_det": _flag("--max-det", type=POSITIVE, default=1000, help="maximum detections per image"),
    "task": _flag("--task", default="val", help="train, val, test, speed or study"),
    "augment": _flag("--augment", action="store_true", help="augmented inference"),
    "verbose": _flag("--verbose", action="store_true", help="report mAP by class"),
    "save_txt": _flag("--save-txt", action="store_true", help="save results to *.txt"),
    "save_hybrid": _flag("--save-hybrid", action="store_true", help="save label+prediction hybrid results to *.txt"),
    "save_conf": _flag("--save-conf", action="store_true", help="save confidences in --save-txt labels"),
    "save_json": _flag("--save-json", action="store_true", help="save a COCO-JSON results file"),
    "save_crop": _flag("--save-crop", action="store_true", help="save cropped prediction boxes"),
    "view_img": _flag("--view-img", action="store_true", help="show results"),
    "classes": _flag("--classes", nargs="+", type=NON_NEGATIVE,
                       help="filter by class: --classes 0, or --classes 0 2 3"),
    "agnostic_nms": _flag("--agnostic-nms", action="store_true", help="class-agnostic NMS"),
    "visualize": _flag("--visualize", action="store_true", help="visualize features"),
    "update": _flag("--update", action="store_true", help="update all models"),
    "line_thickness": _flag("--line-thickness", default=3, type=POSITIVE, help="bounding box thickness (pixels)"),
    "hide_labels": _flag("--hide-labels", default=False, action="store_true", help="hide labels"),
    "hide_conf": _flag("--hide-conf", default=False, action="store_true", help="hide confidences"),
    "half": _flag("--half", action="store_true", help="use FP16 half-precision inference"),
    "dnn": _flag("--dnn", action="store_true", help="use OpenCV DNN for ONNX inference"),
    "vid_stride": _flag("--vid-stride", type=POSITIVE, default=1, help="video frame-rate stride"),
    "retina_masks": _flag("--retina-masks", action="store_true", help="whether to plot masks in native resolution"),
    "inplace": _flag("--inplace", action="store_true", help="set YOLOv5 Detect() inplace=True"),
    "keras": _flag("--keras", action="store_true", help="TF: use Keras"),
    "optimize": _flag("--optimize", action="store_true", help="TorchScript: optimize for mobile"),
    "int8": _flag("--int8", action="store_true", help="CoreML/TF/OpenVINO INT8 quantization"),
    "dynamic": _flag("--dynamic", action="store_true", help="ONNX/TF/TensorRT: dynamic axes"),
    "simplify": _flag("--simplify", action="store_true", help="ONNX: simplify model"),
    "opset": _flag("--opset", type=POSITIVE, default=12, help="ONNX: opset version"),
    "workspace": _flag("--workspace", type=POSITIVE, default=4, help="TensorRT: workspace size (GB)"),
    "nms": _flag("--nms", action="store_true", help="TF: add NMS to model"),
    "topk_per_class": _flag("--topk-per-class", type=POSITIVE, default=100, help="TF.js NMS: topk per class to keep"),
    "topk_all": _flag("--topk-all", type=POSITIVE, default=100, help="TF.js NMS: topk for all classes to keep"),
    "include": _flag("--include", nargs="+", default=["torchscript"], help="torchscript, onnx, openvino, engine, "
                     "coreml, saved_model, pb, tflite, edgetpu, tfjs, paddle"),
    "test": _flag("--test", action="store_true", help="test exports only"),
    "pt_only": _flag("--pt-only", action="store_true", help="test PyTorch only"),
    "hard_fail": _flag("--hard-fail", nargs="?", const=True, default=False, help="Exception on error or < min metric"),
    "profile": _flag("--profile", action="store_true", help="profile model speed"),
    "line_profile": _flag("--line-profile", action="store_true", help="profile model speed layer by layer"),
    "out": _flag("--out", default=None, help="output path"),
    "coco_ids": _flag("--coco-ids", action="store_true", help="map classes to COCO's 91 category ids"),
    "n_train": _flag("--n-train", type=POSITIVE, default=128, help="training images"),
    "n_val": _flag("--n-val", type=POSITIVE, default=32, help="validation images"),
    "fmt": _flag("--format", dest="fmt", default="jpg", choices=["jpg", "png"], help="image file format"),
    "nproc": _flag("--nproc", type=POSITIVE, default=1, help="DDP processes for training (the backend's launcher)"),
    "port": _flag("--port", default=5000, type=Range(int, 1, 65535), help="port number"),
    "host": _flag("--host", default="0.0.0.0", help="address to listen on (127.0.0.1: this machine only)"),
    "size": _flag("--size", type=POSITIVE, default=640, help="inference size (pixels)"),
    "max_mb": _flag("--max-mb", type=POSITIVE_FLOAT, default=20.0, help="largest accepted request (MB)"),
    "threads": _flag("--threads", type=POSITIVE, default=4, help="server threads taking requests (waitress)"),
    "max_pixels": _flag("--max-pixels", type=POSITIVE, default=40_000_000,
                        help="largest accepted image (width x height), checked before the pixels are decoded"),
    # one-yolov5's speed flags (same names and help) and this project's --graph
    "bbox_iou_optim": _flag("--bbox_iou_optim", action="store_true", help="optim bbox_iou function in compute_loss"),
    "multi_tensor_optimizer": _flag("--multi_tensor_optimizer", action="store_true",
                                    help="apply multi_tensor implement in optimizer"),
    "graph": _flag("--graph", action="store_true",
                   help="compile the model: OneFlow nn.Graph (train step / inference), torch.compile on PyTorch"),
    "backend": _flag("--backend", default=None, choices=["oneflow", "torch"],
                     help="deep-learning framework (default: $YOLOV5_BACKEND or oneflow)"),
}

_SAVE_RESULTS = {"help": "save results to project/name"}
_BATCH_OF = {"type": POSITIVE}  # no AutoBatch outside training
_INFER_SIZE = {"help": "inference size (pixels)"}
_INFER_HW = {"nargs": "+", "default": [640], "help": "inference size h,w"}
_TRAIN_COMMON = ("weights", "cfg", "data", "hyp", "epochs", "batch_size", "imgsz", "rect", "resume", "nosave", "noval",
                 "noautoanchor", "noplots", "evolve", "bucket", "cache", "image_weights", "device", "multi_scale",
                 "single_cls", "optimizer", "sync_bn", "workers", "project", "name", "exist_ok", "quad", "cos_lr",
                 "label_smoothing", "patience", "freeze", "save_period", "seed", "local_rank")
_VAL = ("data", "weights", "batch_size", "imgsz", "conf_thres", "iou_thres", "max_det", "task", "device", "workers",
        "single_cls", "augment", "verbose", "save_txt", "save_hybrid", "save_conf", "save_json", "project", "name",
        "exist_ok", "half", "dnn")
_PREDICT = ("weights", "source", "data", "imgsz", "conf_thres", "iou_thres", "max_det", "device", "view_img",
            "save_txt", "save_conf", "save_crop", "nosave", "classes", "agnostic_nms", "augment", "visualize", "update",
            "project", "name", "exist_ok", "line_thickness", "hide_labels", "hide_conf", "half", "dnn", "vid_stride")
_VAL_OVERRIDES = {"weights": {"nargs": "+", "help": "model path(s)"},
                  "batch_size": {**_BATCH_OF, "default": 32, "help": "batch size"},
                  "imgsz": _INFER_SIZE, "conf_thres": {"default": 0.001}, "iou_thres": {"default": 0.6},
                  "max_det": {"default": 300}, "single_cls": {"help": "treat as single-class dataset"}}
_NOSAVE_OUTPUTS = {"help": "do not save images/videos"}
_PREDICT_OVERRIDES = {"data": {"help": "(optional) dataset.yaml path"}, "imgsz": _INFER_HW, "name": _SAVE_RESULTS,
                      "nosave": _NOSAVE_OUTPUTS,
                      "project": {"default": ROOT / "runs/detect", **_SAVE_RESULTS}}

_SPEED_TRAIN = dict.fromkeys(("bbox_iou_optim", "multi_tensor_optimizer", "graph"), {})  # after ultralytics' flags

# script -> the flags it takes, in ultralytics v7.0's order ({dest: overrides}); then this project's own tools
SCRIPTS = {
    "train": {**dict.fromkeys(_TRAIN_COMMON, {}),
              **dict.fromkeys(("entity", "upload_dataset", "bbox_interval", "artifact_alias"), {}), **_SPEED_TRAIN},
    "val": {**dict.fromkeys(_VAL, {}), **_VAL_OVERRIDES, "project": {"default": ROOT / "runs/val"}, "graph": {}},
    "detect": {**dict.fromkeys(_PREDICT, {}), **_PREDICT_OVERRIDES,
               "weights": {"nargs": "+", "help": "model path or triton URL"}, "graph": {}},
    "export": {"data": {}, "weights": {"nargs": "+", "help": "model.pt path(s)"},
               "imgsz": {"nargs": "+", "default": [640, 640], "help": "image (h, w)"},
               "batch_size": {**_BATCH_OF, "default": 1, "help": "batch size"}, "device": {"default": "cpu"},
               "half": {"help": "FP16 half-precision export"}, "inplace": {}, "keras": {}, "optimize": {}, "int8": {},
               "dynamic": {}, "simplify": {}, "opset": {}, "verbose": {"help": "TensorRT: verbose log"},
               "workspace": {}, "nms": {}, "agnostic_nms": {"help": "TF: add agnostic NMS to model"},
               "topk_per_class": {}, "topk_all": {}, "iou_thres": {"help": "TF.js NMS: IoU threshold"},
               "conf_thres": {"help": "TF.js NMS: confidence threshold"}, "include": {}},
    "hubconf": {"model": {"default": "yolov5s", "help": "model name"}},
    "benchmarks": {"weights": {"help": "weights path"}, "imgsz": _INFER_SIZE,
                   "batch_size": {**_BATCH_OF, "default": 1, "help": "batch size"}, "data": {}, "device": {},
                   "half": {},
                   "test": {}, "pt_only": {}, "hard_fail": {}},
    "segment/train": {**dict.fromkeys(_TRAIN_COMMON, {}), "mask_ratio": {}, "no_overlap": {},
                      "weights": {"default": ROOT / "yolov5s-seg.pt"},
                      "data": {"default": ROOT / "data/coco128-seg.yaml"},
                      "project": {"default": ROOT / "runs/train-seg"}, **_SPEED_TRAIN},
    "segment/val": {**dict.fromkeys(_VAL, {}), **_VAL_OVERRIDES, "weights": {"nargs": "+", "help": "model path(s)",
                                                                            "default": ROOT / "yolov5s-seg.pt"},
                    "data": {"default": ROOT / "data/coco128-seg.yaml"},
                    "project": {"default": ROOT / "runs/val-seg", **_SAVE_RESULTS}, "graph": {}},
    "segment/predict": {**dict.fromkeys(_PREDICT, {}), **_PREDICT_OVERRIDES, "retina_masks": {},
                        "weights": {"nargs": "+", "help": "model path(s)", "default": ROOT / "yolov5s-seg.pt"},
                        "project": {"default": ROOT / "runs/predict-seg", **_SAVE_RESULTS}, "graph": {}},
    "classify/train": {"model": {}, "data": {"default": "imagenette160",
                                             "help": "cifar10, cifar100, mnist, imagenet, ..."},
                       "epochs": {"default": 10},
                       "batch_size": {**_BATCH_OF, "default": 64, "help": "total batch size for all GPUs"},
                       "imgsz": {"default": 224}, "nosave": {},
                       "cache": {"help": "--cache images in \"ram\" (default) or \"disk\""}, "device": {},
                       "workers": {}, "project": {"default": ROOT / "runs/train-cls"}, "name": {}, "exist_ok": {},
                       "pretrained": {},
                       "optimizer": {"choices": ["SGD", "Adam", "AdamW", "RMSProp"], "default": "Adam"},
                       "lr0": {}, "decay": {}, "label_smoothing": {"default": 0.1}, "cutoff": {}, "dropout": {},
                       "verbose": {"help": "Verbose mode"}, "seed": {}, "local_rank": {},
                       "multi_tensor_optimizer": {}, "graph": {}},
    "classify/val": {"data": {"default": ROOT / "../datasets/mnist", "help": "dataset path"},
                     "weights": {"nargs": "+", "default": ROOT / "yolov5s-cls.pt", "help": "model.pt path(s)"},
                     "batch_size": {**_BATCH_OF, "default": 128, "help": "batch size"},
                     "imgsz": {"default": 224, **_INFER_SIZE},
                     "device": {}, "workers": {},
                     "verbose": {"action": None, "nargs": "?", "const": True, "default": True,
                                 "help": "verbose output"},
                     "project": {"default": ROOT / "runs/val-cls"}, "name": {}, "exist_ok": {}, "half": {},
                     "dnn": {}, "graph": {}},
    "classify/predict": {"weights": {"nargs": "+", "default": ROOT / "yolov5s-cls.pt", "help": "model path(s)"},
                         "source": {}, "data": {"help": "(optional) dataset.yaml path"},
                         "imgsz": {"nargs": "+", "default": [224], "help": "inference size h,w"}, "device": {},
                         "view_img": {}, "save_txt": {}, "nosave": _NOSAVE_OUTPUTS, "augment": {}, "visualize": {},
                         "update": {},
                         "project": {"default": ROOT / "runs/predict-cls", **_SAVE_RESULTS}, "name": _SAVE_RESULTS,
                         "exist_ok": {}, "half": {}, "dnn": {}, "vid_stride": {}, "graph": {}},
    "models/yolo": {"cfg": {"default": "yolov5s.yaml", "help": "model.yaml"},
                    "batch_size": {**_BATCH_OF, "default": 1, "help": "total batch size for all GPUs"}, "device": {},
                    "profile": {}, "line_profile": {}, "test": {"help": "test all yolo*.yaml"},
                    "imgsz": {"help": "input size for --profile"}},
    "utils/coco": {"data": {"default": None, "required": True}, "task": {"help": "split: train, val or test"},
                   "out": {"default": "", "help": "output JSON (default: <dataset path>/annotations/<task>.json)"},
                   "coco_ids": {}},
    "utils/data/synthetic": {"out": {"help": "output folder (default: datasets/synthetic[-seg|-cls])"},
                             "n_train": {}, "n_val": {}, "imgsz": {"default": 256, "help": "long image side, pixels"},
                             "seed": {"help": "random seed (same seed, same bytes)"},
                             "task": {"default": "detect", "choices": list(TASKS),
                                      "help": "label format"}, "fmt": {}},
    "utils/flask_rest_api/restapi": {"port": {}, "host": {}, "model": {"nargs": "+", "default": ["yolov5s"],
                                                                       "help": "model(s) to run, i.e. --model yolov5n "
                                                                               "yolov5s"},
                                     "size": {}, "max_mb": {}, "max_pixels": {}, "threads": {}},
    "utils/demo": {"epochs": {"default": 0, "help": "override the recipe's epochs (data/synthetic.yaml demo:)"},
                   "nproc": {"default": 0, "type": NON_NEGATIVE,
                             "help": "training processes; 0: 2 on a CPU-only machine with OneFlow (one per core), else 1"}},
}


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: the usage block of a 40-flag script buries the one line that matters."""

    def error(self, message):
        self.exit(2, f"ERROR: {self.prog}: {message} (python {self.prog} --help lists the flags)\n")


def _script_flags(script):
    """{dest: (option strings, argparse keyword arguments)} of ``script``'s flags, overrides applied, --backend last."""
    flags = {}
    for dest, overrides in {**SCRIPTS[script], "backend": {}}.items():
        names, kwargs = FLAGS[dest]
        kwargs = {**kwargs, **overrides}
        if kwargs.get("action", "x") is None:  # an override turning a store_true flag into a valued one
            kwargs.pop("action")
        flags[dest] = names, kwargs
    return flags


def parser(script):
    """The ArgumentParser of ``script`` (a key of SCRIPTS), --backend last."""
    p = _Parser(prog=f"{script}.py")
    for names, kwargs in _script_flags(script).values():
        p.add_argument(*names, **kwargs)
    return p


def parse(script, argv=None, known=False):
    """Parse ``argv`` (default sys.argv[1:]) for ``script``; ``known`` ignores unknown flags (as known=True does)."""
    p = parser(script)
    return p.parse_known_args(argv)[0] if known else p.parse_args(argv)


def defaults(script):
    """{dest: default} of ``script``'s flags: what run() starts from."""
    return vars(parser(script).parse_args([]))


def options(script, kwargs):
    """The Namespace ``script``'s command line would give for these keyword arguments (defaults for the others).

    Raises:
        TypeError: a keyword that is not one of the script's flags (named, with the valid ones).
        FlagError: a value outside its flag's range.
    """
    opt = defaults(script)
    unknown = sorted(set(kwargs) - set(opt))
    if unknown:
        raise TypeError(f"{script}.run() got unknown argument(s) {unknown}; valid: {sorted(opt)}")
    check_values(script, kwargs)
    opt.update(kwargs)
    return argparse.Namespace(**opt)


def check_values(script, kwargs):
    """Apply the flags' range checks to keyword values (run(epochs=0) is refused as --epochs 0 is).

    Raises:
        FlagError: naming the keyword, its value and the valid range.
    """
    flags = _script_flags(script)
    for dest, value in kwargs.items():
        check = flags[dest][1].get("type") if dest in flags else None
        if not isinstance(check, Range) or value is None:
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            try:
                check(v)
            except argparse.ArgumentTypeError as e:
                raise FlagError(f"{script}.run({dest}={value!r}): {e} (flag {flags[dest][0][0]})") from None


def add_backend_arg(parser):
    """--backend {oneflow,torch} on a parser of its own (tools outside SCRIPTS)."""
    names, kwargs = FLAGS["backend"]
    parser.add_argument(*names, **kwargs)
    return parser


def print_args(args=None, show_file=True, show_func=False, name=None):
    """Log 'script: key=value, ...' as ultralytics does at start-up; ``name`` (e.g. 'segment/train') stands for the
    calling file's path."""
    frame = inspect.currentframe().f_back
    file, _, func, _, _ = inspect.getframeinfo(frame)
    if args is None:
        args, _, _, values = inspect.getargvalues(frame)
        args = {k: v for k, v in values.items() if k in args}
    try:
        file = name or Path(file).resolve().relative_to(ROOT).with_suffix("")
    except ValueError:
        file = Path(file).stem
    s = (f"{file}: " if show_file else "") + (f"{func}: " if show_func else "")
    LOGGER.info(colorstr(s) + ", ".join(f"{k}={v}" for k, v in args.items()))


def check_img_size(imgsz, s=32, floor=0):
    """Round image size(s) up to a multiple of stride ``s`` (warning when changed), as ultralytics."""
    if isinstance(imgsz, int):
        new_size = max(math.ceil(imgsz / s) * s, floor)
    else:
        imgsz = list(imgsz)
        new_size = [max(math.ceil(x / s) * s, floor) for x in imgsz]
    if new_size != imgsz:
        LOGGER.warning(f"WARNING ⚠️ --img-size {imgsz} must be multiple of max stride {s}, updating to {new_size}")
    return new_size
