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
Python:
    import detect; save_dir = detect.run(weights="yolov5s.pt", source="data/images", save_txt=True)
"""

from utils.engine.predictor import SourceError  # noqa: F401 (detect.SourceError, as before)
from utils.engine.scripts import execute, script

parse_opt, main, run = script("detect", "predict")

if __name__ == "__main__":
    execute("predict", main, parse_opt)
