"""Classification metrics and the text classify/train.py and classify/val.py print and log, as ultralytics v7.0.

- Accuracy: the logits of each image are sorted descending (argsort) and the first 5 indices kept; an image is
  top-1 correct when its target is the first of them, top-5 correct when it is any of them (with fewer than 5
  classes, all classes: top-5 is then 1). top1/top5 are the float32 means over all images.
- Validation loss: the criterion's batch mean, summed over the batches and divided by the number of batches (a mean of
  batch means, not of images); 0 without a criterion.
- Training loss shown and logged: the running mean of the batch losses of the epoch.
- results.csv: 'epoch', 'train/loss', '<val>/loss' (<val> = the evaluation folder's name, 'val' or 'test'),
  'metrics/accuracy_top1', 'metrics/accuracy_top5', 'lr/0'; every cell right-aligned in 23 characters, values as
  %.5g, epochs counted from 0.
- Progress bars: train rows ``Epoch GPU_mem train_loss <val>_loss top1_acc top5_acc``; during validation the last
  36 characters of the training description say 'validating' (or 'testing'), then hold loss, top1, top5.
"""

import numpy as np

from utils.backend import to_numpy, torch

RESULTS_CSV_WIDTH = 23
TRAIN_TAIL = 36  # characters of the training bar description that validation writes into


def results_keys(val_name="val"):
    """results.csv columns after 'epoch', in classify/train.py's order."""
    return "train/loss", f"{val_name}/loss", "metrics/accuracy_top1", "metrics/accuracy_top5", "lr/0"


def results_csv_header(keys):
    """The header line of results.csv: 'epoch' then ``keys``, each right-aligned in 23 characters."""
    return ("%23s," * (len(keys) + 1) % ("epoch", *keys)).rstrip(",")


def results_csv_row(epoch, values):
    """One results.csv line: ``epoch`` (0-based) then ``values``, each as %23.5g."""
    values = [float(v) for v in values]
    return ("%23.5g," * (len(values) + 1) % (epoch, *values)).rstrip(",")


def running_mean(mean, value, i):
    """Mean of the first i + 1 values given the mean of the first i (the train_loss of the progress bar)."""
    return (mean * i + float(value)) / (i + 1)


def top5_predictions(logits):
    """Class indices of the (up to) 5 largest logits of each row, best first: (n, min(5, C))."""
    return logits.argsort(1, descending=True)[:, :5]


def accuracy_matrix(pred, targets):
    """(n, 2) float32 tensor: per image, top-1 correct and top-5 correct (1.0 / 0.0).

    Args:
        pred: (n, k) top5_predictions. targets: (n,) class indices.
    """
    correct = (targets.reshape(-1, 1).long() == pred.long()).float()
    return torch.stack((correct[:, 0], correct.max(1)[0]), 1)


def _mean(acc):
    """Column means of a float32 (n, 2) 0/1 array as float32 sum / n: exactly PyTorch's mean (the sums of 0/1 values
    are exact), on every backend (OneFlow's own mean can differ in the last bit)."""
    return (acc.sum(0, dtype=np.float32) / np.float32(len(acc))).astype(np.float32).tolist()


class ClassifyMetrics:
    """Accumulates one validation pass: ``update()`` per batch, then ``compute()`` and ``per_class()``."""

    def __init__(self):
        self.pred, self.targets, self.loss, self.batches = [], [], 0.0, 0

    def update(self, logits, targets, loss=None):
        """Add a batch: logits (n, C), targets (n,), and the criterion's value on it (None: no loss)."""
        self.pred.append(top5_predictions(logits))
        self.targets.append(targets)
        self.batches += 1
        if loss is not None:
            self.loss += float(loss)

    def _cat(self):
        if not self.batches:
            raise ValueError("ClassifyMetrics: no batch was added")
        return torch.cat(self.pred), torch.cat(self.targets)

    def accuracy(self):
        """(n, 2) float32 numpy array of the top-1/top-5 correctness of every image seen, and the targets (n,)."""
        pred, targets = self._cat()
        return to_numpy(accuracy_matrix(pred, targets)), to_numpy(targets).astype(np.int64)

    def compute(self):
        """(top1, top5, loss): accuracies over all images, loss = sum of batch losses / number of batches."""
        acc, _ = self.accuracy()
        top1, top5 = _mean(acc)
        return top1, top5, self.loss / self.batches

    def per_class(self, names):
        """[(name, images, top1, top5)] for each class of ``names`` ({index: name} or a list); nan for a class
        without images, as ultralytics prints."""
        acc, targets = self.accuracy()
        items = names.items() if isinstance(names, dict) else enumerate(names)
        rows = []
        for i, name in items:
            acc_i = acc[targets == int(i)]
            top1, top5 = _mean(acc_i) if len(acc_i) else (float("nan"), float("nan"))
            rows.append((name, len(acc_i), top1, top5))
        return rows


# ------------------------------------------------------------------------------------------------ printed text
def train_header(val_name="val"):
    """Column titles printed before training starts."""
    return (f"{'Epoch':>10}{'GPU_mem':>10}{'train_loss':>12}{f'{val_name}_loss':>12}{'top1_acc':>12}"
            f"{'top5_acc':>12}")


def train_description(epoch, epochs, mem_gb, tloss):
    """Training bar description of a batch: epoch (1-based)/epochs, reserved GPU memory, running train loss, and 36
    blank characters that validation fills."""
    mem = f"{mem_gb:.3g}G"
    return f"{f'{epoch + 1}/{epochs}':>10}{mem:>10}{tloss:>12.3g}" + " " * TRAIN_TAIL


def val_action(split_dir):
    """'validating' for a folder named val, 'testing' otherwise (the bar's word)."""
    return "validating" if split_dir.stem == "val" else "testing"


def val_description(train_desc, action):
    """Validation bar description: the training bar's, its last 36 characters replaced by ``action``; or ``action``
    alone for a standalone validation (train_desc None)."""
    return f"{train_desc[:-TRAIN_TAIL]}{action:>{TRAIN_TAIL}}" if train_desc else f"{action}"


def val_result_description(train_desc, loss, top1, top5):
    """The training bar's description after validation: its last 36 characters become loss, top1, top5."""
    return f"{train_desc[:-TRAIN_TAIL]}{loss:>12.3g}{top1:>12.3g}{top5:>12.3g}"


def verbose_lines(n_images, top1, top5, class_rows):
    """classify/val.py --verbose table: header, 'all', then one line per class (from ClassifyMetrics.per_class)."""
    lines = [f"{'Class':>24}{'Images':>12}{'top1_acc':>12}{'top5_acc':>12}",
             f"{'all':>24}{n_images:>12}{top1:>12.3g}{top5:>12.3g}"]
    lines += [f"{name:>24}{n:>12}{t1:>12.3g}{t5:>12.3g}" for name, n, t1, t5 in class_rows]
    return lines


def speed_line(seconds, n_images, imgsz):
    """'Speed: ...ms pre-process, ...ms inference, ...ms post-process per image at shape (1, 3, s, s)'.

    Args:
        seconds: total (pre-process, inference, post-process) seconds of the pass. n_images: images in it.
    """
    t = tuple(x / n_images * 1e3 for x in seconds)
    shape = (1, 3, imgsz, imgsz)
    return f"Speed: %.1fms pre-process, %.1fms inference, %.1fms post-process per image at shape {shape}" % t
