"""Parity of the model family with ultralytics YOLOv5 v7.0 (the reference venv, run as a child process).

For every model YAML of this repository, the reference builds its own model from the same file and reports what
tests/parity/ultralytics_dump.py records; ours must have the same state_dict (ordered keys, shapes, dtypes), layer
table, summary numbers (layers, parameters, gradients, GFLOPs; unfused and fused), strides and anchors.
Official-layout release files written by the reference (whole pickled models, FP16, ``models.yolo.*`` class paths)
must load through our attempt_load (fused) and load_checkpoint_model (unfused) and give the reference's outputs.

The same file runs under either backend (YOLOV5_BACKEND=oneflow or torch). Configs above ~40M parameters and the P6
checkpoint are marked slow. The reference runs once per tier and session (about 40 s for the default tier here).
"""

import json
import logging
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, reference_env

pytestmark = pytest.mark.reference

DUMP = Path(__file__).with_name("ultralytics_dump.py")

# ------------------------------------------------------------------------------------------------------- the cases
# Configs of more than ~40M parameters (reference counts), built only in the slow tier.
LARGE = {"yolov5l", "yolov5x", "hub/yolov3", "hub/yolov3-spp", "hub/yolov5-bifpn", "hub/yolov5-fpn", "hub/yolov5-p2",
         "hub/yolov5-p6", "hub/yolov5-p7", "hub/yolov5-panet", "hub/yolov5l6", "hub/yolov5x6", "segment/yolov5l-seg",
         "segment/yolov5x-seg", "yolov5x-cls"}
CLS_SIZES = "nsmlx"


def _yaml_cases():
    found = sorted(ROOT.glob("models/*.yaml")) + sorted(ROOT.glob("models/hub/yolo*.yaml"))
    found += sorted(ROOT.glob("models/segment/*.yaml"))
    return {str(p.relative_to(ROOT / "models").with_suffix("")): p for p in found}


YAMLS = _yaml_cases()  # case id ('yolov5s', 'hub/yolov5n6', 'segment/yolov5n-seg') -> path
CASES = list(YAMLS) + [f"yolov5{s}-cls" for s in CLS_SIZES]
TIERS = {"default": [c for c in CASES if c not in LARGE], "slow": [c for c in CASES if c in LARGE]}
CHECKPOINTS = {"default": ["yolov5n", "yolov5n-seg", "yolov5n-cls"], "slow": ["yolov5n6"]}


def _params(names, tier):
    return [pytest.param(n, id=n, marks=[pytest.mark.slow] if tier == "slow" else []) for n in names]


CONFIG_PARAMS = _params(TIERS["default"], "default") + _params(TIERS["slow"], "slow")
CHECKPOINT_PARAMS = _params(CHECKPOINTS["default"], "default") + _params(CHECKPOINTS["slow"], "slow")


def _tier(case):
    return "slow" if case in LARGE or case in CHECKPOINTS["slow"] else "default"


# ------------------------------------------------------------------------------------------------- the reference
def _start_reference(python, out, tier):
    """One reference process per tier: the config records of that tier and its official-layout checkpoints."""
    cases = TIERS[tier]
    yamls = [str(YAMLS[c]) for c in cases if c in YAMLS]
    cls_sizes = "".join(c[len("yolov5")] for c in cases if c.endswith("-cls"))
    cmd = [python, str(DUMP), "--root", str(ROOT), "--configs", str(out / "configs.json"), *yamls,
           "--cls-sizes", cls_sizes, "--checkpoint", str(out), "--cfg", *CHECKPOINTS[tier]]
    log = open(out / "dump.log", "w")  # the reference prints every layer table: a file, not a pipe that could fill
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=reference_env(), cwd=out)
    return proc, log, cmd, out, time.time()


def _finish_reference(started):
    """The tier's records (with the dump's failure message, if the checkpoints failed after the configs were
    written), or that message alone (a str) if not even the configs were written."""
    proc, log, cmd, out, t = started
    try:
        rc = proc.wait(timeout=1800)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "timeout (1800 s)"
    finally:
        log.close()
    error = ""
    if rc:
        tail = (out / "dump.log").read_text(errors="replace")[-4000:]
        error = f"the reference dump failed (rc {rc}):\n{' '.join(cmd)}\n{tail}"
        if not (out / "configs.json").exists():
            return error
    result = json.loads((out / "configs.json").read_text())  # written before the checkpoints are
    result["dir"], result["seconds"], result["error"] = out, time.time() - t, error
    return result


def _selected_cases(session):
    """tier -> the config cases that this session's selected tests will compare."""
    chosen = {item.callspec.params["case"] for item in session.items
              if hasattr(item, "callspec") and "case" in item.callspec.params and item.module.__name__ == __name__}
    return {tier: [c for c in cases if c in chosen] for tier, cases in TIERS.items()}


@pytest.fixture(scope="session")
def reference_tiers(reference_python, tmp_path_factory, request):
    """tier -> reference records, each tier dumped on first use (once per session).

    While the reference process runs (one thread), this process builds its own models of the selected cases of that
    tier, so the two sides share the two cores instead of taking turns.
    """
    selected, done = _selected_cases(request.session), {}

    def get(tier):
        if tier not in done:
            started = _start_reference(reference_python, tmp_path_factory.mktemp(f"ultralytics-{tier}"), tier)
            try:
                with _single_thread():
                    for case in selected[tier]:
                        if started[0].poll():  # the reference failed: report that now
                            break
                        try:
                            ours(case)
                        except Exception:  # noqa: BLE001 (raised again, in that case's own tests)
                            pass
            finally:
                done[tier] = _finish_reference(started)  # a failure message (str) is kept: the dump runs once
        if isinstance(done[tier], str):
            pytest.fail(done[tier], pytrace=False)
        return done[tier]

    return get


# ----------------------------------------------------------------------------------------------------------- ours
class _Quiet:
    """The layer tables and summaries of ~30 builds would drown pytest's output."""

    def __enter__(self):
        from utils.log import LOGGER  # noqa: PLC0415
        self.logger, self.level = LOGGER, LOGGER.level
        LOGGER.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


def _summary(model, info):
    layers, params, grads, gflops = info
    sd = [[k, list(v.shape), str(v.dtype).split(".")[-1]] for k, v in model.state_dict().items()]
    return {"layers": layers, "params": params, "gradients": grads, "gflops": gflops, "state_dict": sd}


_OURS = {}


class _single_thread:
    """PyTorch on one thread while the reference process busies the other core (PyTorch's spinning OpenMP threads
    slow down many times when a core is shared); OneFlow runs its CPU kernels on one thread anyway."""

    def __enter__(self):
        from utils.backend import IS_ONEFLOW, torch  # noqa: PLC0415
        self.torch = None if IS_ONEFLOW else torch
        if self.torch is not None:
            self.threads = torch.get_num_threads()
            torch.set_num_threads(1)

    def __exit__(self, *exc):
        if self.torch is not None:
            self.torch.set_num_threads(self.threads)


def ours(case):
    """What the dump records, measured on our model of ``case`` (built once per process, then only the record kept)."""
    if case in _OURS:
        return _OURS[case]
    from models.yolo import ClassificationModel, Detect, DetectionModel, load_model_yaml, model_class_for  # noqa
    from utils.backend import to_numpy  # noqa: PLC0415
    from utils.model_tools import model_info  # noqa: PLC0415
    t = time.time()
    with _Quiet():
        if case.endswith("-cls"):
            det = DetectionModel(str(ROOT / "models" / f"{case[:-len('-cls')]}.yaml"))
            model = ClassificationModel(model=det, nc=1000, cutoff=10)
        else:
            path = YAMLS[case]
            model = model_class_for(load_model_yaml(path))(str(path))
        model.eval()
        rec = {"unfused": _summary(model, model_info(model)), "save": list(model.save),
               "table": [{"i": m.i, "f": m.f, "params": sum(p.numel() for p in m.parameters()), "type": m.type}
                         for m in model.model]}
        head = model.model[-1]
        if isinstance(head, Detect):
            rec["stride"] = [float(s) for s in to_numpy(head.stride)]
            rec["anchors"] = to_numpy(head.anchors).tolist()
            rec["nc"], rec["na"], rec["nl"], rec["no"] = head.nc, head.na, head.nl, head.no
        else:
            rec["stride"] = [float(s) for s in to_numpy(model.stride).ravel()]
        model.fuse()
        rec["fused"] = _summary(model, model_info(model))
    rec["seconds"] = time.time() - t
    _OURS[case] = rec
    return rec


def reference(reference_tiers, case):
    tier = reference_tiers(_tier(case))
    rec = tier["classify"].get(case) if case.endswith("-cls") else tier["configs"].get(f"models/{case}.yaml")
    assert rec is not None, f"the reference dump has no record for {case}"
    if "error" in rec:
        pytest.fail(f"the reference could not build {case}: {rec['error']}")
    return rec


# ------------------------------------------------------------------------------------------------------- messages
def _first_differences(ref, got, what, limit=5):
    """'' if the sequences are equal, else a message naming the first differing positions."""
    if ref == got:
        return ""
    lines = [f"{what}: reference has {len(ref)} entries, ours {len(got)}"]
    n = 0
    for i in range(max(len(ref), len(got))):
        a = ref[i] if i < len(ref) else "<missing>"
        b = got[i] if i < len(got) else "<missing>"
        if a != b:
            lines.append(f"  [{i}] reference {a}  ours {b}")
            n += 1
            if n == limit:
                break
    missing = [x[0] for x in ref if isinstance(x, list) and x[0] not in {y[0] for y in got}]
    extra = [x[0] for x in got if isinstance(x, list) and x[0] not in {y[0] for y in ref}]
    if missing or extra:
        lines.append(f"  keys only in the reference: {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        lines.append(f"  keys only in ours: {extra[:8]}{' ...' if len(extra) > 8 else ''}")
    return "\n".join(lines)


def _check(problems):
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# ---------------------------------------------------------------------------------------------------- config tests
@pytest.mark.parametrize("case", CONFIG_PARAMS)
def test_state_dict(case, reference_tiers):
    """Same ordered state_dict keys, shapes and dtypes as the reference, unfused (training) and fused (inference)."""
    ref, got = reference(reference_tiers, case), ours(case)
    _check([m for m in (_first_differences(ref[k]["state_dict"], got[k]["state_dict"], f"{case} {k} state_dict")
                        for k in ("unfused", "fused")) if m])


@pytest.mark.parametrize("case", CONFIG_PARAMS)
def test_summary(case, reference_tiers):
    """model_info's layers, parameters and GFLOPs (unrounded within 0.05, and the same one-decimal printout)."""
    ref, got = reference(reference_tiers, case), ours(case)
    problems = []
    for k in ("unfused", "fused"):
        r, g = ref[k], got[k]
        for field in ("layers", "params"):
            if r[field] != g[field]:
                problems.append(f"{case} {k} {field}: reference {r[field]}, ours {g[field]}")
        if g["gflops"] is None:
            problems.append(f"{case} {k} GFLOPs: ours could not count them (reference {r['gflops']:.4f})")
        elif abs(g["gflops"] - r["gflops"]) > 0.05 or f"{g['gflops']:.1f}" != r["gflops_printed"]:
            problems.append(f"{case} {k} GFLOPs@640: reference {r['gflops']:.4f} (prints {r['gflops_printed']}), "
                            f"ours {g['gflops']:.4f} (prints {g['gflops']:.1f})")
    _check(problems)


@pytest.mark.parametrize("case", CONFIG_PARAMS)
def test_summary_gradients(case, reference_tiers):
    """The 'gradients' of the summary line. ultralytics' fuse_conv_and_bn copies BN tensors that require grad into
    its fused conv, so its fused weights require grad again and the fused summary prints gradients == parameters."""
    ref, got = reference(reference_tiers, case), ours(case)
    _check([f"{case} {k} gradients: reference {ref[k]['gradients']}, ours {got[k]['gradients']}"
            for k in ("unfused", "fused") if ref[k]["gradients"] != got[k]["gradients"]])


@pytest.mark.parametrize("case", CONFIG_PARAMS)
def test_layer_table(case, reference_tiers):
    """Per layer: index, from, parameters and type string; and the list of saved outputs."""
    ref, got = reference(reference_tiers, case), ours(case)
    rows = lambda t: [[r["i"], r["f"], r["params"], r["type"]] for r in t]  # noqa: E731
    _check([m for m in (_first_differences(rows(ref["table"]), rows(got["table"]), f"{case} layers [i, f, params, type]"),
                        _first_differences(ref["save"], got["save"], f"{case} save")) if m])


@pytest.mark.parametrize("case", CONFIG_PARAMS)
def test_head(case, reference_tiers):
    """Strides, anchors (grid units, after the anchor-order check) and the head's nc / na / nl / no."""
    ref, got = reference(reference_tiers, case), ours(case)
    problems = []
    if ref["stride"] != got["stride"]:
        problems.append(f"{case} stride: reference {ref['stride']}, ours {got['stride']}")
    if "anchors" in ref:
        a, b = np.asarray(ref["anchors"]), np.asarray(got.get("anchors", []))
        if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=1e-6):
            problems.append(f"{case} anchors (grid units):\n  reference {ref['anchors']}\n  ours      {got.get('anchors')}")
        for k in ("nc", "na", "nl", "no"):
            if ref[k] != got.get(k):
                problems.append(f"{case} Detect.{k}: reference {ref[k]}, ours {got.get(k)}")
    _check(problems)


# ------------------------------------------------------------------------------------------------ checkpoint tests
# Tolerances. Both sides run float32 on identical (FP16-stored) weights but sum in different orders (other conv
# kernels; fusion as W*s here vs diag(s)@W there). The reference's OWN fused and unfused outputs on this input differ
# by up to 4.5e-5 x max|raw head output| (yolov5n6; 8e-6 for yolov5n), 1.6e-4 x stride px on box centres, 8e-4 x wh
# on box sizes and 1.4e-4 on probabilities: that is the float32 noise floor of these networks, and ours (both
# backends) sits at the same level. 1e-3 px absolute on boxes is below that floor (a 1484 px box moves by 0.02-0.3 px
# between the reference's fused and unfused models). For scale, a BatchNorm eps of 1.1e-3 instead of 1e-3 moves the
# raw outputs by 10-40 % of their range, a wrong grid offset or anchor by >= 0.5 px or a factor. So:
RAW_RTOL = 2e-4  # raw head maps, protos, mask coefficients, logits: |d| <= RAW_RTOL * max|reference| (4x the floor)
XY_STRIDE_TOL = 5e-4  # box centres: |d| <= 5e-4 x the level's stride px (d xy = 2 sigmoid' stride d raw; 3x floor)
WH_ATOL, WH_RTOL = 1e-3, 5e-3  # box sizes: |d| <= WH_ATOL + WH_RTOL * wh px (d ln wh = 2 (1 - sigmoid) d raw)
PROB_ATOL = 5e-4  # objectness and class probabilities (sigmoid' <= 1/4; 3.5x the floor)


def _flatten(prefix, out, dst):
    from utils.backend import to_numpy  # noqa: PLC0415
    if isinstance(out, (list, tuple)):
        for i, o in enumerate(out):
            _flatten(f"{prefix}_{i}", o, dst)
    else:
        dst[prefix] = to_numpy(out).astype(np.float32)
    return dst


def _row_strides(meta, n_rows, im_shape):
    """Stride of every row of a decoded output (levels in order, each na * ny * nx rows)."""
    h, w = im_shape[-2:]
    cells = [(h // int(s)) * (w // int(s)) for s in meta["stride"]]
    na = n_rows // sum(cells)
    return np.concatenate([np.full(na * c, s, np.float32) for c, s in zip(cells, meta["stride"])])[:, None]


def _compare_decoded(name, key, ref, got, meta, im_shape):
    """Detect/Segment decoded output (b, N, 5 + nc [+ nm]): per-column tolerances."""
    nc, d = meta["nc"], np.abs(got - ref)
    problems = []
    groups = [("box centres xy", slice(0, 2), XY_STRIDE_TOL * _row_strides(meta, ref.shape[1], im_shape),
               f"{XY_STRIDE_TOL} x stride px"),
              ("box sizes wh", slice(2, 4), WH_ATOL + WH_RTOL * np.abs(ref[..., 2:4]), f"{WH_ATOL} + {WH_RTOL} x wh px"),
              ("objectness/class probabilities", slice(4, 5 + nc), PROB_ATOL, f"{PROB_ATOL}")]
    if ref.shape[-1] > 5 + nc:
        tol = RAW_RTOL * float(np.abs(ref[..., 5 + nc:]).max())
        groups.append(("mask coefficients", slice(5 + nc, None), tol, f"{tol:.3g}"))
    for what, cols, tol, text in groups:
        bad = d[..., cols] > tol
        if bad.any():
            b, row, col = (int(i) for i in np.argwhere(bad)[0])
            col += cols.start
            problems.append(f"{name} {key} {what}: {int(bad.sum())} values beyond {text} (max |d| "
                            f"{d[..., cols].max():.3g}); first at [{b}, {row}, {col}]: reference {ref[b, row, col]:.6g}, "
                            f"ours {got[b, row, col]:.6g}")
    return problems


def _compare_outputs(name, kind, ref_npz, got, meta):
    """Every output of ``kind`` (fused/unfused) against the reference's; a list of problems."""
    problems = []
    want = sorted(k for k in ref_npz.files if k.startswith(kind + "_") or k == kind)
    if sorted(got) != want:
        return [f"{name} {kind}: output structure differs: reference {want}, ours {sorted(got)}"]
    for key in want:
        r, g = ref_npz[key], got[key]
        if r.shape != g.shape:
            problems.append(f"{name} {key}: shape reference {r.shape}, ours {g.shape}")
        elif r.ndim == 3 and meta["task"] != "classify":
            problems += _compare_decoded(name, key, r, g, meta, ref_npz["im"].shape)
        else:
            tol = RAW_RTOL * max(float(np.abs(r).max()), 1e-6)
            d = np.abs(g - r)
            if (d > tol).any():
                idx = tuple(int(i) for i in np.argwhere(d > tol)[0])
                problems.append(f"{name} {key}: {int((d > tol).sum())} of {d.size} values beyond {tol:.3g} (max |d| "
                                f"{d.max():.3g}); first at {idx}: reference {r[idx]:.6g}, ours {g[idx]:.6g}")
    return problems


def _release_file(reference_tiers, name):
    tier = reference_tiers(_tier(name))
    if not (tier["dir"] / f"{name}.json").exists():
        pytest.fail(tier["error"] or f"the reference wrote no {name}.json", pytrace=False)
    meta = json.loads((tier["dir"] / f"{name}.json").read_text())
    return tier["dir"], meta


def _run(model, im):
    from utils.backend import torch  # noqa: PLC0415
    with torch.no_grad():
        return model(im)


def _check_loaded(model, meta, name):
    from utils.backend import to_numpy  # noqa: PLC0415
    problems = []
    names = {int(k): v for k, v in meta["names"].items()}
    if dict(model.names) != names:
        problems.append(f"{name} names: reference {dict(list(names.items())[:3])}..., "
                        f"ours {dict(list(dict(model.names).items())[:3])}...")
    stride = [float(s) for s in to_numpy(model.stride).ravel()]
    if stride != meta["stride"]:
        problems.append(f"{name} stride: reference {meta['stride']}, ours {stride}")
    return problems


@pytest.mark.parametrize("fused", [True, False], ids=["attempt_load-fused", "load_checkpoint_model-unfused"])
@pytest.mark.parametrize("name", CHECKPOINT_PARAMS)
def test_release_checkpoint_outputs(name, fused, reference_tiers):
    """An official-layout release file (FP16 pickled model, models.yolo.* classes, seeded non-trivial BatchNorms)
    loads through our attempt_load (fused) / load_checkpoint_model (unfused) and gives the reference's eval outputs
    on the same input (2x3x256x320): decoded boxes, protos, raw head maps, logits."""
    from models.experimental import attempt_load, load_checkpoint_model  # noqa: PLC0415
    from utils.backend import from_numpy  # noqa: PLC0415
    out_dir, meta = _release_file(reference_tiers, name)
    path = out_dir / (f"{name}-notransforms.pt" if meta["task"] == "classify" else f"{name}.pt")
    ref = np.load(out_dir / f"{name}.npz")
    model = attempt_load(str(path)) if fused else load_checkpoint_model(str(path))[0]
    assert not model.training, f"{name}: the loaded model is in training mode"
    kind = "fused" if fused else "unfused"
    got = _flatten(kind, _run(model, from_numpy(ref["im"])), {})
    _check(_check_loaded(model, meta, name) + _compare_outputs(name, kind, ref, got, meta))


def test_release_classifier_with_transforms(reference_tiers):
    """classify/train.py attaches ``model.transforms`` (torchvision Compose of utils.augmentations.CenterCrop,
    ToTensor and torchvision Normalize) before the EMA copy is made, so -cls release files pickle those classes too."""
    from models.experimental import attempt_load  # noqa: PLC0415
    from utils.backend import from_numpy  # noqa: PLC0415
    out_dir, meta = _release_file(reference_tiers, "yolov5n-cls")
    ref = np.load(out_dir / "yolov5n-cls.npz")
    model = attempt_load(str(out_dir / "yolov5n-cls.pt"))
    got = _flatten("fused", _run(model, from_numpy(ref["im"])), {})
    _check(_check_loaded(model, meta, "yolov5n-cls") + _compare_outputs("yolov5n-cls", "fused", ref, got, meta))
