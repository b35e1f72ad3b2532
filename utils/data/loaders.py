"""Inference sources for detect.py: image/video files (LoadImages), cameras and network streams (LoadStreams).

Each iteration yields ``(path, im, im0, vid_cap, s)`` as ultralytics: ``im`` the letterboxed RGB CHW uint8 numpy image
(or a stack of them for streams), ``im0`` the original BGR image(s), ``vid_cap`` the OpenCV capture of a video (else
None) and ``s`` a log string.
"""

import glob
import math
import os
import re
import time
from pathlib import Path
from threading import Thread
from urllib.parse import urlparse

import cv2
import numpy as np

from utils.data.augment import letterbox
from utils.data.formats import IMG_FORMATS, VID_FORMATS
from utils.data.images import ImageError, imread
from utils.log import LOGGER


def _to_chw_rgb(im):
    return np.ascontiguousarray(im.transpose((2, 0, 1))[::-1])


def list_source_files(path):
    """Files named by ``path``: a file, a directory (not recursive), a glob, a .txt list, or a list of those."""
    if isinstance(path, (str, Path)) and Path(path).suffix == ".txt" and Path(path).is_file():
        path = Path(path).read_text().split()
    files = []
    for p in sorted(path) if isinstance(path, (list, tuple)) else [path]:
        p = str(Path(p).resolve())
        if "*" in p:
            files.extend(sorted(glob.glob(p, recursive=True)))
        elif os.path.isdir(p):
            files.extend(sorted(glob.glob(os.path.join(p, "*.*"))))
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise FileNotFoundError(f"{p} does not exist")
    return files


class LoadImages:
    """Images and videos from files, directories, globs or a .txt list, letterboxed for the model.

    An image that cannot be decoded (corrupt, truncated, a header over the decoder's limit) and a video that cannot
    be read are skipped with a warning naming them; when nothing at all could be read, the end of the iteration
    raises ImageError instead (no silent success). A video is read frame by frame (every ``vid_stride``-th frame).
    """

    def __init__(self, path, img_size=640, stride=32, auto=True, transforms=None, vid_stride=1):
        files = list_source_files(path)
        images = [x for x in files if x.rsplit(".", 1)[-1].lower() in IMG_FORMATS]
        videos = [x for x in files if x.rsplit(".", 1)[-1].lower() in VID_FORMATS]
        ni, nv = len(images), len(videos)
        self.img_size, self.stride, self.auto = img_size, stride, auto
        self.files = images + videos
        self.nf = ni + nv
        self.video_flag = [False] * ni + [True] * nv
        self.mode = "image"
        self.transforms = transforms
        self.vid_stride = vid_stride
        self.cap = None
        if self.nf == 0:
            raise FileNotFoundError(f"No images or videos found in {path}. "
                                    f"Supported formats are:\nimages: {IMG_FORMATS}\nvideos: {VID_FORMATS}")
        if nv:
            self._new_video(videos[0])

    def __iter__(self):
        self.count = 0
        self.read, self.skipped = 0, []
        return self

    def __next__(self):
        while True:
            if self.count >= self.nf:
                self._finish()
            path = self.files[self.count]
            if self.video_flag[self.count]:
                item = self._next_frame(path)
                if item is None:
                    continue
                im0, s = item
                path = self.files[self.count]
            else:
                self.count += 1
                try:
                    im0 = imread(path)
                except ImageError as e:
                    self._skip(path, f"{e}; skipping")
                    continue
                s = f"image {self.count}/{self.nf} {path}: "
            self.read += 1
            return path, self._prepare(im0), im0, self.cap, s

    def _skip(self, path, message):
        LOGGER.warning(f"WARNING ⚠️ {message}")
        self.skipped.append(path)

    def _finish(self):
        """StopIteration, or ImageError when every file was skipped (the warnings above say why)."""
        if self.read == 0 and self.skipped:
            raise ImageError(f"none of the {len(self.skipped)} image/video file(s) could be read (see the warnings "
                             f"above): {', '.join(self.skipped[:3])}{' ...' if len(self.skipped) > 3 else ''}")
        raise StopIteration

    def _next_frame(self, path):
        """(frame, log string) of the current video, or None after moving on to the next file."""
        self.mode = "video"
        if self.cap is None or self._cap_path != path:
            self._new_video(path)
        for _ in range(self.vid_stride):
            self.cap.grab()
        ok, im0 = self.cap.retrieve()
        if not ok:  # end of this video (or unreadable): next file
            self.cap.release()
            self.count += 1
            if self.frame == 0:
                self._skip(path, f"{path}: video cannot be read (corrupt, or a codec OpenCV lacks), skipping")
            return None
        self.frame += 1
        return im0, f"video {self.count + 1}/{self.nf} ({self.frame}/{self.frames}) {path}: "

    def _prepare(self, im0):
        if self.transforms:
            return self.transforms(im0)
        return _to_chw_rgb(letterbox(im0, self.img_size, stride=self.stride, auto=self.auto)[0])

    def _new_video(self, path):
        self.frame = 0
        self._cap_path = path
        self.cap = cv2.VideoCapture(path)
        self.frames = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) / self.vid_stride)

    def __len__(self):
        return self.nf


def _clean_str(s):
    return re.sub(pattern="[|@#!¡·$€%&()=?¿^*;:,¨´><+]", repl="_", string=s)


def _open_capture(s, st):
    """cv2.VideoCapture of a camera index ('0'), file or URL; a clear error when nothing can be opened there."""
    if urlparse(s).hostname in ("www.youtube.com", "youtube.com", "youtu.be"):
        try:
            import pafy  # optional: resolves a YouTube page to a stream URL
        except ImportError:
            raise ImportError(f"{st}YouTube sources need the 'pafy' and 'youtube_dl' packages "
                              f"(pip install pafy youtube_dl==2020.12.2)") from None
        s = pafy.new(s).getbest(preftype="mp4").url
    source = int(s) if s.isnumeric() else s
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        what = f"camera {source}" if isinstance(source, int) else f"stream {s}"
        raise ConnectionError(f"{st}Failed to open {what}: no such camera or stream is reachable from this machine "
                              f"(check the index/URL, permissions and the network)")
    return cap


class LoadStreams:
    """Live sources read in background threads: camera indices ('0'), RTSP/RTMP/HTTP URLs, or a file listing them.

    Raises:
        ConnectionError: a source cannot be opened (no camera at that index, unreachable stream).
    """

    def __init__(self, sources="file.streams", img_size=640, stride=32, auto=True, transforms=None, vid_stride=1):
        self.mode = "stream"
        self.img_size, self.stride, self.vid_stride = img_size, stride, vid_stride
        sources = Path(sources).read_text().split() if os.path.isfile(sources) else [sources]
        n = len(sources)
        self.sources = [_clean_str(x) for x in sources]
        self.imgs, self.fps, self.frames, self.threads = [None] * n, [0] * n, [0] * n, [None] * n
        for i, s in enumerate(sources):
            st = f"{i + 1}/{n}: {s}... "
            cap = _open_capture(s, st)
            w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            fps = cap.get(cv2.CAP_PROP_FPS)  # may be 0 or nan
            self.frames[i] = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0) or float("inf")
            self.fps[i] = max((fps if math.isfinite(fps) else 0) % 100, 0) or 30
            ok, self.imgs[i] = cap.read()
            if not ok or self.imgs[i] is None:
                raise ConnectionError(f"{st}opened but returned no frame")
            self.threads[i] = Thread(target=self.update, args=(i, cap, s), daemon=True)
            LOGGER.info(f"{st} Success ({self.frames[i]} frames {w}x{h} at {self.fps[i]:.2f} FPS)")
            self.threads[i].start()
        LOGGER.info("")
        shapes = np.stack([letterbox(x, img_size, stride=stride, auto=auto)[0].shape for x in self.imgs])
        self.rect = np.unique(shapes, axis=0).shape[0] == 1
        self.auto = auto and self.rect
        self.transforms = transforms
        if not self.rect:
            LOGGER.warning("WARNING ⚠️ Stream shapes differ. For optimal performance supply similarly-shaped streams.")

    def update(self, i, cap, stream):
        """Thread body: keep self.imgs[i] at the latest (every vid_stride-th) frame of source i."""
        n, f = 0, self.frames[i]
        while cap.isOpened() and n < f:
            n += 1
            cap.grab()
            if n % self.vid_stride == 0:
                ok, im = cap.retrieve()
                if ok:
                    self.imgs[i] = im
                else:
                    LOGGER.warning("WARNING ⚠️ Video stream unresponsive, please check your IP camera connection.")
                    self.imgs[i] = np.zeros_like(self.imgs[i])
                    cap.open(stream)
            time.sleep(0.0)

    def __iter__(self):
        self.count = -1
        return self

    def __next__(self):
        self.count += 1
        if not all(x.is_alive() for x in self.threads) or _quit_key_pressed():
            raise StopIteration
        im0 = self.imgs.copy()
        if self.transforms:
            im = np.stack([self.transforms(x) for x in im0])
        else:
            im = np.stack([letterbox(x, self.img_size, stride=self.stride, auto=self.auto)[0] for x in im0])
            im = np.ascontiguousarray(im[..., ::-1].transpose((0, 3, 1, 2)))  # BGR->RGB, BHWC->BCHW
        return self.sources, im, im0, None, ""

    def __len__(self):
        return len(self.sources)


def _quit_key_pressed():
    """'q' in an OpenCV window ends a stream; headless OpenCV builds have no windows (then never)."""
    try:
        if cv2.waitKey(1) == ord("q"):
            cv2.destroyAllWindows()
            return True
    except cv2.error:
        pass
    return False
