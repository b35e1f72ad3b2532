"""Cross entropy with label smoothing: both backends against the formula, in float64."""

import numpy as np
import pytest

from utils.backend import from_numpy, to_numpy
from utils.classify.loss import LabelSmoothingCrossEntropy, classification_loss


def _formula(logits, targets, eps):
    z = logits.astype(np.float64)
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    nll = -logp[np.arange(len(z)), targets]
    return float(np.mean((1 - eps) * nll - eps * logp.mean(1)))


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return rng.normal(0, 3, (16, 7)).astype(np.float32), rng.integers(0, 7, 16)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.35])
@pytest.mark.parametrize("make", [classification_loss, LabelSmoothingCrossEntropy], ids=["native", "plain"])
def test_matches_the_formula(batch, eps, make):
    logits, targets = batch
    value = float(make(eps)(from_numpy(logits), from_numpy(targets)))
    assert abs(value - _formula(logits, targets, eps)) < 1e-6


def test_smoothing_changes_the_value(batch):
    logits, targets = batch
    a, b = (float(classification_loss(e)(from_numpy(logits), from_numpy(targets))) for e in (0.0, 0.1))
    assert abs(a - b) > 1e-3


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_gradients_agree(batch, eps):
    logits, targets = batch
    grads = []
    for make in (classification_loss, LabelSmoothingCrossEntropy):
        x = from_numpy(logits).requires_grad_(True)
        make(eps)(x, from_numpy(targets)).backward()
        grads.append(to_numpy(x.grad))
    assert np.abs(grads[0] - grads[1]).max() < 1e-6


def test_rejects_bad_epsilon():
    with pytest.raises(ValueError):
        classification_loss(1.0)
