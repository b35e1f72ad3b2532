"""Compatibility module: the names ultralytics YOLOv5 v7.0 scripts and tutorials import from ``utils/general.py``.

ultralytics keeps ~90 helpers in this one module. Here each lives where it belongs (box maths in utils/boxes.py, NMS
in utils/nms.py, dataset YAMLs in utils/data/dataset_yaml.py, ..., and the environment / requirement / git checks the
project does not use in utils/compat.py) and this module only re-exports them, so
``from utils.general import non_max_suppression, scale_boxes`` keeps working. Nothing in the project imports from here.
"""

import logging  # noqa: F401 (ultralytics scripts take `logging` and `cv2` from here)

import cv2  # noqa: F401

from models.experimental import strip_optimizer  # noqa: F401
from models.yolo import make_divisible  # noqa: F401
from utils.annotator import imwrite, is_ascii  # noqa: F401
from utils.backend import file_date, init_seeds  # noqa: F401
from utils.boxes import (clip_boxes, clip_segments, resample_segments, scale_boxes, scale_segments,  # noqa: F401
                         segment2box, segments2boxes, xyn2xy, xywh2xyxy, xywhn2xyxy, xyxy2xywh, xyxy2xywhn)
from utils.cli import check_img_size, print_args  # noqa: F401
from utils.coco import coco80_to_coco91_class  # noqa: F401
from utils.compat import (CONFIG_DIR, FONT, LOCAL_RANK, RANK, WORLD_SIZE, Timeout, TryExcept,  # noqa: F401
                          WorkingDirectory, check_amp, check_file, check_font, check_git_info, check_git_status,
                          check_imshow, check_online, check_python, check_requirements, check_suffix, check_version,
                          clean_str, file_age, get_default_args, git_describe, intersect_dicts, is_colab, is_docker,
                          is_kaggle, is_notebook, is_writeable, methods, url2file, user_config_dir)
from utils.data.dataset_yaml import DATASETS_DIR, check_dataset, download, yaml_load, yaml_save  # noqa: F401
from utils.data.dataset_yaml import extract_archive as unzip_file  # noqa: F401
from utils.data.datasets import NUM_THREADS  # noqa: F401
from utils.downloads import is_url  # noqa: F401
from utils.engine.launch import get_latest_run  # noqa: F401
from utils.export import file_size  # noqa: F401
from utils.files import ROOT, check_yaml, increment_path  # noqa: F401
from utils.log import LOGGER, LOGGING_NAME, TQDM_BAR_FORMAT, VERBOSE, colorstr, emojis, set_logging  # noqa: F401
from utils.metrics import labels_to_class_weights, labels_to_image_weights  # noqa: F401
from utils.nms import non_max_suppression  # noqa: F401
from utils.runtime import Profile  # noqa: F401
from utils.training import one_cycle  # noqa: F401

AUTOINSTALL = False  # ultralytics pip-installs missing requirements; one-yolov5 never does (utils/compat.py)
