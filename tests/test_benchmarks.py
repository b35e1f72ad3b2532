"""benchmarks.py: the ultralytics-style table over every export format, on a tiny model and synthetic data."""

import shutil

import pytest

from tests.test_detect import log_messages
from tests.test_export import IMGSZ, make_checkpoint
from utils.backend import NAME


def test_table_over_every_format(tmp_path):
    import benchmarks
    from utils.data.synthetic import make_dataset
    from utils.export import export_formats

    w = make_checkpoint(tmp_path / "bench.pt", crafted=True)
    data = str(make_dataset(tmp_path / "ds", n_train=1, n_val=2, imgsz=IMGSZ, seed=4))
    kw = dict(weights=w, imgsz=IMGSZ, data=data, device="cpu", project=tmp_path / "runs")
    with log_messages() as log:
        table = benchmarks.run(hard_fail=True, **kw)  # formats unavailable here are not hard failures
    assert list(table.columns) == ["Format", "Size (MB)", "mAP50-95", "Inference time (ms)"]
    assert list(table["Format"]) == list(export_formats()["Format"])
    ran = table.dropna().set_index("Format")
    assert set(ran.index) == ({"PyTorch", "TorchScript", "ONNX"} if NAME == "torch" else {"PyTorch", "ONNX"})
    assert (ran["Size (MB)"] > 0).all() and (ran["Inference time (ms)"] > 0).all()
    assert ran["mAP50-95"].nunique() == 1  # every format finds the same boxes (square inference for all)
    assert any("Benchmark failure for TensorFlow Lite: TensorFlow exports" in m for m in log)
    assert any(m.startswith("\nBenchmarks complete") for m in log)
    assert (tmp_path / "bench.onnx").is_file()

    shutil.rmtree(tmp_path / "runs")
    with pytest.raises(RuntimeError, match=r"HARD FAIL: mAP50-95 < floor 0.99: PyTorch"):
        benchmarks.run(pt_only=True, hard_fail="0.99", **kw)


def test_flags_match_ultralytics_v7():
    import benchmarks

    opt = vars(benchmarks.parse_opt([]))
    assert {k: v for k, v in opt.items() if k not in ("weights", "data", "backend")} == {
        "imgsz": 640, "batch_size": 1, "device": "", "half": False, "test": False, "pt_only": False,
        "hard_fail": False}
    assert str(opt["weights"]).endswith("yolov5s.pt") and str(opt["data"]).endswith("data/coco128.yaml")
    assert benchmarks.parse_opt(["--hard-fail"]).hard_fail is True
    assert benchmarks.parse_opt(["--hard-fail", "0.29"]).hard_fail == "0.29"
