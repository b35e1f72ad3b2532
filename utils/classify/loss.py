"""The classification loss: cross entropy with label smoothing, as ultralytics' smartCrossEntropyLoss on torch>=1.10.

With smoothing eps and C classes, the target distribution is (1 - eps) on the true class plus eps / C on every class,
so one sample's loss is (1 - eps) * -log p[y] + eps * mean_c(-log p[c]); the batch loss is the mean over samples.
Both backends have this in nn.CrossEntropyLoss(label_smoothing=eps) (OneFlow 0.9.0 included, checked against the
formula); a framework whose CrossEntropyLoss lacks the argument gets the same formula from LabelSmoothingCrossEntropy.
"""

from utils.backend import F, nn


class LabelSmoothingCrossEntropy(nn.Module):
    """Mean cross entropy of (n, C) logits and (n,) class indices with label smoothing ``eps``, in plain tensor ops."""

    def __init__(self, label_smoothing=0.0):
        super().__init__()
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits, targets):
        logp = F.log_softmax(logits, dim=1)
        nll = -logp.gather(1, targets.long().reshape(-1, 1)).squeeze(1)
        eps = self.label_smoothing
        return ((1.0 - eps) * nll - eps * logp.mean(1)).mean() if eps else nll.mean()


def classification_loss(label_smoothing=0.0):
    """The criterion of classify/train.py and classify/val.py: criterion(logits (n, C), targets (n,)) -> mean loss.

    Args:
        label_smoothing: epsilon in [0, 1) (--label-smoothing, 0.1 by default in classify/train.py).
    Returns:
        nn.CrossEntropyLoss(label_smoothing=eps) of the active framework, or LabelSmoothingCrossEntropy where that
        framework's CrossEntropyLoss has no label_smoothing argument.
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label smoothing must be in [0, 1), not {label_smoothing}")
    try:
        return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    except TypeError:
        return LabelSmoothingCrossEntropy(label_smoothing)
