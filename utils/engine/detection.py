"""Detection on the shared engine: ultralytics YOLOv5 v7.0's train.py / val.py behaviour as task hooks.

``DetectionTrainer`` adds to BaseTrainer what is detection's own: the dataset YAML, the model from weights or YAML
(pretrained transfer, frozen layers), the YOLO-label loaders, AutoAnchor and label plots, the loss-gain scaling by
layer count / classes / image size, class weights, image-weighted sampling, multi-scale and quad batches, mAP fitness.

``DetectionValidator`` is val.py: NMS with multi-label rows, predictions and labels scaled back to the original image,
greedy-by-IoU matching at IoU 0.50:0.05:0.95, AP per class, the confusion matrix, --save-txt / --save-hybrid /
--save-conf / --save-json, pycocotools. After NMS all per-image work is NumPy, so both backends give identical numbers
for identical predictions. Its per-image steps are hooks that segmentation fills in with masks, so the scoring,
saving and --save-json logic exists once:

    boxes(pred)                        the (n, 6+) rows of one image's postprocess() output
    image_outputs(si, pred, input_hw)  what else the image yields for matching and saving (masks), or None
    unmatched(n), match(predn, labelsn, si, batch, extra)   the stats' correctness columns (one per kind of match)
    json_rows(...), write_annotations(file), coco_scores(...)   the --save-json rows, labels and pycocotools' numbers
    compute_metrics(curves), row_format                      the run's metrics and how a results row prints
"""

import json
import math
import random
from pathlib import Path

import numpy as np

from models.experimental import attempt_load, is_checkpoint_path, read_weights, transfer_weights
from models.yolo import DetectionModel
from utils import cli, coco
from utils.annotator import colors, save_one_box
from utils.autoanchor import check_anchors
from utils.backend import from_numpy, to_numpy, torch
from utils.backend.graph import TrainStepGraph, train_step_note
from utils.boxes import scale_boxes, xywh2xyxy, xyxy2xywh
from utils.cli import check_img_size, options
from utils.data.batch import DetectionBatch
from utils.data.build import create_dataloader
from utils.data.dataset_yaml import check_dataset
from utils.downloads import attempt_download
from utils.engine.config import ValConfig
from utils.engine.trainer import BaseTrainer
from utils.engine.predictor import Predictor
from utils.engine.validator import ValidationError, Validator, load_weights
from utils.errors import FlagError, InputError
from utils.files import find_file
from utils.log import LOGGER, colorstr
from utils.loggers import LogPlan
from utils.loss import ComputeLoss
from utils.metrics import (ConfusionMatrix, box_metrics, fitness, iou_thresholds, labels_to_class_weights,
                           labels_to_image_weights, process_batch)
from utils.nms import non_max_suppression
from utils.plots import output_to_target, plot_ap_curves, plot_confusion_matrix, plot_images
from utils.model_tools import de_parallel
from utils.training import one_cycle
from utils.train_plots import plot_labels, plot_results


def is_coco_split(path):
    return isinstance(path, str) and path.replace("\\", "/").endswith("coco/val2017.txt")


# ----------------------------------------------------------------------------------------------------- validation
class DetectionValidator(Validator):
    """val.py (ultralytics YOLOv5 v7.0 detection validation)."""

    task, script = "detect", "val.py"
    loss_count = 3
    val_callbacks = True  # fire on_val_image_end / on_val_end (ultralytics' loggers draw from them)
    run_defaults = {"half": True}  # ultralytics' val.run() defaults to FP16 (used on CUDA only); the CLI flag to FP32
    sweeps = True

    @classmethod
    def adjust_opt(cls, opt):
        opt.data = find_file(opt.data, ("data",))
        opt.save_json |= str(opt.data).endswith("coco.yaml")
        opt.save_txt |= opt.save_hybrid
        return opt

    @staticmethod
    def flag_warnings():
        """(log, --save-hybrid note) of utils.engine.validator.val_main, in the original script's words."""
        return LOGGER.info, "--save-hybrid will return high mAP from hybrid labels, not from predictions alone"

    def header(self):
        return ("%22s" + "%11s" * 6) % ("Class", "Images", "Instances", "P", "R", "mAP50", "mAP50-95")

    def load_data(self):
        cfg = self.cfg
        data = check_dataset(cfg.data)
        self.split = cfg.task if cfg.task in ("train", "val", "test") else "val"
        if not self.training and not data.get(self.split):
            raise ValidationError(f"--task {cfg.task}: the dataset YAML {cfg.data} has no '{self.split}:' images")
        return data

    def make_save_dir(self):
        (self.save_dir / "labels" if self.cfg.save_txt else self.save_dir).mkdir(parents=True, exist_ok=True)

    def setup(self, model):
        cfg = self.cfg
        self.imgsz, self.batch_size, self.split = cfg.imgsz, cfg.batch_size, "val"
        super().setup(model)
        self.nc = 1 if cfg.single_cls else int(self.data["nc"])

    def load_model(self):
        cfg = self.cfg
        model, stride, names, pt = load_weights(cfg.weights, self.device, self.task, self.script, self.half, cfg.dnn,
                                                cfg.data)
        self.imgsz = check_img_size(cfg.imgsz, s=stride)
        if not (pt or getattr(model, "jit", False)):  # exported files: one image at a time (ultralytics)
            self.batch_size = 1
            LOGGER.info(f"Forcing --batch-size 1 square inference (1,3,{self.imgsz},{self.imgsz}) for non-PyTorch "
                        f"models")
        ncm = model_nc(model)
        nc = int(self.data["nc"])
        if pt and not cfg.single_cls and ncm != nc:
            raise ValidationError(
                f"{cfg.weights} ({ncm} classes) trained on different --data than what you passed ({nc} classes "
                f"in {cfg.data}). Pass correct combination of --weights and --data that are trained together, or "
                f"--single-cls to score every class as one.")
        return model, stride, names, pt

    def dataloader_args(self):
        return {}

    def build_dataloader(self):
        cfg = self.cfg
        pad, rect = (0.0, False) if cfg.task == "speed" else (0.5, self.pt)  # square inference for benchmarks
        try:
            return create_dataloader(self.data[self.split], self.imgsz, self.batch_size, self.stride, cfg.single_cls,
                                     pad=pad, rect=rect, workers=cfg.workers, prefix=colorstr(f"{self.split}: "),
                                     **self.dataloader_args())[0]
        except FileNotFoundError as e:
            raise ValidationError(f"no images to validate in the '{self.split}' split: {e}") from e

    def preprocess(self, raw: DetectionBatch) -> DetectionBatch:
        im = raw.img.to(self.device)
        im = im.half() if self.half else im.float()
        return raw._replace(img=im / 255, targets=raw.targets.to(self.device))

    def inference(self, batch):
        if self.compute_loss:
            return self.model(batch.img)
        return self.model(batch.img, augment=self.cfg.augment), None

    def loss_items(self, train_out, batch):
        return self.compute_loss(train_out, batch.targets)[1]

    def init_metrics(self):
        self.is_coco = is_coco_split(self.data.get("val"))
        self.class_map = coco.class_map_for(self.is_coco)
        self.iouv = iou_thresholds()
        self.confusion_matrix = ConfusionMatrix(nc=self.nc)
        self.stats, self.jdict = [], []

    def postprocess(self, preds, batch):
        return self.nms(preds, batch)

    def nms(self, preds, batch, nm=0):
        """val.py's NMS (multi-label, class-agnostic with --single-cls, --save-hybrid labels added) of the batch;
        ``nm`` mask coefficients follow each row. Scales the batch's targets to pixels, as val.py does."""
        cfg, im, targets = self.cfg, batch.img, batch.targets
        _, _, height, width = im.shape
        targets[:, 2:] *= torch.tensor((width, height, width, height), device=targets.device)  # to pixels
        lb = [targets[targets[:, 0] == i, 1:] for i in range(im.shape[0])] if cfg.save_hybrid else []
        return non_max_suppression(preds, cfg.conf_thres, cfg.iou_thres, labels=lb, multi_label=True,
                                   agnostic=cfg.single_cls, max_det=cfg.max_det, nm=nm)

    # ------------------------------------------------------------------------------------------ per-image scoring
    def update_metrics(self, preds, batch):
        targets, im = to_numpy(batch.targets), batch.img
        for si, pred in enumerate(preds):
            self.seen += 1
            labels = targets[targets[:, 0] == si, 1:]
            path = Path(batch.paths[si])
            predn = self.update_one(si, pred, labels, batch, path)
            if self.val_callbacks:
                self.callbacks.run("on_val_image_end", self.boxes(pred), predn, path, self.names, im[si])

    def update_one(self, si, pred, labels, batch, path):
        """Score image ``si``: its prediction (postprocess() output for one image) against labels (m, 5) [cls, xywh
        input pixels]; record the stats, the confusion matrix, --save-txt / --save-json.

        Returns the (n, 6+) predictions in original-image pixels (None when there are none)."""
        cfg, boxes = self.cfg, self.boxes(pred)
        input_hw = tuple(batch.img.shape[2:])
        shape0, ratio_pad = batch.shapes[si][0], batch.shapes[si][1]
        if not len(boxes):
            if len(labels):
                self.stats.append((*self.unmatched(0), np.zeros(0), np.zeros(0), labels[:, 0]))
                if self.plots:
                    self.confusion_matrix.process_batch(None, labels[:, 0])
            return None
        extra = self.image_outputs(si, pred, input_hw)
        predn = to_numpy(boxes).copy()
        if cfg.single_cls:
            predn[:, 5] = 0
        scale_boxes(input_hw, predn[:, :4], shape0, ratio_pad)  # to original-image pixels
        correct = self.unmatched(len(predn))
        if len(labels):
            tbox = scale_boxes(input_hw, xywh2xyxy(labels[:, 1:5]), shape0, ratio_pad)
            labelsn = np.concatenate((labels[:, 0:1], tbox), 1)
            correct = self.match(predn, labelsn, si, batch, extra)
            if self.plots:
                self.confusion_matrix.process_batch(predn, labelsn)
        self.stats.append((*correct, predn[:, 4], predn[:, 5], labels[:, 0]))
        if cfg.save_txt:
            save_one_txt(predn, cfg.save_conf, shape0, self.save_dir / "labels" / f"{path.stem}.txt")
        if cfg.save_json:
            self.jdict += self.json_rows(predn, path, extra, shape0, ratio_pad, input_hw)
        return predn

    @staticmethod
    def boxes(pred):
        """The (n, 6+) [x1, y1, x2, y2, conf, cls, ...] rows of one image's prediction."""
        return pred

    def image_outputs(self, si, pred, input_hw):
        """What else image ``si``'s prediction yields for matching and saving (segmentation: its masks); None here."""
        return None

    def unmatched(self, n):
        """The stats' correctness columns for ``n`` predictions that match nothing: one (n, T) False array."""
        return (np.zeros((n, len(self.iouv)), dtype=bool),)

    def match(self, predn, labelsn, si, batch, extra):
        """Correctness columns of an image's predictions (original pixels) against its labels [cls, xyxy]."""
        return (process_batch(predn, labelsn, self.iouv),)

    def json_rows(self, predn, path, extra, shape0, ratio_pad, input_hw):
        """The COCO result rows of one image (--save-json)."""
        return coco.prediction_rows(predn, path, self.class_map)

    def plot_batch(self, batch_i, batch, preds):
        im, paths = batch.img, batch.paths
        plot_images(im, batch.targets, paths, self.save_dir / f"val_batch{batch_i}_labels.jpg", self.names)
        plot_images(im, output_to_target(preds), paths, self.save_dir / f"val_batch{batch_i}_pred.jpg", self.names)

    def end_batch(self, batch_i, batch, preds):
        self.callbacks.run("on_val_batch_end", batch_i, batch.img, batch.targets, batch.paths, batch.shapes,
                           [self.boxes(p) for p in preds])

    # ---------------------------------------------------------------------------------------------------- results
    row_format = "%22s" + "%11i" * 2 + "%11.3g" * 4  # class, images, instances, then the mean results

    def compute_metrics(self, curves):
        """(metrics, target classes of every label) of the run; ``curves`` (a dict, or None) gets the AP curves to
        plot by file-name prefix."""
        c = {} if curves is not None else None
        metric, target_cls = box_metrics(self.stats, c)
        if c:
            curves[""] = c
        return metric, target_cls

    def finalize(self):
        cfg = self.cfg
        curves = {} if self.plots else None
        metrics, target_cls = self.compute_metrics(curves)
        for prefix, c in (curves or {}).items():
            plot_ap_curves(c, self.names, self.save_dir, prefix=prefix)
        nt = np.bincount(target_cls.astype(int), minlength=self.nc)
        self.print_results(metrics, nt)
        self.log_speeds((self.batch_size, 3, self.imgsz, self.imgsz))
        if self.plots:
            plot_confusion_matrix(self.confusion_matrix.matrix, self.nc, save_dir=self.save_dir,
                                  names=list(self.names.values()))
        if self.plots and self.val_callbacks:
            m = metrics
            self.callbacks.run("on_val_end", nt, m.tp, m.fp, m.p, m.r, m.f1, m.ap, m.ap50, m.ap_class_index,
                               self.confusion_matrix)
        results = [float(x) for x in metrics.mean_results()]
        if cfg.save_json and len(self.jdict):
            results = self.evaluate_json(results)
        if not self.training:
            n = len(list(self.save_dir.glob("labels/*.txt")))
            s = f"\n{n} labels saved to {self.save_dir / 'labels'}" if cfg.save_txt else ""
            LOGGER.info(f"Results saved to {colorstr('bold', self.save_dir)}{s}")
        return tuple(results), metrics.get_maps(self.nc)

    def print_results(self, metrics, nt):
        LOGGER.info(self.row_format % ("all", self.seen, nt.sum(), *metrics.mean_results()))
        if nt.sum() == 0:
            LOGGER.warning(f"WARNING ⚠️ no labels found in {self.split} set, can not compute metrics without labels")
        if (self.cfg.verbose or (self.nc < 50 and not self.training)) and self.nc > 1 and len(self.stats):
            for i, c in enumerate(metrics.ap_class_index):
                LOGGER.info(self.row_format % (self.names.get(c, c), self.seen, nt[c], *metrics.class_result(i)))

    # ------------------------------------------------------------------------------------------------ --save-json
    def evaluate_json(self, results):
        """Write <weights stem>_predictions.json and score it with pycocotools.

        With the dataset's own annotations (<path>/annotations/instances_val2017.json, as ultralytics) pycocotools'
        scores replace ours in ``results``. Otherwise the YOLO labels are converted to a COCO annotations file in
        save_dir and pycocotools' numbers are only reported: ours are kept (see utils/coco.py for why they differ).
        """
        w = self.cfg.weights
        w = Path(w[0] if isinstance(w, (list, tuple)) else w).stem if w is not None and not self.training else ""
        pred_json = self.save_dir / f"{w}_predictions.json"
        anno_json = Path(self.data.get("path", "../coco")) / "annotations" / "instances_val2017.json"
        LOGGER.info(f"\nEvaluating pycocotools mAP... saving {pred_json}...")
        with open(pred_json, "w") as f:
            json.dump(self.jdict, f)
        own = anno_json.is_file()
        try:
            if not own:
                anno_json = self.write_annotations(self.save_dir / "annotations.json")
            ids = [coco.image_id(x) for x in self.dataloader.dataset.im_files] if self.is_coco else None
            scores = self.coco_scores(anno_json, pred_json, ids)
        except Exception as e:  # pycocotools missing, or files it cannot read: keep our numbers
            LOGGER.info(f"pycocotools unable to run: {e}")
            return results
        if own:
            for i, (_, value) in scores.items():
                results[i] = value
            return results
        theirs = ", ".join(f"{name} {value:.4g}" for name, value in scores.values())
        ours = ", ".join(f"{name} {results[i]:.4g}" for i, (name, _) in scores.items())
        LOGGER.info(f"pycocotools on labels converted from YOLO format ({anno_json}): {theirs}; "
                    f"{self.script}'s own {ours} are kept")
        return results

    def write_annotations(self, file):
        """The dataset's labels as a COCO annotations file (for pycocotools when the dataset has none)."""
        return coco.write_coco_annotations(self.dataloader.dataset, self.names, file, self.class_map)

    def coco_scores(self, anno_json, pred_json, img_ids):
        """pycocotools' scores as {index in the results: (name, value)}."""
        stats = coco.coco_evaluate(anno_json, pred_json, img_ids=img_ids)
        return {3: ("mAP50-95", float(stats[0])), 2: ("mAP50", float(stats[1]))}


# ------------------------------------------------------------------------------------------------------- training
class DetectionTrainer(BaseTrainer):
    """train.py: ``DetectionTrainer(DetectTrainConfig, callbacks, device, dist).fit()``."""

    task = "detect"
    log_plan = LogPlan()  # what the loggers send beyond scalars: the result plots at the end
    loss_names = ("box_loss", "obj_loss", "cls_loss")
    metric_keys = ("metrics/precision", "metrics/recall", "metrics/mAP_0.5", "metrics/mAP_0.5:0.95")
    model_class = DetectionModel
    validator_class = DetectionValidator
    # ultralytics sets scheduler.last_epoch = start_epoch - 1 after LambdaLR's constructor has already stepped once, so
    # after warmup epoch e trains at lf(e - 1) (the warmup itself ramps to lf(e)); its classification does not do this
    scheduler_lag = 1

    def load_data(self):
        cfg = self.cfg
        self.data = check_dataset(cfg.data)
        self.nc = 1 if cfg.single_cls else int(self.data["nc"])
        names = self.data["names"]
        self.names = {0: "item"} if cfg.single_cls and len(names) != 1 else names
        self.is_coco = is_coco_split(self.data.get("val"))

    def build_model(self):
        cfg, hyp = self.cfg, self.hyp
        anchors = hyp.get("anchors")
        if is_checkpoint_path(cfg.weights):
            self.ckpt, rec, _ = read_weights(attempt_download(cfg.weights), prefer_ema=False, resume=cfg.resume)
            model = self.model_class(cfg.cfg or rec["yaml"], ch=3, nc=self.nc, anchors=anchors)
            exclude = ["anchor"] if (cfg.cfg or anchors) and not cfg.resume else []
            n = transfer_weights(model, rec["state"], exclude)
            LOGGER.info(f"Transferred {n}/{len(model.state_dict())} items from {cfg.weights}")
        elif not cfg.cfg:
            raise FlagError("--cfg is required when training from scratch (--weights '')")
        else:
            model = self.model_class(cfg.cfg, ch=3, nc=self.nc, anchors=anchors)
        freeze = [f"model.{x}." for x in (cfg.freeze if len(cfg.freeze) > 1 else range(cfg.freeze[0]))]
        for k, v in model.named_parameters():
            v.requires_grad_(True)
            if any(x in k for x in freeze):
                LOGGER.info(f"freezing {k}")
                v.requires_grad_(False)
        self.gs = max(int(model.stride.max()), 32)
        self.imgsz = check_img_size(cfg.imgsz, self.gs, floor=self.gs * 2)
        return model

    def dataloader_args(self):
        """Extra dataset arguments of the task (segmentation adds its mask settings)."""
        return {}

    def build_dataloaders(self):
        cfg, hyp, extra = self.cfg, self.hyp, self.dataloader_args()
        train_loader, self.dataset = create_dataloader(
            self.data["train"], self.imgsz, self.local_batch_size, self.gs, cfg.single_cls, hyp=hyp, augment=True,
            cache=None if cfg.cache == "val" else cfg.cache, rect=cfg.rect, rank=self.dist.rank,
            world_size=self.dist.world_size, workers=cfg.workers, image_weights=cfg.image_weights, quad=cfg.quad,
            prefix=colorstr("train: "), shuffle=True, seed=cfg.seed, **extra)
        labels = self.dataset.labels
        self.labels = np.concatenate(labels, 0) if len(labels) else np.zeros((0, 5))
        if len(self.labels) and int(self.labels[:, 0].max()) >= self.nc:
            raise InputError(f"Label class {int(self.labels[:, 0].max())} exceeds nc={self.nc} in {cfg.data}. "
                             f"Possible class labels are 0-{self.nc - 1}")
        val_loader = None
        if self.dist.main:  # validation runs on rank 0 only
            val_loader = create_dataloader(
                self.data["val"], self.imgsz, self.local_batch_size * 2, self.gs, cfg.single_cls, hyp=hyp,
                cache=None if cfg.noval else cfg.cache, rect=True, rank=-1, workers=cfg.workers * 2, pad=0.5,
                prefix=colorstr("val: "), **extra)[0]
        return train_loader, val_loader

    def optimizer_settings(self):
        return self.hyp["lr0"], self.hyp["momentum"], self.hyp["weight_decay"], 64

    def lr_lambda(self):
        lrf, epochs = self.hyp["lrf"], self.epochs
        return one_cycle(1, lrf, epochs) if self.cfg.cos_lr else (lambda x: (1 - x / epochs) * (1.0 - lrf) + lrf)

    def warmup_iters(self, nb):
        return max(round(self.hyp["warmup_epochs"] * nb), 100)

    def before_training(self):
        if not self.cfg.noautoanchor:
            check_anchors(self.dataset, model=self.model, thr=self.hyp["anchor_t"], imgsz=self.imgsz)
        if self.plots and len(self.labels):
            plot_labels(self.labels, self.names, self.save_dir)

    def pretrain_end_args(self):
        return self.labels, self.names

    def after_setup(self):
        """Loss gains scaled to layers, classes and image size (as ultralytics); model attributes; class weights."""
        hyp, nl = self.hyp, de_parallel(self.model).model[-1].nl
        hyp["box"] *= 3 / nl
        hyp["cls"] *= self.nc / 80 * 3 / nl
        hyp["obj"] *= (self.imgsz / 640) ** 2 * 3 / nl
        hyp["label_smoothing"] = self.cfg.label_smoothing
        m = de_parallel(self.model)
        m.nc, m.names = self.nc, self.names
        m.class_weights = from_numpy(labels_to_class_weights(self.dataset.labels, self.nc) * self.nc,
                                     device=self.device)
        self.maps = np.zeros(self.nc)

    def build_loss(self):
        return ComputeLoss(self.model, self.hyp, bbox_iou_optim=self.fused_iou)

    def val_config(self, **changes):
        """The validation settings of this run: val.py's defaults with the trainer's data, batch and sizes."""
        args = dict(data=self.data, batch_size=self.local_batch_size * 2, imgsz=self.imgsz, half=self.amp,
                    single_cls=self.cfg.single_cls)
        return ValConfig.from_opt(options(cli.TASKS[self.task].val, {**args, **changes}))

    def build_validator(self, plots=False, **changes):
        return self.validator_class(self.val_config(**changes), dataloader=self.val_loader, save_dir=self.save_dir,
                                    plots=plots, callbacks=self.callbacks, compute_loss=self.loss)

    def before_epoch(self, epoch):
        if self.cfg.image_weights:
            cw = to_numpy(de_parallel(self.model).class_weights) * (1 - self.maps) ** 2 / self.nc
            iw = labels_to_image_weights(self.dataset.labels, nc=self.nc, class_weights=cw)
            self.dataset.indices = random.choices(range(self.dataset.n), weights=iw, k=self.dataset.n)

    def preprocess_batch(self, raw: DetectionBatch) -> DetectionBatch:
        imgs = raw.img.to(self.device).float() / 255
        return raw._replace(img=self.multi_scale(imgs) if self.cfg.multi_scale else imgs)

    def multi_scale(self, imgs):
        """A random size in [0.5, 1.5] x imgsz (multiple of the grid) for this batch."""
        sz = random.randrange(int(self.imgsz * 0.5), int(self.imgsz * 1.5) + self.gs) // self.gs * self.gs
        sf = sz / max(imgs.shape[2:])
        if sf != 1:
            ns = [math.ceil(x * sf / self.gs) * self.gs for x in imgs.shape[2:]]
            imgs = torch.nn.functional.interpolate(imgs, size=ns, mode="bilinear", align_corners=False)
        return imgs

    def compute_loss(self, preds, batch):
        loss, items = self.loss(preds, batch.targets.to(self.device))
        return (loss * 4.0 if self.cfg.quad else loss), items

    def build_train_graph(self):
        """--graph on OneFlow: forward, loss and backward compiled (utils/backend/graph.TrainStepGraph)."""
        model = de_parallel(self.model)
        reason = TrainStepGraph.supported(model, self.loss, ddp=self.dist.ddp, amp=self.amp)
        if reason:
            LOGGER.info(train_step_note(reason))
            return None
        LOGGER.info(train_step_note())
        return TrainStepGraph(model, self.loss, loss_scale=4.0 if self.cfg.quad else 1.0)

    def train_step(self, batch):
        if self.train_graph is not None and self.train_graph.accepts(batch.img, self.local_batch_size):
            return self.train_graph(batch.img, batch.targets.to(self.device))[1]
        return super().train_step(batch)

    def progress_header(self):
        columns = ("Epoch", "GPU_mem", *self.loss_names, "Instances", "Size")
        return ("\n" + "%11s" * len(columns)) % columns

    def progress_row(self, epoch, mem, mloss, batch):
        return ("%11s" * 2 + "%11.4g" * (2 + len(mloss))) % (f"{epoch}/{self.epochs - 1}", mem, *mloss,
                                                             batch.targets.shape[0], batch.img.shape[-1])

    def validate(self, model, pbar=None):
        results, self.maps, _ = self.validator(model)
        return results

    fitness_rows = staticmethod(fitness)

    def plot_batch(self, batch, ni):
        plot_images(batch.img, batch.targets, batch.paths, self.save_dir / f"train_batch{ni}.jpg", self.names)

    def plot_metrics(self):
        plot_results(file=self.save_dir / "results.csv")

    def final_validation(self):
        """best.pt validated again with plots, as ultralytics (COCO: IoU 0.65 and pycocotools)."""
        LOGGER.info(f"\nValidating {self.best}...")
        validator = self.build_validator(plots=self.plots, iou_thres=0.65 if self.is_coco else 0.60,
                                         save_json=self.is_coco, verbose=True)
        self.results, _, _ = validator(attempt_load(str(self.best), self.device))




def model_nc(model):
    """Number of classes of a model, an Ensemble, or a wrapped model."""
    for m in (model, getattr(model, "module", None), getattr(model, "model", None)):
        if m is not None and getattr(m, "nc", None) is not None and not isinstance(m, (list, tuple)):
            return int(m.nc)
    return len(model.names)


def save_one_txt(predn, save_conf, shape, file):
    """Append one image's detections to a YOLO label file: cls xc yc w h (normalised) [conf]."""
    gn = np.array(shape, dtype=np.float64)[[1, 0, 1, 0]]
    xywh = xyxy2xywh(np.asarray(predn[:, :4], dtype=np.float64).reshape(-1, 4)) / gn
    with open(file, "a") as f:
        for (conf, cls), b in zip(predn[:, 4:6].tolist(), xywh.tolist()):
            line = (cls, *b, conf) if save_conf else (cls, *b)
            f.write(("%g " * len(line)).rstrip() % line + "\n")


# ----------------------------------------------------------------------------------------------------- prediction
class DetectionPredictor(Predictor):
    """detect.py: NMS, boxes drawn with labels, YOLO label rows, crops per class."""

    task = "detect"
    config_defaults = {"retina_masks": False}  # detect.py has no --retina-masks

    def postprocess(self, pred, im, im0s):
        cfg = self.cfg
        return non_max_suppression(pred, cfg.conf_thres, cfg.iou_thres, cfg.classes, cfg.agnostic_nms,
                                   max_det=cfg.max_det)

    def write_result(self, i, det, frame, im):
        if not len(det):
            return ""
        det[:, :4] = scale_boxes(im.shape[2:], det[:, :4], frame.im0.shape).round()
        if self.cfg.save_txt:
            with open(f"{frame.txt_path}.txt", "a") as f:  # one write per image
                f.write("".join(label_rows(det, frame.im0.shape, self.cfg.save_conf)))
        self.draw_boxes(det, frame)
        return describe(det, self.names)

    def draw_boxes(self, det, frame):
        """Boxes with 'name conf' labels on the image, and --save-crop crops, for (n, 6+) detections in im0 pixels."""
        cfg = self.cfg
        for *xyxy, conf, cls in reversed(to_numpy(det[:, :6]).tolist()):
            c = int(cls)
            if self.save_img or cfg.save_crop or self.view_img:
                label = None if cfg.hide_labels else (self.names[c] if cfg.hide_conf else f"{self.names[c]} {conf:.2f}")
                frame.annotator.box_label(xyxy, label, color=colors(c, True))
            if cfg.save_crop:
                save_one_box(xyxy, frame.imc, file=self.save_dir / "crops" / self.names[c] / f"{frame.path.stem}.jpg",
                             BGR=True)


def label_rows(det, shape, save_conf):
    """YOLO label lines 'cls x y w h [conf]' (normalised xywh) for (n, 6) detections in image pixels."""
    gn = np.array(shape, dtype=np.float32)[[1, 0, 1, 0]]  # float32 arithmetic, as ultralytics' tensors
    rows = []
    for *xyxy, conf, cls in reversed(to_numpy(det).tolist()):
        xywh = (xyxy2xywh(np.array([xyxy], dtype=np.float32)) / gn).reshape(-1).tolist()
        line = (cls, *xywh, conf) if save_conf else (cls, *xywh)
        rows.append(("%g " * len(line)).rstrip() % line + "\n")
    return rows


def describe(det, names):
    """'2 cats, 1 dog, ' for the per-image log line."""
    cls = to_numpy(det[:, 5]).astype(int)
    return "".join(f"{int((cls == c).sum())} {names[c]}{'s' * (int((cls == c).sum()) > 1)}, "
                   for c in sorted(set(cls.tolist())))
