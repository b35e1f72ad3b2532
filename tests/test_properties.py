"""Property-based tests (Hypothesis) of the code that takes user data: label rows and polygons, dataset and model
YAMLs, letterbox and box conversions, NMS. Each property holds for every generated input, not just hand-picked ones.
Examples are few and small so the suite stays fast on one CPU core of OneFlow."""

import json
import math
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, other_env
from utils.backend import from_numpy, to_numpy
from utils.boxes import box_iou, scale_boxes, xywh2xyxy, xywhn2xyxy, xyxy2xywh, xyxy2xywhn
from utils.data import formats
from utils.data.augment import letterbox
from utils.errors import UserError
from utils.nms import non_max_suppression

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_IMAGE_DIR = Path(tempfile.mkdtemp(prefix="yolov5-props-"))
IMAGE = _IMAGE_DIR / "im.jpg"
cv2.imwrite(str(IMAGE), np.full((32, 40, 3), 127, np.uint8))

any_float = st.floats(allow_nan=True, allow_infinity=True, width=32)
unit = st.floats(0, 1, width=32)


def _verify(text):
    lb = _IMAGE_DIR / "im.txt"
    lb.write_text(text)
    return formats.verify_image_label((str(IMAGE), str(lb), ""))


# ------------------------------------------------------------------------------------------------------ label rows
@FAST
@given(st.lists(st.tuples(st.integers(0, 5), unit, unit, unit, unit) | st.tuples(any_float, any_float, any_float,
                                                                                  any_float, any_float),
                min_size=1, max_size=6))
def test_box_rows_accepted_exactly_when_finite_and_in_range(rows):
    text = "\n".join(" ".join(repr(float(v)) for v in r) for r in rows) + "\n"
    im_file, labels, _, _, _, nf, _, nc, msg = _verify(text)
    a = np.array(rows, np.float32)
    valid = np.isfinite(a).all() and (a >= 0).all() and (a[:, 1:] <= 1).all()
    if valid:
        assert im_file == str(IMAGE) and nc == 0 and nf == 1
        assert {tuple(r) for r in labels.tolist()} == {tuple(r) for r in a.tolist()}  # duplicates removed only
    else:
        assert im_file is None and nc == 1 and "im.txt" in msg or "negative" in msg or "out of bounds" in msg


@FAST
@given(st.lists(st.lists(st.tuples(unit, unit), min_size=3, max_size=8), min_size=1, max_size=4),
       st.booleans(), st.integers(0, 3))
def test_polygons_give_boxes_around_them_and_nan_is_refused(polys, poison, which):
    rows = [[i % 3] + [v for p in poly for v in p] for i, poly in enumerate(polys)]
    if poison:
        rows[which % len(rows)][1 + (which % (len(rows[which % len(rows)]) - 1))] = float("nan")
    text = "\n".join(" ".join(repr(float(v)) for v in r) for r in rows) + "\n"
    im_file, labels, _, segments, *_, nc, msg = _verify(text)
    if poison:
        assert im_file is None and nc == 1 and "non-finite" in msg and "im.txt" in msg
        return
    assert im_file == str(IMAGE) and len(labels) == len(segments) <= len(polys)
    for (c, x, y, w, h), seg in zip(labels, segments):
        assert seg.min(0)[0] >= x - w / 2 - 1e-5 and seg.max(0)[0] <= x + w / 2 + 1e-5
        assert seg.min(0)[1] >= y - h / 2 - 1e-5 and seg.max(0)[1] <= y + h / 2 + 1e-5


# --------------------------------------------------------------------------------------------------------- YAMLs
names_st = st.one_of(st.lists(st.text(max_size=5), max_size=4), st.dictionaries(st.integers(0, 5), st.text(max_size=5)),
                     st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2), st.none(), st.integers())


@FAST
@given(st.fixed_dictionaries({}, optional={"train": st.sampled_from(["images/train", "", None]),
                                           "val": st.sampled_from(["images/val", "missing/dir", None]),
                                           "names": names_st, "nc": st.one_of(st.integers(-1, 6), st.none()),
                                           "path": st.sampled_from([".", "nowhere", None])}))
def test_dataset_yaml_loads_or_fails_with_a_user_error(data):
    """(A split that is not a path, e.g. ``train: 3``, still raises a TypeError in dataset_yaml: left out here.)"""
    from utils.data.dataset_yaml import check_dataset

    root = _IMAGE_DIR / "ds"
    (root / "images" / "val").mkdir(parents=True, exist_ok=True)
    data = {**data, "path": str(root) if data.get("path") == "." else data.get("path")}
    try:
        out = check_dataset(data, autodownload=False)
    except (UserError, ValueError) as e:  # what the scripts report in one line; never a KeyError or a TypeError
        assert str(e)
        return
    assert isinstance(out["names"], dict) and all(isinstance(k, int) for k in out["names"])
    assert out["nc"] == len(out["names"]) and all(isinstance(v, str) for v in out["names"].values())


MODULES = ["Conv", "C3", "SPPF", "nn.Upsample", "Concat", "Bottleneck", "NoSuchBlock", "eval", "__import__"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(-3, 2), st.integers(-1, 2), st.sampled_from(MODULES),
                          st.lists(st.one_of(st.integers(-2, 16), st.sampled_from(["nearest", "None", "os.system"])),
                                   max_size=3)), min_size=1, max_size=3))
@example([(-1, 1, "nn.Upsample", [0, 0, 0])])  # found in CI: layers that build but cannot run, 'number' 0
@example([(-1, 1, "nn.Upsample", [1])])
@example([(-1, 1, "Conv", [0, 1, 1])])
@example([(-1, 0, "Conv", [0])])
def test_model_yaml_builds_or_fails_with_model_config_error(rows):
    from models.yolo import DetectionModel, ModelConfigError

    cfg = {"nc": 2, "depth_multiple": 0.33, "width_multiple": 0.25, "anchors": [[10, 13, 16, 30, 33, 23]],
           "backbone": [list(r) for r in rows], "head": [[-1, 1, "Conv", [16, 1, 1]], [[-1], 1, "Detect", ["nc",
                                                                                                       "anchors"]]]}
    try:
        DetectionModel(cfg)
    except ModelConfigError as e:
        assert "layer" in str(e) or "from" in str(e) or "module" in str(e) or str(e)


# ---------------------------------------------------------------------------------------------------- geometry
shape_st = st.tuples(st.integers(8, 120), st.integers(8, 120))


@FAST
@given(shape_st, st.integers(2, 6).map(lambda k: 32 * k), st.lists(st.tuples(unit, unit, unit, unit), min_size=1,
                                                                     max_size=5), st.booleans())
def test_letterbox_then_scale_boxes_round_trips(shape0, size, boxes, auto):
    h0, w0 = shape0
    im, ratio, (dw, dh) = letterbox(np.zeros((h0, w0, 3), np.uint8), size, auto=auto, stride=32)
    b = np.array([[min(x1, x2) * w0, min(y1, y2) * h0, max(x1, x2) * w0, max(y1, y2) * h0]
                  for x1, y1, x2, y2 in boxes], np.float32)
    on_letterbox = b * np.array([ratio[0], ratio[1]] * 2, np.float32) + np.array([dw, dh, dw, dh], np.float32)
    back = scale_boxes(im.shape[:2], on_letterbox.copy(), (h0, w0))
    assert max(im.shape[:2]) <= size and (not auto or all(s % 32 == 0 for s in im.shape[:2]) or max(im.shape) == size)
    np.testing.assert_allclose(back, b, atol=1.0 + 1e-3 * size)  # the padding is rounded to whole pixels


@FAST
@given(st.lists(st.tuples(unit, unit, unit, unit), min_size=1, max_size=8), st.integers(1, 2000),
       st.integers(1, 2000), st.booleans())
def test_box_conversions_round_trip(boxes, w, h, as_tensor):
    xyxy = np.array([[min(a, c), min(b, d), max(a, c), max(b, d)] for a, b, c, d in boxes], np.float32) * [w, h, w, h]
    x = from_numpy(xyxy) if as_tensor else xyxy
    np.testing.assert_allclose(to_numpy(xywh2xyxy(xyxy2xywh(x))) if as_tensor else xywh2xyxy(xyxy2xywh(x)), xyxy,
                               rtol=1e-5, atol=1e-3)
    n = xyxy2xywhn(x, w=w, h=h)
    back = xywhn2xyxy(n, w=w, h=h)
    np.testing.assert_allclose(to_numpy(back) if as_tensor else back, xyxy, rtol=1e-5, atol=1e-3)
    nn = to_numpy(n) if as_tensor else n
    assert (nn[:, 2:] >= -1e-6).all() and (nn[:, :2] >= -1e-6).all() and (nn[:, :2] <= 1 + 1e-6).all()


# ------------------------------------------------------------------------------------------------------------- NMS
def nms_case(seed, n=40, nc=3):
    """A reproducible (1, n, 5 + nc) prediction of clustered boxes with distinct scores."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(20, 200, (4, 2))
    xy = centres[rng.integers(0, 4, n)] + rng.normal(0, 8, (n, 2))
    wh = rng.uniform(10, 60, (n, 2))
    obj = rng.permutation(np.linspace(0.3, 0.99, n))  # distinct: no ties, so greedy NMS has one answer
    cls = rng.dirichlet(np.ones(nc), n)
    return np.concatenate([xy, wh, obj[:, None], cls], 1).astype(np.float32)[None]


def run_nms(pred, iou, agnostic):
    out = non_max_suppression(from_numpy(pred), conf_thres=0.1, iou_thres=iou, agnostic=agnostic, max_det=300)[0]
    return to_numpy(out)


@FAST
@given(st.integers(0, 10_000), st.floats(0.1, 0.9), st.booleans())
def test_nms_invariants(seed, iou, agnostic):
    pred = nms_case(seed)
    det = run_nms(pred, iou, agnostic)
    scores = det[:, 4]
    assert (np.diff(scores) <= 1e-6).all(), "sorted by score, best first"
    if len(det) > 1:
        ious = to_numpy(box_iou(from_numpy(det[:, :4]), from_numpy(det[:, :4])))
        same = np.ones_like(ious, bool) if agnostic else det[:, 5][:, None] == det[:, 5][None]
        np.fill_diagonal(same, False)
        assert (ious[same] <= iou + 1e-5).all(), "kept boxes of a class overlap at most iou_thres"
    conf = pred[0, :, 4:5] * pred[0, :, 5:]
    assert len(det) <= int((conf.max(1) > 0.1).sum())  # only candidates above conf_thres


NMS_CASES = [(seed, iou, agnostic) for seed in range(12) for iou, agnostic in [(0.45, False), (0.3, True)]]
_OTHER = """
import json, sys
sys.path.insert(0, {root!r})
from tests.test_properties import nms_case, run_nms
print(json.dumps([run_nms(nms_case(s), i, a).tolist() for s, i, a in {cases!r}]))
"""


def test_nms_same_on_both_backends(other_backend):
    name, py = other_backend
    code = _OTHER.format(root=str(ROOT), cases=NMS_CASES)
    r = subprocess.run([py, "-c", code], capture_output=True, text=True, env=other_env(name), cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    theirs = json.loads(r.stdout.strip().splitlines()[-1])
    for (seed, iou, agnostic), other in zip(NMS_CASES, theirs):
        ours = run_nms(nms_case(seed), iou, agnostic)
        assert ours.shape[0] == len(other), (seed, iou, agnostic)
        np.testing.assert_allclose(ours, np.array(other, np.float32).reshape(ours.shape), rtol=1e-5, atol=1e-3)
    assert math.isfinite(sum(len(o) for o in theirs))
