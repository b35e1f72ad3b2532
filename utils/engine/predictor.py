"""The prediction loop every task shares (``Predictor``); a task subclass post-processes and draws.

The base owns: the model runner (DetectMultiBackend: .pt, .onnx, .torchscript), the sources ultralytics accepts
(image, folder, glob, .txt list, video, webcam, .streams list, http(s) image/video URL, rtsp/rtmp/http stream), the
run folder, the per-frame loop with pre-process / inference / post-process timings, the per-image log line, saving
(annotated images, .mp4 videos that appear under their name only once complete, labels/*.txt, crops) and --view-img.
A task supplies:

    postprocess(pred, im, im0s)           the model's output -> one result per image (NMS, masks, top-5 ...)
    write_result(i, result, frame)        log text of one image; draws on frame.annotator, writes txt/crops
and may override ``annotator_for`` (the drawing surface) and ``txt_suffix``.
"""

import os
import platform
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.experimental import strip_optimizer
from utils.annotator import Annotator, imwrite
from utils.backend import from_numpy, inference_mode, select_device
from utils.backend.graph import compile_forward
from utils import cli
from utils.cli import check_img_size
from utils.data import loaders
from utils.data.batch import Tensor
from utils.data.formats import IMG_FORMATS, VID_FORMATS
from utils.errors import FlagError, UserError
from utils.files import increment_path
from utils.log import LOGGER, colorstr
from utils.runtime import DetectMultiBackend, Profile

class SourceError(UserError, ValueError):
    """A --source that cannot be read: missing path, camera or stream that does not open, URL offline."""


# ------------------------------------------------------------------------------------------------------------ sources
def download_file(url, timeout=30):
    """Download an image/video URL into the current folder (as ultralytics); reuse it if already there."""
    file = Path(urllib.parse.unquote(url).split("?")[0]).name
    if Path(file).is_file():
        LOGGER.info(f"Found {url} locally at {file}")
        return file
    LOGGER.info(f"Downloading {url} to {file}...")
    tmp = Path(f".{file}.part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
        if tmp.stat().st_size == 0:
            raise OSError("empty response")
        os.replace(tmp, file)
    except Exception as e:
        raise SourceError(f"cannot download {url} ({e}); if this machine is offline, download it elsewhere and pass "
                          f"the local path to --source") from None
    finally:
        tmp.unlink(missing_ok=True)
    return file


def open_source(source, imgsz, stride, pt, vid_stride, transforms=None):
    """(dataset, batch size, webcam?) for a --source string, as ultralytics classifies it."""
    is_file = Path(source).suffix[1:].lower() in (IMG_FORMATS + VID_FORMATS)
    is_url = source.lower().startswith(("rtsp://", "rtmp://", "http://", "https://"))
    webcam = source.isnumeric() or source.endswith(".streams") or (is_url and not is_file)
    kwargs = dict(img_size=imgsz, stride=stride, auto=pt, vid_stride=vid_stride)
    if transforms is not None:
        kwargs["transforms"] = transforms
    if webcam:
        try:
            dataset = loaders.LoadStreams(source, **kwargs)
        except Exception as e:
            what = "webcam" if source.isnumeric() else "stream"
            raise SourceError(f"cannot open {what} '{source}': {e}") from None
        return dataset, len(dataset), True
    if source.lower().startswith("screen"):
        if not hasattr(loaders, "LoadScreenshots"):
            raise SourceError("screen capture sources ('screen') are not supported by this build")
        return loaders.LoadScreenshots(source, img_size=imgsz, stride=stride, auto=pt), 1, False
    try:
        dataset = loaders.LoadImages(source, **kwargs)
    except (FileNotFoundError, AssertionError) as e:
        raise SourceError(str(e)) from None
    return dataset, 1, False


def can_imshow(warn=False):
    """True if OpenCV can open a window here (not in headless builds or without a display)."""
    try:
        if platform.system() == "Linux" and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            raise RuntimeError("no display")
        cv2.imshow("test", cv2.UMat(8, 8, cv2.CV_8UC3))
        cv2.waitKey(1)
        cv2.destroyAllWindows()
        return True
    except Exception as e:
        if warn:
            LOGGER.warning(f"WARNING ⚠️ Environment does not support cv2.imshow() or PIL Image.show(): {e}")
        return False


# ------------------------------------------------------------------------------------------------------------ outputs
class VideoSaver:
    """Writes result videos as .mp4 next to the images; a video appears under its name only once complete."""

    def __init__(self, n):
        self.path = [None] * n  # final path per stream
        self.tmp = [None] * n  # where it is written until complete
        self.final = [None] * n  # the .mp4 it becomes
        self.writer = [None] * n

    def write(self, i, save_path, im0, vid_cap):
        if self.path[i] != save_path:
            self._finish(i)
            fps, w, h = 30, im0.shape[1], im0.shape[0]
            if vid_cap:  # a video file (streams use 30 FPS and the frame size)
                fps = vid_cap.get(cv2.CAP_PROP_FPS) or 30
                w, h = int(vid_cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(vid_cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            final = Path(save_path).with_suffix(".mp4")  # results videos are always .mp4
            self.path[i], self.final[i] = save_path, final
            self.tmp[i] = final.with_name(f".{final.stem}.partial.mp4")
            self.writer[i] = cv2.VideoWriter(str(self.tmp[i]), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        self.writer[i].write(im0)

    def _finish(self, i, keep=True):
        if self.writer[i] is None:
            return
        self.writer[i].release()
        if keep and self.tmp[i].exists():
            os.replace(self.tmp[i], self.final[i])
        else:
            self.tmp[i].unlink(missing_ok=True)
        self.writer[i] = None

    def close(self, keep=True):
        for i in range(len(self.writer)):
            self._finish(i, keep)


@dataclass
class Frame:
    """One image of a batch being written: where it came from and where its outputs go."""

    path: Path  # the source file / stream name
    im0: object  # the original image (BGR, HWC), drawn on
    imc: object  # an untouched copy for crops (None when --save-crop is off)
    index: int  # frame number in a video (0 for images)
    txt_path: str  # labels/<stem>[_<frame>] without suffix
    annotator: Annotator


# ---------------------------------------------------------------------------------------------------------- the loop
class Predictor:
    """One prediction run: ``Predictor(PredictConfig)()`` returns the run folder (Path)."""

    task = "detect"
    config_defaults = {}  # PredictConfig fields the task's script has no flag for (utils/engine/tasks.predict)

    def __init__(self, cfg):
        self.cfg = cfg

    def setup(self):
        """Model, source and run folder; a bad --weights or --source leaves no empty run folder behind."""
        cfg = self.cfg
        source = str(cfg.source)
        self.save_img = not cfg.nosave and not source.endswith(".txt")  # as ultralytics: a .txt list saves no images
        if source.lower().startswith(("http://", "https://")) and Path(source).suffix[1:].lower() in (IMG_FORMATS +
                                                                                                      VID_FORMATS):
            source = download_file(source)
        imgsz = [cfg.imgsz, cfg.imgsz] if isinstance(cfg.imgsz, int) else list(cfg.imgsz)
        imgsz = imgsz * 2 if len(imgsz) == 1 else imgsz
        self.device = select_device(cfg.device, log=LOGGER.info)
        self.model = DetectMultiBackend(cfg.weights, device=self.device, dnn=cfg.dnn, data=cfg.data, fp16=cfg.half)
        if self.model.task != self.task:
            raise FlagError(f"{cfg.weights} holds a {self.model.task} model, not a {self.task} model: use "
                            f"{cli.TASKS[self.model.task].file('predict')}")
        self.forward = compile_forward(self.model, log=LOGGER.info) if cfg.graph and self.model.pt else self.model
        self.names = self.model.names
        self.imgsz = check_img_size(imgsz, s=self.model.stride)
        self.dataset, self.bs, self.webcam = open_source(source, self.imgsz, self.model.stride, self.model.pt,
                                                         cfg.vid_stride, **self.source_args())
        self.view_img = can_imshow(warn=True) if (cfg.view_img or self.webcam) else False
        self.save_dir = increment_path(Path(cfg.project) / cfg.name, exist_ok=cfg.exist_ok)
        (self.save_dir / "labels" if cfg.save_txt else self.save_dir).mkdir(parents=True, exist_ok=True)
        self.videos, self.windows = VideoSaver(self.bs), []

    def source_args(self) -> dict:
        return {}

    def __call__(self):
        self.setup()
        cfg = self.cfg
        self.model.warmup(imgsz=(1 if self.model.pt else self.bs, 3, *self.imgsz))
        seen, dt, complete = 0, (Profile(), Profile(), Profile()), False
        try:
            with inference_mode():
                for path, im, im0s, vid_cap, s in self.dataset:  # unreadable files are skipped by the loader
                    with dt[0]:
                        im = self.preprocess(im)
                    with dt[1]:
                        vis = increment_path(self.save_dir / Path(path).stem, mkdir=True) if cfg.visualize else False
                        pred = self.forward(im, augment=cfg.augment, visualize=vis)
                    with dt[2]:
                        results = self.postprocess(pred, im, im0s)
                    for i, result in enumerate(results):
                        seen += 1
                        s = self.save_one(i, result, path, im, im0s, vid_cap, s)
                    LOGGER.info(f"{s}{self.empty_note(results)}{dt[1].dt * 1e3:.1f}ms")
            complete = True
        finally:
            self.videos.close(keep=complete)
        self.log_summary(tuple(x.t / max(seen, 1) * 1e3 for x in dt))
        if cfg.update:
            strip_weights(cfg.weights)
        return self.save_dir

    def preprocess(self, im: np.ndarray) -> Tensor:
        im = from_numpy(im, self.model.device)
        im = im.half() if self.model.fp16 else im.float()
        im /= 255
        return im[None] if len(im.shape) == 3 else im

    def empty_note(self, results: list) -> str:
        return "" if len(results[-1]) else "(no detections), "

    def log_summary(self, t):
        cfg = self.cfg
        LOGGER.info(f"Speed: %.1fms pre-process, %.1fms inference, %.1fms NMS per image at shape "
                    f"{(1, 3, *self.imgsz)}" % t)
        if cfg.save_txt or self.save_img:
            n = len(list(self.save_dir.glob("labels/*.txt")))
            s = f"\n{n} labels saved to {self.save_dir / 'labels'}" if cfg.save_txt else ""
            LOGGER.info(f"Results saved to {colorstr('bold', self.save_dir)}{s}")

    def save_one(self, i, result, path, im, im0s, vid_cap, s):
        """Write image i's outputs (txt, crops, annotated image or video frame, window); return the log text."""
        cfg = self.cfg
        if self.webcam:
            p, im0, index = path[i], im0s[i].copy(), self.dataset.count
            s += f"{i}: "
        else:
            p, im0, index = path, im0s.copy(), getattr(self.dataset, "frame", 0)
        p = Path(p)
        mode = getattr(self.dataset, "mode", "stream")
        txt_path = str(self.save_dir / "labels" / p.stem) + ("" if mode == "image" else f"_{index}")
        s += "%gx%g " % tuple(im.shape[2:])
        frame = Frame(p, im0, im0.copy() if cfg.save_crop else None, index, txt_path, self.annotator_for(im0))
        s += self.write_result(i, result, frame, im)
        im0 = frame.annotator.result()
        if self.view_img:
            self.show(p, im0)
        if self.save_img:
            save_path = str(self.save_dir / p.name)
            if mode == "image":
                imwrite(save_path, im0)
            else:
                self.videos.write(i, save_path, im0, vid_cap)
        return s

    def annotator_for(self, im0):
        return Annotator(im0, line_width=self.cfg.line_thickness, example=str(self.names))

    def show(self, p, im0):
        if platform.system() == "Linux" and p not in self.windows:
            self.windows.append(p)
            cv2.namedWindow(str(p), cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
            cv2.resizeWindow(str(p), im0.shape[1], im0.shape[0])
        cv2.imshow(str(p), im0)
        cv2.waitKey(1)

    # ------------------------------------------------------------------------------------------------ task hooks
    def postprocess(self, pred: Any, im: Tensor, im0s: Any) -> list:
        raise NotImplementedError

    def write_result(self, i: int, result: Any, frame: Frame, im: Tensor) -> str:
        raise NotImplementedError


def strip_weights(weights):
    """--update: strip optimizer state from our checkpoints (official ultralytics files are left as they are)."""
    for w in weights if isinstance(weights, (list, tuple)) else [weights]:
        try:
            strip_optimizer(w)
        except Exception as e:
            LOGGER.warning(f"WARNING ⚠️ --update: {w} left unchanged ({e})")
