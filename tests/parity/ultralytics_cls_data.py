"""Run BY THE ULTRALYTICS REFERENCE PYTHON: its classification data, transforms, validation maths and results.csv.

    $PEER_PY tests/parity/ultralytics_cls_data.py --data DATASET_DIR --images IMG [IMG ...] --imgsz 40 --out ref.npz
DATASET_DIR holds train/<class>/ and val/<class>/. The .npz records, for the same files our side reads:
  transform      classify_transforms(imgsz) of each --images file (read with cv2), stacked
  train_files/train_targets/classes  the ClassificationDataset samples of train/
  val_images/val_targets             every batch of create_classification_dataloader(val/, augment=False, no shuffle)
  aug_images     the first items of ClassificationDataset(train/, augment=True) (no albumentations here: eval transform)
  shuffle_targets  the targets of one epoch of the shuffled training loader (workers 0)
  logits, top1, top5, loss           classify/val.py run() with a small linear model and label smoothing 0.1
  csv            the results.csv that GenericLogger writes for two epochs of fixed values
"""

import argparse
import tempfile
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import torch
from yolov5.classify import val as validate
from yolov5.utils.augmentations import classify_transforms
from yolov5.utils.dataloaders import ClassificationDataset, create_classification_dataloader
from yolov5.utils.general import LOGGER
from yolov5.utils.loggers import GenericLogger
from yolov5.utils.torch_utils import smartCrossEntropyLoss


class Recorder(torch.nn.Module):
    """Pooled pixels -> linear logits; keeps every output so our metrics can be fed the same numbers."""

    def __init__(self, weight, bias):
        super().__init__()
        self.linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(weight))
            self.linear.bias.copy_(torch.from_numpy(bias))
        self.outputs = []

    def forward(self, x):
        y = self.linear(x.mean((2, 3)))
        self.outputs.append(y.detach().clone())
        return y


def loader_epoch(loader):
    images, targets = zip(*[(x.numpy(), t.numpy()) for x, t in loader], strict=True)
    return np.concatenate(images), np.concatenate(targets)


def results_csv(rows):
    with tempfile.TemporaryDirectory() as d:
        opt = SimpleNamespace(save_dir=d, project="runs/train-cls", name="exp")
        logger = GenericLogger(opt=opt, console_logger=LOGGER, include=())
        logger.tb = None  # only set when TensorBoard is included; the CSV is all we want
        for epoch, metrics in enumerate(rows):
            logger.log_metrics(metrics, epoch)
        return (Path(d) / "results.csv").read_text()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--images", nargs="+", required=True)
    ap.add_argument("--imgsz", type=int, default=40)
    ap.add_argument("--out", required=True)
    opt = ap.parse_args()
    data, s = Path(opt.data), opt.imgsz
    out = {"transform": np.stack([classify_transforms(s)(cv2.imread(f)).numpy() for f in opt.images])}

    train = ClassificationDataset(root=data / "train", augment=False, imgsz=s)
    out["train_files"] = np.array([str(Path(f).relative_to(data)) for f, *_ in train.samples])
    out["train_targets"] = np.array([j for _, j, *_ in train.samples])
    out["classes"] = np.array(train.classes)
    aug = ClassificationDataset(root=data / "train", augment=True, imgsz=s)
    out["aug_images"] = np.stack([aug[i][0].numpy() for i in range(4)])

    val_loader = create_classification_dataloader(data / "val", imgsz=s, batch_size=8, augment=False, rank=-1,
                                                  workers=0, shuffle=False)
    out["val_images"], out["val_targets"] = loader_epoch(val_loader)
    shuffled = create_classification_dataloader(data / "train", imgsz=s, batch_size=8, augment=True, rank=-1,
                                                workers=0, shuffle=True)
    out["shuffle_targets"] = loader_epoch(shuffled)[1]

    rng = np.random.default_rng(0)
    nc = len(train.classes)
    model = Recorder(rng.normal(0, 8, (nc, 3)).astype(np.float32), rng.normal(0, 1, nc).astype(np.float32))
    top1, top5, loss = validate.run(model=model, dataloader=val_loader, criterion=smartCrossEntropyLoss(0.1))
    out.update(logits=torch.cat(model.outputs).numpy(), top1=top1, top5=top5, loss=float(loss))

    rows = [{"train/loss": 2.31, "val/loss": 2.2, "metrics/accuracy_top1": top1, "metrics/accuracy_top5": top5,
             "lr/0": 0.001}, {"train/loss": 1.123456789, "val/loss": 1.9876543, "metrics/accuracy_top1": 0.5,
                              "metrics/accuracy_top5": 1.0, "lr/0": 0.00090100}]
    out["csv"] = np.array(results_csv(rows))
    np.savez(opt.out, **out)


if __name__ == "__main__":
    main()
