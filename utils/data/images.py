"""Reading image files that may be hostile: one check before decoding, one error type, the same rules everywhere.

A file's header can declare a size no decoder accepts (a 300-byte PNG claiming 100000x100000 pixels makes OpenCV
raise an assertion, PIL a DecompressionBombError), a JPEG can stop half-way (OpenCV then prints "Premature end of
JPEG file" to stderr and returns a half-grey image without a word to the caller), and any file can be garbage.
``imread`` (detect, val, hub) and ``check_image`` (dataset scans) turn each of these into an ``ImageError`` whose
message names the file and the reason, so callers skip the file with a warning instead of crashing or silently
using a broken image.
"""

import os
from pathlib import Path

import cv2
from PIL import Image, UnidentifiedImageError

from utils.errors import InputError

CV_MAX_PIXELS = int(os.getenv("OPENCV_IO_MAX_IMAGE_PIXELS", 1 << 30))  # OpenCV's own limit (and its variable)
_JPEG_END = b"\xff\xd9"
_JPEG_TAIL = 64  # bytes searched for the end marker: some cameras pad files after it


class ImageError(InputError):
    """An image that cannot be decoded (too large for the decoder, truncated, corrupt); the message names it."""


def declared_size(path):
    """(width, height, PIL format) read from the file's header without decoding pixels; None where PIL does not
    know the format (OpenCV may still read it).

    Raises:
        ImageError: the header declares more pixels than PIL accepts (its decompression-bomb guard).
    """
    try:
        with Image.open(path) as im:
            return im.size[0], im.size[1], (im.format or "").upper()
    except Image.DecompressionBombError as e:  # PIL's message gives the declared and the allowed pixel counts
        raise ImageError(f"{path}: its header declares an image too large to decode ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def jpeg_truncated(path):
    """True when a JPEG file has no end-of-image marker near its end (the file was cut short)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(f.tell() - _JPEG_TAIL, 0))
        return _JPEG_END not in f.read()


def check_image(path, max_pixels=CV_MAX_PIXELS):
    """Cheap checks before decoding ``path`` (header and JPEG tail only); returns (w, h) or None (format unknown to
    PIL).

    Raises:
        ImageError: over ``max_pixels`` (the decoder's limit), or a truncated JPEG.
    """
    size = declared_size(path)
    if size is None:
        return None
    w, h, fmt = size
    if w * h > max_pixels:
        raise ImageError(f"{path}: its header declares {w}x{h} = {w * h} pixels, over the decoder's limit of "
                         f"{max_pixels} (set OPENCV_IO_MAX_IMAGE_PIXELS to raise it if the image is real)")
    if fmt in ("JPEG", "MPO") and jpeg_truncated(path):
        raise ImageError(f"{path}: truncated JPEG (no end-of-image marker): the file was cut short")
    return w, h


def imread(path):
    """BGR uint8 image of ``path`` as cv2.imread gives it, after check_image().

    Raises:
        ImageError: the file cannot be decoded; the message says why.
    """
    path = str(path)
    if not Path(path).is_file():
        raise ImageError(f"{path}: image not found")
    check_image(path)
    try:
        im = cv2.imread(path)
    except cv2.error as e:  # OpenCV's own checks (size, corrupt headers) raise instead of returning None
        reason = str(e).strip().splitlines()[-1]
        raise ImageError(f"{path}: OpenCV cannot decode it ({reason})") from None
    if im is None:
        raise ImageError(f"{path}: not a readable image (corrupt, or a format OpenCV does not decode)")
    return im
