"""The synthetic dataset generator: determinism, label validity for each task, the CLI, and safety of --out."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from tests.conftest import ROOT
from utils.data.formats import IMG_FORMATS, verify_image_label
from utils.data.synthetic import CLASS_NAMES, main, make_dataset, parse_opt


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(Path(root).rglob("*"))
            if p.is_file() and p.suffix != ".yaml"}


def _rows(path):
    return [line.split() for line in Path(path).read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("task", ["detect", "segment", "classify"])
def test_same_seed_same_bytes(tmp_path, task):
    a = _files(make_dataset(tmp_path / "a", 4, 2, 64, seed=3, task=task).parent)
    b = _files(make_dataset(tmp_path / "b", 4, 2, 64, seed=3, task=task).parent)
    c = _files(make_dataset(tmp_path / "c", 4, 2, 64, seed=4, task=task).parent)
    images = [k for k in a if k.suffix[1:] in IMG_FORMATS]
    assert len(images) == 6
    assert a == b
    assert any(a[k] != c[k] for k in images)


def test_png_and_prefix_stability(tmp_path):
    """The first images do not depend on how many are made; PNG output is byte-stable too."""
    small = _files(make_dataset(tmp_path / "s", 2, 1, 64, seed=0, fmt="png").parent)
    big = _files(make_dataset(tmp_path / "b", 5, 3, 64, seed=0, fmt="png").parent)
    assert small and all(big[k] == v for k, v in small.items())
    assert all(k.suffix in (".png", ".txt") or k.name.startswith(".") for k in big)


def test_detect_labels_and_yaml(tmp_path):
    f = make_dataset(tmp_path / "d", 24, 6, 96, seed=0, task="detect")
    data = yaml.safe_load(f.read_text())
    assert f.name == "synthetic.yaml"
    assert data["path"] == str((tmp_path / "d").resolve())
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    assert data["names"] == dict(enumerate(CLASS_NAMES)) and data["nc"] == 6
    counts, classes = [], set()
    for lb in sorted((tmp_path / "d" / "labels" / "train").glob("*.txt")):
        rows = np.array(_rows(lb), dtype=np.float32).reshape(-1, 5)
        counts.append(len(rows))
        classes |= set(rows[:, 0].astype(int).tolist())
        assert ((rows[:, 1:] > 0) & (rows[:, 1:] <= 1)).all()
        x1, x2 = rows[:, 1] - rows[:, 3] / 2, rows[:, 1] + rows[:, 3] / 2
        assert (x1 >= -1e-6).all() and (x2 <= 1 + 1e-6).all()
    assert max(counts) >= 3 and len(classes) >= 5  # several objects per image, most classes present
    shapes = {cv2.imread(str(p)).shape[:2]
              for p in (tmp_path / "d" / "images" / "train").glob("*.jpg")}
    assert (96, 96) in shapes and len(shapes) > 1  # square and non-square images (rect batches get exercised)


def test_segment_polygons_match_detect_boxes(tmp_path):
    """Same seed: the segment task draws the same scenes; boxes from polygons match the detect boxes to ~1 px."""
    det = make_dataset(tmp_path / "det", 6, 0, 128, seed=1, task="detect").parent
    seg = make_dataset(tmp_path / "seg", 6, 0, 128, seed=1, task="segment").parent
    for i in range(6):
        img = det / "images" / "train" / f"{i:06d}.jpg"
        assert img.read_bytes() == (seg / "images" / "train" / f"{i:06d}.jpg").read_bytes()
        _, lb_seg, _, segments, *_, msg = verify_image_label((str(img), str(seg / "labels/train" / f"{i:06d}.txt"), ""))
        _, lb_det, *_ = verify_image_label((str(img), str(det / "labels/train" / f"{i:06d}.txt"), ""))
        assert len(lb_seg) == len(lb_det) and len(segments) == len(lb_seg)
        assert all(len(s) >= 3 for s in segments)
        np.testing.assert_allclose(lb_seg, lb_det, atol=1.5 / 96)


def test_classify_folders(tmp_path):
    f = make_dataset(tmp_path / "c", 12, 6, 48, seed=0, task="classify")
    root = f.parent
    assert f.name == "synthetic-cls.yaml"
    for split, n in (("train", 12), ("val", 6)):
        dirs = sorted(p.name for p in (root / split).iterdir())
        assert dirs == sorted(CLASS_NAMES)
        assert sum(len(list((root / split / d).glob("*.jpg"))) for d in dirs) == n
        assert all(len(list((root / split / d).glob("*.jpg"))) >= 1 for d in dirs)


def test_refuses_to_overwrite_foreign_folder_and_regenerates_own(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a synthetic dataset"):
        make_dataset(tmp_path / "mine", 1, 1, 64)
    assert (tmp_path / "mine" / "precious.txt").read_text() == "keep me"
    make_dataset(tmp_path / "own", 5, 1, 64)
    make_dataset(tmp_path / "own", 2, 1, 64)  # regenerating a smaller set leaves no stale files behind
    assert len(list((tmp_path / "own" / "images" / "train").iterdir())) == 2
    with pytest.raises(ValueError, match="task"):
        make_dataset(tmp_path / "x", 1, 1, 64, task="pose")


def test_cli(tmp_path, capsys):
    f = main(parse_opt(["--out", str(tmp_path / "cli"), "--n-train", "2", "--n-val", "1", "--imgsz", "64",
                        "--task", "segment"]))
    assert f == tmp_path / "cli" / "synthetic-seg.yaml" and f.is_file()
    assert "synthetic-seg.yaml" in capsys.readouterr().out


def test_cli_needs_no_framework(tmp_path):
    """`python -m utils.data.synthetic` runs without importing a deep-learning framework (lazy utils.data)."""
    code = ("import sys; from utils.data.synthetic import main, parse_opt; "
            f"main(parse_opt(['--out', r'{tmp_path / 'x'}', '--n-train', '1', '--n-val', '1', '--imgsz', '32'])); "
            "bad = [m for m in ('oneflow', 'torch', 'utils.backend') if m in sys.modules]; assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_cli_errors_are_one_line(tmp_path):
    occupied = tmp_path / "mine"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("keep me")
    for argv, words in ((["--imgsz", "16", "--out", str(tmp_path / "a")], "--imgsz must be >= 32"),
                        (["--out", str(occupied)], "is not a synthetic dataset")):
        r = subprocess.run([sys.executable, "-m", "utils.data.synthetic", *argv], cwd=ROOT, capture_output=True,
                           text=True)
        assert r.returncode == 1 and r.stderr.startswith("ERROR: ") and words in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    assert (occupied / "notes.txt").read_text() == "keep me"
