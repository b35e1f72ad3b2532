"""Fitting a classifier's output layer to the dataset's class count (ultralytics' reshape_classifier_output).

The last child module of the network (of ``model.model`` for YOLOv5 models) decides what is replaced, and only when
its output size differs from ``nc``; a replaced layer is new (freshly initialised), on the CPU:
  - a YOLOv5 Classify head: its ``linear``;
  - an nn.Linear (ResNet ``fc``, DenseNet ``classifier``, flowvision ConvNeXt ``head``): the layer itself;
  - an nn.Sequential holding an nn.Linear (EfficientNet, MobileNet, ConvNeXt ``classifier``): that Linear;
    otherwise one holding an nn.Conv2d (SqueezeNet): that Conv2d, same kernel, stride and bias.
One deliberate difference: ultralytics replaces the *first* Linear (or Conv2d) of the Sequential. In heads with
several (VGG, AlexNet, MobileNetV3: Linear -> act -> Linear) that breaks the network (the next layer's input no longer
matches), so here the *last* one, the output layer, is replaced. Heads with a single one are treated identically.
"""

from models.common import Classify
from utils.backend import nn


def _last_of_type(seq, cls):
    """Index of the last module of exactly type ``cls`` in an nn.Sequential, or None."""
    found = [i for i, m in enumerate(seq) if type(m) is cls]
    return found[-1] if found else None


def reshape_classifier_output(model, nc=1000):
    """Give ``model`` an output layer of ``nc`` classes if it has another count (in place).

    Args:
        model: a YOLOv5 ClassificationModel or a torchvision / flowvision classifier.
        nc: number of classes.
    Returns:
        ``model``.
    """
    container = model.model if hasattr(model, "model") else model
    name, m = list(container.named_children())[-1]
    if isinstance(m, Classify):
        if m.linear.out_features != nc:
            m.linear = nn.Linear(m.linear.in_features, nc)
    elif isinstance(m, nn.Linear):
        if m.out_features != nc:
            setattr(model, name, nn.Linear(m.in_features, nc))
    elif isinstance(m, nn.Sequential):
        i = _last_of_type(m, nn.Linear)
        if i is not None:
            if m[i].out_features != nc:
                m[i] = nn.Linear(m[i].in_features, nc)
        else:
            i = _last_of_type(m, nn.Conv2d)
            if i is not None and m[i].out_channels != nc:
                c = m[i]
                m[i] = nn.Conv2d(c.in_channels, nc, c.kernel_size, c.stride, bias=c.bias is not None)
    return model
