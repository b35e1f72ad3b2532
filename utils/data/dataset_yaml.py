"""Dataset YAML files (``--data``): reading, checking, resolving paths and fetching missing data from a URL.

Keys (ultralytics): ``path`` (root; relative paths are relative to the repository root, as v7.0), ``train``, ``val``,
``test`` (each a directory, a .txt image list, or a list of those, relative to ``path``), ``names`` (list or
{index: name}), optional ``nc`` and optional ``download``.

``generate`` (ours): the built-in synthetic dataset (data/synthetic.yaml) is written on first use by
utils/data/synthetic.py with the arguments given there, e.g. ``generate: {task: detect, n_train: 512, imgsz: 128}``.

``download`` differs on purpose: ultralytics *executes* it when it is a bash or Python snippet. We never run code from a
data file; we accept URLs only:
  - ``download: https://.../data.zip``: fetched and extracted into the parent folder of ``path``;
  - ``download: [URL, {url: URL, dir: images}, ...]``: several archives; ``dir`` is relative to ``path`` (default: the
    parent folder of ``path``). Archives are .zip, .tar, .tar.gz/.tgz; other files are stored as they are.
A snippet is refused with an error that says where to put the data by hand.
"""

import os
import shutil
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

import yaml

from utils.downloads import DownloadError
from utils.errors import UserError
from utils.files import ROOT, check_yaml
from utils.log import LOGGER, colorstr

DATASETS_DIR = Path(os.getenv("YOLOv5_DATASETS_DIR", ROOT.parent / "datasets"))
_ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz")


class DatasetError(UserError, FileNotFoundError):
    """The dataset named by a YAML is not usable here; the message says what is missing and how to fix it."""


def yaml_load(file):
    with open(file, errors="ignore") as f:
        return yaml.safe_load(f) or {}


def yaml_save(file="data.yaml", data=None):
    """Write ``data`` as YAML (paths as strings, keys in their order), as ultralytics saves opt.yaml / hyp.yaml."""
    with open(file, "w") as f:
        yaml.safe_dump({k: str(v) if isinstance(v, Path) else v for k, v in (data or {}).items()}, f,
                       sort_keys=False)


def check_dataset(data, autodownload=True):
    """Load and check a dataset YAML (or dict); download its data when missing and the YAML gives URLs.

    Args:
        data: path/name of a dataset YAML (found as given, else under data/ and models/), a local dataset .zip holding
            one, or an already-loaded dict.
        autodownload: fetch the ``download:`` URLs when the val images are missing.
    Returns:
        the dict with ``names`` as {int: str}, ``nc``, and absolute ``path``/``train``/``val``/``test`` strings.
    Raises:
        FileNotFoundError: no such YAML. ValueError: a required key is missing or malformed.
        DatasetError: the images are missing and cannot be fetched (the message says where to put them).
    """
    yaml_dir = None
    if isinstance(data, (str, Path)) and str(data).endswith(".zip") and Path(data).is_file():
        data = _yaml_in_archive(Path(data))
    if isinstance(data, (str, Path)):
        file = Path(check_yaml(data))
        yaml_dir = file.parent
        data = yaml_load(file)
        data["yaml_file"] = str(file)
    else:
        data = dict(data)
    _check_keys(data)
    path = _resolve_root(data.get("path"), yaml_dir)
    data["path"] = str(path)
    for k in "train", "val", "test":
        if data.get(k):
            data[k] = _resolve_split(path, data[k])
    missing = _missing(data.get("val"))
    if missing:
        LOGGER.info(f"\nDataset not found ⚠️, missing paths {missing}")
        if data.get("generate"):
            _generate_dataset(data["generate"], path)
        elif not (data.get("download") and autodownload):
            raise DatasetError(f"Dataset not found ❌: {missing} missing. Put the images there (see the 'path:' and "
                               f"'val:' keys of the dataset YAML) or add a 'download:' URL to it")
        else:
            _download_dataset(data["download"], path)
        still = _missing(data["val"])
        if still:
            raise DatasetError(f"Dataset download/generation finished but {still} is still missing: the archive does not hold "
                               f"the layout the YAML expects under {path}")
    return data


def _generate_dataset(spec, path):
    """Write the synthetic dataset into ``path`` (only into a new folder or an earlier synthetic one)."""
    from utils.data.synthetic import make_dataset  # noqa: PLC0415 (cv2 drawing code, only needed here)
    if not isinstance(spec, dict):
        raise ValueError(f"data.yaml 'generate:' must be a mapping of utils.data.synthetic.make_dataset arguments, "
                         f"not {spec!r}")
    LOGGER.info(f"Generating the synthetic dataset into {path} ({spec}) ...")
    make_dataset(path, **spec)


def _check_keys(data):
    for k in "train", "val", "names":
        if k not in data:
            raise ValueError(f"data.yaml '{k}:' field missing ❌" +
                             (" (give the class names, e.g. names: [cat, dog] or {0: cat, 1: dog})" if k == "names"
                              else ""))
    names = data["names"]
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not all(isinstance(k, int) for k in names):
        raise ValueError("data.yaml names must be a list or a dict with integer keys, i.e. 2: car")
    data["names"] = {k: str(v) for k, v in names.items()}
    if "nc" in data and data["nc"] is not None and int(data["nc"]) != len(names):
        raise ValueError(f"data.yaml nc={data['nc']} but {len(names)} names are given")
    data["nc"] = len(names)


def _resolve_root(path, yaml_dir):
    """Absolute dataset root: as given if absolute; else relative to the repository root (ultralytics v7.0), or to
    the YAML's own folder when only that one exists."""
    p = Path(path or "")
    if p.is_absolute():
        return p
    root_based = (ROOT / p).resolve()
    if yaml_dir is not None and not root_based.exists() and (yaml_dir / p).exists():
        return (yaml_dir / p).resolve()
    return root_based


def _resolve_split(path, value):
    if isinstance(value, str):
        x = (path / value).resolve()
        if not x.exists() and value.startswith("../"):
            x = (path / value[3:]).resolve()
        return str(x)
    return [str((path / x).resolve()) for x in value]


def _missing(value):
    if not value:
        return []
    return [str(x) for x in (value if isinstance(value, list) else [value]) if not Path(x).exists()]


# ---------------------------------------------------------------------------------------------------------- download
def _download_entries(spec, path):
    """[(url, destination dir)] from a ``download:`` value; refuses code snippets."""
    items = spec if isinstance(spec, list) else [spec]
    out = []
    for item in items:
        if isinstance(item, dict) and "url" in item:
            url, dest = str(item["url"]), (path / item["dir"]) if item.get("dir") else path.parent
        else:
            url, dest = str(item).strip(), path.parent
        if "\n" in url or "://" not in url.split()[0] or len(url.split()) > 1:
            raise DatasetError(
                f"Dataset not found at {path}, and its 'download:' is a script. one-yolov5 never runs code from a "
                f"dataset YAML (only URLs are downloaded). Download the data yourself following that script, so that "
                f"{path} holds the images and labels, or replace 'download:' with URL(s) of archives.")
        out.append((url, dest))
    return out


def _download_dataset(spec, path):
    t = time.time()
    for url, dest in _download_entries(spec, path):
        dest.mkdir(parents=True, exist_ok=True)
        name = Path(url.split("?")[0]).name or "download"
        file = dest / name
        _fetch(url, file, path)
        if name.endswith(_ARCHIVES):
            LOGGER.info(f"Unzipping {file}...")
            extract_archive(file, dest)
            file.unlink()
    LOGGER.info(f"Dataset download success ✅ ({time.time() - t:.1f}s), saved to {colorstr('bold', path.parent)}")


def _fetch(url, file, path, timeout=30):
    tmp = file.with_name(file.name + ".part")
    LOGGER.info(f"Downloading {url} to {file}...")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
        os.replace(tmp, file)
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"Dataset not found at {path} and it could not be downloaded from {url} "
                            f"({type(e).__name__}: {e}). Download it on a machine with internet access and extract it "
                            f"so that {path} holds the images and labels (layout: {path}/images/..., "
                            f"{path}/labels/...)") from None


def download(url, dir=".", unzip=True, delete=True, curl=False, threads=1, retry=3):
    """Fetch each URL of ``url`` into ``dir`` (and extract archives), as ultralytics' download(); online only.

    ``curl``, ``threads`` and ``retry`` are accepted for compatibility: files are fetched one by one with urllib.
    Raises:
        DownloadError: a file could not be fetched (the message says where to put it by hand).
    """
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    for u in [url] if isinstance(url, (str, Path)) else url:
        name = Path(str(u).split("?")[0]).name
        file = dir / name
        if not file.exists():
            _fetch(str(u), file, dir)
        if unzip and name.endswith(_ARCHIVES):
            LOGGER.info(f"Unzipping {file}...")
            extract_archive(file, dir)
            if delete:
                file.unlink()


def _safe_target(dest, name):
    target = (dest / name).resolve()
    if not str(target).startswith(str(dest.resolve()) + os.sep) and target != dest.resolve():
        raise DatasetError(f"archive member {name!r} would be written outside {dest}: refused")
    return target


def extract_archive(file, dest=None, exclude=(".DS_Store", "__MACOSX")):
    """Extract a .zip/.tar(.gz) into ``dest`` (default: the archive's folder), skipping macOS metadata and refusing
    members that escape ``dest``."""
    file = Path(file)
    dest = Path(dest) if dest is not None else file.parent
    if zipfile.is_zipfile(file):
        with zipfile.ZipFile(file) as z:
            for m in z.namelist():
                if not any(x in m for x in exclude):
                    _safe_target(dest, m)
                    z.extract(m, path=dest)
    elif tarfile.is_tarfile(file):
        with tarfile.open(file) as t:
            members = [m for m in t.getmembers() if not any(x in m.name for x in exclude)]
            for m in members:
                _safe_target(dest, m.name)
                if m.issym() or m.islnk() or m.isdev():
                    raise DatasetError(f"archive member {m.name!r} in {file} is a link or device: refused")
            t.extractall(dest, members=members)
    else:
        raise DatasetError(f"{file} is not a zip or tar archive")


def _yaml_in_archive(file):
    """A local dataset .zip: extract it into DATASETS_DIR/<stem> (once) and return the YAML inside."""
    dest = DATASETS_DIR / file.stem
    if not dest.exists():
        dest.mkdir(parents=True)
        extract_archive(file, dest)
    found = sorted(dest.rglob("*.yaml"))
    if not found:
        raise DatasetError(f"no dataset YAML inside {file}")
    return found[0]
