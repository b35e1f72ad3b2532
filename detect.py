"""Run YOLOv5 detection on images, folders, globs, lists, videos, webcams and streams, on OneFlow or PyTorch.

Usage - sources:
    python detect.py --weights yolov5s.pt --source 0                               # webcam
                                                   img.jpg                         # image
                                                   vid.mp4                         # video
                                                   path/                           # directory
                                                   list.txt                        # list of images
                                                   list.streams                    # list of streams
                                                   'path/*.jpg'                    # glob
                                                   'https://example.com/img.jpg'   # image URL (downloaded)
                                                   'rtsp://example.com/media.mp4'  # RTSP, RTMP, HTTP stream

Usage - outputs (as ultralytics): runs/detect/exp{n}/ annotated images and .mp4 videos, labels/*.txt with
--save-txt (rows `cls x y w h [conf]`, normalised), crops/<class>/ with --save-crop, feature maps with --visualize.

Usage - formats (export.py writes them):
    python detect.py --weights yolov5s.pt / yolov5s.onnx (onnxruntime; --dnn: OpenCV DNN) / yolov5s.torchscript

Usage - backend:
    python detect.py --backend torch ...   (or YOLOV5_BACKEND=torch; default oneflow)
"""

import argparse
import os
import platform
import sys
import urllib.parse
import urllib.request
from pathlib import Path

FILE = Path(__file__).resolve()
ROOT = FILE.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))
try:
    ROOT = Path(os.path.relpath(ROOT, Path.cwd()))  # shorter paths in logs, as ultralytics
except ValueError:  # another drive (Windows)
    pass

import cv2  # noqa: E402

from utils.annotator import Annotator, colors, imwrite, save_one_box  # noqa: E402
from utils.backend import from_numpy, inference_mode, select_device, to_numpy  # noqa: E402
from utils.boxes import scale_boxes, xyxy2xywh  # noqa: E402
from utils.cli import add_backend_arg, check_img_size, print_args  # noqa: E402
from utils.data.formats import IMG_FORMATS, VID_FORMATS  # noqa: E402
from utils.files import increment_path  # noqa: E402
from utils.log import LOGGER, colorstr  # noqa: E402
from utils.nms import non_max_suppression  # noqa: E402
from utils.runtime import DetectMultiBackend, Profile  # noqa: E402


class SourceError(ValueError):
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


def open_source(source, imgsz, stride, pt, vid_stride):
    """(dataset, batch size, webcam?) for a --source string, as ultralytics classifies it."""
    from utils.data import loaders  # noqa: PLC0415 (LoadStreams starts threads; import on use)

    is_file = Path(source).suffix[1:].lower() in (IMG_FORMATS + VID_FORMATS)
    is_url = source.lower().startswith(("rtsp://", "rtmp://", "http://", "https://"))
    webcam = source.isnumeric() or source.endswith(".streams") or (is_url and not is_file)
    if webcam:
        try:
            dataset = loaders.LoadStreams(source, img_size=imgsz, stride=stride, auto=pt, vid_stride=vid_stride)
        except Exception as e:
            what = "webcam" if source.isnumeric() else "stream"
            raise SourceError(f"cannot open {what} '{source}': {e}") from None
        return dataset, len(dataset), True
    if source.lower().startswith("screen"):
        if not hasattr(loaders, "LoadScreenshots"):
            raise SourceError("screen capture sources ('screen') are not supported by this build")
        return loaders.LoadScreenshots(source, img_size=imgsz, stride=stride, auto=pt), 1, False
    try:
        dataset = loaders.LoadImages(source, img_size=imgsz, stride=stride, auto=pt, vid_stride=vid_stride)
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


def label_rows(det, shape, save_conf):
    """YOLO label lines 'cls x y w h [conf]' (normalised xywh) for (n, 6) detections in image pixels."""
    h, w = shape[:2]
    rows = []
    for *xyxy, conf, cls in reversed(to_numpy(det).tolist()):
        xywh = to_numpy(xyxy2xywh(from_numpy([xyxy]))).reshape(-1).tolist()
        xywh = [xywh[0] / w, xywh[1] / h, xywh[2] / w, xywh[3] / h]
        line = (cls, *xywh, conf) if save_conf else (cls, *xywh)
        rows.append(("%g " * len(line)).rstrip() % line + "\n")
    return rows


def describe(det, names):
    """'2 cats, 1 dog, ' for the per-image log line."""
    s = ""
    cls = to_numpy(det[:, 5]).astype(int)
    for c in sorted(set(cls.tolist())):
        n = int((cls == c).sum())
        s += f"{n} {names[c]}{'s' * (n > 1)}, "
    return s


# ---------------------------------------------------------------------------------------------------------------- run
def run(
    weights=ROOT / "yolov5s.pt",  # model path(s)
    source=ROOT / "data/images",  # file/dir/URL/glob/screen/0(webcam)
    data=ROOT / "data/coco128.yaml",  # dataset.yaml path (class names when the weights carry none)
    imgsz=(640, 640),  # inference size (height, width)
    conf_thres=0.25,  # confidence threshold
    iou_thres=0.45,  # NMS IoU threshold
    max_det=1000,  # maximum detections per image
    device="",  # cuda device, i.e. 0 or 0,1,2,3 or cpu
    view_img=False,  # show results
    save_txt=False,  # save results to *.txt
    save_conf=False,  # save confidences in --save-txt labels
    save_crop=False,  # save cropped prediction boxes
    nosave=False,  # do not save images/videos
    classes=None,  # filter by class: --classes 0, or --classes 0 2 3
    agnostic_nms=False,  # class-agnostic NMS
    augment=False,  # augmented inference
    visualize=False,  # visualize features
    update=False,  # strip optimizer from the weights
    project=ROOT / "runs/detect",  # save results to project/name
    name="exp",  # save results to project/name
    exist_ok=False,  # existing project/name ok, do not increment
    line_thickness=3,  # bounding box thickness (pixels)
    hide_labels=False,  # hide labels
    hide_conf=False,  # hide confidences
    half=False,  # use FP16 half-precision inference
    dnn=False,  # use OpenCV DNN for ONNX inference
    vid_stride=1,  # video frame-rate stride
):
    """Detect objects in ``source`` and save the results; returns the run folder (Path)."""
    source = str(source)
    save_img = not nosave and not source.endswith(".txt")  # as ultralytics: a .txt list saves no images
    is_file = Path(source).suffix[1:].lower() in (IMG_FORMATS + VID_FORMATS)
    if source.lower().startswith(("http://", "https://")) and is_file:
        source = download_file(source)
    imgsz = [imgsz, imgsz] if isinstance(imgsz, int) else list(imgsz)
    imgsz = imgsz * 2 if len(imgsz) == 1 else imgsz

    # model and source first: a bad --weights or --source leaves no empty run folder behind
    device = select_device(device, log=LOGGER.info)
    model = DetectMultiBackend(weights, device=device, dnn=dnn, data=data, fp16=half)
    if model.task != "detect":
        script = {"segment": "segment/predict.py", "classify": "classify/predict.py"}[model.task]
        raise ValueError(f"{weights} holds a {model.task} model, not a detection model: use {script}")
    stride, names, pt = model.stride, model.names, model.pt
    imgsz = check_img_size(imgsz, s=stride)
    dataset, bs, webcam = open_source(source, imgsz, stride, pt, vid_stride)
    if view_img or webcam:
        view_img = can_imshow(warn=True)

    save_dir = increment_path(Path(project) / name, exist_ok=exist_ok)
    (save_dir / "labels" if save_txt else save_dir).mkdir(parents=True, exist_ok=True)
    videos = VideoSaver(bs)
    opts = dict(save_dir=save_dir, names=names, save_txt=save_txt, save_conf=save_conf, save_crop=save_crop,
                save_img=save_img, view_img=view_img, hide_labels=hide_labels, hide_conf=hide_conf,
                line_thickness=line_thickness, webcam=webcam, videos=videos)
    model.warmup(imgsz=(1 if pt else bs, 3, *imgsz))
    seen, windows, dt = 0, [], (Profile(), Profile(), Profile())
    complete = False
    try:
        with inference_mode():
            for path, im, im0s, vid_cap, s in dataset:  # unreadable files are skipped by the loader, with a warning
                with dt[0]:
                    im = from_numpy(im, model.device)
                    im = im.half() if model.fp16 else im.float()
                    im /= 255
                    if len(im.shape) == 3:
                        im = im[None]
                with dt[1]:
                    vis = increment_path(save_dir / Path(path).stem, mkdir=True) if visualize else False
                    pred = model(im, augment=augment, visualize=vis)
                with dt[2]:
                    pred = non_max_suppression(pred, conf_thres, iou_thres, classes, agnostic_nms, max_det=max_det)
                for i, det in enumerate(pred):
                    seen += 1
                    s = save_result(i, det, path, im, im0s, vid_cap, s, dataset, windows, **opts)
                LOGGER.info(f"{s}{'' if len(det) else '(no detections), '}{dt[1].dt * 1e3:.1f}ms")
        complete = True
    finally:
        videos.close(keep=complete)

    t = tuple(x.t / max(seen, 1) * 1e3 for x in dt)
    LOGGER.info(f"Speed: %.1fms pre-process, %.1fms inference, %.1fms NMS per image at shape {(1, 3, *imgsz)}" % t)
    if save_txt or save_img:
        s = f"\n{len(list(save_dir.glob('labels/*.txt')))} labels saved to {save_dir / 'labels'}" if save_txt else ""
        LOGGER.info(f"Results saved to {colorstr('bold', save_dir)}{s}")
    if update:
        strip_weights(weights)
    return save_dir


def save_result(i, det, path, im, im0s, vid_cap, s, dataset, windows, *, save_dir, names, save_txt, save_conf,
                save_crop, save_img, view_img, hide_labels, hide_conf, line_thickness, webcam, videos):
    """Rescale image i's detections, write its label file, crops, annotated image or video frame; return the log."""
    if webcam:
        p, im0, frame = path[i], im0s[i].copy(), dataset.count
        s += f"{i}: "
    else:
        p, im0, frame = path, im0s.copy(), getattr(dataset, "frame", 0)
    p = Path(p)
    mode = getattr(dataset, "mode", "stream")
    save_path = str(save_dir / p.name)
    txt_path = str(save_dir / "labels" / p.stem) + ("" if mode == "image" else f"_{frame}")
    s += "%gx%g " % tuple(im.shape[2:])
    imc = im0.copy() if save_crop else im0
    annotator = Annotator(im0, line_width=line_thickness, example=str(names))
    if len(det):
        det[:, :4] = scale_boxes(im.shape[2:], det[:, :4], im0.shape).round()
        s += describe(det, names)
        if save_txt:
            with open(f"{txt_path}.txt", "a") as f:  # one write per image
                f.write("".join(label_rows(det, im0.shape, save_conf)))
        for *xyxy, conf, cls in reversed(to_numpy(det).tolist()):
            c = int(cls)
            if save_img or save_crop or view_img:
                label = None if hide_labels else (names[c] if hide_conf else f"{names[c]} {conf:.2f}")
                annotator.box_label(xyxy, label, color=colors(c, True))
            if save_crop:
                save_one_box(xyxy, imc, file=save_dir / "crops" / names[c] / f"{p.stem}.jpg", BGR=True)
    im0 = annotator.result()
    if view_img:
        if platform.system() == "Linux" and p not in windows:
            windows.append(p)
            cv2.namedWindow(str(p), cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
            cv2.resizeWindow(str(p), im0.shape[1], im0.shape[0])
        cv2.imshow(str(p), im0)
        cv2.waitKey(1)
    if save_img:
        if mode == "image":
            imwrite(save_path, im0)
        else:
            videos.write(i, save_path, im0, vid_cap)
    return s


def strip_weights(weights):
    """--update: strip optimizer state from our checkpoints (official ultralytics files are left as they are)."""
    from utils.engine.trainer import strip_optimizer  # noqa: PLC0415

    for w in weights if isinstance(weights, (list, tuple)) else [weights]:
        try:
            strip_optimizer(w)
        except Exception as e:
            LOGGER.warning(f"WARNING ⚠️ --update: {w} left unchanged ({e})")


def parse_opt(known=False):
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", nargs="+", type=str, default=ROOT / "yolov5s.pt", help="model path or triton URL")
    parser.add_argument("--source", type=str, default=ROOT / "data/images", help="file/dir/URL/glob/screen/0(webcam)")
    parser.add_argument("--data", type=str, default=ROOT / "data/coco128.yaml", help="(optional) dataset.yaml path")
    parser.add_argument("--imgsz", "--img", "--img-size", nargs="+", type=int, default=[640], help="inference size h,w")
    parser.add_argument("--conf-thres", type=float, default=0.25, help="confidence threshold")
    parser.add_argument("--iou-thres", type=float, default=0.45, help="NMS IoU threshold")
    parser.add_argument("--max-det", type=int, default=1000, help="maximum detections per image")
    parser.add_argument("--device", default="", help="cuda device, i.e. 0 or 0,1,2,3 or cpu")
    parser.add_argument("--view-img", action="store_true", help="show results")
    parser.add_argument("--save-txt", action="store_true", help="save results to *.txt")
    parser.add_argument("--save-conf", action="store_true", help="save confidences in --save-txt labels")
    parser.add_argument("--save-crop", action="store_true", help="save cropped prediction boxes")
    parser.add_argument("--nosave", action="store_true", help="do not save images/videos")
    parser.add_argument("--classes", nargs="+", type=int, help="filter by class: --classes 0, or --classes 0 2 3")
    parser.add_argument("--agnostic-nms", action="store_true", help="class-agnostic NMS")
    parser.add_argument("--augment", action="store_true", help="augmented inference")
    parser.add_argument("--visualize", action="store_true", help="visualize features")
    parser.add_argument("--update", action="store_true", help="update all models")
    parser.add_argument("--project", default=ROOT / "runs/detect", help="save results to project/name")
    parser.add_argument("--name", default="exp", help="save results to project/name")
    parser.add_argument("--exist-ok", action="store_true", help="existing project/name ok, do not increment")
    parser.add_argument("--line-thickness", default=3, type=int, help="bounding box thickness (pixels)")
    parser.add_argument("--hide-labels", default=False, action="store_true", help="hide labels")
    parser.add_argument("--hide-conf", default=False, action="store_true", help="hide confidences")
    parser.add_argument("--half", action="store_true", help="use FP16 half-precision inference")
    parser.add_argument("--dnn", action="store_true", help="use OpenCV DNN for ONNX inference")
    parser.add_argument("--vid-stride", type=int, default=1, help="video frame-rate stride")
    add_backend_arg(parser)
    opt = parser.parse_known_args()[0] if known else parser.parse_args()
    opt.imgsz *= 2 if len(opt.imgsz) == 1 else 1  # expand
    print_args(vars(opt))
    return opt


def main(opt):
    kwargs = {k: v for k, v in vars(opt).items() if k != "backend"}  # the backend is chosen when utils.backend loads
    return run(**kwargs)


if __name__ == "__main__":
    from models.experimental import WeightsError  # noqa: E402
    from utils.checkpoint import CheckpointError  # noqa: E402
    from utils.downloads import DownloadError  # noqa: E402
    from utils.runtime import UnsupportedFormatError  # noqa: E402

    try:
        main(parse_opt())
    except (SourceError, FileNotFoundError, WeightsError, CheckpointError, DownloadError, UnsupportedFormatError,
            ValueError) as e:
        LOGGER.error(f"ERROR: {e}")
        sys.exit(1)
