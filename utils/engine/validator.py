"""Validation: the loop every task shares (``Validator``) and the detection metrics (``DetectionValidator``).

``Validator`` owns what does not depend on the task: device and model set-up (standalone, or the model train.py is
training), the data loader, the batch loop with pre-process / inference / NMS timings per image, the progress bar and
callbacks. A task subclass implements the hooks ``init_metrics``, ``postprocess``, ``update_metrics``,
``plot_batch`` and ``finalize``.

``DetectionValidator`` is val.py's behaviour in ultralytics YOLOv5 v7.0 (FACTS.md 7.1-7.4): NMS with multi-label rows,
predictions and labels scaled back to the original image, greedy-by-IoU matching at IoU 0.50:0.05:0.95, AP per class,
the confusion matrix, --save-txt / --save-hybrid / --save-conf / --save-json, pycocotools. After NMS all per-image work
is NumPy, so both backends give identical numbers for identical predictions.
"""

from pathlib import Path

import numpy as np
from tqdm import tqdm

from utils.backend import inference_mode, select_device, time_sync, to_numpy, torch
from utils.boxes import scale_boxes, xywh2xyxy, xyxy2xywh
from utils.callbacks import Callbacks
from utils.cli import check_img_size
from utils.files import ROOT, increment_path
from utils.log import LOGGER, colorstr
from utils.metrics import ConfusionMatrix, ap_per_class, iou_thresholds, process_batch
from utils.nms import non_max_suppression
from utils.plots import plot_ap_curves, plot_confusion_matrix

TQDM_BAR_FORMAT = "{l_bar}{bar:10}{r_bar}"

DEFAULTS = dict(  # run() / val.py defaults (FACTS.md 1.1; run() itself defaults to half=True, as ultralytics)
    data=ROOT / "data/coco128.yaml", weights=ROOT / "yolov5s.pt", batch_size=32, imgsz=640, conf_thres=0.001,
    iou_thres=0.6, max_det=300, task="val", device="", workers=8, single_cls=False, augment=False, verbose=False,
    save_txt=False, save_hybrid=False, save_conf=False, save_json=False, project=ROOT / "runs/val", name="exp",
    exist_ok=False, half=True, dnn=False)
TASKS = ("train", "val", "test", "speed", "study")


class ValidationError(ValueError):
    """Inputs that cannot be validated together (weights vs data, missing split); the message says how to fix it."""


class _Timer:
    """Accumulated wall time of a code block, synchronising CUDA first (ultralytics' Profile)."""

    def __init__(self):
        self.t = 0.0

    def __enter__(self):
        self.start = time_sync()
        return self

    def __exit__(self, *exc):
        self.t += time_sync() - self.start


def load_model(weights, device, half=False, dnn=False, data=None):
    """The model runner for weights files: returns (model, stride, names, pt).

    ``.pt`` files are run through models.experimental.attempt_load (several files form an Ensemble); exported
    formats (.onnx, .torchscript) through ``DetectMultiBackend``.
    """
    files = weights if isinstance(weights, (list, tuple)) else [weights]
    if not files or any(w is None or str(w) == "" for w in files):
        raise ValidationError("no --weights given: pass a .pt file (or several for an ensemble)")
    bad = [str(w) for w in files if not str(w).endswith(".pt")]
    if bad:
        if len(files) > 1:
            raise ValidationError(f"{bad}: only .pt weights can form an ensemble")
        from utils.runtime import DetectMultiBackend, UnsupportedFormatError  # noqa: PLC0415
        try:
            model = DetectMultiBackend(str(files[0]), device=device, dnn=dnn, data=data, fp16=half)
        except (UnsupportedFormatError, FileNotFoundError) as e:
            raise ValidationError(str(e)) from None
        if model.task != "detect":
            raise ValidationError(f"{files[0]} holds a {model.task} model: val.py validates detection models")
        return model, model.stride, model.names, False
    from models.experimental import attempt_load  # noqa: PLC0415 (models are not needed when train.py passes one)

    model = attempt_load([str(w) for w in files] if len(files) > 1 else str(files[0]), device=device)
    model = model.half() if half else model.float()
    names = model.names if hasattr(model, "names") else model.module.names
    return model, max(int(model.stride.max()), 32), names, True


def model_nc(model):
    """Number of classes of a model, an Ensemble, or a wrapped model."""
    for m in (model, getattr(model, "module", None), getattr(model, "model", None)):
        if m is not None and getattr(m, "nc", None) is not None and not isinstance(m, (list, tuple)):
            return int(m.nc)
    return len(model.names)


class Validator:
    """One validation run; call it to run. Keyword arguments are those of val.py's run() (see DEFAULTS), plus
    ``model``, ``dataloader``, ``save_dir``, ``plots``, ``callbacks`` and ``compute_loss`` when train.py calls it."""

    def __init__(self, model=None, dataloader=None, save_dir=Path(""), plots=True, callbacks=None,
                 compute_loss=None, **kwargs):
        unknown = set(kwargs) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown validation argument(s): {sorted(unknown)}")
        self.args = dict(DEFAULTS, **kwargs)
        self.model, self.dataloader, self.save_dir = model, dataloader, Path(save_dir)
        self.plots, self.compute_loss = plots, compute_loss
        self.callbacks = callbacks or Callbacks()
        self.training = model is not None
        self.dt = (_Timer(), _Timer(), _Timer())  # pre-process, inference, NMS
        self.seen = 0

    # ------------------------------------------------------------------------------------------------------ set-up
    def setup(self):
        a = self.args
        if self.training:  # called by train.py with the (EMA) model it trains and its val loader
            self.device = next(self.model.parameters()).device
            self.half = bool(a["half"]) and self.device.type != "cpu"
            self.model = self.model.half() if self.half else self.model.float()
            self.pt, self.stride, self.names = True, None, self.model.names
            self.split = "val"
            self.data = self._dataset(a["data"]) if not isinstance(a["data"], dict) else a["data"]
        else:
            self.device = select_device(a["device"], batch_size=a["batch_size"], log=LOGGER.info)
            self.half = bool(a["half"]) and self.device.type != "cpu"  # FP16 on CUDA only
            self.data = self._dataset(a["data"])  # before the weights: a bad dataset fails fast
            self.split = a["task"] if a["task"] in ("train", "val", "test") else "val"
            if not self.data.get(self.split):
                raise ValidationError(f"--task {a['task']}: the dataset YAML {a['data']} has no '{self.split}:' images")
            self.save_dir = increment_path(Path(a["project"]) / a["name"], exist_ok=a["exist_ok"])
            (self.save_dir / "labels" if a["save_txt"] else self.save_dir).mkdir(parents=True, exist_ok=True)
            self.model, self.stride, self.names, self.pt = load_model(a["weights"], self.device, self.half, a["dnn"],
                                                                      a["data"])
            a["imgsz"] = check_img_size(a["imgsz"], s=self.stride)
            if not (self.pt or getattr(self.model, "jit", False)):  # exported files: one image at a time (ultralytics)
                a["batch_size"] = 1
                LOGGER.info(f"Forcing --batch-size 1 square inference (1,3,{a['imgsz']},{a['imgsz']}) for non-PyTorch "
                            f"models")
        self.model.eval()
        if isinstance(self.names, (list, tuple)):
            self.names = dict(enumerate(self.names))
        self.nc = 1 if a["single_cls"] else int(self.data["nc"])
        if not self.training:
            self.check_model_fits_data()
            self.dataloader = self.build_dataloader()

    @staticmethod
    def _dataset(data):
        from utils.data.dataset_yaml import check_dataset  # noqa: PLC0415 (data layer only when loading a dataset)
        return check_dataset(data)

    def check_model_fits_data(self):
        a = self.args
        ncm = model_nc(self.model)
        if self.pt and not a["single_cls"] and ncm != self.nc:
            raise ValidationError(
                f"{a['weights']} ({ncm} classes) trained on different --data than what you passed ({self.nc} classes "
                f"in {a['data']}). Pass correct combination of --weights and --data that are trained together, or "
                f"--single-cls to score every class as one.")

    def build_dataloader(self):
        from utils.data.build import create_dataloader  # noqa: PLC0415

        a = self.args
        pad, rect = (0.0, False) if a["task"] == "speed" else (0.5, self.pt)  # square inference for benchmarks
        try:
            loader = create_dataloader(self.data[self.split], a["imgsz"], a["batch_size"], self.stride,
                                       a["single_cls"], pad=pad, rect=rect, workers=a["workers"],
                                       prefix=colorstr(f"{self.split}: "))[0]
        except FileNotFoundError as e:
            raise ValidationError(f"no images to validate in the '{self.split}' split: {e}") from e
        return loader

    # ---------------------------------------------------------------------------------------------------- the loop
    def __call__(self):
        with inference_mode():
            self.setup()
            self.init_metrics()
            self.callbacks.run("on_val_start")
            loss = torch.zeros(3, device=self.device)
            pbar = tqdm(self.dataloader, desc=self.header(), bar_format=TQDM_BAR_FORMAT)
            for batch_i, (im, targets, paths, shapes) in enumerate(pbar):
                self.callbacks.run("on_val_batch_start")
                with self.dt[0]:
                    im, targets = self.preprocess(im, targets)
                with self.dt[1]:
                    preds, train_out = self.inference(im)
                if self.compute_loss:
                    loss += self.compute_loss(train_out, targets)[1]
                with self.dt[2]:
                    preds = self.postprocess(preds, im, targets)
                self.update_metrics(preds, im, targets, paths, shapes)
                if self.plots and batch_i < 3:
                    self.plot_batch(batch_i, im, targets, paths, preds)
                self.callbacks.run("on_val_batch_end", batch_i, im, targets, paths, shapes, preds)
            nb = max(len(self.dataloader), 1)
            results, maps = self.finalize()
            self.model.float()  # back to FP32 for training
        return (*results, *(to_numpy(loss) / nb).tolist()), maps, self.speeds()

    def preprocess(self, im, targets):
        im = im.to(self.device)
        targets = targets.to(self.device)
        im = im.half() if self.half else im.float()
        return im / 255, targets

    def inference(self, im):
        if self.compute_loss:
            return self.model(im)
        return self.model(im, augment=self.args["augment"]), None

    def speeds(self):
        """(pre-process, inference, NMS) milliseconds per image."""
        return tuple(x.t / max(self.seen, 1) * 1e3 for x in self.dt)

    def log_speeds(self):
        if not self.training:
            shape = (self.args["batch_size"], 3, self.args["imgsz"], self.args["imgsz"])
            LOGGER.info(f"Speed: %.1fms pre-process, %.1fms inference, %.1fms NMS per image at shape {shape}"
                        % self.speeds())

    # ------------------------------------------------------------------------------------------------ task hooks
    def header(self):
        return ""

    def init_metrics(self):
        raise NotImplementedError

    def postprocess(self, preds, im, targets):
        return preds

    def update_metrics(self, preds, im, targets, paths, shapes):
        raise NotImplementedError

    def plot_batch(self, batch_i, im, targets, paths, preds):
        pass

    def finalize(self):
        """Compute, print and save the metrics; return (results tuple, per-class maps)."""
        raise NotImplementedError


class DetectionValidator(Validator):
    """ultralytics YOLOv5 v7.0 detection validation (val.py)."""

    def header(self):
        return ("%22s" + "%11s" * 6) % ("Class", "Images", "Instances", "P", "R", "mAP50", "mAP50-95")

    def init_metrics(self):
        val_path = self.data.get("val")
        self.is_coco = isinstance(val_path, str) and val_path.replace("\\", "/").endswith("coco/val2017.txt")
        self.class_map = _class_map(self.is_coco)
        self.iouv = iou_thresholds()
        self.confusion_matrix = ConfusionMatrix(nc=self.nc)
        self.stats, self.jdict = [], []

    def postprocess(self, preds, im, targets):
        a = self.args
        _, _, height, width = im.shape
        targets[:, 2:] *= torch.tensor((width, height, width, height), device=targets.device)  # to pixels
        nb = im.shape[0]
        lb = [targets[targets[:, 0] == i, 1:] for i in range(nb)] if a["save_hybrid"] else []
        return non_max_suppression(preds, a["conf_thres"], a["iou_thres"], labels=lb, multi_label=True,
                                   agnostic=a["single_cls"], max_det=a["max_det"])

    def update_metrics(self, preds, im, targets, paths, shapes):
        targets = to_numpy(targets)
        for si, pred in enumerate(preds):
            self.seen += 1
            labels = targets[targets[:, 0] == si, 1:]
            predn = self._update_one(to_numpy(pred).copy(), labels, tuple(im.shape[2:]), Path(paths[si]), shapes[si])
            self.callbacks.run("on_val_image_end", pred, predn, Path(paths[si]), self.names, im[si])

    def _update_one(self, pred, labels, input_hw, path, shape_info):
        """Score one image: pred (n, 6) in input pixels, labels (m, 5) [cls, xywh input pixels].

        Returns the predictions in original-image pixels (None when there are none)."""
        a = self.args
        nl, npr = len(labels), len(pred)
        shape0, ratio_pad = shape_info[0], shape_info[1]
        correct = np.zeros((npr, len(self.iouv)), dtype=bool)
        if npr == 0:
            if nl:
                self.stats.append((correct, np.zeros(0), np.zeros(0), labels[:, 0]))
                if self.plots:
                    self.confusion_matrix.process_batch(None, labels[:, 0])
            return None
        if a["single_cls"]:
            pred[:, 5] = 0
        predn = pred.copy()
        scale_boxes(input_hw, predn[:, :4], shape0, ratio_pad)  # to original-image pixels
        if nl:
            tbox = scale_boxes(input_hw, xywh2xyxy(labels[:, 1:5]), shape0, ratio_pad)
            labelsn = np.concatenate((labels[:, 0:1], tbox), 1)
            correct = process_batch(predn, labelsn, self.iouv)
            if self.plots:
                self.confusion_matrix.process_batch(predn, labelsn)
        self.stats.append((correct, pred[:, 4], pred[:, 5], labels[:, 0]))
        if a["save_txt"]:
            save_one_txt(predn, a["save_conf"], shape0, self.save_dir / "labels" / f"{path.stem}.txt")
        if a["save_json"]:
            from utils.coco import prediction_rows  # noqa: PLC0415
            self.jdict += prediction_rows(predn, path, self.class_map)
        return predn

    def plot_batch(self, batch_i, im, targets, paths, preds):
        from utils.plots import output_to_target, plot_images  # noqa: PLC0415 (cv2 drawing only when plotting)
        plot_images(im, targets, paths, self.save_dir / f"val_batch{batch_i}_labels.jpg", self.names)
        plot_images(im, output_to_target(preds), paths, self.save_dir / f"val_batch{batch_i}_pred.jpg",
                    self.names)

    # ---------------------------------------------------------------------------------------------------- results
    def finalize(self):
        a = self.args
        mp = mr = map50 = map_ = 0.0
        tp = fp = p = r = f1 = ap50 = np.zeros(0)
        ap, ap_class = np.zeros((0, len(self.iouv))), np.zeros(0, dtype=int)
        stats = [np.concatenate(x, 0) for x in zip(*self.stats)]
        if len(stats) and stats[0].any():
            curves = {} if self.plots else None
            tp, fp, p, r, f1, ap, ap_class = ap_per_class(*stats, curves=curves)
            if self.plots:
                plot_ap_curves(curves, self.names, self.save_dir)
            ap50, ap = ap[:, 0], ap.mean(1)
            mp, mr, map50, map_ = p.mean(), r.mean(), ap50.mean(), ap.mean()
        nt = np.bincount(stats[3].astype(int), minlength=self.nc) if len(stats) else np.zeros(self.nc, dtype=int)
        self.print_results(mp, mr, map50, map_, nt, p, r, ap50, ap, ap_class, bool(len(stats)))
        self.log_speeds()
        if self.plots:
            plot_confusion_matrix(self.confusion_matrix.matrix, self.nc, save_dir=self.save_dir,
                                  names=list(self.names.values()))
            self.callbacks.run("on_val_end", nt, tp, fp, p, r, f1, ap, ap50, ap_class, self.confusion_matrix)
        if a["save_json"] and len(self.jdict):
            map_, map50 = self.evaluate_json(map_, map50)
        if not self.training:
            n = len(list(self.save_dir.glob("labels/*.txt")))
            s = f"\n{n} labels saved to {self.save_dir / 'labels'}" if a["save_txt"] else ""
            LOGGER.info(f"Results saved to {colorstr('bold', self.save_dir)}{s}")
        maps = np.zeros(self.nc) + map_
        for i, c in enumerate(ap_class):
            maps[c] = ap[i]
        return (float(mp), float(mr), float(map50), float(map_)), maps

    def print_results(self, mp, mr, map50, map_, nt, p, r, ap50, ap, ap_class, any_stats):
        pf = "%22s" + "%11i" * 2 + "%11.3g" * 4
        LOGGER.info(pf % ("all", self.seen, nt.sum(), mp, mr, map50, map_))
        if nt.sum() == 0:
            LOGGER.warning(f"WARNING ⚠️ no labels found in {self.split} set, can not compute metrics without labels")
        if (self.args["verbose"] or (self.nc < 50 and not self.training)) and self.nc > 1 and any_stats:
            for i, c in enumerate(ap_class):
                LOGGER.info(pf % (self.names.get(c, c), self.seen, nt[c], p[i], r[i], ap50[i], ap[i]))

    def evaluate_json(self, map_, map50):
        """Write <weights stem>_predictions.json and score it with pycocotools.

        With the dataset's own annotations (<path>/annotations/instances_val2017.json, as ultralytics) pycocotools'
        mAP50-95 and mAP50 replace ours. Otherwise the YOLO labels are converted to a COCO annotations file in
        save_dir and pycocotools' numbers are only reported: ours are kept (see utils/coco.py for why they differ).
        """
        import json  # noqa: PLC0415

        from utils import coco  # noqa: PLC0415

        w = self.args["weights"]
        w = Path(w[0] if isinstance(w, (list, tuple)) else w).stem if w is not None and not self.training else ""
        pred_json = self.save_dir / f"{w}_predictions.json"
        anno_json = Path(self.data.get("path", "../coco")) / "annotations" / "instances_val2017.json"
        LOGGER.info(f"\nEvaluating pycocotools mAP... saving {pred_json}...")
        with open(pred_json, "w") as f:
            json.dump(self.jdict, f)
        own = anno_json.is_file()
        try:
            if not own:
                anno_json = coco.write_coco_annotations(self.dataloader.dataset, self.names,
                                                        self.save_dir / "annotations.json", self.class_map)
            ids = [coco.image_id(x) for x in self.dataloader.dataset.im_files] if self.is_coco else None
            stats = coco.coco_evaluate(anno_json, pred_json, img_ids=ids)
        except Exception as e:  # pycocotools missing, or files it cannot read: keep our numbers
            LOGGER.info(f"pycocotools unable to run: {e}")
            return map_, map50
        if own:
            return float(stats[0]), float(stats[1])
        LOGGER.info(f"pycocotools on labels converted from YOLO format ({anno_json}): mAP50-95 {stats[0]:.4g}, "
                    f"mAP50 {stats[1]:.4g}; val.py's own mAP50-95 {map_:.4g}, mAP50 {map50:.4g} are kept")
        return map_, map50


def _class_map(is_coco):
    from utils.coco import class_map_for  # noqa: PLC0415
    return class_map_for(is_coco)


def save_one_txt(predn, save_conf, shape, file):
    """Append one image's detections to a YOLO label file: cls xc yc w h (normalised) [conf]."""
    gn = np.array(shape, dtype=np.float64)[[1, 0, 1, 0]]
    xywh = xyxy2xywh(np.asarray(predn[:, :4], dtype=np.float64).reshape(-1, 4)) / gn
    with open(file, "a") as f:
        for (conf, cls), b in zip(predn[:, 4:6].tolist(), xywh.tolist()):
            line = (cls, *b, conf) if save_conf else (cls, *b)
            f.write(("%g " * len(line)).rstrip() % line + "\n")
