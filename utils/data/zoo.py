"""Known public datasets (``convert: NAME`` in data/*.yaml): turning their raw downloads into YOLO images/labels.

ultralytics' dataset YAMLs carry a Python snippet under ``download:`` that it executes: the snippet fetches the
archives, converts the dataset's own annotations into YOLO label files and moves the images into place. We never run
code from a data file. Our YAMLs list the archive URLs under ``download:`` (fetched and extracted by
utils/data/dataset_yaml.py) and name the conversion under ``convert:``; the conversions are the functions here, found
through the DATASETS table.

A converter takes the dataset root ``path`` and the YAML's class ``names`` (a list), works on the extracted raw
files and writes ``labels/...`` beside ``images/...`` (the layout utils/data/formats.py reads). Label rows are
``cls xc yc w h`` normalised to 0-1 with ultralytics' arithmetic; its quirks are kept and noted where they occur.
Each converter can be run again after an interruption: moved images are not looked for twice.

Reading annotations only needs the standard library and numpy (no pycocotools, no pandas, no framework).
"""

import csv
import json
import os
import random
import shutil
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import numpy as np
from PIL import Image
from tqdm import tqdm

from utils.errors import DatasetError
from utils.log import LOGGER, TQDM_BAR_FORMAT



# ------------------------------------------------------------------------------------------------------ shared steps
def _inside(root, relative):
    """``root / relative``, refused when an annotation's file name would lead outside ``root``."""
    target = (root / relative).resolve()
    if root.resolve() not in target.parents:
        raise DatasetError(f"annotation file name {str(relative)!r} would be written outside {root}: refused")
    return target


def write_yolo_labels(file, rows, decimals=6):
    """Write rows ``(cls, xc, yc, w, h)`` as a YOLO label file (an empty file when there are none)."""
    file.parent.mkdir(parents=True, exist_ok=True)
    with open(file, "w") as f:
        f.writelines(f"{int(r[0])} " + " ".join(f"{v:.{decimals}f}" for v in r[1:]) + "\n" for r in rows)


def _move(src, dst):
    """Move a raw image (or folder) into place; already moved (an earlier, interrupted run) is fine."""
    if src.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
    elif not dst.exists():
        raise DatasetError(f"{src} is missing: the downloaded archives are incomplete (delete them and run again)")


def _image_size(file):
    """(width, height) read from the image header only."""
    try:
        with Image.open(file) as im:
            return im.size
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read the size of {file} ({e}): the download is damaged, fetch it again") from None


def _read_json(file):
    if not file.exists():
        raise DatasetError(f"{file} is missing: the downloaded archives are incomplete (delete them and run again)")
    LOGGER.info(f"Loading {file}...")
    with open(file) as f:
        return json.load(f)


def xyxy_to_yolo(xyxy, width, height, clip=True):
    """Pixel corners (n, 4) -> normalised centre boxes (n, 4); ``width``/``height`` are scalars or (n,) arrays.

    ``clip`` first clips the corners to the image, as ultralytics' ``xyxy2xywhn(..., clip=True)``.
    """
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4).copy()
    w = np.broadcast_to(np.asarray(width, dtype=np.float64), (len(b),))
    h = np.broadcast_to(np.asarray(height, dtype=np.float64), (len(b),))
    if clip:
        b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, w[:, None])
        b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, h[:, None])
    return np.stack([(b[:, 0] + b[:, 2]) / 2 / w, (b[:, 1] + b[:, 3]) / 2 / h,
                     (b[:, 2] - b[:, 0]) / w, (b[:, 3] - b[:, 1]) / h], 1)


def autosplit(path, weights=(0.9, 0.1, 0.0), annotated_only=False):
    """Split the images under ``path`` into ``autosplit_{train,val,test}.txt`` beside it, as ultralytics' autosplit.

    The same draw as ultralytics (Python's random seeded 0, one ``choices`` call over the sorted files), so the split
    files list the same images. Lines are ``./<path name>/<file>`` relative to the lists' folder.
    Args:
        path: image folder. weights: fractions for train, val, test. annotated_only: only images with a label file.
    """
    from utils.data.formats import img2label_paths, is_image  # noqa: PLC0415 (formats needs the framework)
    path = Path(path)
    files = sorted(x for x in path.rglob("*.*") if is_image(x))
    picks = random.Random(0).choices([0, 1, 2], weights=weights, k=len(files))
    lists = [[], [], []]
    for i, img in zip(picks, files):
        if not annotated_only or Path(img2label_paths([str(img)])[0]).exists():
            lists[i].append(f"./{img.relative_to(path.parent).as_posix()}\n")
    for name, lines in zip(("autosplit_train.txt", "autosplit_val.txt", "autosplit_test.txt"), lists):
        (path.parent / name).unlink(missing_ok=True)
        if lines:
            (path.parent / name).write_text("".join(lines))
    LOGGER.info(f"Autosplitting {len(files)} images of {path} into {path.parent}/autosplit_*.txt")


# ---------------------------------------------------------------------------------------------------------- VOC
VOC_SETS = (("2012", "train"), ("2012", "val"), ("2007", "train"), ("2007", "val"), ("2007", "test"))


def voc_labels(xml, names):
    """YOLO rows of one PASCAL VOC annotation XML (bytes or str).

    Objects marked ``difficult`` and classes not in ``names`` are left out. As ultralytics, the box centre is moved
    1 pixel up and left (VOC corners count from 1): ``xc = ((xmin + xmax) / 2 - 1) / width``.
    """
    root = ET.fromstring(xml)
    size = root.find("size")
    width, height = int(size.find("width").text), int(size.find("height").text)
    rows = []
    for obj in root.iter("object"):
        name, difficult = obj.find("name").text, obj.find("difficult")
        if name not in names or (difficult is not None and int(difficult.text) == 1):
            continue
        box = obj.find("bndbox")
        x1, x2, y1, y2 = (float(box.find(k).text) for k in ("xmin", "xmax", "ymin", "ymax"))
        rows.append((names.index(name), ((x1 + x2) / 2 - 1) / width, ((y1 + y2) / 2 - 1) / height,
                     (x2 - x1) / width, (y2 - y1) / height))
    return rows


def voc2yolo(path, names):
    """images/VOCdevkit/VOC{year} -> images/{set}{year}/*.jpg and labels/{set}{year}/*.txt for the five VOC sets."""
    devkit = path / "images" / "VOCdevkit"
    for year, image_set in VOC_SETS:
        voc = devkit / f"VOC{year}"
        ids_file = voc / "ImageSets" / "Main" / f"{image_set}.txt"
        if not ids_file.exists():
            raise DatasetError(f"{ids_file} is missing: the VOC archives are incomplete (delete them and run again)")
        images, labels = path / "images" / f"{image_set}{year}", path / "labels" / f"{image_set}{year}"
        for i in tqdm(ids_file.read_text().split(), desc=f"{image_set}{year}", bar_format=TQDM_BAR_FORMAT):
            rows = voc_labels((voc / "Annotations" / f"{i}.xml").read_bytes(), names)
            write_yolo_labels(_inside(labels, f"{i}.txt"), rows)
            _move(voc / "JPEGImages" / f"{i}.jpg", _inside(images, f"{i}.jpg"))


# ----------------------------------------------------------------------------------------------------- VisDrone
VISDRONE_SPLITS = "VisDrone2019-DET-train", "VisDrone2019-DET-val", "VisDrone2019-DET-test-dev"


def visdrone_labels(text, width, height, nc=10):
    """YOLO rows of one VisDrone annotation file: ``x,y,w,h,score,category,truncation,occlusion`` in pixels.

    Rows with score 0 (VisDrone's ignored regions) are left out and category k becomes class k - 1, as ultralytics;
    a category outside the ``nc`` classes (11, 'others') is left out too, where ultralytics would write class 10.
    """
    rows = []
    for line in text.strip().splitlines():
        r = line.strip().split(",")
        if len(r) < 6 or r[4].strip() == "0":
            continue
        cls = int(r[5]) - 1
        if not 0 <= cls < nc:
            continue
        x, y, w, h = (int(v) for v in r[:4])
        rows.append((cls, (x + w / 2) / width, (y + h / 2) / height, w / width, h / height))
    return rows


def visdrone2yolo(path, names):
    """<split>/annotations/*.txt -> <split>/labels/*.txt for the train, val and test-dev splits."""
    for split in VISDRONE_SPLITS:
        d = path / split
        files = sorted((d / "annotations").glob("*.txt"))
        for f in tqdm(files, desc=f"Converting {d}", bar_format=TQDM_BAR_FORMAT):
            width, height = _image_size(d / "images" / f"{f.stem}.jpg")
            write_yolo_labels(d / "labels" / f.name, visdrone_labels(f.read_text(), width, height, len(names)))


# ----------------------------------------------------------------------------------------------- GlobalWheat2020
GLOBALWHEAT_DOMAINS = ("arvalis_1", "arvalis_2", "arvalis_3", "ethz_1", "rres_1", "inrae_1", "usask_1", "utokyo_1",
                       "utokyo_2", "nau_1", "uq_1")


def globalwheat2yolo(path, names):
    """Move each domain folder into images/ and its .json into annotations/ (the labels archive holds labels/)."""
    for d in "annotations", "images", "labels":
        (path / d).mkdir(parents=True, exist_ok=True)
    for domain in GLOBALWHEAT_DOMAINS:
        _move(path / domain, path / "images" / domain)
        if (path / f"{domain}.json").exists():
            os.replace(path / f"{domain}.json", path / "annotations" / f"{domain}.json")


# ------------------------------------------------------------------------------------------------------ SKU-110K
def sku_labels(rows):
    """{image file name: YOLO rows} from the rows of a SKU-110K csv: image,x1,y1,x2,y2,class,width,height.

    One class (0); no clipping; 5 decimals, as ultralytics.
    """
    out = defaultdict(list)
    for r in rows:
        if len(r) < 8:
            continue
        x1, y1, x2, y2, width, height = (float(v) for v in (*r[1:5], *r[6:8]))
        out[r[0]].append((0, (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height))
    return dict(out)


def sku2yolo(path, names):
    """../SKU110K_fixed -> path; annotations/annotations_{split}.csv -> {split}.txt image lists + labels/*.txt."""
    raw = path.parent / "SKU110K_fixed"
    if raw.is_dir():
        for item in raw.iterdir():  # ultralytics replaces the dataset folder by SKU110K_fixed; we move its content
            if (path / item.name).is_dir():
                shutil.rmtree(path / item.name)
            _move(item, path / item.name)
        raw.rmdir()
    for split in "train", "val", "test":
        file = path / "annotations" / f"annotations_{split}.csv"
        if not file.exists():
            raise DatasetError(f"{file} is missing: the SKU-110K archive is incomplete (delete it and run again)")
        with open(file, newline="") as f:
            labels = sku_labels(csv.reader(f))
        (path / f"{split}.txt").write_text("".join(f"./images/{im}\n" for im in sorted(labels)))
        for im, rows in tqdm(labels.items(), desc=f"Converting {file}", bar_format=TQDM_BAR_FORMAT):
            write_yolo_labels(_inside(path / "labels", Path(im).with_suffix(".txt")), rows, decimals=5)


# ----------------------------------------------------------------------------------------------------- Argoverse
ARGOVERSE_SIZE = 1920, 1200  # every Argoverse-HD image (the ring-front-center camera)


def argoverse_labels(annotations):
    """{label path relative to labels/: YOLO rows} from an Argoverse-HD annotation dict (COCO-like).

    ``image_id`` indexes the ``images`` list and ``sid`` the ``seq_dirs`` list; boxes are top-left x, y, w, h in
    pixels of 1920x1200 images; category ids are the class indices.
    """
    images, seq_dirs, (width, height) = annotations["images"], annotations["seq_dirs"], ARGOVERSE_SIZE
    out = defaultdict(list)
    for a in annotations["annotations"]:
        im = images[a["image_id"]]
        x, y, w, h = a["bbox"]
        label = Path(seq_dirs[im["sid"]]) / Path(im["name"]).with_suffix(".txt")
        out[label].append((a["category_id"], (x + w / 2) / width, (y + h / 2) / height, w / width, h / height))
    return dict(out)


def argoverse2yolo(path, names):
    """Argoverse-1.1/tracking -> images; Argoverse-HD/annotations/{train,val}.json -> Argoverse-1.1/labels/."""
    if (path / "Argoverse-1.1" / "tracking").is_dir():
        _move(path / "Argoverse-1.1" / "tracking", path / "Argoverse-1.1" / "images")
    labels_dir = path / "Argoverse-1.1" / "labels"
    for split in "train", "val":
        labels = argoverse_labels(_read_json(path / "Argoverse-HD" / "annotations" / f"{split}.json"))
        for file, rows in tqdm(labels.items(), desc=f"Converting {split}.json", bar_format=TQDM_BAR_FORMAT):
            write_yolo_labels(_inside(labels_dir, file), rows)


# ---------------------------------------------------------------------------------------------------------- xView
# xView type_id (0-94) -> our class index (0-59); -1: a type with no class (none occurs in the train labels)
XVIEW_CLASSES = [-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 2, -1, 3, -1, 4, 5, 6, 7, 8, -1, 9, 10, 11, 12, 13,
                 14, 15, -1, -1, 16, 17, 18, 19, 20, 21, 22, -1, 23, 24, 25, -1, 26, 27, -1, 28, -1, 29, 30, 31, 32,
                 33, 34, 35, 36, 37, -1, 38, 39, 40, 41, 42, 43, 44, 45, -1, -1, -1, -1, 46, 47, 48, 49, -1, 50, 51,
                 -1, 52, -1, -1, -1, 53, 54, -1, 55, -1, -1, 56, -1, 57, -1, 58, 59]


def xview_labels(features, image_size):
    """{image file name: YOLO rows} from xView GeoJSON features.

    Args:
        features: the ``features`` list; each has ``properties`` with ``image_id``, ``type_id`` and
            ``bounds_imcoords`` ("x1,y1,x2,y2" in pixels).
        image_size: image_id -> (width, height), or None for an image that is not there (1395.tif is missing from
            the train images): its boxes are left out.
    Boxes are clipped to the image; a feature with a malformed box or an unmapped type is skipped with a warning.
    """
    out, skipped = defaultdict(list), 0
    for feature in features:
        p = feature["properties"]
        if not p.get("bounds_imcoords"):
            continue
        size = image_size(p["image_id"])
        if size is None:
            continue
        box = [int(v) for v in str(p["bounds_imcoords"]).split(",") if v.strip().lstrip("-").isdigit()]
        type_id = int(p.get("type_id", -1))
        cls = XVIEW_CLASSES[type_id] if 0 <= type_id < len(XVIEW_CLASSES) else -1
        if len(box) != 4 or cls < 0:
            skipped += 1
            continue
        out[p["image_id"]].append((cls, *xyxy_to_yolo(box, *size)[0]))
    if skipped:
        LOGGER.warning(f"WARNING ⚠️ xView: skipped {skipped} features with a malformed box or an unmapped type_id")
    return dict(out)


def xview2yolo(path, names):
    """xView_train.geojson + train_images/ -> labels/train/*.txt; train_images -> images/train, val_images ->
    images/val; then images/autosplit_{train,val}.txt (90/10) from images/train, as ultralytics."""
    train_images, labels = path / "train_images", path / "labels" / "train"
    features = _read_json(path / "xView_train.geojson")["features"]
    sizes = {}

    def image_size(image_id):
        if image_id not in sizes:
            file = _inside(train_images, image_id)
            sizes[image_id] = _image_size(file) if file.exists() else None
        return sizes[image_id]

    if train_images.is_dir():  # not on a second run after the images were moved
        shutil.rmtree(labels, ignore_errors=True)
        for image_id, rows in xview_labels(features, image_size).items():
            write_yolo_labels(_inside(labels, Path(image_id).with_suffix(".txt")), rows)
    _move(train_images, path / "images" / "train")
    if (path / "val_images").is_dir():
        _move(path / "val_images", path / "images" / "val")
    autosplit(path / "images" / "train")


# ------------------------------------------------------------------------------------------------------ Objects365
def objects365_labels(coco):
    """{image file stem: YOLO rows} from an Objects365 (COCO-format) annotation dict.

    Class indices follow the order of ``categories``; boxes (top-left x, y, w, h) are clipped to the image; rows of
    an image are ordered by class and written with 5 decimals, as ultralytics' pycocotools loop.
    """
    cls_of = {c["id"]: i for i, c in enumerate(coco["categories"])}
    images = {im["id"]: im for im in coco["images"]}
    anns = coco["annotations"]
    if not anns:
        return {}
    boxes = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
    ims = [images[a["image_id"]] for a in anns]
    sizes = np.array([(im["width"], im["height"]) for im in ims], dtype=np.float64)
    xywh = xyxy_to_yolo(np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1), sizes[:, 0], sizes[:, 1])
    out = defaultdict(list)
    for a, im, b in zip(anns, ims, xywh):
        out[Path(im["file_name"]).stem].append((cls_of[a["category_id"]], *b))
    return {k: sorted(v, key=lambda r: r[0]) for k, v in out.items()}


def objects365_2yolo(path, names):
    """images/{split}/**/*.jpg -> images/{split}/*.jpg; zhiyuan_objv2_{split}.json -> labels/{split}/*.txt."""
    for split in "train", "val":
        images, labels = path / "images" / split, path / "labels" / split
        for f in tqdm(list(images.rglob("*.jpg")), desc=f"Moving {split} images", bar_format=TQDM_BAR_FORMAT):
            if f.parent != images:
                os.replace(f, images / f.name)
        coco = _read_json(path / f"zhiyuan_objv2_{split}.json")
        if len(coco["categories"]) != len(names):
            LOGGER.warning(f"WARNING ⚠️ Objects365 {split}: {len(coco['categories'])} categories in the "
                           f"annotations, {len(names)} names in the YAML")
        for stem, rows in tqdm(objects365_labels(coco).items(), desc=f"Labels {split}", bar_format=TQDM_BAR_FORMAT):
            write_yolo_labels(_inside(labels, f"{stem}.txt"), rows, decimals=5)


# ------------------------------------------------------------------------------------------------------------ table
class Known(NamedTuple):
    """How to prepare one known dataset.

    convert: the converter (path, names), or None where the data is only laid out by hand.
    raw: paths relative to the dataset root; when one exists, the raw files are there and are not fetched again.
    manual: how to get the raw files by hand ({path} is the dataset root), for datasets without download URLs.
    """

    convert: Optional[Callable]
    raw: tuple = ()
    manual: str = ""


DATASETS = {
    "VOC": Known(voc2yolo, ("images/VOCdevkit",)),
    "VisDrone": Known(visdrone2yolo, ("VisDrone2019-DET-val/annotations",)),
    "GlobalWheat2020": Known(globalwheat2yolo, ("ethz_1",)),
    "SKU-110K": Known(sku2yolo, ("../SKU110K_fixed", "annotations")),
    "Argoverse": Known(argoverse2yolo, ("Argoverse-HD/annotations",)),
    "Objects365": Known(objects365_2yolo, ("zhiyuan_objv2_val.json",)),
    "xView": Known(xview2yolo, ("xView_train.geojson",),
                   "xView needs a registration: download train_labels.zip, train_images.zip and val_images.zip from "
                   "https://challenge.xviewdataset.org and extract them into {path} (so that it holds "
                   "xView_train.geojson, train_images/ and val_images/), then run again to convert them"),
    "ImageNet": Known(None, (), "ImageNet is not downloaded automatically: get ILSVRC2012_img_train.tar and "
                                "ILSVRC2012_img_val.tar from https://image-net.org and extract them so that {path} "
                                "holds train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (the val images sorted into one "
                                "folder per class)"),
}


def has_raw(path, known):
    """True when the raw files of a known dataset are already under ``path`` (so nothing is fetched)."""
    return any((path / r).exists() for r in known.raw)
