"""Instance segmentation on the shared engine: ultralytics YOLOv5 v7.0's segment/train.py, val.py and predict.py.

Segmentation is detection plus masks, so each class here extends its detection counterpart with what masks add:
the polygon dataset with masks at 1/--mask-ratio (one index image per picture, or one mask per instance with
--no-overlap), the loss with its seg item, mask matching and (B)/(M) metrics, masks in the plots, the COCO JSON with
RLE masks, masks drawn on predictions and polygons in --save-txt. Everything else is detection's, unchanged.
"""

import numpy as np

from models.yolo import SegmentationModel
from utils.annotator import colors
from utils.backend import to_numpy, torch
from utils.boxes import scale_boxes, scale_segments
from utils.data.batch import MaskBatch
from utils.engine.detection import DetectionPredictor, DetectionTrainer, DetectionValidator, describe
from utils.files import find_file
from utils.log import LOGGER
from utils.loggers import LogPlan
from utils.metrics import process_batch
from utils.nms import non_max_suppression
from utils.plots import output_to_target
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
    val_callbacks = False  # segment/val.py v7.0 has on_val_image_end and on_val_end commented out
    init_args = DetectionValidator.init_args + ("overlap", "mask_ratio")
    run_args = {"mask_downsample_ratio": "mask_ratio"}  # segment/val.run()'s name

    @classmethod
    def adjust_opt(cls, opt):
        opt.data = find_file(opt.data, ("data",))
        opt.save_txt |= opt.save_hybrid
        return opt

    @staticmethod
    def flag_warnings():
        return LOGGER.warning, "--save-hybrid returns high mAP from hybrid labels, not from predictions alone"

    def __init__(self, cfg, dataloader=None, save_dir=None, plots=True, callbacks=None, compute_loss=None,
                 overlap=False, mask_ratio=1):
        super().__init__(cfg, dataloader, save_dir, plots, callbacks, compute_loss)
        self.overlap, self.mask_ratio = overlap, mask_ratio  # a standalone run: per-instance, full size (v7.0)

    def header(self):
        return VAL_HEADER

    def dataloader_args(self):
        return mask_loader_args(self.mask_ratio, self.overlap)

    def preprocess(self, raw: MaskBatch) -> MaskBatch:
        return super().preprocess(raw)._replace(masks=raw.masks.to(self.device).float())

    def inference(self, batch):
        """((predictions, prototypes), (training outputs, prototypes) for the loss, or None)."""
        if self.compute_loss:
            preds, protos, train_out = self.model(batch.img)
            return (preds, protos), (train_out, protos)
        preds, protos = self.model(batch.img, augment=self.cfg.augment)[:2]
        return (preds, protos), None

    def loss_items(self, train_out, batch):
        return self.compute_loss(train_out, batch.targets, batch.masks)[1]

    def init_metrics(self):
        super().init_metrics()
        self.process = process_mask_upsample if self.cfg.save_json else process_mask

    def postprocess(self, preds, batch):
        """Per image, (its NMS rows with NM mask coefficients, its prototypes)."""
        preds, protos = preds
        return list(zip(self.nms(preds, batch, nm=NM), protos))

    @staticmethod
    def boxes(pred):
        return pred[0]

    def update_metrics(self, preds, batch):
        self.plot_masks = []  # what val_batch*_pred.jpg shows of this batch
        super().update_metrics(preds, batch)

    def image_outputs(self, si, pred, input_hw):
        """The image's predicted masks (n, h, w) at the input size (process_mask; upsampled with --save-json)."""
        det, proto = pred
        masks = self.process(proto, det[:, 6:], det[:, :4], shape=input_hw)
        if self.plots:
            self.plot_masks.append(masks[:15])
        return masks

    def unmatched(self, n):
        correct = np.zeros((n, len(self.iouv)), dtype=bool)
        return correct, correct  # by mask, by box

    def match(self, predn, labelsn, si, batch, pred_masks):
        gt = image_gt_masks(batch.masks, batch.targets, si, self.overlap)
        by_mask = to_numpy(process_batch_masks(predn, labelsn, self.iouv, pred_masks, gt, self.overlap))
        return by_mask, process_batch(predn, labelsn, self.iouv)

    def json_rows(self, predn, path, pred_masks, shape0, ratio_pad, input_hw):
        masks = to_numpy(pred_masks).astype(np.uint8)
        native = scale_image(input_hw, masks.transpose(1, 2, 0), shape0, ratio_pad)
        return prediction_rows_with_masks(predn, path, self.class_map, native)

    def plot_batch(self, batch_i, batch, preds):
        im, paths, names = batch.img, batch.paths, self.names
        plot_images_and_masks(im, batch.targets, batch.masks, paths, self.save_dir / f"val_batch{batch_i}_labels.jpg",
                              names, overlap=self.overlap)
        masks = torch.cat(self.plot_masks, 0) if self.plot_masks else torch.zeros((0, *im.shape[2:]))
        plot_images_and_masks(im, output_to_target([self.boxes(p) for p in preds], max_det=15), masks, paths,
                              self.save_dir / f"val_batch{batch_i}_pred.jpg", names, overlap=False)

    row_format = VAL_ROW

    def compute_metrics(self, curves):
        return compute_metrics(self.stats, curves)  # curves by prefix: 'Box', 'Mask'

    def write_annotations(self, file):
        return write_coco_segment_annotations(self.dataloader.dataset, self.names, file, self.class_map)

    def coco_scores(self, anno_json, pred_json, img_ids):
        map_b, map50_b, map_m, map50_m = coco_evaluate_masks(anno_json, pred_json, img_ids=img_ids)
        return {3: ("box mAP50-95", map_b), 2: ("box mAP50", map50_b), 7: ("mask mAP50-95", map_m),
                6: ("mask mAP50", map50_m)}


# ------------------------------------------------------------------------------------------------------- training
class SegmentationTrainer(DetectionTrainer):
    """segment/train.py: ``SegmentationTrainer(SegmentTrainConfig, callbacks, device, dist).fit()``."""

    task = "segment"
    log_plan = LogPlan(mosaic_batch=10, final_validation=True)  # what the loggers send beyond scalars
    loss_names = ("box_loss", "seg_loss", "obj_loss", "cls_loss")
    metric_keys = tuple(METRIC_KEYS)
    model_class = SegmentationModel
    validator_class = SegmentationValidator
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

    def compute_loss(self, preds, batch):
        return self.loss(preds, batch.targets.to(self.device), batch.masks.to(self.device).float())

    def plot_batch(self, batch, ni):
        plot_images_and_masks(batch.img, batch.targets, batch.masks, batch.paths,
                              self.save_dir / f"train_batch{ni}.jpg", self.names, overlap=self.cfg.overlap)

    def plot_metrics(self):
        plot_results_with_masks(file=self.save_dir / "results.csv")


# ----------------------------------------------------------------------------------------------------- prediction
class SegmentationPredictor(DetectionPredictor):
    """segment/predict.py: masks blended into the image (--retina-masks: computed at the original size), polygons
    in --save-txt (normalised, closed by the reader), crops."""

    task = "segment"
    config_defaults = {}

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
