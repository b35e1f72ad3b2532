"""FUSED: OneFlow's CUDA kernels behind one-yolov5's --bbox_iou_optim and --multi_tensor_optimizer.

They exist only in OneFlow's CUDA build (no CPU kernels, no PyTorch equivalent): fused_paths() says which of the two
requested paths this backend and device can run, and tells the user in one line when a request falls back to the
plain path (which computes the same values).
  --bbox_iou_optim: the CIoU of the box loss as 7 fused element-wise kernels instead of ~30 small ones.
  --multi_tensor_optimizer: fused=True for SGD/Adam/AdamW (one multi-tensor update kernel) and the EMA update as one
  horizontally fused kernel over every floating-point tensor.
"""

from utils.backend import IS_ONEFLOW, NAME, torch
from utils.log import LOGGER


def fused_kernels_available(device):
    """True where OneFlow's fused CUDA kernels run: the OneFlow backend on a CUDA device."""
    on_cuda = str(getattr(device, "type", device)).split(":")[0] == "cuda" and torch.cuda.is_available()
    return IS_ONEFLOW and on_cuda and hasattr(torch._C, "fused_get_iou")


def fused_paths(device, bbox_iou_optim=False, multi_tensor_optimizer=False):
    """(bbox_iou_optim, multi_tensor_optimizer) as they will run on ``device``; a notice for each one refused."""
    ok = fused_kernels_available(device)
    asked = [f for f, on in (("--bbox_iou_optim", bbox_iou_optim), ("--multi_tensor_optimizer",
                                                                     multi_tensor_optimizer)) if on]
    if asked and not ok:
        where = f"{NAME} on {getattr(device, 'type', device)}"
        LOGGER.info(f"{' and '.join(asked)}: OneFlow's fused CUDA kernels are not available ({where}); the plain "
                    f"path runs (same results)")
    return bbox_iou_optim and ok, multi_tensor_optimizer and ok


def fused_ciou(box1, box2, eps=1e-7):
    """CIoU of xywh boxes (n, 4) with OneFlow's fused kernels: (n, 1), as utils.boxes.bbox_iou(..., CIoU=True)."""
    C = torch._C
    (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.chunk(4, -1), box2.chunk(4, -1)
    b1_x1, b1_x2, b1_y1, b1_y2, b2_x1, b2_x2, b2_y1, b2_y2 = C.fused_get_boundding_boxes_coord(x1, y1, w1, h1,
                                                                                              x2, y2, w2, h2)
    corners = (b1_x1, b1_x2, b2_x1, b2_x2, b1_y1, b1_y2, b2_y1, b2_y2)
    inter = C.fused_get_intersection_area(*corners)
    iou = C.fused_get_iou(w1, h1, w2, h2, inter, eps)
    c2 = C.fused_get_convex_diagonal_squared(*corners, eps)  # enclosing box diagonal squared
    rho2 = C.fused_get_center_dist(*corners)  # centre distance squared
    v = C.fused_get_ciou_diagonal_angle(w1, h1, w2, h2, eps)
    return C.fused_get_ciou_result(v, iou, rho2, c2, eps)[0]


def optimizer_options(multi_tensor):
    """Extra keyword arguments of the SGD/Adam/AdamW constructors for the fused multi-tensor update."""
    return {"fused": True} if multi_tensor else {}


def ema_update_(ema_tensors, model_tensors, d):
    """ema = d * ema + (1 - d) * model over lists of floating-point tensors, in place, as one fused kernel."""
    torch._C.multi_tensor_yolov5_weight_update(ema_tensors, model_tensors, d)
