"""Compatibility module: the names ultralytics YOLOv5 v7.0 scripts import from ``utils/torch_utils.py``.

ultralytics mixes model tools, training pieces and DDP / notebook helpers in this one module. Here the project's own
code lives in utils/model_tools.py (weight init, Conv+BN folding, de_parallel, FLOPs, summaries, profile) and
utils/training.py (one_cycle, optimizer groups, EMA, early stopping), the device functions in utils/backend, and
ultralytics' helpers the project does not use in utils/compat.py; this module only re-exports them, so
``from utils.torch_utils import select_device, smart_inference_mode`` keeps working. Nothing in the project imports
from here.
"""

from models.yolo import reshape_classifier_output  # noqa: F401
from utils.backend import (F, cuda_synchronize, file_date, from_numpy, init_seeds, inference_mode, nn,  # noqa: F401
                           select_device, time_sync, to_numpy, torch, whole_conv_calls)
from utils.classify.loss import classification_loss as smartCrossEntropyLoss  # noqa: F401 (ultralytics' name)
from utils.compat import (LOCAL_RANK, RANK, WORLD_SIZE, check_amp, check_version, device_count,  # noqa: F401
                          find_modules, git_describe, intersect_dicts, is_parallel, notebook_init, prune, smart_DDP,
                          smart_inference_mode, sparsity, torch_distributed_zero_first)
from utils.log import LOGGER, colorstr, emojis  # noqa: F401
from utils.model_tools import (count_flops, de_parallel, fuse_conv_and_bn, initialize_weights,  # noqa: F401
                               model_gflops, model_info, profile, scale_img)
from utils.training import EarlyStopping, ModelEMA, copy_attr, one_cycle, smart_optimizer  # noqa: F401
