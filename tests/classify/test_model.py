"""reshape_classifier_output on YOLOv5 and torchvision-shaped heads (no vision library needed)."""

import numpy as np

from models.yolo import ClassificationModel
from utils.backend import from_numpy, nn
from models.yolo import reshape_classifier_output
from utils.files import ROOT


class ResNetLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 1000)


def _seq(*layers):
    model = nn.Module()
    model.features = nn.Conv2d(3, 8, 3)
    model.classifier = nn.Sequential(*layers)
    return model


def test_linear_head_is_replaced():
    m = ResNetLike()
    reshape_classifier_output(m, 10)
    assert (m.fc.in_features, m.fc.out_features) == (8, 10)
    fc = m.fc
    reshape_classifier_output(m, 10)  # already 10: untouched
    assert m.fc is fc


def test_sequential_with_one_linear():
    m = _seq(nn.Dropout(0.2), nn.Linear(8, 1000))
    reshape_classifier_output(m, 3)
    assert isinstance(m.classifier[0], nn.Dropout) and m.classifier[1].out_features == 3


def test_sequential_with_several_linears_replaces_the_output_layer():
    first = nn.Linear(8, 16)
    m = _seq(first, nn.ReLU(), nn.Linear(16, 1000))
    reshape_classifier_output(m, 4)
    assert m.classifier[0] is first and (m.classifier[2].in_features, m.classifier[2].out_features) == (16, 4)


def test_sequential_with_a_conv_head():
    m = _seq(nn.Dropout(0.5), nn.Conv2d(8, 1000, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    reshape_classifier_output(m, 5)
    c = m.classifier[1]
    assert isinstance(c, nn.Conv2d) and c.out_channels == 5 and c.in_channels == 8 and c.bias is not None


def test_yolov5_classify_head():
    model = ClassificationModel(cfg=str(ROOT / "models" / "yolov5n.yaml"), nc=1000, cutoff=10)
    conv = model.model[-1].conv
    reshape_classifier_output(model, 7)
    head = model.model[-1]
    assert head.linear.out_features == 7 and head.conv is conv
    model.eval()
    y = model(from_numpy(np.zeros((1, 3, 32, 32), np.float32)))
    assert tuple(y.shape) == (1, 7)
