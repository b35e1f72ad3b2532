"""LoadImagesAndLabels: the detection dataset of train.py and val.py (YOLO-format images + labels).

Each item is ``(image, labels, path, shapes)`` as in ultralytics (``collate_fn`` makes a utils.data.batch.DetectionBatch
of them):
  - image: uint8 tensor (3, h, w), RGB;
  - labels: float32 tensor (n, 6) = [batch index (filled by collate_fn), cls, xc, yc, w, h] normalised to the image;
  - path: the image file;
  - shapes: ``((h0, w0), ((h / h0, w / w0), (pad_w, pad_h)))`` to map boxes back to the original image, or None for a
    mosaic.
"""

import glob
import os
import random
from multiprocessing.pool import Pool, ThreadPool
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from utils.backend import Dataset, F, from_numpy, torch
from utils.boxes import xyn2xy, xywhn2xyxy, xyxy2xywhn
from utils.data.batch import DetectionBatch
from utils.data.augment import Albumentations, augment_hsv, copy_paste, letterbox, mixup, random_perspective
from utils.data.formats import (CACHE_VERSION, HELP_URL, cache_path_for, get_hash, img2label_paths, is_image,
                                load_label_cache, save_label_cache, verify_image_label)
from utils.errors import InputError
from utils.log import LOGGER, TQDM_BAR_FORMAT

NUM_THREADS = min(8, max(1, (os.cpu_count() or 1) - 1))


def list_image_files(path, prefix=""):
    """Image files named by ``path``: a directory (searched recursively), a .txt list, or a list of those; sorted.

    Raises:
        FileNotFoundError: a named path does not exist, or no image is found (the message names the paths).
    """
    files = []
    for p in path if isinstance(path, (list, tuple)) else [path]:
        p = Path(p)
        if p.is_dir():
            files += glob.glob(str(p / "**" / "*.*"), recursive=True)
        elif p.is_file():
            parent = str(p.parent) + os.sep
            lines = p.read_text().strip().splitlines()
            files += [x.replace("./", parent, 1) if x.startswith("./") else x for x in lines]
        else:
            raise FileNotFoundError(f"{prefix}Error loading data from {path}: {p} does not exist\n{HELP_URL}")
    files = sorted(x.replace("/", os.sep) for x in files if is_image(x))
    if not files:
        raise FileNotFoundError(f"{prefix}Error loading data from {path}: No images found\n{HELP_URL}")
    return files


def available_memory():
    """Bytes of memory available for new allocations (MemAvailable on Linux), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil  # optional
        return psutil.virtual_memory().available
    except ImportError:
        return None


class LoadImagesAndLabels(Dataset):
    """Detection dataset with ultralytics' label checks, cache, rectangular batches, mosaic and augmentations.

    Args:
        path: image dir, .txt list of images, or a list of those.
        img_size: long side of the loaded images (and mosaic tile size). batch_size: batch size for rect shapes.
        augment: training augmentations (mosaic unless ``rect``, mixup, perspective, HSV, flips) driven by ``hyp``.
        rect: rectangular batches (images sorted by aspect ratio, one padded shape per batch).
        image_weights: keep ``indices`` writable for weighted resampling (disables rect).
        cache_images: False, 'ram' or 'disk' ('.npy' next to each image). single_cls: all classes become 0.
        stride: model stride for rect shapes. pad: extra rect padding in strides (0.5 for validation).
        min_items: drop images with fewer labels. prefix: log prefix. workers: 0 scans labels in this process.
    """

    cache_version = CACHE_VERSION

    def __init__(self, path, img_size=640, batch_size=16, augment=False, hyp=None, rect=False, image_weights=False,
                 cache_images=False, single_cls=False, stride=32, pad=0.0, min_items=0, prefix="", workers=8, rank=-1):
        self.img_size = img_size
        self.rank = rank  # the DDP rank building it (-1: single process): only -1 / 0 print the cache progress
        self.augment = augment
        self.hyp = hyp
        self.image_weights = image_weights
        self.rect = False if image_weights else rect
        self.mosaic = self.augment and not self.rect
        self.mosaic_border = [-img_size // 2, -img_size // 2]
        self.stride = stride
        self.path = path
        self.prefix = prefix
        self.workers = workers
        self.albumentations = Albumentations(size=img_size) if augment else None
        if augment and hyp is None:
            raise ValueError("augment=True needs hyp (the augmentation hyperparameters, e.g. hyp.scratch-low.yaml)")

        self.im_files = list_image_files(path, prefix)
        self.label_files = img2label_paths(self.im_files)
        cache = self._load_or_build_cache(path)
        labels, shapes, self.segments = zip(*cache.values()) if cache else ((), (), ())
        self.labels = [np.array(x, np.float32).reshape(-1, 5) for x in labels]
        self.shapes = np.array(shapes, dtype=np.int64).reshape(-1, 2)  # (w, h) per image
        self.im_files = list(cache.keys())
        self.label_files = img2label_paths(self.im_files)
        self.segments = [list(s) for s in self.segments]
        if not self.im_files:
            raise FileNotFoundError(f"{prefix}No usable images in {path}: every image/label pair is corrupt. "
                                    f"{HELP_URL}")
        if min_items:
            self._keep([i for i, lb in enumerate(self.labels) if len(lb) >= min_items])
        if single_cls:
            for lb in self.labels:
                lb[:, 0] = 0

        n = len(self.shapes)
        self.batch = np.floor(np.arange(n) / batch_size).astype(int)  # batch index of each image
        self.n = n
        self.indices = range(n)
        if self.rect:
            self._set_rect_shapes(batch_size, img_size, stride, pad)

        self.ims = [None] * n
        self.im_hw0, self.im_hw = [None] * n, [None] * n
        self.npy_files = [Path(f).with_suffix(".npy") for f in self.im_files]
        if cache_images == "ram" and not self.check_cache_ram(prefix=prefix):
            cache_images = False
        if cache_images:
            self._cache_images(cache_images)

    # ------------------------------------------------------------------------------------------------ labels cache
    def _load_or_build_cache(self, path):
        cache_path = cache_path_for(path, self.label_files)
        cache = load_label_cache(cache_path)
        exists = cache is not None and cache["hash"] == get_hash(self.label_files + self.im_files)
        if not exists:
            cache = self.cache_labels(cache_path, self.prefix)
        nf, nm, ne, nc, n = cache.pop("results")
        if exists and self.rank in {-1, 0}:
            d = f"Scanning {cache_path}... {nf} images, {nm + ne} backgrounds, {nc} corrupt"
            tqdm(None, desc=self.prefix + d, total=n, initial=n, bar_format=TQDM_BAR_FORMAT).close()
            if cache["msgs"]:
                LOGGER.info("\n".join(cache["msgs"]))
        if self.augment and nf == 0:
            raise FileNotFoundError(f"{self.prefix}No labels found in {cache_path}, can not start training. {HELP_URL}")
        for k in ("hash", "version", "msgs"):
            cache.pop(k, None)
        if self.augment and not sum(len(v[0]) for v in cache.values()):
            raise InputError(f"{self.prefix}All labels empty in {cache_path}, can not start training. {HELP_URL}")
        return cache

    def cache_labels(self, path=Path("./labels.cache"), prefix=""):
        """Verify every image/label pair (tqdm progress), save the results to ``path`` and return them as a dict."""
        x = {}
        nm = nf = ne = nc = 0
        msgs = []
        desc = f"{prefix}Scanning {path.parent / path.stem}..."
        jobs = zip(self.im_files, self.label_files, [prefix] * len(self.im_files))
        pool = Pool(NUM_THREADS) if self.workers and len(self.im_files) > 1 else None
        try:
            results = pool.imap(verify_image_label, jobs) if pool else map(verify_image_label, jobs)
            pbar = tqdm(results, desc=desc, total=len(self.im_files), bar_format=TQDM_BAR_FORMAT)
            for im_file, lb, shape, segments, nm_f, nf_f, ne_f, nc_f, msg in pbar:
                nm, nf, ne, nc = nm + nm_f, nf + nf_f, ne + ne_f, nc + nc_f
                if im_file:
                    x[im_file] = [lb, shape, segments]
                if msg:
                    msgs.append(msg)
                pbar.desc = f"{desc} {nf} images, {nm + ne} backgrounds, {nc} corrupt"
            pbar.close()
        finally:
            if pool:
                pool.close()
                pool.join()
        if msgs:
            LOGGER.info("\n".join(msgs))
        if nf == 0:
            LOGGER.warning(f"{prefix}WARNING ⚠️ No labels found in {path}. {HELP_URL}")
        x["hash"] = get_hash(self.label_files + self.im_files)
        x["results"] = nf, nm, ne, nc, len(self.im_files)
        x["msgs"] = msgs
        if save_label_cache(path, x):
            LOGGER.info(f"{prefix}New cache created: {path}")
        return x

    # ------------------------------------------------------------------------------------------------- set-up steps
    def _keep(self, include):
        n = len(self.im_files)
        LOGGER.info(f"{self.prefix}{n - len(include)}/{n} images filtered from dataset")
        self._reorder(include)

    def _reorder(self, order):
        self.im_files = [self.im_files[i] for i in order]
        self.label_files = [self.label_files[i] for i in order]
        self.labels = [self.labels[i] for i in order]
        self.segments = [self.segments[i] for i in order]
        self.shapes = self.shapes[np.asarray(order, dtype=int)].reshape(-1, 2)

    def _set_rect_shapes(self, batch_size, img_size, stride, pad):
        """Sort images by aspect ratio; each batch gets the smallest stride-multiple shape that fits all of it."""
        ar = self.shapes[:, 1] / self.shapes[:, 0]  # h / w
        order = ar.argsort()
        self._reorder(order)
        ar = ar[order]
        nb = self.batch[-1] + 1
        shapes = [[1, 1]] * nb
        for i in range(nb):
            ari = ar[self.batch == i]
            mini, maxi = ari.min(), ari.max()
            if maxi < 1:
                shapes[i] = [maxi, 1]
            elif mini > 1:
                shapes[i] = [1, 1 / mini]
        self.batch_shapes = np.ceil(np.array(shapes) * img_size / stride + pad).astype(int) * stride  # (h, w)

    def check_cache_ram(self, safety_margin=0.1, prefix=""):
        """True when the resized images fit in available memory with ``safety_margin`` to spare (from <= 30 samples)."""
        b, gb, n = 0, 1 << 30, min(self.n, 30)
        for f in random.sample(self.im_files, n):
            im = cv2.imread(f)
            if im is None:
                continue
            ratio = self.img_size / max(im.shape[0], im.shape[1])
            b += im.nbytes * ratio**2
        required = b * self.n / max(n, 1)
        available = available_memory()
        ok = available is None or required * (1 + safety_margin) < available
        if not ok:
            LOGGER.info(f"{prefix}{required / gb:.1f}GB RAM required, {available / gb:.1f}GB available, "
                        f"not caching images ⚠️")
        return ok

    def _cache_images(self, kind):
        b, gb = 0, 1 << 30
        fcn = self.cache_images_to_disk if kind == "disk" else self.load_image
        with ThreadPool(NUM_THREADS) as pool:
            pbar = tqdm(enumerate(pool.imap(fcn, range(self.n))), total=self.n, bar_format=TQDM_BAR_FORMAT,
                        disable=self.rank > 0)
            for i, x in pbar:
                if kind == "disk":
                    b += self.npy_files[i].stat().st_size
                else:
                    self.ims[i], self.im_hw0[i], self.im_hw[i] = x
                    b += self.ims[i].nbytes
                pbar.desc = f"{self.prefix}Caching images ({b / gb:.1f}GB {kind})"
            pbar.close()

    def cache_images_to_disk(self, i):
        """Save image i as '.npy' next to it (decoded BGR), once."""
        f = self.npy_files[i]
        if not f.exists():
            im = cv2.imread(self.im_files[i])
            if im is None:
                raise FileNotFoundError(f"Image Not Found {self.im_files[i]}")
            tmp = f.with_name(f"{f.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, im)
            os.replace(tmp, f)

    # ---------------------------------------------------------------------------------------------------- loading
    def __len__(self):
        return len(self.im_files)

    def load_image(self, i):
        """Image i resized so its long side is img_size: (BGR image, (h0, w0) original, (h, w) resized)."""
        if self.ims[i] is not None:
            return self.ims[i], self.im_hw0[i], self.im_hw[i]
        f, fn = self.im_files[i], self.npy_files[i]
        im = np.load(fn) if fn.exists() else cv2.imread(f)
        if im is None:
            raise FileNotFoundError(f"Image Not Found {f}")
        h0, w0 = im.shape[:2]
        r = self.img_size / max(h0, w0)
        if r != 1:
            interp = cv2.INTER_LINEAR if (self.augment or r > 1) else cv2.INTER_AREA
            im = cv2.resize(im, (int(w0 * r), int(h0 * r)), interpolation=interp)  # int(): v7.0 (HEAD: ceil)
        return im, (h0, w0), im.shape[:2]

    def load_mosaic(self, index):
        """Image ``index`` and 3 random others as 2x2 tiles around a random centre, then copy-paste and perspective.

        Returns:
            (img_size x img_size image, labels (n, 5) [cls, x1, y1, x2, y2] pixels).
        """
        img4, labels4, segments4 = self._mosaic_canvas(index, shuffle=True)
        img4, labels4, segments4 = copy_paste(img4, labels4, segments4, p=self.hyp["copy_paste"])
        return random_perspective(img4, labels4, segments4, **self._perspective_args(), border=self.mosaic_border)

    def _mosaic_canvas(self, index, shuffle=True):
        """The 2s x 2s mosaic canvas of image ``index`` and 3 random others, before copy-paste and perspective.

        Args:
            shuffle: shuffle the 4 tile positions (detection v7.0); False keeps ``index`` top-left (segmentation).
        Returns:
            (canvas, labels (n, 5) [cls, x1, y1, x2, y2], pixel polygons), coordinates clipped to the canvas.
        """
        s = self.img_size
        yc, xc = (int(random.uniform(-x, 2 * s + x)) for x in self.mosaic_border)
        indices = [index] + random.choices(self.indices, k=3)
        if shuffle:
            random.shuffle(indices)
        img4, labels4, segments4 = None, [], []
        for i, idx in enumerate(indices):
            img, _, (h, w) = self.load_image(idx)
            if img4 is None:
                img4 = np.full((s * 2, s * 2, img.shape[2]), 114, dtype=np.uint8)
            (x1a, y1a, x2a, y2a), (x1b, y1b, x2b, y2b) = _mosaic_tile(i, xc, yc, w, h, s)
            img4[y1a:y2a, x1a:x2a] = img[y1b:y2b, x1b:x2b]
            padw, padh = x1a - x1b, y1a - y1b
            labels, segments = self.labels[idx].copy(), [x.copy() for x in self.segments[idx]]
            if labels.size:
                labels[:, 1:] = xywhn2xyxy(labels[:, 1:], w, h, padw, padh)
                segments = [xyn2xy(x, w, h, padw, padh) for x in segments]
            labels4.append(labels)
            segments4.extend(segments)
        labels4 = np.concatenate(labels4, 0)
        for x in (labels4[:, 1:], *segments4):
            np.clip(x, 0, 2 * s, out=x)
        return img4, labels4, segments4

    def _perspective_args(self):
        """random_perspective() keyword arguments from the hyperparameters."""
        hyp = self.hyp
        return dict(degrees=hyp["degrees"], translate=hyp["translate"], scale=hyp["scale"], shear=hyp["shear"],
                    perspective=hyp["perspective"])

    def _load_letterboxed(self, index):
        """Image resized + letterboxed to its (rect) batch shape; labels as [cls, x1, y1, x2, y2] pixels."""
        img, labels, _, shapes = self._letterbox_item(index)
        if self.augment:
            img, labels = random_perspective(img, labels, **self._perspective_args())
        return img, labels, shapes

    def _letterbox_item(self, index, with_segments=False):
        """Image ``index`` letterboxed to its (rect) batch shape, before any augmentation.

        Returns:
            (image, labels (n, 5) [cls, x1, y1, x2, y2] pixels, pixel polygons (only ``with_segments``, else []),
            shapes ((h0, w0), ((h / h0, w / w0), (pad_w, pad_h)))).
        """
        img, (h0, w0), (h, w) = self.load_image(index)
        shape = self.batch_shapes[self.batch[index]] if self.rect else self.img_size
        img, ratio, pad = letterbox(img, shape, auto=False, scaleup=self.augment)
        shapes = (h0, w0), ((h / h0, w / w0), pad)
        labels = self.labels[index].copy()
        if labels.size:
            labels[:, 1:] = xywhn2xyxy(labels[:, 1:], ratio[0] * w, ratio[1] * h, padw=pad[0], padh=pad[1])
        segments = [xyn2xy(x, ratio[0] * w, ratio[1] * h, padw=pad[0], padh=pad[1])
                    for x in self.segments[index]] if with_segments else []
        return img, labels, segments, shapes

    def _augment_pixels(self, img, labels, masks=None):
        """Albumentations, HSV and flips on normalised xywh labels (and on ``masks`` (k, h, w), flipped with the image).

        Returns:
            (image, labels, masks).
        """
        hyp = self.hyp
        img, labels = self.albumentations(img, labels)
        augment_hsv(img, hgain=hyp["hsv_h"], sgain=hyp["hsv_s"], vgain=hyp["hsv_v"])
        if random.random() < hyp["flipud"]:
            img = np.flipud(img)
            if len(labels):
                labels[:, 2] = 1 - labels[:, 2]
                masks = None if masks is None else np.flip(masks, axis=-2)
        if random.random() < hyp["fliplr"]:
            img = np.fliplr(img)
            if len(labels):
                labels[:, 1] = 1 - labels[:, 1]
                masks = None if masks is None else np.flip(masks, axis=-1)
        return img, labels, masks

    def __getitem__(self, index):
        index = self.indices[index]  # linear, or resampled by image weights
        hyp = self.hyp
        if self.mosaic and random.random() < hyp["mosaic"]:
            img, labels = self.load_mosaic(index)
            shapes = None
            if random.random() < hyp["mixup"]:
                img, labels = mixup(img, labels, *self.load_mosaic(random.randint(0, self.n - 1)))
        else:
            img, labels, shapes = self._load_letterboxed(index)
        labels = np.asarray(labels, np.float32).reshape(-1, 5)
        if len(labels):
            labels[:, 1:5] = xyxy2xywhn(labels[:, 1:5], w=img.shape[1], h=img.shape[0], clip=True, eps=1e-3)
        if self.augment:
            img, labels, _ = self._augment_pixels(img, labels)
        out = np.zeros((len(labels), 6), np.float32)
        out[:, 1:] = labels
        img = np.ascontiguousarray(img.transpose((2, 0, 1))[::-1])  # HWC BGR -> CHW RGB
        return from_numpy(img), from_numpy(out), self.im_files[index], shapes

    # --------------------------------------------------------------------------------------------------- collate
    @staticmethod
    def collate_fn(batch):
        """Stack images; concatenate labels with column 0 set to the image's index in the batch."""
        im, label, path, shapes = zip(*batch)
        for i, lb in enumerate(label):
            lb[:, 0] = i
        return DetectionBatch(torch.stack(im, 0), torch.cat(label, 0), path, shapes)

    @staticmethod
    def collate_fn4(batch):
        """--quad: every 4 images become 1 of twice the size (a 2x2 grid, or the first image upsampled x2)."""
        im, label, path, shapes = zip(*batch)
        n = len(shapes) // 4
        im4, label4 = [], []
        ho = torch.tensor([[0.0, 0, 0, 1, 0, 0]])  # shift down one tile (y + 1 before the 0.5 scale)
        wo = torch.tensor([[0.0, 0, 1, 0, 0, 0]])  # shift right one tile
        s = torch.tensor([[1, 1, 0.5, 0.5, 0.5, 0.5]])
        for i in range(0, n * 4, 4):
            if random.random() < 0.5:
                im1 = F.interpolate(im[i].unsqueeze(0).float(), scale_factor=2.0, mode="bilinear",
                                    align_corners=False)[0].to(im[i].dtype)
                lb = label[i]
            else:
                im1 = torch.cat((torch.cat((im[i], im[i + 1]), 1), torch.cat((im[i + 2], im[i + 3]), 1)), 2)
                lb = torch.cat((label[i], label[i + 1] + ho, label[i + 2] + wo, label[i + 3] + ho + wo), 0) * s
            im4.append(im1)
            label4.append(lb)
        for i, lb in enumerate(label4):
            lb[:, 0] = i
        return DetectionBatch(torch.stack(im4, 0), torch.cat(label4, 0), path[:n], shapes[:n])


def _mosaic_tile(i, xc, yc, w, h, s):
    """Where tile i (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of size (w, h) goes on the 2s canvas.

    Returns (x1a, y1a, x2a, y2a) on the canvas and (x1b, y1b, x2b, y2b) in the tile; each tile touches (xc, yc).
    """
    if i == 0:
        a = max(xc - w, 0), max(yc - h, 0), xc, yc
        b = w - (a[2] - a[0]), h - (a[3] - a[1]), w, h
    elif i == 1:
        a = xc, max(yc - h, 0), min(xc + w, s * 2), yc
        b = 0, h - (a[3] - a[1]), min(w, a[2] - a[0]), h
    elif i == 2:
        a = max(xc - w, 0), yc, xc, min(s * 2, yc + h)
        b = w - (a[2] - a[0]), 0, w, min(a[3] - a[1], h)
    else:
        a = xc, yc, min(xc + w, s * 2), min(s * 2, yc + h)
        b = 0, 0, min(w, a[2] - a[0]), min(a[3] - a[1], h)
    return a, b

