"""utils/checkpoint.py: the framework-free reader/writer of PyTorch's zip checkpoints.

Torch-free tests run everywhere; tests that need PyTorch import it with pytest.importorskip inside the test.
"""

import collections
import json
import os
import pathlib
import pickletools
import struct
import subprocess
import sys
import textwrap
import types
import zipfile

import numpy as np
import pytest

from tests.utils import ckpt_forge as cf
from utils import checkpoint
from utils.checkpoint import writer as checkpoint_writer
from utils.checkpoint import CheckpointError, ModuleRecord, UnsafeCheckpointError

DTYPES = [np.float16, np.float32, np.float64, np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_, np.complex64]


def sample_arrays():
    rng = np.random.default_rng(0)
    arrays = {np.dtype(t).name: (rng.standard_normal((3, 5)) * 50).astype(t) for t in DTYPES}
    big = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    arrays.update(scalar0d=np.array(7, np.int64), half0d=np.array(1.5, np.float16), empty=np.zeros((0, 3), np.float32),
                  transposed=big.transpose(2, 0, 1), strided=big[:, ::2, 1::2], fortran=np.asfortranarray(big[0]))
    return arrays


def assert_same_array(got, want):
    assert isinstance(got, np.ndarray) and got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def record_names(path):
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


def rezip(src, dst, drop=(), replace=None):
    """Copy a zip, leaving out records whose name ends with one of `drop` and replacing the content of others."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            suffix = name.split("/", 1)[1]
            if suffix not in drop:
                zout.writestr(name, replace.get(suffix, zin.read(name)))


# ------------------------------------------------------------------------------------------------- round trips
def test_round_trip_arrays_exact(tmp_path):
    arrays = sample_arrays()
    checkpoint.write(arrays, tmp_path / "a.pt")
    back = checkpoint.read(tmp_path / "a.pt")
    assert list(back) == list(arrays)
    for key, want in arrays.items():
        assert_same_array(back[key], want)
        assert back[key].flags.c_contiguous and back[key].flags.writeable


def test_round_trip_plain_data(tmp_path):
    shared = np.ones(4, np.float16)
    data = {"epoch": 3, "best": 0.25, "ok": True, "none": None, "name": "exp", 5: "int key", 0.5: "float key",
            "od": collections.OrderedDict([("b", 1), ("a", [1, 2.5, None, "x", (1, "y")])]),
            "np_scalars": [np.float32(0.5), np.int64(-3), np.bool_(True)], "path": pathlib.PurePosixPath("/a/b"),
            "nested": {"deep": {"list": [shared, {"again": shared}]}}}
    checkpoint.write(data, tmp_path / "d.pt")
    back = checkpoint.read(tmp_path / "d.pt")
    assert type(back["od"]) is collections.OrderedDict and list(back["od"]) == ["b", "a"]
    assert back["od"]["a"] == [1, 2.5, None, "x", (1, "y")]
    assert back["np_scalars"] == [0.5, -3, True] and [type(v) for v in back["np_scalars"]] == [float, int, bool]
    assert back["path"] == "/a/b" and back[5] == "int key" and back[0.5] == "float key"
    assert back["epoch"] == 3 and back["best"] == 0.25 and back["ok"] is True and back["none"] is None
    again = back["nested"]["deep"]["list"]
    assert again[0] is again[1]["again"]  # one array object -> one tensor, as torch.save writes it
    assert sum(n.split("/", 1)[1].startswith("data/") for n in record_names(tmp_path / "d.pt")) == 1


def test_written_layout(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.write({"w": np.arange(10, dtype=np.float16), "n": np.array(1, np.int64)}, path)
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["last/data.pkl", "last/byteorder", "last/data/0", "last/data/1",
                                               "last/version"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        assert zf.read("last/byteorder") == b"little" and zf.read("last/version") == b"3\n"
        pkl = zf.read("last/data.pkl")
    raw = path.read_bytes()
    for info in infos:  # every payload starts on a 64-byte boundary (torch.load(mmap=True) relies on it)
        name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
        assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0
    assert pkl[:2] == b"\x80\x02"  # protocol 2
    globals_ = {arg for op, arg, _ in pickletools.genops(pkl) if op.name == "GLOBAL"}
    assert globals_ == {"torch._utils _rebuild_tensor_v2", "torch HalfStorage", "torch LongStorage",
                        "collections OrderedDict"}


@pytest.mark.parametrize("bad, where", [
    ({"a": {"b": [1, object()]}}, "obj['a']['b'][1]"),
    ({"s": {1, 2}}, "obj['s']"),
    ({"b": b"bytes"}, "obj['b']"),
    ({"c": 1 + 2j}, "obj['c']"),
    ({"o": np.array([None], dtype=object)}, "obj['o']"),
    ({"u": np.zeros(2, np.uint16)}, "obj['u']"),
    ({"r": ModuleRecord("models.common.Conv", {})}, "obj['r']"),
    ({(1, object()): 1}, "obj"),
])
def test_write_refuses_non_plain_data(tmp_path, bad, where):
    with pytest.raises(TypeError) as e:
        checkpoint.write(bad, tmp_path / "x.pt")
    assert where in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_cycles(tmp_path):
    loop = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(TypeError, match="circular"):
        checkpoint.write(loop, tmp_path / "x.pt")


def test_atomic_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.write({"epoch": 1, "w": np.ones(3, np.float32)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError):  # refused before anything touches the disk
        checkpoint.write({"epoch": 2, "deep": {"x": [np.ones(2), object()]}}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["last.pt"]

    calls = []

    def failing_writestr(self, info, data, *args, **kwargs):  # the disk "fills up" at the third record
        calls.append(info)
        if len(calls) == 3:
            raise OSError("No space left on device")
        return original(self, info, data, *args, **kwargs)

    original = zipfile.ZipFile.writestr
    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing_writestr)
    with pytest.raises(OSError, match="No space"):
        checkpoint.write({"epoch": 2, "w": np.zeros(3, np.float32), "v": np.zeros(2)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["last.pt"]
    assert checkpoint.read(path)["epoch"] == 1
    checkpoint.write({"epoch": 3}, path)
    assert checkpoint.read(path) == {"epoch": 3}


# ------------------------------------------------------------------------- ultralytics-layout (forged) files
@pytest.mark.parametrize("style", ["torch1", "torch2"])
def test_forged_ultralytics_checkpoint(tmp_path, style):
    model = cf.toy_detection_model()
    path = tmp_path / "toy.pt"
    cf.forge_ultralytics_checkpoint(path, model, style=style)
    assert record_names(path)[0] == "archive/data.pkl"  # the prefix need not be the file stem
    ckpt = checkpoint.read(path)
    assert list(ckpt) == ["epoch", "best_fitness", "model", "ema", "updates", "optimizer", "opt", "git", "date"]
    assert ckpt["epoch"] == -1 and ckpt["ema"] is None and ckpt["git"] == {}
    assert ckpt["opt"]["save_dir"] == "/home/user/runs/train/exp"  # a pathlib.PosixPath in the file

    rec = ckpt["model"]
    assert isinstance(rec, ModuleRecord) and rec.cls == "models.yolo.DetectionModel" and rec.name == "DetectionModel"
    assert rec.get("yaml") == cf.TOY_YAML and rec.yaml_file == "toy.yaml" and rec.get("missing", 1) == 1
    assert rec.names == {0: "cat", 1: "dog"} and rec.nc == 2 and rec.save == [2, 4, 7]
    assert_same_array(rec.stride, np.array([4.0, 8.0], np.float32))
    assert_same_array(rec.class_weights, np.array([0.7, 1.3], np.float32))  # a FloatStorage on 'cuda:0'

    want = cf.node_state_dict(model)
    got = rec.state_dict()
    assert list(got) == list(want) and len(got) == 95
    for key in want:
        assert_same_array(got[key], want[key])
    assert got["model.0.conv.weight"].dtype == np.float16 and got["model.0.bn.num_batches_tracked"].dtype == np.int64
    assert got["model.0.bn.num_batches_tracked"].shape == () and "model.0.conv.bias" not in got

    layers = rec.model._modules
    detect = layers["8"]
    assert detect.name == "Detect" and (detect.i, detect.f, detect.type) == (8, [7, 4], "models.yolo.Detect")
    assert detect.np == sum(v.size for k, v in got.items() if k.startswith("model.8.m."))
    assert len(detect.grid) == 2 and detect.grid[1].shape == (1, 3, 2, 2, 2)
    assert detect.anchor_grid[0].dtype == np.float16
    assert_same_array(detect.anchors[0], np.array([[2.5, 3.25], [4, 7.5], [8.25, 5.75]], np.float16))  # grid units
    assert detect.inplace is True and detect.nl == 2 and detect.no == 7
    conv_acts = [layers[str(i)].act for i in (0, 1, 3)] + [layers["2"].m._modules["0"].cv1.act]
    assert all(a is conv_acts[0] for a in conv_acts) and conv_acts[0].cls == "torch.nn.modules.activation.SiLU"
    bn = layers["0"].bn
    assert (bn.eps, bn.momentum) == (0.001, 0.03) and bn.training is False
    assert layers["5"].scale_factor == 2.0 and layers["4"].m.kernel_size == 5


def test_forged_pickle_matches_torch_module_pickling(tmp_path):
    path = tmp_path / "toy.pt"
    model = cf.toy_detection_model()
    cf.forge_ultralytics_checkpoint(path, model)
    with zipfile.ZipFile(path) as zf:
        ops = list(pickletools.genops(zf.read("archive/data.pkl")))
    names = [op.name for op, _, _ in ops]
    first = [arg for _, arg, _ in ops].index("models.yolo DetectionModel")
    assert names[first: first + 5] == ["GLOBAL", "BINPUT", "EMPTY_TUPLE", "NEWOBJ", "BINPUT"]  # cls.__new__(cls)
    assert names.count("BUILD") == len(list(_walk(model))) == 62  # one per module; the shared SiLU is built once
    globals_ = [arg for op, arg, _ in ops if op.name == "GLOBAL"]
    assert globals_.count("torch.nn.modules.activation SiLU") == 1
    assert {"torch HalfStorage", "torch LongStorage", "torch FloatStorage", "pathlib PosixPath",
            "__builtin__ set", "torch._utils _rebuild_parameter"} <= set(globals_)
    assert "cuda:0" in [arg for op, arg, _ in ops if op.name == "BINUNICODE"]


def test_yolov5_package_prefix_and_reforge(tmp_path):
    model = cf.toy_detection_model()
    first = tmp_path / "first.pt"
    cf.forge_ultralytics_checkpoint(first, model)
    node = cf.node_from_record(checkpoint.read(first)["model"])
    for n in _walk(node):  # the PyPI `yolov5` package pickles its classes under this prefix
        if n.cls.startswith("models."):
            n.cls = "yolov5." + n.cls
    cf.forge_ultralytics_checkpoint(tmp_path / "second.pt", node)
    rec = checkpoint.read(tmp_path / "second.pt")["model"]
    assert rec.cls == "yolov5.models.yolo.DetectionModel" and rec.name == "DetectionModel"
    want = cf.node_state_dict(model)
    got = rec.state_dict()
    assert list(got) == list(want) and all(np.array_equal(got[k], want[k]) for k in want)


def _walk(node, seen=None):
    seen = set() if seen is None else seen
    if id(node) not in seen:
        seen.add(id(node))
        yield node
        for child in node.children.values():
            yield from _walk(child, seen)


def test_numpy_objects_and_windows_paths(tmp_path):
    ema = cf.toy_detection_model(seed=1, dtype=np.float32)
    values = {"best_fitness": cf.NumpyValue(np.array([0.5, 0.25])), "f64": cf.NumpyValue(np.float64(0.125)),
              "i64": cf.NumpyValue(np.int64(-7)), "i32": cf.NumpyValue(np.arange(6, dtype=np.int32).reshape(2, 3)),
              "win": cf.ForgedPath(("C:\\", "runs", "exp"), cls="WindowsPath"), "ema": ema}
    cf.forge(tmp_path / "train.pt", values)
    back = checkpoint.read(tmp_path / "train.pt")
    assert_same_array(back["best_fitness"], np.array([0.5, 0.25]))
    assert back["f64"] == 0.125 and back["f64"].dtype == np.float64 and back["i64"] == -7
    assert_same_array(back["i32"], np.arange(6, dtype=np.int32).reshape(2, 3))
    assert back["win"] == "C:\\runs\\exp"
    assert back["ema"].state_dict()["model.0.conv.weight"].dtype == np.float32


def test_state_dict_skips_none_and_non_persistent_buffers():
    child = ModuleRecord("x.Child", {"_parameters": {"w": np.ones(1)}, "_buffers": {}, "_modules": {}})
    rec = ModuleRecord("x.Parent", {
        "_parameters": collections.OrderedDict(weight=np.zeros(2), bias=None),
        "_buffers": collections.OrderedDict(kept=np.ones(2), tmp=np.ones(3), gone=None),
        "_non_persistent_buffers_set": {"tmp"}, "_modules": collections.OrderedDict(a=child, b=None, c=child)})
    assert list(rec.state_dict()) == ["weight", "kept", "a.w", "c.w"]
    assert rec.name == "Parent" and rec.a is child and rec.weight is rec.attrs["_parameters"]["weight"]
    with pytest.raises(AttributeError):
        rec.nothing


def test_big_endian_file(tmp_path):
    checkpoint.write({"h": np.arange(4, dtype=np.float16), "l": np.arange(3, dtype=np.int64)}, tmp_path / "le.pt")
    swapped = {"byteorder": b"big", "data/0": np.arange(4, dtype=">f2").tobytes(),
               "data/1": np.arange(3, dtype=">i8").tobytes()}
    rezip(tmp_path / "le.pt", tmp_path / "be.pt", replace=swapped)
    back = checkpoint.read(tmp_path / "be.pt")
    assert_same_array(back["h"], np.arange(4, dtype=np.float16))
    assert_same_array(back["l"], np.arange(3, dtype=np.int64))


# ------------------------------------------------------------------------------------------------ refusals
class _Call:
    """Pickles as GLOBAL module.name + REDUCE(args): what a malicious file contains."""

    def __init__(self, module, name, *args):
        self.func, self.args = checkpoint_writer._Global(module, name), args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("module, name, make_args", [
    ("os", "system", lambda marker: (f"touch {marker}",)),
    ("posix", "system", lambda marker: (f"touch {marker}",)),
    ("builtins", "eval", lambda marker: (f"open({str(marker)!r}, 'w').close()",)),
    ("__builtin__", "exec", lambda marker: (f"open({str(marker)!r}, 'w').close()",)),
    ("subprocess", "Popen", lambda marker: (["touch", str(marker)],)),
    ("torch", "load", lambda marker: (str(marker),)),
])
def test_refuses_code_execution(tmp_path, module, name, make_args):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    opt = dict(cf.default_opt(), hook=_Call(module, name, *make_args(marker)))
    cf.forge_ultralytics_checkpoint(path, cf.toy_detection_model(), opt=opt)
    with pytest.raises(UnsafeCheckpointError) as e:
        checkpoint.read(path)
    assert f"'{module}.{name}'" in str(e.value) and str(path) in str(e.value)
    assert not marker.exists()


def test_refuses_unknown_yolo_class(tmp_path):
    model = cf.toy_detection_model()
    model.children["model"].children["9"] = cf.Node("models.yolo.Evil", {"payload": "x"})
    cf.forge_ultralytics_checkpoint(tmp_path / "evil.pt", model)
    with pytest.raises(UnsafeCheckpointError, match=r"'models\.yolo\.Evil'"):
        checkpoint.read(tmp_path / "evil.pt")


@pytest.mark.parametrize("target", [b"torch\nHalfStorage\n", b"models.common\nConv\n",
                                    b"torch._utils\n_rebuild_tensor_v2\n"])
def test_build_cannot_alter_allowed_globals(tmp_path, target):
    # BUILD with (None, {slot: value}) calls setattr on the object: allowed globals must stay read-only
    payload = (b"\x80\x02c" + target + b"N}X\x05\x00\x00\x00valueX\x02\x00\x00\x00i8s\x86b.")
    checkpoint_writer._write_archive(tmp_path / "x.pt", payload, [])
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.read(tmp_path / "x.pt")
    checkpoint.write({"h": np.ones(2, np.float16)}, tmp_path / "ok.pt")
    assert checkpoint.read(tmp_path / "ok.pt")["h"].dtype == np.float16


# -------------------------------------------------------------------------------------------------- errors
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        checkpoint.read(tmp_path / "nope.pt")


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (os.urandom(64).replace(b"P", b"Q"), "not a zip"),
    (b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", "legacy"),
    (b"\x80\x04\x95}.", "bare pickle"),
])
def test_not_a_zip(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as e:
        checkpoint.read(path)
    assert str(path) in str(e.value)


def test_directory(tmp_path):
    with pytest.raises(CheckpointError, match="directory"):
        checkpoint.read(tmp_path)


def test_truncated_zip(tmp_path):
    good = tmp_path / "good.pt"
    cf.forge_ultralytics_checkpoint(good, cf.toy_detection_model())
    for cut in (0.5, 0.99):
        bad = tmp_path / f"cut{cut}.pt"
        bad.write_bytes(good.read_bytes()[: int(good.stat().st_size * cut)])
        with pytest.raises(CheckpointError, match="truncated") as e:
            checkpoint.read(bad)
        assert str(bad) in str(e.value)


def test_broken_records(tmp_path):
    good = tmp_path / "good.pt"
    checkpoint.write({"w": np.arange(8, dtype=np.float32)}, good)
    cases = {"no_pkl.pt": ({"drop": ("data.pkl",)}, "no data.pkl"),
             "no_storage.pt": ({"drop": ("data/0",)}, "missing record 'good/data/0'"),
             "short.pt": ({"replace": {"data/0": b"\0" * 8}}, "has 8 bytes, expected 32"),
             "garbage.pt": ({"replace": {"data.pkl": b"\x80\x02}q\x00(X\x01"}}, "corrupt good/data.pkl"),
             "torchscript.pt": ({"replace": {"constants.pkl": b""}}, "TorchScript")}
    for name, (edit, message) in cases.items():
        bad = tmp_path / name
        if name == "torchscript.pt":
            with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
                for n in zin.namelist():
                    zout.writestr(n, zin.read(n))
                zout.writestr("good/constants.pkl", b"")
        else:
            rezip(good, bad, **edit)
        with pytest.raises(CheckpointError, match=message) as e:
            checkpoint.read(bad)
        assert str(bad) in str(e.value), name


def test_bad_tensor_geometry(tmp_path):
    checkpoint.write({"w": np.arange(8, dtype=np.float32)}, tmp_path / "ok.pt")
    with zipfile.ZipFile(tmp_path / "ok.pt") as zf:
        pkl = zf.read("ok/data.pkl")
    # size 8 -> 9: the view would read past the end of its 8-element storage
    bad = pkl.replace(b"K\x08\x85", b"K\x09\x85", 1)
    assert bad != pkl
    checkpoint_writer._write_archive(tmp_path / "bad.pt", bad, [("0", np.arange(8, dtype=np.float32).tobytes())])
    with pytest.raises(CheckpointError, match="exceeds its storage"):
        checkpoint.read(tmp_path / "bad.pt")


# ------------------------------------------------------------------------------------------ against PyTorch
def test_torch_loads_our_file_weights_only(tmp_path):
    torch = pytest.importorskip("torch")
    arrays = sample_arrays()
    data = {"arrays": arrays, "meta": {"epoch": 5, "names": {0: "a"}, "t": (1, 2.5), "l": [None, True, "s"]}}
    checkpoint.write(data, tmp_path / "ours.pt")
    for mmap in (False, True):
        loaded = torch.load(tmp_path / "ours.pt", weights_only=True, mmap=mmap)
        assert loaded["meta"] == data["meta"]
        for key, want in arrays.items():
            got = loaded["arrays"][key]
            assert isinstance(got, torch.Tensor) and tuple(got.shape) == want.shape
            assert_same_array(got.numpy(), want)


def test_read_torch_saved_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(120, dtype=torch.float32).reshape(4, 5, 6)
    tensors = {str(dt).split(".")[1]: (torch.arange(-6, 6) * 7).to(dt).reshape(3, 4) for dt in (
        torch.float16, torch.float32, torch.float64, torch.bfloat16, torch.int64, torch.int32, torch.int16, torch.int8,
        torch.uint8, torch.bool, torch.complex64, torch.uint16)}
    tensors.update(view=base[1:, ::2, 3], transposed=base.transpose(0, 2), narrowed=base.view(-1)[17:29],
                   scalar=torch.tensor(3.5, dtype=torch.float16), empty=torch.zeros(0, 4, dtype=torch.int64),
                   param=torch.nn.Parameter(torch.ones(2, 3)), base=base)
    tensors["tagged"] = torch.ones(3)  # a Python attribute on a tensor -> torch._tensor._rebuild_from_type_v2
    tensors["tagged"].note = "x"
    tensors["param_state"] = torch.nn.Parameter(torch.zeros(2))  # -> _rebuild_parameter_with_state
    tensors["param_state"].note = "y"
    torch.save({"t": tensors, "size": torch.Size([2, 3]), "dev": torch.device("cpu")}, tmp_path / "torch.pt")
    back = checkpoint.read(tmp_path / "torch.pt")
    assert back["size"] == (2, 3) and back["dev"] == "cpu"
    for key, t in tensors.items():
        want = t.detach().float().numpy() if t.dtype == torch.bfloat16 else t.detach().numpy()
        assert_same_array(back["t"][key], want)


def test_read_torch_saved_module(tmp_path):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8, eps=1e-3, momentum=0.03), nn.SiLU())
    model[1].running_mean += 0.5
    model.half().eval()
    torch.save({"model": model}, tmp_path / "m.pt")
    rec = checkpoint.read(tmp_path / "m.pt")["model"]
    assert rec.cls == "torch.nn.modules.container.Sequential" and rec.training is False
    want = model.state_dict()
    got = rec.state_dict()
    assert list(got) == list(want)
    for key, value in want.items():
        assert_same_array(got[key], value.numpy())
    assert rec._modules["1"].eps == 1e-3 and rec._modules["0"].kernel_size == (3, 3)


def test_read_refuses_unknown_module_class(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    plugin = types.ModuleType("thirdparty_nets")  # an importable module that is not on the allow-list

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 1)

    Net.__module__, Net.__qualname__, plugin.Net = "thirdparty_nets", "Net", Net
    monkeypatch.setitem(sys.modules, "thirdparty_nets", plugin)
    torch.save({"model": Net()}, tmp_path / "net.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"'thirdparty_nets\.Net'"):
        checkpoint.read(tmp_path / "net.pt")


TORCH_LOAD_WITH_STUBS = textwrap.dedent("""
    import sys, types
    import numpy as np, torch

    class Stubs(types.ModuleType):  # models.yolo / models.common with empty nn.Module classes made on demand
        def __getattr__(self, name):
            cls = type(name, (torch.nn.Module,), {"__module__": self.__name__})
            setattr(self, name, cls)
            return cls

    for name in ("models", "models.yolo", "models.common"):
        sys.modules[name] = Stubs(name)
    ckpt = torch.load(sys.argv[1], weights_only=False, map_location="cpu")
    model = ckpt["model"]
    np.savez(sys.argv[2], **{k: v.numpy() for k, v in model.state_dict().items()})
    print(type(model).__module__, type(model).__name__, type(ckpt["opt"]["save_dir"]).__name__)
""")


@pytest.mark.parametrize("style", ["torch1", "torch2"])
def test_torch_reads_forged_file(tmp_path, style):
    pytest.importorskip("torch")
    model = cf.toy_detection_model()
    cf.forge_ultralytics_checkpoint(tmp_path / "toy.pt", model, style=style)
    run = subprocess.run([sys.executable, "-c", TORCH_LOAD_WITH_STUBS, str(tmp_path / "toy.pt"),
                          str(tmp_path / "sd.npz")], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["models.yolo", "DetectionModel", "PosixPath"]
    with np.load(tmp_path / "sd.npz") as got:
        want = cf.node_state_dict(model)
        assert list(got.keys()) == list(want)
        for key in want:
            assert_same_array(got[key], want[key])


REFERENCE_SAVE = textwrap.dedent("""
    import copy, json, sys
    import numpy as np, torch
    from yolov5.models.yolo import DetectionModel
    torch.manual_seed(0)
    model = DetectionModel(json.loads(sys.argv[1]), ch=3, nc=2)
    model.names = {0: "cat", 1: "dog"}
    model.eval()
    model(torch.zeros(1, 3, 32, 32))  # fills Detect.grid / anchor_grid
    model.half()
    for p in model.parameters():
        p.requires_grad = False
    torch.save({"epoch": -1, "model": model, "ema": None}, sys.argv[2])
    np.savez(sys.argv[3], **{k: v.numpy() for k, v in model.state_dict().items()})
""")


@pytest.mark.slow
@pytest.mark.reference
def test_read_real_ultralytics_checkpoint(tmp_path, reference_python):
    """A checkpoint saved by the ultralytics reference (PyPI yolov5 7.0.14) reads into the same state_dict."""
    from tests.conftest import reference_env

    run = subprocess.run([reference_python, "-c", REFERENCE_SAVE, json.dumps(cf.TOY_YAML), str(tmp_path / "ref.pt"),
                          str(tmp_path / "ref.npz")], capture_output=True, text=True, timeout=600, env=reference_env(),
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    rec = checkpoint.read(tmp_path / "ref.pt")["model"]
    assert rec.cls == "yolov5.models.yolo.DetectionModel" and rec.names == {0: "cat", 1: "dog"}
    got = rec.state_dict()
    with np.load(tmp_path / "ref.npz") as want:
        assert list(got) == list(want.keys())
        for key in got:
            assert_same_array(got[key], want[key])
    layers = rec.model._modules
    assert layers["0"].act is layers["1"].act  # v7.0's shared Conv.default_act
    assert len(layers["8"].grid) == 2 and layers["8"].grid[0].size > 0


def _zip_with_pickle(path, data):
    import zipfile as _zf
    with _zf.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", data)
        z.writestr("archive/version", "3\n")
    return path


def test_method_reference_of_a_yolo_class_only(tmp_path):
    # protocol 2 pickles ultralytics' Segment.detect (= Detect.forward) as getattr(models.yolo.Detect, 'forward')
    good = (b"\x80\x02}q\x00X\x06\x00\x00\x00detectq\x01c__builtin__\ngetattr\nq\x02cmodels.yolo\nDetect\nq\x03"
            b"X\x07\x00\x00\x00forwardq\x04\x86q\x05Rq\x06s.")
    assert checkpoint.read(_zip_with_pickle(tmp_path / "m.pt", good)) == {"detect": "models.yolo.Detect.forward"}
    for bad in (good.replace(b"forward", b"__del__"), good.replace(b"models.yolo\nDetect", b"posix\nsystem")):
        with pytest.raises(checkpoint.CheckpointError):
            checkpoint.read(_zip_with_pickle(tmp_path / "bad.pt", bad))
