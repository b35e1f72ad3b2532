"""YOLO label files: where they are, how they are checked, and the labels cache that remembers the checks.

Layout (ultralytics): ``.../images/<split>/x.jpg`` has its labels in ``.../labels/<split>/x.txt``, one object per row,
``cls xc yc w h`` normalised to 0-1, or ``cls x1 y1 x2 y2 ...`` for a polygon (segmentation); boxes are then derived
from the polygons. The checked labels of a split are cached in ``<labels dir>.cache`` next to the labels.

The cache is a plain numpy ``.npz`` archive (no pickled objects), written atomically; it is rebuilt when the version
changes or any image/label file is added, removed, resized or modified. Ultralytics' own (pickled) caches are never
unpickled: they fail the safe read and are rebuilt.
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from utils.boxes import segments2boxes
from utils.log import LOGGER

HELP_URL = "See https://docs.ultralytics.com/yolov5/tutorials/train_custom_data"
IMG_FORMATS = "bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm"
VID_FORMATS = "asf", "avi", "gif", "m4v", "mkv", "mov", "mp4", "mpeg", "mpg", "ts", "wmv"
CACHE_VERSION = "oneyolov5-labels-2"  # bump when the content, layout or checks change (2: NaN/inf refused)
_EXIF_ORIENTATION = 0x0112


# ---------------------------------------------------------------------------------------------------- file discovery
def img2label_paths(img_paths):
    """Label file of each image: the last '/images/' becomes '/labels/' and the extension '.txt'."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return [sb.join(str(x).rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt" for x in img_paths]


def is_image(path):
    return str(path).rsplit(".", 1)[-1].lower() in IMG_FORMATS


def is_video(path):
    return str(path).rsplit(".", 1)[-1].lower() in VID_FORMATS


def get_hash(paths):
    """Fingerprint of a list of files: their paths, sizes and modification times (missing files count as absent).

    Ultralytics hashes the paths and the *total* size only, so an edit that keeps a label's length (a class id changed
    from 1 to 2) keeps a stale cache; the per-file size and mtime here catch it.
    """
    h = hashlib.sha256()
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}\0-\n".encode())
    return h.hexdigest()


def exif_size(img):
    """(width, height) of a PIL image after its EXIF orientation is applied (90/270 degree rotations swap them)."""
    w, h = img.size
    try:
        rotation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # unreadable EXIF block: use the stored size
        rotation = 1
    return (h, w) if rotation in (5, 6, 7, 8) else (w, h)


# ------------------------------------------------------------------------------------------------------ verification
def _check_image(im_file, prefix):
    """Open and verify one image; returns ((w, h), message). Raises on a file that cannot be used."""
    msg = ""
    with Image.open(im_file) as im:
        im.verify()
        shape = exif_size(im)
        fmt = (im.format or "").lower()
    if shape[0] < 10 or shape[1] < 10:
        raise ValueError(f"image size {shape} <10 pixels")
    if fmt not in IMG_FORMATS:
        raise ValueError(f"invalid image format {im.format}")
    if fmt in ("jpg", "jpeg"):
        with open(im_file, "rb") as f:
            f.seek(-2, 2)
            truncated = f.read() != b"\xff\xd9"
        if truncated:  # missing end-of-image marker: decode what is there and write a complete file
            with Image.open(im_file) as im:
                ImageOps.exif_transpose(im).save(im_file, "JPEG", subsampling=0, quality=100)
            msg = f"{prefix}WARNING ⚠️ {im_file}: corrupt JPEG restored and saved"
    return shape, msg


def _read_label_rows(lb_file):
    """Rows of a label file -> (labels (n, 5) float32, segments list of (k, 2) float32, polygon warning or '')."""
    with open(lb_file) as f:
        rows = [line.split() for line in f.read().strip().splitlines() if line.strip()]
    segments, warning = [], ""
    if any(len(r) > 6 for r in rows):  # polygons: cls x1 y1 x2 y2 ...
        classes = np.array([r[0] for r in rows], dtype=np.float32)
        segments = [np.array(r[1:], dtype=np.float32).reshape(-1, 2) for r in rows]
        labels = np.concatenate((classes.reshape(-1, 1), segments2boxes(segments)), 1)
        warning = _polygon_warning(rows, segments)
    else:
        lens = {len(r) for r in rows}
        if rows and lens != {5}:
            raise ValueError(f"labels require 5 columns, {sorted(lens)} columns detected")
        labels = np.array(rows, dtype=np.float32).reshape(-1, 5)
    return labels, segments, warning


def _polygon_warning(rows, segments):
    """What is wrong with the polygons of a polygon label file, as ultralytics reads them (it says nothing), or ''.

    Ultralytics keeps such rows: a row of fewer than 3 points becomes a degenerate polygon (a box row ``cls xc yc w h``
    among polygon rows is read as the 2 points (xc, yc), (w, h), so its box and mask are wrong), and points outside
    the image stretch the box beyond it while the mask is cut at the border. So do we, and say so.
    """
    problems = []
    boxes = sum(len(r) == 5 for r in rows)
    short = sum(len(s) < 3 for s in segments) - boxes
    if boxes:
        problems.append(f"{boxes} box row(s) 'cls xc yc w h' among polygon rows, read as 2-point polygons (wrong box "
                        f"and mask: write them as 4-point polygons)")
    if short:
        problems.append(f"{short} polygon(s) with fewer than 3 points (degenerate masks)")
    outside = sum(bool(((s < 0) | (s > 1)).any()) for s in segments)
    if outside:
        problems.append(f"{outside} polygon(s) with points outside the image (coordinates not in 0-1)")
    return "; ".join(problems)


def _check_finite(labels, segments, lb_file):
    """NaN passes every range check (nan < 0 and nan > 1 are both False), so it is refused here by name."""
    bad = {i + 1 for i, row in enumerate(labels) if not np.isfinite(row).all()}
    bad |= {i + 1 for i, s in enumerate(segments) if not np.isfinite(s).all()}
    if bad:
        raise ValueError(f"non-finite values (nan/inf) in {lb_file} row(s) {sorted(bad)[:5]}")


def verify_image_label(args):
    """Check one (image, label file, log prefix) triple the way ultralytics does.

    Rules: the image opens and verifies, is >= 10 px on each side and in IMG_FORMATS; a JPEG without its end marker is
    re-saved (warning); label rows have 5 columns (or are polygons), values are finite, >= 0 and coordinates <= 1;
    duplicate rows are removed (warning). A missing label file is a background image, an empty one an empty image.

    Returns:
        (im_file, labels (n, 5), (w, h), segments, n_missing, n_found, n_empty, n_corrupt, message); the first four
        are None for a corrupt pair, whose message says why it is ignored.
    """
    im_file, lb_file, prefix = args
    nm = nf = ne = nc = 0
    segments = []
    try:
        shape, msg = _check_image(im_file, prefix)
        if os.path.isfile(lb_file):
            nf = 1
            lb, segments, polygon_warning = _read_label_rows(lb_file)
            n = len(lb)
            if n:
                if lb.shape[1] != 5:
                    raise ValueError(f"labels require 5 columns, {lb.shape[1]} columns detected")
                _check_finite(lb, segments, lb_file)
                if (lb < 0).any():
                    raise ValueError(f"negative label values {lb[lb < 0]}")
                if (lb[:, 1:] > 1).any():
                    raise ValueError(f"non-normalized or out of bounds coordinates {lb[:, 1:][lb[:, 1:] > 1]}")
                _, keep = np.unique(lb, axis=0, return_index=True)
                if len(keep) < n:
                    keep = np.sort(keep)  # first occurrence of each row, file order kept
                    lb = lb[keep]
                    if segments:
                        segments = [segments[i] for i in keep]
                    msg = f"{prefix}WARNING ⚠️ {im_file}: {n - len(keep)} duplicate labels removed"
                if polygon_warning:
                    warning = f"{prefix}WARNING ⚠️ {im_file}: {polygon_warning}"
                    msg = f"{msg}\n{warning}" if msg else warning
            else:
                ne = 1
                lb = np.zeros((0, 5), dtype=np.float32)
        else:
            nm = 1
            lb = np.zeros((0, 5), dtype=np.float32)
        return im_file, lb, shape, segments, nm, nf, ne, nc, msg
    except Exception as e:
        return None, None, None, None, nm, nf, ne, 1, f"{prefix}WARNING ⚠️ {im_file}: ignoring corrupt image/label: {e}"


# ------------------------------------------------------------------------------------------------------ labels cache
def cache_path_for(source, label_files):
    """Where a split's cache lives: '<list>.cache' for a .txt image list, else '<first label dir>.cache'."""
    p = Path(source) if not isinstance(source, (list, tuple)) else Path(source[-1])
    return (p if p.is_file() else Path(label_files[0]).parent).with_suffix(".cache")


def save_label_cache(path, cache):
    """Write a cache dict atomically (temp file + rename) as a pickle-free npz; returns False when not writeable.

    ``cache`` holds 'hash', 'results' (found, missing, empty, corrupt, total), 'msgs' and, per image path,
    [labels (n, 5), (w, h), segments].
    """
    path = Path(path)
    files = [k for k in cache if k not in ("hash", "results", "msgs", "version")]
    labels = [np.asarray(cache[f][0], np.float32).reshape(-1, 5) for f in files]
    segs = [cache[f][2] for f in files]
    points = [np.asarray(s, np.float32).reshape(-1, 2) for ss in segs for s in ss]
    meta = {"version": CACHE_VERSION, "hash": cache["hash"], "results": [int(x) for x in cache["results"]],
            "msgs": list(cache["msgs"]), "files": files}
    arrays = {
        "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        "labels": np.concatenate(labels, 0) if labels else np.zeros((0, 5), np.float32),
        "label_counts": np.array([len(x) for x in labels], np.int64),
        "shapes": np.array([cache[f][1] for f in files], np.int64).reshape(-1, 2),
        "segment_counts": np.array([len(s) for s in segs], np.int64),
        "point_counts": np.array([len(p) for p in points], np.int64),
        "points": np.concatenate(points, 0) if points else np.zeros((0, 2), np.float32),
    }
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
        return True
    except OSError as e:
        LOGGER.warning(f"WARNING ⚠️ Cache directory {path.parent} is not writeable: {e}")
        tmp.unlink(missing_ok=True)
        return False


def load_label_cache(path):
    """Read a cache written by save_label_cache; None when absent, unreadable (warning) or of another version."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            if meta.get("version") != CACHE_VERSION:
                return None
            labels, counts, shapes = z["labels"], z["label_counts"], z["shapes"]
            seg_counts, point_counts, points = z["segment_counts"], z["point_counts"], z["points"]
    except Exception as e:
        LOGGER.warning(f"WARNING ⚠️ ignoring unreadable labels cache {path} ({type(e).__name__}: {e}); rebuilding it")
        return None
    cache = {"hash": meta["hash"], "results": tuple(meta["results"]), "msgs": meta["msgs"], "version": meta["version"]}
    label_ends, point_ends = np.cumsum(counts), np.cumsum(point_counts)
    seg_ends = np.cumsum(seg_counts)
    for i, f in enumerate(meta["files"]):
        lb = labels[label_ends[i] - counts[i]:label_ends[i]]
        s0, s1 = seg_ends[i] - seg_counts[i], seg_ends[i]
        segs = [points[point_ends[j] - point_counts[j]:point_ends[j]] for j in range(s0, s1)]
        cache[f] = [lb, tuple(int(v) for v in shapes[i]), segs]
    return cache
