"""The task modules composed as the segmentation trainer and validator will call them: loader -> model -> loss ->
optimizer step, and model -> NMS -> masks -> box and mask matching -> metrics, plots and JSON rows."""

import numpy as np
import pytest
import yaml

from models.yolo import SegmentationModel
from tests.conftest import ROOT
from utils.backend import to_numpy, torch
from utils.boxes import scale_boxes, xywh2xyxy
from utils.data.dataset_yaml import check_dataset
from utils.data.synthetic import make_dataset
from utils.metrics import iou_thresholds, process_batch
from utils.nms import non_max_suppression
from utils.plots import output_to_target
from utils.segment.dataloaders import create_dataloader
from utils.segment.loss import ComputeLoss
from utils.segment.masks import process_mask, process_mask_upsample, scale_image
from utils.segment.metrics import compute_metrics, image_gt_masks, prediction_rows_with_masks, process_batch_masks
from utils.segment.plots import plot_images_and_masks


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return check_dataset(make_dataset(tmp_path_factory.mktemp("seg") / "ds", 4, 2, 64, seed=5, task="segment"))


@pytest.mark.parametrize("overlap", [True, False])
def test_train_step_and_validation(data, tmp_path, overlap):
    torch.manual_seed(0)
    hyp = yaml.safe_load((ROOT / "data/hyps/hyp.scratch-low.yaml").read_text())
    model = SegmentationModel("segment/yolov5n-seg.yaml", nc=6)
    loader, _ = create_dataloader(data["train"], 64, 4, 32, hyp=hyp, augment=True, workers=0, shuffle=True,
                                  mask_downsample_ratio=4, overlap_mask=overlap)
    imgs, targets, paths, _, masks = next(iter(loader))
    plot_images_and_masks(imgs, targets, masks, paths, tmp_path / "train_batch0.jpg", overlap=overlap)
    model.train()
    loss_fn = ComputeLoss(model, hyp, overlap=overlap)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss, items = loss_fn(model(imgs.float() / 255), targets, masks.float())
    loss.backward()
    opt.step()
    assert np.isfinite(to_numpy(items)).all() and to_numpy(items)[1] > 0

    val_loader, _ = create_dataloader(data["val"], 64, 2, 32, rect=True, pad=0.5, workers=0, overlap_mask=overlap)
    model.eval()
    iouv, stats, rows = iou_thresholds(), [], []
    with torch.no_grad():
        for im, targets, paths, shapes, masks in val_loader:
            im = im.float() / 255
            preds, protos, train_out = model(im)
            _, vitems = loss_fn((train_out, protos), targets, masks.float())
            assert np.isfinite(to_numpy(vitems)).all()
            _, _, h, w = im.shape
            targets[:, 2:] *= torch.tensor((w, h, w, h), dtype=targets.dtype)
            preds = non_max_suppression(preds, 0.0, 0.6, multi_label=True, max_det=30, nm=32)  # untrained: keep some
            for si, (pred, proto) in enumerate(zip(preds, protos)):
                labels = to_numpy(targets[targets[:, 0] == si, 1:])
                pred_masks = process_mask(proto, pred[:, 6:], pred[:, :4], shape=(h, w))
                assert tuple(pred_masks.shape) == (len(pred), h // 4, w // 4)
                predn = to_numpy(pred).copy()
                scale_boxes((h, w), predn[:, :4], shapes[si][0], shapes[si][1])
                tbox = scale_boxes((h, w), xywh2xyxy(labels[:, 1:5]), shapes[si][0], shapes[si][1])
                labelsn = np.concatenate((labels[:, 0:1], tbox), 1)
                tp_b = process_batch(predn, labelsn, iouv)
                gt = image_gt_masks(masks.float(), targets, si, overlap)
                tp_m = process_batch_masks(predn, labelsn, iouv, pred_masks, gt, overlap)
                stats.append((tp_m, tp_b, predn[:, 4], predn[:, 5], labels[:, 0]))
                full = process_mask_upsample(proto, pred[:, 6:], pred[:, :4], shape=(h, w))
                native = scale_image((h, w), to_numpy(full).astype(np.uint8).transpose(1, 2, 0), shapes[si][0],
                                     shapes[si][1])
                assert native.shape == (*shapes[si][0], len(pred))
                rows += prediction_rows_with_masks(predn, paths[si], list(range(1000)), native)
            plot_images_and_masks(im, output_to_target(preds, max_det=15),
                                  torch.cat([process_mask(p_, q[:15, 6:], q[:15, :4], (h, w), upsample=True)
                                             for q, p_ in zip(preds, protos)]), paths, tmp_path / "val_pred.jpg",
                                  overlap=False)
    metrics, tcls = compute_metrics(stats)
    assert len(tcls) == sum(len(s[4]) for s in stats) and all(0 <= v <= 1 for v in metrics.mean_results())
    assert len(rows) == sum(len(s[2]) for s in stats) > 0 and all("segmentation" in r for r in rows)
    assert (tmp_path / "train_batch0.jpg").is_file() and (tmp_path / "val_pred.jpg").is_file()
