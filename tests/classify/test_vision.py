"""--model names of the vision library (torchvision / flowvision): resolution, building, offline weights.

The first tests replace the library by a stand-in, so they run where neither is installed; the last ones use the real
library of the active backend and skip cleanly without it.
"""

import importlib.util
import sys
import types
import urllib.error

import numpy as np
import pytest

from utils.backend import IS_ONEFLOW, from_numpy, nn
from utils.backend import vision as V
from models.yolo import reshape_classifier_output
from utils.downloads import DownloadError


@pytest.fixture
def fake_library(monkeypatch):
    """A vision library with 'tinynet' (has weights) and 'bare' (none); records how builders were called."""
    calls = []
    zoo = types.ModuleType("fake_zoo.models")

    def tinynet(**kwargs):
        calls.append(kwargs)
        if kwargs.get("weights") or kwargs.get("pretrained"):
            raise urllib.error.URLError("offline")
        return nn.Linear(2, 1000)

    def bare(**kwargs):
        calls.append(kwargs)
        return nn.Linear(2, 1000)

    for fn in (tinynet, bare):
        fn.__module__ = "fake_zoo.models"
        setattr(zoo, fn.__name__, fn)
    zoo.model_urls = {"tinynet": "https://example.invalid/weights/tinynet.zip"}
    zoo.ModelCreator = types.SimpleNamespace(_model_entrypoints={"tinynet": tinynet, "bare": bare, "segnet": None})
    zoo.list_models = lambda module=None: ["bare", "tinynet"]
    weights = {"tinynet": {V.TORCHVISION_WEIGHTS: types.SimpleNamespace(url="https://example.invalid/tinynet.pth")}}
    zoo.get_model_weights = lambda name: weights[name] if name in weights else {}
    monkeypatch.setitem(sys.modules, "fake_zoo.models", zoo)
    monkeypatch.setattr(V, "_state", {"module": types.SimpleNamespace(models=zoo), "error": None})
    return calls


def test_names_and_building(fake_library):
    assert V.model_names() == ["bare", "tinynet"] and V.is_model_name("tinynet") and not V.is_model_name("segnet")
    model = V.create_model("tinynet", pretrained=False)
    assert isinstance(model, nn.Linear)
    assert fake_library[-1] == ({"pretrained": False} if IS_ONEFLOW else {"weights": None})


def test_unknown_name_lists_the_models(fake_library):
    with pytest.raises(V.VisionModelError, match="bare, tinynet"):
        V.create_model("resnet9000")


def test_pretrained_without_weights_says_use_pretrained_false(fake_library):
    with pytest.raises(V.VisionModelError, match="--pretrained False"):
        V.create_model("bare", pretrained=True)
    assert V.create_model("bare", pretrained=False) is not None


def test_offline_pretrained_says_where_to_put_the_file(fake_library, monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWVISION_CACHE", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(DownloadError, match="--pretrained False") as e:
        V.create_model("tinynet", pretrained=True)
    assert "example.invalid" in str(e.value) and str(tmp_path) in str(e.value)
    assert fake_library[-1] == ({"pretrained": True} if IS_ONEFLOW else {"weights": V.TORCHVISION_WEIGHTS})


def test_missing_library_says_how_to_install(monkeypatch):
    monkeypatch.setattr(V, "_state", {"module": None, "error": "ModuleNotFoundError: no module"})
    assert V.model_names() == [] and not V.is_model_name("resnet18") and V.weights_url("resnet18") is None
    with pytest.raises(V.VisionModelError, match="pip install"):
        V.create_model("resnet18")


# ------------------------------------------------------------------------------------------- the real library
@pytest.fixture
def real_library():
    if importlib.util.find_spec(V.LIBRARY) is None or not V.available():
        pytest.skip(f"{V.LIBRARY} is not installed beside this backend")
    return V.library()


def test_real_resnet18_reshaped(real_library):
    assert {"resnet18", "efficientnet_b0", "mobilenet_v2"} <= set(V.model_names())
    model = reshape_classifier_output(V.create_model("resnet18", pretrained=False), 3)
    model.eval()
    assert tuple(model(from_numpy(np.zeros((2, 3, 32, 32), np.float32))).shape) == (2, 3)
    eff = reshape_classifier_output(V.create_model("efficientnet_b0", pretrained=False), 5)
    assert eff.classifier[-1].out_features == 5
    assert V.weights_url("resnet18").startswith("https://")


def test_real_offline_pretrained(real_library, monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWVISION_CACHE", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    target = "flowvision.models.utils.urlopen" if IS_ONEFLOW else "torch.hub.urlopen"
    monkeypatch.setattr(target, offline)
    with pytest.raises(DownloadError, match=str(tmp_path)):
        V.create_model("resnet18", pretrained=True)
