"""A deterministic synthetic dataset in YOLO format: coloured shapes on textured backgrounds.

Six classes that differ by shape only (colour, size, aspect ratio and rotation are random): rectangle, ellipse,
triangle, star, ring, cross. Several objects per image may overlap a little; labels describe the *visible* pixels, so
a box or polygon is exact even for a partly hidden object. About one image in 16 is a background (empty label file).

Tasks:
  - detect:   images/{train,val}/*.jpg + labels/{train,val}/*.txt rows ``cls xc yc w h`` + ``synthetic.yaml``;
  - segment:  the same images, label rows ``cls x1 y1 x2 y2 ...`` (polygon) + ``synthetic-seg.yaml``;
  - classify: ``{train,val}/<class name>/*.jpg``, one large object per image + ``synthetic-cls.yaml``.
Every image has its own random generator seeded by (seed, split, index), so the same seed gives the same bytes and
the first N images do not depend on how many are made.

Usage:
    python -m utils.data.synthetic --out datasets/synthetic --n-train 128 --n-val 32 --imgsz 256 --seed 0
    python -m utils.data.synthetic --task segment      # datasets/synthetic-seg
"""

import functools
import shutil
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import cv2
import numpy as np
import yaml

from utils import cli
from utils.errors import FlagError, UserError

ROOT = Path(__file__).resolve().parents[2]


class OutputExistsError(UserError, FileExistsError):
    """--out names a folder that holds something other than a dataset this generator wrote (never replaced)."""


CLASS_NAMES = ("rectangle", "ellipse", "triangle", "star", "ring", "cross")
_SPLITS = {"train": 0, "val": 1}
_MARKER = ".synthetic-dataset"  # written into every output folder; only such folders are ever overwritten


# ------------------------------------------------------------------------------------------------------- drawing
def _background(rng, h, w):
    """Textured, noisy background: a base colour, smooth colour blotches, a few lines, grain."""
    base = rng.uniform(50, 200, 3)
    gy, gx = rng.integers(2, 7, 2)
    blotches = cv2.resize(rng.uniform(-45, 45, (gy, gx, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    img = base.astype(np.float32) + blotches
    for _ in range(rng.integers(0, 5)):
        p1 = tuple(int(v) for v in rng.integers(0, [w, h]))
        p2 = tuple(int(v) for v in rng.integers(0, [w, h]))
        shade = tuple(float(v) for v in base + rng.uniform(-60, 60, 3))
        cv2.line(img, p1, p2, shade, int(rng.integers(1, max(2, w // 40) + 1)))
    img += rng.normal(0, rng.uniform(2, 10), img.shape).astype(np.float32)
    return img


def _regular_polygon(cx, cy, radii, angle0):
    """Points at evenly spaced angles from angle0 with the given radii (one radius per point)."""
    t = angle0 + np.arange(len(radii)) * 2 * np.pi / len(radii)
    return np.stack((cx + radii * np.cos(t), cy + radii * np.sin(t)), 1)


def _shape_mask(cls, rng, h, w, size, center):
    """uint8 mask (h, w) of one shape of class ``cls`` with long side about ``size`` px centred at ``center``."""
    mask = np.zeros((h, w), np.uint8)
    cx, cy = center
    angle = rng.uniform(0, 180)
    aspect = rng.uniform(0.5, 1.0)  # short side / long side for shapes that stretch
    r = size / 2
    name = CLASS_NAMES[cls]
    if name == "rectangle":
        pts = cv2.boxPoints(((cx, cy), (size, size * aspect), angle))
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)
    elif name == "ellipse":
        cv2.ellipse(mask, (int(cx), int(cy)), (int(r), max(2, int(r * aspect))), angle, 0, 360, 255, -1)
    elif name == "triangle":
        pts = _regular_polygon(cx, cy, r * rng.uniform(0.85, 1.0, 3), np.deg2rad(angle))
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)
    elif name == "star":
        radii = np.tile([r, r * rng.uniform(0.35, 0.5)], 5)
        cv2.fillPoly(mask, [np.round(_regular_polygon(cx, cy, radii, np.deg2rad(angle))).astype(np.int32)], 255)
    elif name == "ring":
        b = max(3, int(r * rng.uniform(0.75, 1.0)))
        cv2.ellipse(mask, (int(cx), int(cy)), (int(r), b), angle, 0, 360, 255, -1)
        hole = rng.uniform(0.45, 0.6)
        cv2.ellipse(mask, (int(cx), int(cy)), (max(1, int(r * hole)), max(1, int(b * hole))), angle, 0, 360, 0, -1)
    else:  # cross: two bars
        bar = size * rng.uniform(0.25, 0.4)
        for a in (angle, angle + 90):
            pts = cv2.boxPoints(((cx, cy), (size, bar), a))
            cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)
    return mask > 0


def _object_colour(rng, cls):
    """A saturated colour (BGR) of the class's hue family and a second shade for a gradient across the object.

    Each class owns a hue band (OpenCV hue 0-180, bands 30 apart, +/- 8): colour is a real but imperfect cue, as in
    natural data, while the shape decides; neighbouring bands come close after hue augmentation.
    """
    hue = (cls * 180 // len(CLASS_NAMES) + rng.integers(-8, 9)) % 180
    hsv = np.uint8([[[hue, rng.integers(150, 256), rng.integers(140, 256)]]])
    c1 = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)
    return c1, np.clip(c1 * rng.uniform(0.6, 1.0), 0, 255)


def _paint(img, mask, rng, cls):
    c1, c2 = _object_colour(rng, cls)
    ys, xs = np.nonzero(mask)
    t = (xs - xs.min()) / max(1, xs.max() - xs.min())  # left-to-right shade
    img[ys, xs] = c1 * (1 - t[:, None]) + c2 * t[:, None]


def _parts(mask):
    """Number of 8-connected pieces of a boolean mask."""
    return cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1


def _place_objects(rng, h, w, n, size_range):
    """Up to n objects as [cls, mask, visible mask], drawn in this order (later ones on top).

    A new object may cover < 30% of any earlier object, must leave at least half of it visible and must not split its
    visible part into pieces: every object stays one connected, mostly visible region (its label describes exactly
    that region).
    """
    objects = []
    for _ in range(n):
        for _try in range(20):
            cls = int(rng.integers(len(CLASS_NAMES)))
            size = rng.uniform(*size_range) * min(h, w)
            center = rng.uniform([size / 4, size / 4], [w - size / 4, h - size / 4])  # may be cut by the edge
            m = _shape_mask(cls, rng, h, w, size, center)
            if m.sum() < 16 or _parts(m) != 1:
                continue
            if all((m & full).sum() < 0.3 * full.sum() and (vis & ~m).sum() >= 0.5 * full.sum()
                   and _parts(vis & ~m) == 1 for _, full, vis in objects):
                for obj in objects:
                    obj[2] = obj[2] & ~m
                objects.append([cls, m, m.copy()])
                break
    return objects


def _box_row(cls, vis):
    h, w = vis.shape
    ys, xs = np.nonzero(vis)
    x1, x2, y1, y2 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    return f"{cls} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"


def _polygon_row(cls, vis):
    """Outer outline of the largest visible part as a normalised polygon (holes are not representable in YOLO)."""
    h, w = vis.shape
    contours, _ = cv2.findContours(vis.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    c = max(contours, key=cv2.contourArea)
    c = cv2.approxPolyDP(c, 0.5, True).reshape(-1, 2)
    if len(c) < 3:
        return None
    xy = (c + 0.5) / np.array([w, h])  # pixel centres
    return f"{cls} " + " ".join(f"{v:.6f}" for v in np.clip(xy, 0, 1).ravel())


def _image_shape(rng, imgsz):
    """Square, landscape 4:3 or portrait 3:4 (long side = imgsz)."""
    kind = rng.choice(3, p=[0.5, 0.25, 0.25])
    short = int(round(imgsz * 0.75))
    return [(imgsz, imgsz), (short, imgsz), (imgsz, short)][kind]  # (h, w)


def render_scene(rng, imgsz):
    """One detection/segmentation scene: (BGR uint8 image, [(cls, visible mask)])."""
    h, w = _image_shape(rng, imgsz)
    img = _background(rng, h, w)
    n = 0 if rng.random() < 1 / 16 else int(rng.integers(1, 6))
    objects = _place_objects(rng, h, w, n, (0.12, 0.42))
    for c, m, _ in objects:
        _paint(img, m, rng, c)
    img += rng.normal(0, 3, img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), [(c, vis) for c, _, vis in objects if vis.sum() >= 16]


def render_single(rng, imgsz, cls):
    """One classification image: a single large object of class ``cls``."""
    img = _background(rng, imgsz, imgsz)
    size = rng.uniform(0.45, 0.8) * imgsz
    center = rng.uniform(0.5 * size, imgsz - 0.5 * size, 2) if size < imgsz else (imgsz / 2, imgsz / 2)
    _paint(img, _shape_mask(cls, rng, imgsz, imgsz, size, center), rng, cls)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------------- writing
def _encode(img, fmt):
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if fmt == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(f".{fmt}", img, params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {fmt} image")
    return buf.tobytes()


def _rng(seed, split, i):
    return np.random.default_rng([seed, _SPLITS[split], i])


def _prepare_out(out):
    """Create ``out``; clear it first only when it holds a previous synthetic dataset (never a user's folder)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not (out / _MARKER).exists():
            raise OutputExistsError(f"{out} exists and is not a synthetic dataset made by this tool: "
                                  f"choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text("made by utils/data/synthetic.py; this folder is deleted when regenerated\n")
    return out


def _write_yaml(out, name, train, val, seed, task):
    data = {"path": str(out.resolve()), "train": train, "val": val, "test": None,
            "nc": len(CLASS_NAMES), "names": dict(enumerate(CLASS_NAMES))}
    f = out / f"{name}.yaml"
    header = (f"# Synthetic shapes dataset ({task}), made by: python -m utils.data.synthetic --out {out} "
              f"--task {task} --seed {seed}\n")
    f.write_text(header + yaml.safe_dump(data, sort_keys=False))
    return f


def _write_labelled(out, n_train, n_val, imgsz, seed, fmt, row):
    """Images and YOLO label files, one ``row(cls, mask)`` line per object (boxes or polygons)."""
    for split, n in (("train", n_train), ("val", n_val)):
        (out / "images" / split).mkdir(parents=True)
        (out / "labels" / split).mkdir(parents=True)
        for i in range(n):
            img, objects = render_scene(_rng(seed, split, i), imgsz)
            (out / "images" / split / f"{i:06d}.{fmt}").write_bytes(_encode(img, fmt))
            rows = [row(c, m) for c, m in objects]
            (out / "labels" / split / f"{i:06d}.txt").write_text("".join(f"{r}\n" for r in rows if r))
    return "images/train", "images/val"


def _write_classify(out, n_train, n_val, imgsz, seed, fmt):
    """One folder of images per class."""
    for split, n in (("train", n_train), ("val", n_val)):
        for name in CLASS_NAMES:
            (out / split / name).mkdir(parents=True)
        for i in range(n):
            cls = i % len(CLASS_NAMES)
            img = render_single(_rng(seed, split, i), imgsz, cls)
            (out / split / CLASS_NAMES[cls] / f"{i:06d}.{fmt}").write_bytes(_encode(img, fmt))
    return "train", "val"


class SyntheticData(NamedTuple):
    """How the synthetic data of a task is written: a row of DATASETS."""

    name: str  # the default folder (datasets/<name>) and the YAML's name
    write: Callable  # write(out, n_train, n_val, imgsz, seed, fmt) -> the train and val paths of the YAML


DATASETS = {  # task (utils/cli.py TASKS) -> its synthetic data
    "detect": SyntheticData("synthetic", functools.partial(_write_labelled, row=_box_row)),
    "segment": SyntheticData("synthetic-seg", functools.partial(_write_labelled, row=_polygon_row)),
    "classify": SyntheticData("synthetic-cls", _write_classify),
}


def make_dataset(out, n_train=64, n_val=16, imgsz=256, seed=0, task="detect", fmt="jpg"):
    """Write the synthetic dataset for ``task`` into ``out`` and return the path of its dataset YAML.

    Args:
        out: output folder (created; replaced only if it holds an earlier synthetic dataset).
        n_train, n_val: images per split. imgsz: long side in pixels. seed: same seed -> same files, byte for byte.
        task: 'detect', 'segment' or 'classify'. fmt: 'jpg' (quality 95) or 'png'.
    """
    if task not in DATASETS:
        raise FlagError(f"task must be one of {list(DATASETS)}, not {task!r}")
    if fmt not in ("jpg", "png"):
        raise FlagError(f"fmt must be 'jpg' or 'png', not {fmt!r}")
    if imgsz < 32:
        raise FlagError(f"--imgsz must be >= 32 px, not {imgsz}")
    out = _prepare_out(out)
    train, val = DATASETS[task].write(out, n_train, n_val, imgsz, seed, fmt)
    return _write_yaml(out, DATASETS[task].name, train, val, seed, task)


SAMPLES_DIR = ROOT / "data" / "images"  # every script's default --source


def write_samples(out=SAMPLES_DIR, imgsz=640, seed=0):
    """Write the repository's sample images (data/images/*.jpg, the default --source of detect.py and predict.py).

    Scenes i = 0, 1, ... of generator (seed, 2, i) are drawn until there is one square, one landscape and one portrait
    scene with at least two objects: shapes_square.jpg, shapes_wide.jpg, shapes_tall.jpg (long side ``imgsz``).
    Returns the written paths; the same arguments give the same bytes.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wanted, written = {"square": None, "wide": None, "tall": None}, []
    i = 0
    while None in wanted.values():
        img, objects = render_scene(np.random.default_rng([seed, 2, i]), imgsz)
        h, w = img.shape[:2]
        kind = "square" if h == w else "wide" if w > h else "tall"
        if wanted[kind] is None and len(objects) >= 2:
            wanted[kind] = out / f"shapes_{kind}.jpg"
            wanted[kind].write_bytes(_encode(img, "jpg"))
            written.append(wanted[kind])
        i += 1
    return written


def parse_opt(argv=None):
    return cli.parse("utils/data/synthetic", argv)


def main(opt):
    out = Path(opt.out) if opt.out else ROOT / "datasets" / DATASETS[opt.task].name
    f = make_dataset(out, opt.n_train, opt.n_val, opt.imgsz, opt.seed, opt.task, opt.fmt)
    print(f"Synthetic {opt.task} dataset: {opt.n_train} train + {opt.n_val} val images -> {f}")
    return f


if __name__ == "__main__":
    from utils.errors import guard  # noqa: PLC0415 (only the command line reports errors as one line)

    with guard():
        main(parse_opt(sys.argv[1:]))
