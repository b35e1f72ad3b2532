"""Classification data: the class-folder dataset, its loader, and resolving ``--data`` to a dataset folder.

A classification dataset is a folder ``<data>/train/<class>/*.jpg`` plus ``<data>/val/<class>/*.jpg`` (or ``test/``,
which wins when both exist, as in ultralytics). Class indices are the class folder names in sorted order. ultralytics
reads such folders with torchvision's ImageFolder; ours needs no torchvision and gives the same samples in the same
order: the same extension list (case-insensitive), files walked recursively in sorted order, an error for a folder
without class sub-folders or a class folder without images. Nothing else is verified up front (as ultralytics); an
unreadable image fails when it is loaded, with its path in the error.

``--data NAME`` that is not a folder is looked up in the datasets folder (DATASETS_DIR/NAME) and, for the names
ultralytics publishes as zips on its v1.0 release, downloaded there once. ImageNet itself (ultralytics runs a shell
script that fetches 144 GB from image-net.org) is never fetched: the error says how to lay it out.
"""

import os
import time
from multiprocessing.pool import ThreadPool
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from utils.backend import Dataset, torch
from utils.classify.transforms import classify_albumentations, classify_transforms
from utils.data.batch import Batch
from utils.data.build import build_loader
from utils.data.dataset_yaml import DATASETS_DIR, DatasetError, extract_archive
from utils.downloads import fetch
from utils.files import ROOT
from utils.log import LOGGER, TQDM_BAR_FORMAT, colorstr

# torchvision ImageFolder's extensions, so a folder gives the same samples here as in ultralytics
CLS_IMG_FORMATS = "jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp"
RELEASE_URL = "https://github.com/ultralytics/yolov5/releases/download/v1.0/"
DOWNLOADABLE = ("mnist", "mnist160", "fashion-mnist", "cifar10", "cifar100", "imagenette", "imagenette160",
                "imagenette320", "imagewoof", "imagewoof160", "imagewoof320", "imagenet10", "imagenet100",
                "imagenet1000")  # <name>.zip assets of ultralytics/yolov5 release v1.0
NUM_THREADS = min(8, max(1, (os.cpu_count() or 1) - 1))
LAYOUT = "train/<class>/*.jpg and val/<class>/*.jpg (or test/<class>/*.jpg)"


# ----------------------------------------------------------------------------------------------------- the folder
def find_classes(root):
    """Class names (sub-folder names, sorted) of a split folder and their indices.

    Raises:
        DatasetError: ``root`` is not a folder or has no sub-folders.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"classification dataset folder not found: {root}")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    if not classes:
        raise DatasetError(f"no class sub-folders in {root}: a classification split holds one folder of images "
                           f"per class, e.g. {root}/cat/1.jpg, {root}/dog/2.jpg")
    return classes, {c: i for i, c in enumerate(classes)}


def is_cls_image(path):
    """True for a file name with one of CLS_IMG_FORMATS' extensions (any case)."""
    return str(path).lower().endswith(tuple(f".{x}" for x in CLS_IMG_FORMATS))


def find_samples(root, class_to_idx):
    """[(image path, class index)] of every image below each class folder, classes and files in sorted order.

    Raises:
        DatasetError: a class folder holds no image (the message names the classes and the extensions).
    """
    samples, empty = [], []
    for name in sorted(class_to_idx):
        found = [os.path.join(d, f) for d, _, files in sorted(os.walk(os.path.join(str(root), name), followlinks=True))
                 for f in sorted(files) if is_cls_image(f)]
        samples += [(f, class_to_idx[name]) for f in found]
        empty += [] if found else [name]
    if empty:
        raise DatasetError(f"no images in the class folder(s) {', '.join(empty)} of {root} "
                           f"(image extensions: {', '.join(CLS_IMG_FORMATS)})")
    return samples


# ---------------------------------------------------------------------------------------------------- the dataset
class ClassificationDataset(Dataset):
    """Images of a class-folder split: item i is (normalised CHW float32 image tensor, class index).

    Args:
        root: the split folder (``<data>/train`` or ``<data>/val``), one sub-folder per class.
        augment: training augmentation (albumentations when installed, else none: see utils.classify.transforms).
        imgsz: output side in pixels.
        cache: True or 'ram' keeps the decoded images in memory; 'disk' writes each as <image>.npy beside it (and
            reads those); anything else reads the image files each time. Both caches are filled here, once,
            before any loader worker starts (so workers share the RAM cache instead of each filling its own);
            under DDP build the dataset on rank 0 first, so a single rank writes the .npy files.
        prefix: log prefix.
    Attributes:
        root, classes (sorted names), class_to_idx, samples [(path, class)], targets, torch_transforms (the eval
        transform, what a trained model keeps as model.transforms), album_transforms (None without augmentation).
    """

    def __init__(self, root, augment=False, imgsz=224, cache=False, prefix="", rank=-1):
        self.root = Path(root)
        self.rank = rank  # the DDP rank building it (-1: single process): only -1 / 0 show the caching progress
        self.classes, self.class_to_idx = find_classes(self.root)
        self.samples = find_samples(self.root, self.class_to_idx)
        self.targets = [j for _, j in self.samples]
        self.torch_transforms = classify_transforms(imgsz)
        self.album_transforms = classify_albumentations(True, imgsz) if augment else None
        self.cache = "ram" if cache is True or cache == "ram" else "disk" if cache == "disk" else None
        self.npy_files = [Path(f).with_suffix(".npy") for f, _ in self.samples]
        self.ims = [None] * len(self.samples)
        self.prefix = prefix
        if self.cache:
            self._fill_cache()

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        im = self.load_image(i)
        sample = self.album_transforms(im) if self.album_transforms else self.torch_transforms(im)
        return sample, self.samples[i][1]

    @staticmethod
    def collate_fn(items):
        """Stack the images and the class indices of a list of items into a utils.data.batch.Batch."""
        images, labels = zip(*items)
        return Batch(torch.stack(images, 0), torch.tensor(labels, dtype=torch.int64))

    def _read(self, i):
        im = cv2.imread(self.samples[i][0])  # BGR
        if im is None:
            raise FileNotFoundError(f"Image Not Found or not readable: {self.samples[i][0]}")
        return im

    def load_image(self, i):
        """Decoded BGR uint8 image i (from the RAM cache, its .npy file, or the image file)."""
        if self.ims[i] is not None:
            return self.ims[i]
        if self.cache == "disk":
            self._write_npy(i)
            return np.load(self.npy_files[i])
        return self._read(i)

    def _write_npy(self, i):
        """Save image i as <image>.npy (decoded BGR) unless present; atomic, so a reader never sees half a file."""
        f = self.npy_files[i]
        if not f.exists():
            tmp = f.with_name(f"{f.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, self._read(i))
            os.replace(tmp, f)
        return f

    def _fill_cache(self):
        gb, b = 1 << 30, 0
        fn = self._write_npy if self.cache == "disk" else self._read
        with ThreadPool(NUM_THREADS) as pool:  # cv2 releases the GIL while decoding
            pbar = tqdm(enumerate(pool.imap(fn, range(len(self)))), total=len(self), bar_format=TQDM_BAR_FORMAT,
                        disable=self.rank > 0)
            for i, x in pbar:
                if self.cache == "disk":
                    b += x.stat().st_size
                else:
                    self.ims[i] = x
                    b += x.nbytes
                pbar.desc = f"{self.prefix}Caching images ({b / gb:.1f}GB {self.cache})"
            pbar.close()


# ----------------------------------------------------------------------------------------------------- the loader
def create_classification_dataloader(path, imgsz=224, batch_size=16, augment=True, cache=False, rank=-1, workers=8,
                                     shuffle=True, seed=0, world_size=None):
    """ClassificationDataset on ``path`` and its loader, as ultralytics builds it.

    Args:
        path: split folder. imgsz: image side. batch_size: per-process batch (capped at the dataset size).
        augment: training augmentation. cache: see ClassificationDataset.
        rank: DDP rank (-1: single process); otherwise a DistributedSampler over ``world_size`` shards
            (default: $WORLD_SIZE) on this rank.
        workers: upper bound on loader worker processes. shuffle: random order (per-epoch reshuffle).
        seed: added to ultralytics' generator seed (0 gives its sampling order on PyTorch).
    Returns:
        an InfiniteDataLoader (its ``.dataset`` is the ClassificationDataset); batches are utils.data.batch.Batch
        (images (b, 3, imgsz, imgsz) float32 normalised, class indices (b,) int64).
    """
    dataset = ClassificationDataset(path, augment=augment, imgsz=imgsz, cache=cache, rank=rank)
    return build_loader(dataset, batch_size, rank=rank, workers=workers, shuffle=shuffle, seed=seed,
                        world_size=world_size, collate_fn=ClassificationDataset.collate_fn)


# ------------------------------------------------------------------------------------------------------ --data
def _existing_dir(data, root):
    """``data`` as a folder: as given (relative to the working directory), else relative to the repository root
    (ultralytics v7.0 looks there), else None."""
    p = Path(data).expanduser()
    for candidate in (p, None if p.is_absolute() else Path(root) / p):
        if candidate is not None and candidate.is_dir():
            return candidate.resolve()
    return None


def download_classify_dataset(name, datasets_dir=DATASETS_DIR):
    """Fetch one of DOWNLOADABLE into ``datasets_dir/name`` (zip downloaded, extracted, deleted).

    Returns:
        the dataset folder.
    Raises:
        DownloadError: the download failed (e.g. offline). DatasetError: the archive lacks ``name/``.
    """
    datasets_dir = Path(datasets_dir)
    data_dir = datasets_dir / name
    LOGGER.info(f"\nDataset not found ⚠️, missing path {data_dir}, attempting download...")
    t = time.time()
    datasets_dir.mkdir(parents=True, exist_ok=True)
    file = datasets_dir / f"{name}.zip"
    fetch(f"{RELEASE_URL}{name}.zip", file, f"Dataset not found at {data_dir}", f"Download it on a machine with "
          f"internet access and extract it so that {data_dir} holds {LAYOUT}")
    LOGGER.info(f"Unzipping {file}...")
    extract_archive(file, datasets_dir)
    file.unlink()
    if not data_dir.is_dir():
        raise DatasetError(f"{file.name} did not hold a folder {name}/: cannot use it as {data_dir}")
    LOGGER.info(f"Dataset download success ✅ ({time.time() - t:.1f}s), saved to {colorstr('bold', data_dir)}\n")
    return data_dir


def _not_found(data, datasets_dir):
    if str(data) == "imagenet":
        d = Path(datasets_dir) / "imagenet"
        return DatasetError(f"ImageNet is not downloaded automatically. Get ILSVRC2012_img_train.tar and "
                            f"ILSVRC2012_img_val.tar from https://image-net.org, then extract them so that {d} holds "
                            f"train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (the val images sorted into one folder per "
                            f"class)")
    return DatasetError(f"--data {data}: no such dataset folder (looked in the working directory, {ROOT} and "
                        f"{datasets_dir}) and not a dataset name that can be downloaded ({', '.join(DOWNLOADABLE)}). "
                        f"A classification dataset is a folder holding {LAYOUT}")


def split_dirs(data_dir):
    """(train folder, evaluation folder) of a dataset folder: evaluation is test/ when it exists, else val/.

    Raises:
        DatasetError: train/ or both val/ and test/ are missing.
    """
    data_dir = Path(data_dir)
    train, test = data_dir / "train", data_dir / "test"
    evaluation = test if test.exists() else data_dir / "val"
    missing = [str(p) for p in (train, evaluation) if not p.is_dir()]
    if missing:
        raise DatasetError(f"{data_dir} is not a classification dataset: {' and '.join(missing)} missing "
                           f"(expected {LAYOUT})")
    return train, evaluation


def check_classify_dataset(data, autodownload=True, datasets_dir=DATASETS_DIR, root=ROOT):
    """Resolve ``--data`` (a folder, or a dataset name) to a classification dataset, downloading it if needed.

    Args:
        data: dataset folder (relative to the working directory or the repository root), or a name looked up in
            ``datasets_dir`` (e.g. 'mnist160', 'imagenette160'; names in DOWNLOADABLE are fetched when missing).
        autodownload: allow the download.
    Returns:
        dict: path (dataset folder), train, val (the evaluation folder: test/ or val/), val_name ('test' or 'val',
        the results.csv / progress-bar name of the evaluation loss), nc, names ({index: class name}, from train/).
    Raises:
        DatasetError: not found and not downloadable, or not laid out as a classification dataset.
        DownloadError: a downloadable dataset could not be fetched (offline); the message says where to put it.
    """
    data_dir = _existing_dir(data, root) or _existing_dir(Path(datasets_dir) / str(data), root)
    if data_dir is None:
        if str(data) not in DOWNLOADABLE or not autodownload:
            raise _not_found(data, datasets_dir)
        data_dir = download_classify_dataset(str(data), datasets_dir)
    train, evaluation = split_dirs(data_dir)
    classes, _ = find_classes(train)
    eval_classes, _ = find_classes(evaluation)
    if eval_classes != classes:  # ultralytics indexes each split's own folders: indices then disagree silently
        LOGGER.warning(f"WARNING ⚠️ the class folders of {evaluation} ({len(eval_classes)}) differ from those of "
                       f"{train} ({len(classes)}): class indices of the two splits do not match")
    return {"path": data_dir, "train": train, "val": evaluation, "val_name": evaluation.stem, "nc": len(classes),
            "names": dict(enumerate(classes))}
