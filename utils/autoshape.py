"""``AutoShape``: a detection model that takes ordinary images and returns ``Detections``, as ultralytics' hub API.

    model = AutoShape(DetectMultiBackend("best.pt"))            # what hubconf.custom(path="best.pt") returns
    results = model(["a.jpg", Image.open("b.png"), cv2.imread("c.jpg")[..., ::-1]], size=640)
    results.print(); results.save(); results.pandas().xyxy[0]

Inputs (one, or a list/tuple of them for a batch): a file path or ``http(s)://`` URL, a PIL image, a numpy array HWC
(RGB, like PIL: pass ``cv2.imread(f)[..., ::-1]`` for OpenCV's BGR; CHW with fewer than 5 channels is transposed;
grayscale is expanded; extra channels are dropped), or a BCHW float tensor in 0-1 (run as is: the raw model output).
An image that cannot be decoded (header over the decoder's limits, truncated, corrupt) is skipped with a warning
naming it, so ``results.files`` names the images the results belong to; a call with no readable image raises
ImageError.
"""

import io
import urllib.request
from copy import copy
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from utils.annotator import Annotator, colors, save_one_box
from utils.backend import from_numpy, inference_mode, is_tensor, nn, to_numpy, torch
from utils.boxes import scale_boxes, xyxy2xywh
from utils.data.augment import letterbox
from utils.data.images import ImageError, check_image
from utils.files import increment_path
from utils.log import LOGGER, colorstr
from utils.nms import non_max_suppression
from utils.runtime import DetectMultiBackend, Profile


def _max_stride(stride):
    return int(stride.max()) if is_tensor(stride) else int(max(np.ravel(stride)))


def _head(model, dmb):
    """The Detect head of a (wrapped) model, or None for formats without an nn.Module."""
    inner = model.model if dmb else model
    if inner is None or isinstance(inner, nn.ModuleList):  # exported format, or an Ensemble
        return None
    layers = getattr(inner, "model", None)
    return layers[-1] if layers is not None else None


def _open_path(name, timeout):
    """PIL image of a local file or http(s) URL; the file's header is checked before anything is decoded."""
    if name.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(name, timeout=timeout) as r:
                data = r.read()
        except Exception as e:
            raise ConnectionError(f"cannot download image {name}: {e}") from None
        try:
            return Image.open(io.BytesIO(data))
        except (UnidentifiedImageError, Image.DecompressionBombError) as e:
            raise ImageError(f"{name}: not a readable image ({type(e).__name__})") from None
    if not Path(name).is_file():
        raise FileNotFoundError(f"image not found: {name}")
    check_image(name)
    try:
        return Image.open(name)
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not a readable image (corrupt, or a format PIL does not decode)") from None


def read_image(source, timeout=20):
    """(RGB numpy image, file name) from a path, URL, PIL image or numpy array (see the module docstring).

    Raises:
        ImageError: a file or PIL image that cannot be decoded (over the decoder's limits, truncated, corrupt).
    """
    name = None
    if isinstance(source, (str, Path)):
        name = str(source)
        source = _open_path(name, timeout)
    if isinstance(source, Image.Image):
        name = name or getattr(source, "filename", None)
        try:
            im = ImageOps.exif_transpose(source)  # decodes the pixels
            if im.mode not in ("RGB", "L"):  # palette, RGBA, CMYK, 16-bit: to 8-bit RGB (np.asarray misreads them)
                im = im.convert("RGB")
            source = np.asarray(im)
        except (OSError, SyntaxError) as e:  # truncated or corrupt data
            raise ImageError(f"{name or 'PIL image'}: cannot be decoded ({e})") from None
    if not isinstance(source, np.ndarray):
        raise TypeError(f"unsupported image input of type {type(source).__name__}")
    im = source
    if im.ndim == 3 and im.shape[0] < 5:  # CHW -> HWC
        im = im.transpose((1, 2, 0))
    im = im[..., :3] if im.ndim == 3 else cv2.cvtColor(im, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(im), name


def read_images(ims):
    """(RGB images, file names) of the readable inputs; each unreadable one is skipped with a warning naming it.

    Raises:
        ImageError: none of them could be read.
    """
    kept, files, skipped = [], [], []
    for i, source in enumerate(ims):
        try:
            im, f = read_image(source)
        except ImageError as e:
            LOGGER.warning(f"WARNING ⚠️ {e}; skipping it")
            skipped.append(str(e))
            continue
        kept.append(im)
        files.append(Path(f or f"image{i}").with_suffix(".jpg").name)
    if not kept:
        raise ImageError(f"no readable image among the {len(ims)} input(s): {'; '.join(skipped[:3])}")
    return kept, files


class AutoShape(nn.Module):
    """Pre-process (letterbox), infer, NMS and rescale for ordinary images; see the module docstring.

    Class attributes, settable per instance: conf (0.25), iou (0.45), agnostic (False), multi_label (False),
    classes (None: all), max_det (1000), amp (False).
    """

    tasks = ("detect",)  # the models it wraps (models/yolo.py TASKS keys): it returns boxes
    conf = 0.25
    iou = 0.45
    agnostic = False
    multi_label = False
    classes = None
    max_det = 1000
    amp = False

    def __init__(self, model, verbose=True):
        super().__init__()
        if verbose:
            LOGGER.info("Adding AutoShape... ")
        for k in ("yaml", "nc", "hyp", "names", "stride", "abc"):
            if hasattr(model, k):
                setattr(self, k, getattr(model, k))
        self.dmb = isinstance(model, DetectMultiBackend)
        self.pt = not self.dmb or model.pt
        self.model = model.eval()
        head = _head(model, self.dmb) if self.pt else None
        if head is not None:
            head.inplace = False  # safe for multithreaded inference
            head.export = True  # decoded output only

    def _param(self):
        if self.pt and self.model is not None:
            p = next(self.model.parameters(), None)
            if p is not None:
                return p
        return torch.empty(1, device=self.model.device if self.dmb else "cpu")

    def forward(self, ims, size=640, augment=False, profile=False):
        """Detect objects in ``ims`` at inference size ``size`` (int, or (h, w)); returns Detections."""
        with inference_mode():
            return self._forward(ims, size, augment)

    def _forward(self, ims, size, augment):
        dt = (Profile(), Profile(), Profile())
        p = self._param()
        if is_tensor(ims):
            return self.model(ims.to(p.device).type_as(p), augment=augment)
        with dt[0]:
            size = (size, size) if isinstance(size, int) else tuple(size)
            ims, files = read_images(list(ims) if isinstance(ims, (list, tuple)) else [ims])
            shape0, shape1 = [], []
            for im in ims:
                s = im.shape[:2]
                shape0.append(s)
                g = max(size) / max(s)
                shape1.append([int(y * g) for y in s])
            stride = _max_stride(self.stride)
            shape1 = ([int(np.ceil(x / stride) * stride) for x in np.array(shape1).max(0)] if self.pt
                      else list(size))  # exported files: the inference size itself, as ultralytics
            x = np.stack([letterbox(im, shape1, auto=False)[0] for im in ims])
            x = np.ascontiguousarray(x.transpose((0, 3, 1, 2)))
            x = from_numpy(x, p.device).type_as(p) / 255
        with dt[1]:
            y = self.model(x, augment=augment)
        with dt[2]:
            y = non_max_suppression(y if self.dmb else y[0], self.conf, self.iou, self.classes, self.agnostic,
                                    self.multi_label, max_det=self.max_det)
            for i in range(len(ims)):
                scale_boxes(shape1, y[i][:, :4], shape0[i])
        return Detections(ims, y, files, dt, self.names, x.shape)


class Detections:
    """Results of one AutoShape call: per image an (n, 6) tensor [x1, y1, x2, y2, conf, cls] in pixels.

    Attributes: ims (RGB numpy images), pred / xyxy, xywh, xyxyn, xywhn (normalised by image size), names, files,
    times (the three Profiles), t (ms per image: pre-process, inference, NMS), s (the inference BCHW shape), n.
    """

    def __init__(self, ims, pred, files, times=(0, 0, 0), names=None, shape=None):
        self.ims = ims
        self.pred = pred
        self.names = names
        self.files = files
        self.times = times
        self.xyxy = pred
        self.xywh = [xyxy2xywh(x) for x in pred]
        gn = [torch.tensor([im.shape[1], im.shape[0], im.shape[1], im.shape[0], 1.0, 1.0], device=x.device)
              for im, x in zip(ims, pred)]
        self.xyxyn = [x / g for x, g in zip(self.xyxy, gn)]
        self.xywhn = [x / g for x, g in zip(self.xywh, gn)]
        self.n = len(self.pred)
        self.t = tuple((getattr(x, "t", x) or 0) / max(self.n, 1) * 1e3 for x in times)
        self.s = tuple(shape) if shape is not None else None

    def _summary(self, i, det):
        im = self.ims[i]
        s = f"\nimage {i + 1}/{self.n}: {im.shape[0]}x{im.shape[1]} "
        if not len(det):
            return s + "(no detections)"
        cls = to_numpy(det[:, 5]).astype(int)
        for c in sorted(set(cls.tolist())):
            k = int((cls == c).sum())
            s += f"{k} {self.names[c]}{'s' * (k > 1)}, "
        return s.rstrip(", ")

    def _annotated(self, i, labels=True):
        """Image i (PIL) with its boxes drawn; the stored image itself is left as it is."""
        im, det = self.ims[i], self.pred[i]
        if len(det):
            annotator = Annotator(np.ascontiguousarray(im.copy()), example=str(self.names))
            for *box, conf, cls in reversed(to_numpy(det).tolist()):
                label = f"{self.names[int(cls)]} {conf:.2f}"
                annotator.box_label(box, label if labels else "", color=colors(int(cls)))
            im = annotator.result()
        return Image.fromarray(np.asarray(im).astype(np.uint8))

    def _crops(self, save, save_dir):
        crops = []
        for i, (im, det) in enumerate(zip(self.ims, self.pred)):
            for *box, conf, cls in reversed(to_numpy(det).tolist()):
                label = f"{self.names[int(cls)]} {conf:.2f}"
                file = save_dir / "crops" / self.names[int(cls)] / self.files[i] if save else None
                crops.append({"box": box, "conf": conf, "cls": cls, "label": label,
                              "im": save_one_box(box, im, file=file, save=save)})
        return crops

    def show(self, labels=True):
        """Open each annotated image in the system viewer (a warning where there is none)."""
        for i in range(self.n):
            try:
                self._annotated(i, labels).show(self.files[i])
            except Exception as e:
                LOGGER.warning(f"WARNING ⚠️ Showing images is not supported in this environment: {e}")
                return

    def save(self, labels=True, save_dir="runs/detect/exp", exist_ok=False):
        """Write the annotated images as save_dir/<file>.jpg (save_dir incremented unless exist_ok)."""
        save_dir = increment_path(save_dir, exist_ok, mkdir=True)
        for i in range(self.n):
            f = Path(save_dir) / self.files[i]
            tmp = f.with_name(f".{f.name}.part")
            self._annotated(i, labels).save(tmp, format="JPEG")
            tmp.replace(f)
        LOGGER.info(f"Saved {self.n} image{'s' * (self.n > 1)} to {colorstr('bold', save_dir)}")
        return save_dir

    def crop(self, save=True, save_dir="runs/detect/exp", exist_ok=False):
        """Crops of every box: a list of dicts (box, conf, cls, label, im); saved under save_dir/crops/<class>/."""
        save_dir = increment_path(save_dir, exist_ok, mkdir=True) if save else None
        crops = self._crops(save, Path(save_dir) if save else None)
        if save:
            LOGGER.info(f"Saved results to {save_dir}\n")
        return crops

    def render(self, labels=True):
        """Draw the boxes into ``self.ims`` (replacing them) and return the list."""
        for i in range(self.n):
            self.ims[i] = np.asarray(self._annotated(i, labels))
        return self.ims

    def pandas(self):
        """A copy whose xyxy/xyxyn/xywh/xywhn are lists of DataFrames (one per image) with class names."""
        import pandas as pd  # noqa: PLC0415 (slow import, needed only here)

        new = copy(self)
        ca = "xmin", "ymin", "xmax", "ymax", "confidence", "class", "name"
        cb = "xcenter", "ycenter", "width", "height", "confidence", "class", "name"
        for k, cols in zip(("xyxy", "xyxyn", "xywh", "xywhn"), (ca, ca, cb, cb)):
            rows = [[r[:5] + [int(r[5]), self.names[int(r[5])]] for r in to_numpy(x).tolist()]
                    for x in getattr(self, k)]
            setattr(new, k, [pd.DataFrame(r, columns=cols) for r in rows])
        return new

    def tolist(self):
        """One Detections per image."""
        return [Detections([self.ims[i]], [self.pred[i]], [self.files[i]], self.times, self.names, self.s)
                for i in range(self.n)]

    def print(self):
        LOGGER.info(self.__str__())

    def __len__(self):
        return self.n

    def __str__(self):
        s = "".join(self._summary(i, det) for i, det in enumerate(self.pred)).lstrip("\n")
        return f"{s}\nSpeed: %.1fms pre-process, %.1fms inference, %.1fms NMS per image at shape {self.s}" % self.t

    def __repr__(self):
        return f"YOLOv5 {self.__class__} instance\n" + self.__str__()
