"""Drawing detections: the class colour palette, the box/label Annotator (OpenCV or PIL), crops and feature maps.

Fonts are never downloaded. PIL drawing uses, in order: the file named by ``$YOLOV5_FONT``, a font found on the
system or shipped with matplotlib (DejaVuSans for Latin text; a CJK-capable system font for other scripts when one
is installed), and finally PIL's built-in bitmap font. ultralytics downloads Arial.ttf / Arial.Unicode.ttf instead,
which fails on offline machines.
"""

import functools
import importlib.util
import math
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from utils.files import increment_path
from utils.log import LOGGER

_HEX = ("FF3838", "FF9D97", "FF701F", "FFB21D", "CFD231", "48F90A", "92CC17", "3DDB86", "1A9334", "00D4BB",
        "2C99A8", "00C2FF", "344593", "6473FF", "0018EC", "8438FF", "520085", "CB38FF", "FF95C8", "FF37C7")


class Colors:
    """The 20-colour ultralytics palette; ``colors(i)`` is RGB, ``colors(i, True)`` BGR (for OpenCV images)."""

    def __init__(self):
        self.palette = [tuple(int(h[k:k + 2], 16) for k in (0, 2, 4)) for h in _HEX]
        self.n = len(self.palette)

    def __call__(self, i, bgr=False):
        r, g, b = self.palette[int(i) % self.n]
        return (b, g, r) if bgr else (r, g, b)


colors = Colors()


def is_ascii(s=""):
    """True when str(s) has only ASCII characters (labels OpenCV's Hershey fonts can draw)."""
    return str(s).isascii()


# --------------------------------------------------------------------------------------------------------------- fonts
_LATIN_FONTS = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf", "FreeSans.ttf")
_UNICODE_FONTS = ("NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf", "NotoSansSC-Regular.otf",
                  "wqy-microhei.ttc", "wqy-zenhei.ttc", "DroidSansFallbackFull.ttf", "DroidSansFallback.ttf",
                  "Arial Unicode.ttf", "Arial.Unicode.ttf", "arialuni.ttf")
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts", "/Library/Fonts",
              "/System/Library/Fonts", "C:/Windows/Fonts")


def _matplotlib_font_dir():
    spec = importlib.util.find_spec("matplotlib")  # no import: matplotlib is slow to import
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "mpl-data" / "fonts" / "ttf"
    return d if d.is_dir() else None


@functools.lru_cache(maxsize=4)
def find_font(unicode=False):
    """Path of a TrueType font already on this machine (None if there is none); never downloads.

    Args:
        unicode: look for a font with CJK glyphs first (labels that are not ASCII).
    """
    env = os.getenv("YOLOV5_FONT")
    if env and Path(env).is_file():
        return str(Path(env))
    names = (_UNICODE_FONTS if unicode else ()) + _LATIN_FONTS
    mpl = _matplotlib_font_dir()
    dirs = [Path(d).expanduser() for d in _FONT_DIRS]
    for name in names:
        if mpl is not None and (mpl / name).is_file():
            return str(mpl / name)
        for d in dirs:
            if d.is_dir():
                hit = next(iter(sorted(d.rglob(name))), None)
                if hit is not None:
                    return str(hit)
    return None


@functools.lru_cache(maxsize=32)
def load_font(size=12, unicode=False):
    """A PIL font of ``size`` px from find_font(), else PIL's built-in bitmap font (with one warning)."""
    path = find_font(unicode)
    if path:
        try:
            return ImageFont.truetype(path, size)
        except OSError as e:
            LOGGER.warning(f"WARNING ⚠️ cannot read font {path}: {e}")
    LOGGER.warning("WARNING ⚠️ no TrueType font found (set YOLOV5_FONT=/path/to/font.ttf): using PIL's default")
    return ImageFont.load_default()


def text_size(font, text):
    """(width, height) of ``text`` in a PIL font, on every Pillow version (getsize was removed in Pillow 10)."""
    left, top, right, bottom = font.getbbox(text)
    return right, bottom


# ----------------------------------------------------------------------------------------------------------- annotator
class Annotator:
    """Draws boxes and labels on one image, with OpenCV (BGR numpy, default) or PIL (RGB, or any non-ASCII label).

    Args:
        im: HWC uint8 numpy image (drawn on in place with OpenCV) or a PIL image.
        line_width: box line width; default about 0.3% of the mean image side, at least 2.
        font_size: PIL font size; default about 3.5% of the mean image side, at least 12.
        font: unused file name kept for ultralytics' signature; fonts come from find_font() (see module doc).
        pil: draw with PIL even for ASCII labels.
        example: a sample label (e.g. str(names)); non-ASCII text switches to PIL and a Unicode font.
    """

    def __init__(self, im, line_width=None, font_size=None, font="Arial.ttf", pil=False, example="abc"):
        unicode = not is_ascii(example)
        self.pil = pil or unicode or isinstance(im, Image.Image)
        if self.pil:
            self.im = im if isinstance(im, Image.Image) else Image.fromarray(np.ascontiguousarray(im))
            self.draw = ImageDraw.Draw(self.im)
            size = font_size or max(round(sum(self.im.size) / 2 * 0.035), 12)
            self.font = load_font(size, unicode)
            shape = (self.im.size[1], self.im.size[0], 3)
        else:
            if not im.flags.c_contiguous:
                raise ValueError("Annotator needs a contiguous image: pass np.ascontiguousarray(im)")
            self.im = im
            shape = im.shape
        self.lw = line_width or max(round(sum(shape) / 2 * 0.003), 2)

    def box_label(self, box, label="", color=(128, 128, 128), txt_color=(255, 255, 255)):
        """One xyxy box, with ``label`` on a filled background above it (inside it when there is no room above)."""
        box = [float(v) for v in box]
        if self.pil or not is_ascii(label):
            self._box_label_pil(box, label, color, txt_color)
        else:
            self._box_label_cv2(box, label, color, txt_color)

    def _box_label_pil(self, box, label, color, txt_color):
        if not self.pil:  # a non-ASCII label on an OpenCV image: switch this image to PIL
            self.fromarray(self.im)
            self.pil = True
            self.font = load_font(max(round(sum(self.im.size) / 2 * 0.035), 12), True)
        self.draw.rectangle(box, width=self.lw, outline=tuple(color))
        if label:
            w, h = text_size(self.font, label)
            outside = box[1] - h >= 0
            y0 = box[1] - h if outside else box[1]
            self.draw.rectangle((box[0], y0, box[0] + w + 1, y0 + h + 1), fill=tuple(color))
            self.draw.text((box[0], y0), label, fill=tuple(txt_color), font=self.font)

    def _box_label_cv2(self, box, label, color, txt_color):
        p1, p2 = (int(box[0]), int(box[1])), (int(box[2]), int(box[3]))
        cv2.rectangle(self.im, p1, p2, color, thickness=self.lw, lineType=cv2.LINE_AA)
        if label:
            tf = max(self.lw - 1, 1)  # text thickness
            scale = self.lw / 3
            w, h = cv2.getTextSize(label, 0, fontScale=scale, thickness=tf)[0]
            outside = p1[1] - h >= 3
            corner = (p1[0] + w, p1[1] - h - 3 if outside else p1[1] + h + 3)
            cv2.rectangle(self.im, p1, corner, color, -1, cv2.LINE_AA)
            org = (p1[0], p1[1] - 2 if outside else p1[1] + h + 2)
            cv2.putText(self.im, label, org, 0, scale, txt_color, thickness=tf, lineType=cv2.LINE_AA)

    def rectangle(self, xy, fill=None, outline=None, width=1):
        """A plain rectangle (PIL mode only, as ultralytics)."""
        self.draw.rectangle(xy, fill, outline, width)

    def text(self, xy, text, txt_color=(255, 255, 255), anchor="top"):
        """Text at xy (PIL mode only); anchor='bottom' puts its baseline at xy[1]."""
        xy = list(xy)
        if anchor == "bottom":
            xy[1] += 1 - text_size(self.font, text)[1]
        self.draw.text(xy, text, fill=txt_color, font=self.font)

    def fromarray(self, im):
        """Replace the PIL canvas with ``im`` (numpy or PIL)."""
        self.im = im if isinstance(im, Image.Image) else Image.fromarray(np.ascontiguousarray(im))
        self.draw = ImageDraw.Draw(self.im)

    def result(self):
        """The annotated image as a numpy array."""
        return np.asarray(self.im)


# ------------------------------------------------------------------------------------------------------ saving images
def imwrite(path, im, params=()):
    """cv2.imwrite that is atomic (temp file, then rename) and accepts any path; False when encoding fails."""
    path = Path(path)
    ok, buf = cv2.imencode(path.suffix or ".jpg", im, list(params))
    if not ok:
        return False
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_bytes(buf.tobytes())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def save_one_box(xyxy, im, file=Path("im.jpg"), gain=1.02, pad=10, square=False, BGR=False, save=True):
    """Crop box ``xyxy`` (grown by ``gain`` and ``pad`` pixels, optionally squared) out of ``im``; save and return it.

    Args:
        xyxy: box corners in pixels (4 numbers, tensors allowed).
        im: HWC numpy image; BGR says its channel order (the crop is returned in that order, saved as RGB JPEG).
        file: target path; an existing name gets a numeric suffix (im.jpg, im2.jpg, ...), always saved as .jpg.
    Returns:
        the crop as a numpy array.
    """
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    if square:
        w = h = max(w, h)
    w, h = w * gain + pad, h * gain + pad
    ih, iw = im.shape[:2]
    # truncate toward zero like a tensor .long(), then clip to the image
    x1, x2 = (min(max(int(v), 0), iw) for v in (cx - w / 2, cx + w / 2))
    y1, y2 = (min(max(int(v), 0), ih) for v in (cy - h / 2, cy + h / 2))
    crop = im[y1:y2, x1:x2, ::(1 if BGR else -1)]
    if save:
        file = Path(file)
        file.parent.mkdir(parents=True, exist_ok=True)
        f = increment_path(file).with_suffix(".jpg")
        rgb = np.ascontiguousarray(crop[..., ::-1])
        tmp = f.with_name(f".{f.name}.part")
        try:
            Image.fromarray(rgb).save(tmp, format="JPEG", quality=95, subsampling=0)
            os.replace(tmp, f)
        finally:
            tmp.unlink(missing_ok=True)
    return crop


# ----------------------------------------------------------------------------------------------------- feature maps
def _colorize(fmap, scale):
    """One feature map -> viridis BGR tile, min-max normalised (as matplotlib's imshow), enlarged ``scale`` times."""
    lo, hi = float(fmap.min()), float(fmap.max())
    u8 = np.zeros(fmap.shape, np.uint8) if hi <= lo else ((fmap - lo) / (hi - lo) * 255).astype(np.uint8)
    tile = cv2.applyColorMap(u8, cv2.COLORMAP_VIRIDIS)
    return cv2.resize(tile, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) if scale > 1 else tile


def feature_visualization(x, module_type, stage, n=32, save_dir=Path("runs/detect/exp")):
    """Save the first ``n`` channels of layer ``stage``'s output (batch item 0) as a PNG grid plus the full .npy.

    Files and layout as ultralytics (``stage{i}_{Module}_features.png/.npy``, 8 maps per row, Detect layers and
    1-pixel maps skipped), but the grid is tiled with OpenCV instead of drawn as 32 matplotlib subplots at 300 dpi,
    which took seconds per layer.
    """
    if "Detect" in module_type or not hasattr(x, "shape") or len(x.shape) != 4:
        return
    from utils.backend import to_numpy  # noqa: PLC0415

    _, channels, height, width = x.shape
    if height <= 1 or width <= 1:
        return
    maps = to_numpy(x[0].float() if hasattr(x, "float") else x[0])
    f = Path(save_dir) / f"stage{stage}_{module_type.split('.')[-1]}_features.png"
    n = min(n, channels)
    scale = max(1, math.ceil(64 / max(height, width)))  # small maps enlarged to >= 64 px
    th, tw, gap, cols = height * scale, width * scale, 2, 8
    rows = math.ceil(n / cols)
    grid = np.full((rows * (th + gap) - gap, min(n, cols) * (tw + gap) - gap, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (th + gap):r * (th + gap) + th, c * (tw + gap):c * (tw + gap) + tw] = _colorize(maps[i], scale)
    LOGGER.info(f"Saving {f}... ({n}/{channels})")
    imwrite(f, grid)
    np.save(str(f.with_suffix(".npy")), maps)
