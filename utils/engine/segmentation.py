"""Instance segmentation on the shared engine: ultralytics YOLOv5 v7.0's segment/train.py, val.py and predict.py.

Segmentation is detection plus masks, so each class here extends its detection counterpart with what masks add:
the polygon dataset with masks at 1/--mask-ratio (one index image per picture, or one mask per instance with
--no-overlap), the loss with its seg item, mask matching and (B)/(M) metrics, masks in the plots, the COCO JSON with
RLE masks, masks drawn on predictions and polygons in --save-txt. Everything else is detection's, unchanged.
"""

import json
from pathlib import Path

import numpy as np

from models.yolo import SegmentationModel
from utils import coco
from utils.annotator import colors
from utils.backend import to_numpy, torch
from utils.boxes import scale_boxes, scale_segments, xywh2xyxy
from utils.engine.detection import (DetectionPredictor, DetectionTrainer, DetectionValidator, describe,
                                    save_one_txt)
from utils.log import LOGGER
from utils.metrics import process_batch
from utils.nms import non_max_suppression
from utils.plots import output_to_target, plot_ap_curves, plot_confusion_matrix
from utils.segment.dataset import mask_loader_args
from utils.segment.loss import ComputeLoss
from utils.segment.masks import masks2segments, process_mask, process_mask_native, process_mask_upsample, scale_image
from utils.segment.metrics import (METRIC_KEYS, RESULTS_CSV_WIDTH, VAL_HEADER, VAL_ROW, coco_evaluate_masks,
                                   compute_metrics, fitness, image_gt_masks, prediction_rows_with_masks,
                                   process_batch_masks, write_coco_segment_annotations)
from utils.segment.plots import draw_masks, plot_images_and_masks, plot_results_with_masks

NM = 32  # mask coefficients per detection (prototype channels)


# ----------------------------------------------------------------------------------------------------- validation
class SegmentationValidator(DetectionValidator):
    """segment/val.py: box and mask P, R, mAP50, mAP50-95; masks from process_mask (process_mask_upsample with
    --save-json, as v7.0), matched by mask IoU against the ground-truth masks at the prediction masks' size."""

    task, script = "segment", "segment/val.py"
    loss_count = 4

    def __init__(self, cfg, dataloader=None, save_dir=None, plots=True, callbacks=None, compute_loss=None,
                 overlap=False, mask_ratio=1):
        super().__init__(cfg, dataloader, save_dir, plots, callbacks, compute_loss)
        self.overlap, self.mask_ratio = overlap, mask_ratio  # a standalone run: per-instance, full size (v7.0)

    def header(self):
        return VAL_HEADER

    def dataloader_args(self):
        return mask_loader_args(self.mask_ratio, self.overlap)

    def preprocess(self, raw):
        batch = super().preprocess(raw)
        batch["masks"] = raw[4].to(self.device).float()
        return batch

    def inference(self, batch):
        if self.compute_loss:
            preds, protos, train_out = self.model(batch["img"])
        else:
            (preds, protos), train_out = self.model(batch["img"], augment=self.cfg.augment)[:2], None
        batch["protos"] = protos
        return preds, train_out

    def loss_items(self, train_out, batch):
        return self.compute_loss((train_out, batch["protos"]), batch["targets"], batch["masks"])[1]

    def num_masks(self):
        return NM

    def init_metrics(self):
        super().init_metrics()
        self.process = process_mask_upsample if self.cfg.save_json else process_mask

    def update_metrics(self, preds, batch):
        im, targets, shapes = batch["img"], batch["targets"], batch["shapes"]
        self.plot_masks = []
        for si, (pred, proto) in enumerate(zip(preds, batch["protos"])):
            self.seen += 1
            labels = to_numpy(targets[targets[:, 0] == si, 1:])
            path, shape0, ratio_pad = Path(batch["paths"][si]), shapes[si][0], shapes[si][1]
            correct = np.zeros((len(pred), len(self.iouv)), dtype=bool)
            if not len(pred):
                if len(labels):
                    self.stats.append((correct, correct, np.zeros(0), np.zeros(0), labels[:, 0]))
                    if self.plots:
                        self.confusion_matrix.process_batch(None, labels[:, 0])
                continue
            pred_masks = self.process(proto, pred[:, 6:], pred[:, :4], shape=im[si].shape[1:])
            predn = to_numpy(pred).copy()
            if self.cfg.single_cls:
                predn[:, 5] = 0
            confs, classes = predn[:, 4].copy(), predn[:, 5].copy()
            scale_boxes(im[si].shape[1:], predn[:, :4], shape0, ratio_pad)
            tp_b = tp_m = correct
            if len(labels):
                tbox = scale_boxes(im[si].shape[1:], xywh2xyxy(labels[:, 1:5]), shape0, ratio_pad)
                labelsn = np.concatenate((labels[:, 0:1], tbox), 1)
                tp_b = process_batch(predn, labelsn, self.iouv)
                gt = image_gt_masks(batch["masks"], targets, si, self.overlap)
                tp_m = to_numpy(process_batch_masks(predn, labelsn, self.iouv, pred_masks, gt, self.overlap))
                if self.plots:
                    self.confusion_matrix.process_batch(predn, labelsn)
            self.stats.append((tp_m, tp_b, confs, classes, labels[:, 0]))
            self.save_one(predn, pred_masks, path, shape0, ratio_pad, im[si].shape[1:])

    def save_one(self, predn, pred_masks, path, shape0, ratio_pad, input_hw):
        cfg = self.cfg
        masks = to_numpy(pred_masks).astype(np.uint8)
        if self.plots:
            self.plot_masks.append(pred_masks[:15])  # what val_batch*_pred.jpg shows (the first batches only)
        if cfg.save_txt:
            save_one_txt(predn, cfg.save_conf, shape0, self.save_dir / "labels" / f"{path.stem}.txt")
        if cfg.save_json:
            native = scale_image(input_hw, masks.transpose(1, 2, 0), shape0, ratio_pad)
            self.jdict += prediction_rows_with_masks(predn, path, self.class_map, native)

    def plot_batch(self, batch_i, batch, preds):
        im, paths, names = batch["img"], batch["paths"], self.names
        plot_images_and_masks(im, batch["targets"], batch["masks"], paths,
                              self.save_dir / f"val_batch{batch_i}_labels.jpg", names, overlap=self.overlap)
        masks = torch.cat(self.plot_masks, 0) if self.plot_masks else torch.zeros((0, *im.shape[2:]))
        plot_images_and_masks(im, output_to_target(preds, max_det=15), masks, paths,
                              self.save_dir / f"val_batch{batch_i}_pred.jpg", names, overlap=False)

    def finalize(self):
        cfg = self.cfg
        curves = {} if self.plots else None
        metrics, tcls = compute_metrics(self.stats, curves)
        if self.plots and curves:
            for kind in ("Box", "Mask"):
                plot_ap_curves(curves[kind], self.names, self.save_dir, prefix=kind)
        nt = np.bincount(tcls.astype(int), minlength=self.nc)
        LOGGER.info(VAL_ROW % ("all", self.seen, nt.sum(), *metrics.mean_results()))
        if nt.sum() == 0:
            LOGGER.warning(f"WARNING ⚠️ no labels found in {self.split} set, can not compute metrics without labels")
        if (cfg.verbose or (self.nc < 50 and not self.training)) and self.nc > 1 and len(self.stats):
            for i, c in enumerate(metrics.ap_class_index):
                LOGGER.info(VAL_ROW % (self.names[c], self.seen, nt[c], *metrics.class_result(i)))
        self.log_speeds((self.batch_size, 3, self.imgsz, self.imgsz))
        if self.plots:
            plot_confusion_matrix(self.confusion_matrix.matrix, self.nc, save_dir=self.save_dir,
                                  names=list(self.names.values()))
        results = list(metrics.mean_results())
        if cfg.save_json and len(self.jdict):
            results = self.evaluate_json(results)
        if not self.training:
            n = len(list(self.save_dir.glob("labels/*.txt")))
            s = f"\n{n} labels saved to {self.save_dir / 'labels'}" if cfg.save_txt else ""
            LOGGER.info(f"Results saved to {self.save_dir}{s}")
        return tuple(float(x) for x in results), metrics.get_maps(self.nc)

    def evaluate_json(self, results):
        """<weights>_predictions.json with RLE masks, scored by pycocotools for boxes and masks (their mAPs replace
        ours with the dataset's own COCO annotations; for other datasets they are only reported)."""
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
                anno_json = write_coco_segment_annotations(self.dataloader.dataset, self.names,
                                                           self.save_dir / "annotations.json", self.class_map)
            ids = [coco.image_id(x) for x in self.dataloader.dataset.im_files] if self.is_coco else None
            map_b, map50_b, map_m, map50_m = coco_evaluate_masks(anno_json, pred_json, img_ids=ids)
        except Exception as e:
            LOGGER.info(f"pycocotools unable to run: {e}")
            return results
        if own:
            results[2:4], results[6:8] = [map50_b, map_b], [map50_m, map_m]
        else:
            LOGGER.info(f"pycocotools on labels converted from YOLO format ({anno_json}): box mAP50-95 {map_b:.4g}, "
                        f"mask mAP50-95 {map_m:.4g}; segment/val.py's own numbers are kept")
        return results


# ------------------------------------------------------------------------------------------------------- training
class SegmentationTrainer(DetectionTrainer):
    """segment/train.py: ``SegmentationTrainer(SegmentTrainConfig, callbacks, device, dist).fit()``."""

    task = "segment"  # which images the loggers log (utils/loggers)
    loss_names = ("box_loss", "seg_loss", "obj_loss", "cls_loss")
    metric_keys = tuple(METRIC_KEYS)
    model_class = SegmentationModel
    validator_class = SegmentationValidator
    val_script = "segment/val"
    csv_width = RESULTS_CSV_WIDTH
    fitness_rows = staticmethod(fitness)

    def dataloader_args(self):
        return mask_loader_args(self.cfg.mask_ratio, self.cfg.overlap, quad=self.cfg.quad)

    def build_loss(self):
        return ComputeLoss(self.model, self.hyp, overlap=self.cfg.overlap, bbox_iou_optim=self.fused_iou)

    def build_validator(self, plots=False, **changes):
        return self.validator_class(self.val_config(**changes), dataloader=self.val_loader, save_dir=self.save_dir,
                                    plots=plots, callbacks=self.callbacks, compute_loss=self.loss,
                                    overlap=self.cfg.overlap, mask_ratio=self.cfg.mask_ratio)

    def preprocess_batch(self, raw):
        batch = super().preprocess_batch(raw)
        batch["masks"] = raw[4]
        return batch

    def compute_loss(self, preds, batch):
        return self.loss(preds, batch["targets"].to(self.device), batch["masks"].to(self.device).float())

    def plot_batch(self, batch, ni):
        plot_images_and_masks(batch["img"], batch["targets"], batch["masks"], batch["paths"],
                              self.save_dir / f"train_batch{ni}.jpg", self.names, overlap=self.cfg.overlap)

    def plot_metrics(self):
        plot_results_with_masks(file=self.save_dir / "results.csv")


# ----------------------------------------------------------------------------------------------------- prediction
class SegmentationPredictor(DetectionPredictor):
    """segment/predict.py: masks blended into the image (--retina-masks: computed at the original size), polygons
    in --save-txt (normalised, closed by the reader), crops."""

    task = "segment"

    def postprocess(self, pred, im, im0s):
        cfg = self.cfg
        pred, protos = pred[:2]
        dets = non_max_suppression(pred, cfg.conf_thres, cfg.iou_thres, cfg.classes, cfg.agnostic_nms,
                                   max_det=cfg.max_det, nm=NM)
        return [(det, proto) for det, proto in zip(dets, protos)]

    def empty_note(self, results):
        return "" if len(results[-1][0]) else "(no detections), "

    def write_result(self, i, result, frame, im):
        cfg, (det, proto) = self.cfg, result
        if not len(det):
            return ""
        im0 = frame.im0
        if cfg.retina_masks:
            det[:, :4] = scale_boxes(im.shape[2:], det[:, :4], im0.shape).round()
            masks = process_mask_native(proto, det[:, 6:], det[:, :4], im0.shape[:2])
        else:
            masks = process_mask(proto, det[:, 6:], det[:, :4], im.shape[2:], upsample=True)
            det[:, :4] = scale_boxes(im.shape[2:], det[:, :4], im0.shape).round()
        if cfg.save_txt:
            frame_hw = im0.shape if cfg.retina_masks else im.shape[2:]
            segments = [scale_segments(frame_hw, x, im0.shape, normalize=True) for x in reversed(masks2segments(masks))]
            with open(f"{frame.txt_path}.txt", "a") as f:
                for seg, (conf, cls) in zip(segments, reversed(to_numpy(det[:, 4:6]).tolist())):
                    line = (cls, *seg.reshape(-1), conf) if cfg.save_conf else (cls, *seg.reshape(-1))
                    f.write(("%g " * len(line)).rstrip() % line + "\n")
        if self.save_img or self.view_img:
            im_gpu = (torch.tensor(im0[..., ::-1].transpose(2, 0, 1).copy(), device=im.device).float() / 255
                      if cfg.retina_masks else im[i])
            draw_masks(frame.annotator, masks, [colors(int(c), True) for c in to_numpy(det[:, 5])], im_gpu=im_gpu,
                       retina_masks=cfg.retina_masks)
        self.draw_boxes(det, frame)
        return describe(det, self.names)
