"""Write one-yolov5-style checkpoints with OneFlow itself (in the OneFlow venv) for tests/models/test_load_oneflow.py.

one-yolov5 saves with ``oneflow.save`` (``import oneflow as torch; torch.save(ckpt, last)``): a dict whose 'model' and
'ema' are whole pickled model objects (class paths ``models.yolo.*`` / ``models.common.*``, the same as ours) holding
OneFlow tensors. This script builds our models on the OneFlow backend, gives them random weights, and writes:

    OUT/run/weights/last.of/   v1.2.0 training checkpoint (FP32 'model', FP16 'ema', SGD state, opt with a PosixPath,
                               best_fitness array) as oneflow.save writes it: a folder (pickled_data + tensor_*/)
    OUT/run/opt.yaml           the run's flags, as one-yolov5 writes them next to weights/
    OUT/weights/last/          v1.0 / v1.1: the same checkpoint in a folder without suffix
    OUT/yolov5n.of/            a stripped release file (epoch -1, 'model' = the FP16 EMA, no optimizer)
    OUT/single.of              the single-file layout of later OneFlow builds ({'protocol_version': 1, 'oneflow':
                               None, 'data': ckpt} pickled with each tensor's data inline)
    OUT/seg.of/, OUT/cls.of/   stripped segmentation and classification checkpoints
    OUT/expected.npz           a fixed input and the eval outputs of each saved model (FP16 weights, FP32 compute)

Usage: YOLOV5_BACKEND=oneflow .venv/bin/python tests/models/oneflow_save.py OUT
"""

import copy
import os
import pathlib
import pickle
import sys
from datetime import datetime

import numpy as np
import oneflow as flow
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("YOLOV5_BACKEND", "oneflow")

from models.yolo import ClassificationModel, DetectionModel, SegmentationModel  # noqa: E402
from utils.data.synthetic import CLASS_NAMES  # noqa: E402
from utils.log import LOGGER  # noqa: E402


def randomised(model, seed):
    rng = np.random.default_rng(seed)
    with flow.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype != flow.float32 or name.endswith("anchors"):
                continue
            a = rng.normal(0, 0.05, tuple(t.shape)).astype(np.float32)
            if name.endswith(("running_var", "bn.weight")):
                a = np.abs(a) * 10 + 0.5
            t.copy_(flow.tensor(a))
    return model


def outputs(model, x):
    m = copy.deepcopy(model).float().eval()
    with flow.no_grad():
        y = m(flow.tensor(x))
    y = y if isinstance(y, (list, tuple)) else [y]
    return [t.numpy() for t in y if hasattr(t, "numpy")]


def training_checkpoint(model, names):
    """What one-yolov5 v1.2.0's train.py saves each epoch (FP32 model without deepcopy, FP16 EMA)."""
    ema = copy.deepcopy(model).half()
    opt = flow.optim.SGD(model.parameters(), lr=0.01, momentum=0.937, nesterov=True)
    model(flow.zeros(1, 3, 64, 64))[0].sum().backward()
    opt.step()
    opt.zero_grad()
    model.names = names
    return {"epoch": 0, "best_fitness": np.array([0.25]), "model": model, "ema": ema, "updates": 7,
            "optimizer": opt.state_dict(), "wandb_id": None,
            "opt": {"weights": "yolov5n.of", "cfg": "", "epochs": 2, "imgsz": 64,
                    "save_dir": pathlib.PosixPath("runs/train/exp"), "bbox_iou_optim": False},
            "git": {}, "date": datetime(2023, 3, 8).isoformat()}


def stripped(model):
    """one-yolov5's strip_optimizer: the EMA in FP16 without gradients becomes 'model'."""
    m = copy.deepcopy(model).half()
    for p in m.parameters():
        p.requires_grad = False
    return {"epoch": -1, "best_fitness": None, "model": m, "ema": None, "updates": None, "optimizer": None,
            "wandb_id": None, "opt": {}, "git": {}, "date": datetime(2023, 3, 8).isoformat()}


def main(out):
    out = pathlib.Path(out)
    LOGGER.setLevel(40)
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    det = randomised(DetectionModel("yolov5n.yaml", nc=6), 0)
    det.names = dict(enumerate(CLASS_NAMES))  # the synthetic dataset's classes, so val.py can score it
    ckpt = training_checkpoint(det, det.names)
    (out / "run" / "weights").mkdir(parents=True, exist_ok=True)
    flow.save(ckpt, str(out / "run" / "weights" / "last.of"))
    (out / "run" / "opt.yaml").write_text(yaml.safe_dump({"weights": "yolov5n.of", "cfg": "", "epochs": 2,
                                                          "bbox_iou_optim": False}))
    (out / "weights").mkdir(exist_ok=True)
    legacy = dict(ckpt, model=ckpt["model"], opt=dict(ckpt["opt"]))
    legacy["model"].names = list(det.names.values())  # v1.0 kept names as a list
    flow.save(legacy, str(out / "weights" / "last"))
    release = stripped(ckpt["ema"])
    release["model"].names = det.names
    flow.save(release, str(out / "yolov5n.of"))
    with open(out / "single.of", "wb") as f:  # tensors pickled outside oneflow.save's folder context: data inline
        pickle.dump({"protocol_version": 1, "oneflow": None, "data": release}, f)
    expected = {"x": x, "detect": outputs(release["model"], x)[0]}
    seg = randomised(SegmentationModel("yolov5n-seg.yaml", nc=2), 1)
    seg.names = {0: "a", 1: "b"}
    flow.save(stripped(seg), str(out / "seg.of"))
    expected["seg0"], expected["seg1"] = outputs(copy.deepcopy(seg).half(), x)[:2]
    cls = randomised(ClassificationModel(model=DetectionModel("yolov5n.yaml"), nc=4, cutoff=10), 2)
    cls.names = {i: f"c{i}" for i in range(4)}
    flow.save(stripped(cls), str(out / "cls.of"))
    expected["cls"] = outputs(copy.deepcopy(cls).half(), x)[0]
    np.savez(out / "expected.npz", **expected)
    print("written", sorted(p.name for p in out.iterdir()))


if __name__ == "__main__":
    main(sys.argv[1])
