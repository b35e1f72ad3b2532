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
A snippet is refused with an error that says where to put the data by hand. An archive already saved where a
URL's file goes (e.g. fetched by hand on another machine) is used instead of fetching it.

``convert`` (ours): the name of a known dataset (VOC, VisDrone, xView, ...) whose raw downloads utils/data/zoo.py
turns into YOLO images/labels; ultralytics does that in the ``download:`` snippet. Datasets that need a registration
(xView) have no URLs: their files are put in place by hand and converted on the next run.

Every problem with the YAML itself is a DatasetYAMLError naming the file and the key (one ``ERROR:`` line).
"""

import numbers
import os
import tarfile
import time
import zipfile
from pathlib import Path

import yaml

from utils.downloads import fetch
from utils.errors import DatasetError, DatasetYAMLError  # noqa: F401 (DatasetError's import path for callers)
from utils.files import ROOT, check_yaml
from utils.log import LOGGER, colorstr

DATASETS_DIR = Path(os.getenv("YOLOv5_DATASETS_DIR", ROOT.parent / "datasets"))
_ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz")
DONE_FILE = ".downloaded"  # in a known dataset's root: the URLs fetched and extracted so far


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
        FileNotFoundError: no such YAML. DatasetYAMLError (a ValueError): a required key is missing or malformed.
        DatasetError: the images are missing and cannot be fetched (the message says where to put them).
        DownloadError: a URL could not be fetched (offline); the message says where to save the file by hand.
    """
    yaml_dir = None
    if isinstance(data, (str, Path)) and str(data).endswith(".zip") and Path(data).is_file():
        data = _yaml_in_archive(Path(data))
    if isinstance(data, (str, Path)):
        file = Path(check_yaml(data))
        yaml_dir = file.parent
        data = yaml_load(file)
        if not isinstance(data, dict):
            raise DatasetYAMLError(f"{file}: a dataset YAML is a mapping of keys (path, train, val, names, ...), not "
                                   f"a {type(data).__name__}")
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
            _generate_dataset(data["generate"], path, _source(data))
        elif data.get("convert"):
            _prepare_known(data, path, autodownload)
        elif not (data.get("download") and autodownload):
            hint = (_by_hand(_download_entries(data["download"], path), _source(data)) if data.get("download") else
                    "Put the images there (see the 'path:' and 'val:' keys of the dataset YAML) or add a 'download:' "
                    "URL to it")
            raise DatasetError(f"Dataset not found ❌: {missing} missing. {hint}")
        else:
            _download_dataset(data["download"], path)
        still = _missing(data["val"])
        if still:
            raise DatasetError(f"Dataset download/generation finished but {still} is still missing: the archive does "
                               f"not hold the layout the YAML expects under {path}")
    return data


def _source(data):
    """The YAML file a dataset dict came from, for messages."""
    return data.get("yaml_file") or "the dataset dict"


def _generate_dataset(spec, path, source="data.yaml"):
    """Write the synthetic dataset into ``path`` (only into a new folder or an earlier synthetic one)."""
    from utils.data.synthetic import make_dataset  # noqa: PLC0415 (cv2 drawing code, only needed here)
    if not isinstance(spec, dict):
        raise DatasetYAMLError(f"{source}: 'generate:' must be a mapping of utils.data.synthetic.make_dataset "
                               f"arguments, not {spec!r}")
    LOGGER.info(f"Generating the synthetic dataset into {path} ({spec}) ...")
    make_dataset(path, **spec)


def _check_keys(data):
    """Refuse a missing or malformed key with a DatasetYAMLError naming the file and the key; normalise names/nc."""
    src = _source(data)
    for k in "train", "val", "names":
        if k not in data:
            raise DatasetYAMLError(f"{src}: '{k}:' field missing ❌" +
                                   (" (give the class names, e.g. names: [cat, dog] or {0: cat, 1: dog})"
                                    if k == "names" else " (a folder of images, a .txt list of images, or a list)"))
    if data.get("path") is not None and not isinstance(data["path"], (str, Path)):
        raise DatasetYAMLError(f"{src}: 'path: {data['path']!r}' must be the dataset folder (a string)")
    for k in "train", "val", "test":
        value = data.get(k)
        if value and not _is_split(value):
            raise DatasetYAMLError(f"{src}: '{k}: {value!r:.80}' must be a folder of images, a .txt list of images, or a "
                                   f"list of those (strings, relative to 'path:'), not a {type(value).__name__}")
    names = data["names"]
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not all(isinstance(k, int) for k in names):
        raise DatasetYAMLError(f"{src}: 'names:' must be a list or a dict with integer keys, i.e. 2: car "
                               f"(got {names!r:.60})")
    data["names"] = {k: str(v) for k, v in names.items()}
    nc = data.get("nc")
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, numbers.Integral)):
        raise DatasetYAMLError(f"{src}: 'nc: {nc!r}' must be the number of classes (an integer)")
    if nc is not None and nc != len(names):
        raise DatasetYAMLError(f"{src}: nc={nc} but {len(names)} names are given")
    data["nc"] = len(names)


def _is_split(value):
    """A split is a path string or a non-empty list of them."""
    if isinstance(value, (str, Path)):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(x, (str, Path)) for x in value)


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
    if isinstance(value, (str, Path)):
        value = str(value)
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


def _prepare_known(data, path, autodownload):
    """A dataset named by ``convert:``: fetch its raw archives unless they are already there, then convert them."""
    from utils.data import zoo  # noqa: PLC0415 (only needed for the known datasets)
    name, src = str(data["convert"]), _source(data)
    known = zoo.DATASETS.get(name)
    if known is None:
        raise DatasetYAMLError(f"{src}: 'convert: {name}' is not a dataset one-yolov5 knows how to convert "
                               f"({', '.join(zoo.DATASETS)}); remove the key or use one of those")
    spec = data.get("download")
    laid_out = zoo.has_raw(path, known) and not (path / DONE_FILE).exists()  # raw files put there by hand: no fetch
    if spec and not laid_out:
        pending = [(u, d) for u, d in _download_entries(spec, path) if u not in _done_urls(path)]
        if not autodownload and not all(_file_of(u, d).exists() for u, d in pending):
            raise DatasetError(f"Dataset not found at {path} (automatic download off). {_by_hand(pending, src)}")
        _download_dataset(spec, path, record=True)
    elif not laid_out:
        raise DatasetError(f"Dataset not found at {path}. " + (known.manual.format(path=path) if known.manual else
                                                                _by_hand([], src)))
    if known.convert is not None:
        LOGGER.info(f"Converting {name} to YOLO labels in {path} ...")
        known.convert(path, list(data["names"].values()))


def _file_of(url, dest):
    return dest / (Path(url.split("?")[0]).name or "download")


def _done_urls(path):
    """URLs of a known dataset already fetched and extracted (recorded in DONE_FILE, so a rerun resumes)."""
    f = path / DONE_FILE
    return set(f.read_text().split()) if f.exists() else set()


def _by_hand(entries, src):
    """What to download and where to save it, for a run that may not fetch (autodownload off) or cannot."""
    if not entries:
        return f"Put the images and labels there (see the 'path:', 'train:' and 'val:' keys of {src})"
    shown = "; ".join(f"{url} as {_file_of(url, dest)}" for url, dest in entries[:3])
    more = f" (and the {len(entries) - 3} other URLs of 'download:' in {src} likewise)" if len(entries) > 3 else ""
    return f"Download {shown}{more}, then run again: archives found there are extracted and converted"


def _download_dataset(spec, path, record=False):
    """Fetch (or take from where they were saved by hand) and extract each URL of ``download:``.

    ``record``: note each finished URL in ``path``/DONE_FILE and skip those already noted (known datasets: many
    large archives, a rerun after an interruption resumes).
    """
    t, done = time.time(), _done_urls(path) if record else set()
    for url, dest in _download_entries(spec, path):
        if url in done:
            continue
        dest.mkdir(parents=True, exist_ok=True)
        file = _file_of(url, dest)
        name = file.name
        if file.exists():  # saved by hand (or by an earlier run that stopped before extracting)
            LOGGER.info(f"Using {file} (already there) instead of downloading {url}")
        else:
            _fetch(url, file, path)
        if name.endswith(_ARCHIVES):
            LOGGER.info(f"Unzipping {file}...")
            extract_archive(file, dest)
            file.unlink()
        if record:
            path.mkdir(parents=True, exist_ok=True)
            with open(path / DONE_FILE, "a") as f:
                f.write(url + "\n")
    LOGGER.info(f"Dataset download success ✅ ({time.time() - t:.1f}s), saved to {colorstr('bold', path.parent)}")


def _fetch(url, file, path):
    fetch(url, file, f"Dataset not found at {path}", f"Download it on a machine with internet access and save it as "
          f"{file} (likewise any other URL of the dataset), then run again; or lay out {path} by hand (images and "
          f"labels: {path}/images/..., {path}/labels/...)")


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
