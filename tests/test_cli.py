"""Command-line compatibility: every ultralytics v7.0 flag of every script, with its aliases, default and help.

tests/data/ultralytics_v7_flags.json is the golden list (one entry per script, from ultralytics v7.0's parse_opt()
calls); our parsers must take each flag with the same default (plus --backend), and run(**kwargs) must start from
the same defaults.
"""

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from utils import cli

GOLDEN = json.loads((Path(__file__).parent / "data" / "ultralytics_v7_flags.json").read_text())
# flags that are not ultralytics': one-yolov5's speed flags (its train scripts) and --graph (issue 14), after the rest
SPEED_TRAIN = ["--bbox_iou_optim", "--multi_tensor_optimizer", "--graph"]
EXTRA = {"train": SPEED_TRAIN, "segment/train": SPEED_TRAIN, "classify/train": ["--multi_tensor_optimizer", "--graph"],
         **dict.fromkeys(("val", "detect", "segment/val", "segment/predict", "classify/val", "classify/predict"),
                         ["--graph"])}


def _default(text):
    """The golden table's default cell as a Python value."""
    text = text.replace(" (store_true)", "")
    if text.startswith("ROOT/"):
        return ROOT / text[5:]
    if text == '"" (empty)':
        return ""
    if text.startswith("["):
        return [_default(x.strip()) for x in text[1:-1].split(",")]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"None": None, "True": True, "False": False}.get(text, text)


def _actions(script):
    return {a.option_strings[0]: a for a in cli.parser(script)._actions if a.option_strings and a.dest != "help"}


@pytest.mark.parametrize("script", sorted(GOLDEN))
def test_flags_defaults_and_help_match_ultralytics_v7(script):
    ours, golden = _actions(script), GOLDEN[script]
    assert list(ours)[len(ours) - len(EXTRA.get(script, [])) - 1:] == [*EXTRA.get(script, []), "--backend"], script
    assert set(ours) == set(golden) | set(EXTRA.get(script, [])) | {"--backend"}, script
    kept = [f for f in golden if not golden[f].get("removed_at_head")]  # the table lists those last
    assert [f for f in ours if f in kept] == kept, "flags in ultralytics' order (what --help lists)"
    for flag, g in golden.items():
        a = ours[flag]
        assert set(g["aliases"]) <= set(a.option_strings[1:]), flag  # ours may add one (--local-rank: torchrun)
        want = _default(g["default"])
        got = [Path(x) if isinstance(x, Path) else x for x in a.default] if isinstance(a.default, list) else a.default
        assert got == want, (script, flag, got, want)
        assert a.help.replace("%%", "%").replace('"', "") == g["help"], (script, flag)  # the table drops quotes
        assert (a.nargs == "+") == ("nargs=+" in g["type"]), (script, flag)


def test_one_yolov5_speed_flags():
    """one-yolov5's names and help (FACTS 2.1), off by default; --graph wherever a model runs."""
    for script, extra in EXTRA.items():
        acts = _actions(script)
        for flag in extra:
            assert acts[flag].default is False and acts[flag].nargs == 0, (script, flag)
    assert _actions("train")["--bbox_iou_optim"].help == "optim bbox_iou function in compute_loss"
    assert _actions("train")["--multi_tensor_optimizer"].help == "apply multi_tensor implement in optimizer"
    opt = cli.parse("train", ["--multi_tensor_optimize"])  # the OneFlow docs' spelling, an argparse prefix
    assert opt.multi_tensor_optimizer


def test_backend_flag_everywhere():
    for script in cli.SCRIPTS:
        a = _actions(script)["--backend"]
        assert a.default is None and a.choices == ["oneflow", "torch"]


def test_options_is_the_command_line_without_argv():
    opt = cli.options("val", {"imgsz": 320, "data": "x.yaml"})
    assert opt.imgsz == 320 and opt.data == "x.yaml" and opt.conf_thres == 0.001 and opt.project == ROOT / "runs/val"
    assert vars(cli.options("val", {})) == cli.defaults("val") == vars(cli.parse("val", []))
    with pytest.raises(TypeError, match=r"val.run\(\) got unknown argument\(s\) \['img_size'\]"):
        cli.options("val", {"img_size": 320})


def test_typed_configs_take_the_flags_and_leave_the_namespace_alone(tmp_path):
    from utils.engine.config import ClassifyTrainConfig, DetectTrainConfig, SegmentTrainConfig, ValConfig

    opt = cli.options("train", {"freeze": [10], "imgsz": 320})
    before = dict(vars(opt))
    cfg = DetectTrainConfig.from_opt(opt, save_dir=str(tmp_path), hyp={"lr0": 0.01})
    assert vars(opt) == before, "from_opt must not modify the Namespace"
    assert cfg.freeze == (10,) and cfg.imgsz == 320 and cfg.save_dir == tmp_path and cfg.hyp == {"lr0": 0.01}
    assert cfg.opt["hyp"] == {"lr0": 0.01} and cfg.opt["save_dir"] == str(tmp_path) and cfg.opt["weights"].endswith(
        "yolov5s.pt"), "opt.yaml records the flags as plain data"
    with pytest.raises(Exception):  # frozen
        cfg.epochs = 3
    seg = SegmentTrainConfig.from_opt(cli.options("segment/train", {"no_overlap": True}), save_dir=tmp_path, hyp={})
    assert seg.overlap is False and seg.mask_ratio == 4
    cls_cfg = ClassifyTrainConfig.from_opt(cli.options("classify/train", {"pretrained": "False"}), save_dir=tmp_path)
    assert cls_cfg.pretrained is False and cls_cfg.patience is None and cls_cfg.optimizer == "Adam"
    assert ValConfig.from_opt(cli.options("val", {})).iou_thres == 0.6
    with pytest.raises(TypeError, match="no value for"):
        DetectTrainConfig.from_opt(cli.options("val", {}), save_dir=tmp_path, hyp={})


def test_demo_processes_default_to_one_per_core_for_oneflow_on_a_cpu():
    from utils import demo
    assert demo.parse_opt([]).nproc == 0  # auto
    assert demo.default_nproc("oneflow", cores=2, gpu=False) == 2
    assert demo.default_nproc("oneflow", cores=16, gpu=False) == 2  # the demo batch of 16: at most 2 x 8
    assert demo.default_nproc("oneflow", cores=1, gpu=False) == 1
    assert demo.default_nproc("oneflow", cores=8, gpu=True) == 1
    assert demo.default_nproc("torch", cores=2, gpu=False) == 1
    assert demo.parse_opt(["--nproc", "1"]).nproc == 1
