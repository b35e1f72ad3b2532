"""Tools applied to a built model, whatever its task: weight init, Conv+BN folding, unwrapping DDP, FLOPs, summaries,
test-time scaling and per-op profiling.

Why this name and module: these functions take an ``nn.Module`` and inspect or rewrite it, independent of training
(that is utils/training.py) and of any YOLO architecture (models/ builds on them). ultralytics keeps them in
``utils/torch_utils.py`` together with training and DDP helpers; that path is now a re-export shim.

Runs on either backend (everything framework-specific comes from utils.backend). The FLOP counter is our own; it
reproduces the numbers ultralytics prints (which come from thop 0.1.1) rule for rule, so summaries agree.
"""

import math
from pathlib import Path

from utils.backend import F, cuda_memory_reserved_gb, nn, time_sync, torch, whole_conv_calls
from utils.log import LOGGER


def initialize_weights(model):
    """BatchNorm eps=1e-3 / momentum=0.03 and in-place activations, as every YOLOv5 model is initialised."""
    for m in model.modules():
        t = type(m)
        if t is nn.BatchNorm2d:
            m.eps = 1e-3
            m.momentum = 0.03
        elif t in (nn.Hardswish, nn.LeakyReLU, nn.ReLU, nn.ReLU6, nn.SiLU):
            m.inplace = True


def fuse_conv_and_bn(conv, bn):
    """Fold BatchNorm ``bn`` (eval statistics) into the preceding Conv2d; returns a new Conv2d with a bias.

    W' = W * g / sqrt(var + eps) per output channel; b' = beta + (b - mean) * g / sqrt(var + eps).
    """
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, kernel_size=conv.kernel_size, stride=conv.stride,
                      padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True)
    fused = fused.to(conv.weight.device)
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        b = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_(bn.bias + (b - bn.running_mean) * scale)
    return fused


def de_parallel(model):
    """The bare model inside a DataParallel / DistributedDataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


# ------------------------------------------------------------------------------------------------------------- FLOPs
def _numel(shape):
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _conv_ops(m, x, y):
    return _numel(y.shape) * (int(x.shape[1]) // m.groups) * _numel(m.weight.shape[2:])


def _norm_ops(m, x, y):  # thop: 2 ops per element, doubled when affine
    return 2 * _numel(x.shape) * (2 if getattr(m, "affine", False) else 1)


def _linear_ops(m, x, y):
    return m.in_features * _numel(y.shape)


def _adaptive_avg_ops(m, x, y):
    k = 1.0
    for a, b in zip(x.shape[2:], y.shape[2:]):
        k *= int(a) / int(b)
    return int((k + 1) * _numel(y.shape))


def _upsample_ops(m, x, y):
    per = {"nearest": 1, "linear": 5, "bilinear": 11, "bicubic": 259, "trilinear": 31}.get(m.mode, 0)
    return per * _numel(y.shape)


def _flop_rules():
    """Exact module type -> ops function (thop's table; types it does not list count zero)."""
    rules = {nn.Conv2d: _conv_ops, nn.ConvTranspose2d: _conv_ops, nn.BatchNorm2d: _norm_ops, nn.Linear: _linear_ops,
             nn.AdaptiveAvgPool2d: _adaptive_avg_ops, nn.Upsample: _upsample_ops}
    for name in ("LayerNorm", "SyncBatchNorm", "InstanceNorm2d"):
        if hasattr(nn, name):
            rules[getattr(nn, name)] = _norm_ops
    return rules


def count_flops(model, inputs):
    """Operations (multiply-accumulates, thop's convention) of one eval-mode forward of ``model`` on ``inputs``.

    Each module whose exact type has a rule adds its ops on every call. Counting wraps ``forward`` per instance
    rather than using hooks, because OneFlow's register_forward_hook returns no handle to remove it with.
    """
    rules = _flop_rules()
    total = [0]
    patched = []
    for m in model.modules():
        rule = rules.get(type(m))
        if rule is None:
            continue
        own = m.__dict__.get("forward")
        inner = own if own is not None else m.forward

        def counted(*args, _m=m, _rule=rule, _inner=inner):
            y = _inner(*args)
            total[0] += _rule(_m, args[0], y)
            return y

        m.forward = counted
        patched.append((m, own))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), whole_conv_calls():
            model(inputs)
    finally:
        model.train(was_training)
        for m, own in patched:
            if own is None:
                del m.forward
            else:
                m.forward = own
    return total[0]


def model_gflops(model, imgsz=640):
    """GFLOPs at ``imgsz`` as ultralytics reports them: 2 x ops at a stride-sized input, scaled by area."""
    p = next(model.parameters())
    stride = max(int(model.stride.max()), 32) if hasattr(model, "stride") else 32
    im = torch.zeros((1, p.shape[1], stride, stride), device=p.device, dtype=p.dtype)
    ops = count_flops(model, im)
    imgsz = imgsz if isinstance(imgsz, (list, tuple)) else [imgsz, imgsz]
    return ops / 1e9 * 2 * imgsz[0] / stride * imgsz[1] / stride


def model_info(model, verbose=False, imgsz=640):
    """Log 'NAME summary: L layers, P parameters, G gradients, F GFLOPs' and return (layers, params, grads, gflops)."""
    n_p = sum(x.numel() for x in model.parameters())
    n_g = sum(x.numel() for x in model.parameters() if x.requires_grad)
    if verbose:
        LOGGER.info(f"{'layer':>5} {'name':>40} {'gradient':>9} {'parameters':>12} {'shape':>20} {'mu':>10} "
                    f"{'sigma':>10}")
        for i, (name, p) in enumerate(model.named_parameters()):
            LOGGER.info(f"{i:5g} {name:>40} {str(p.requires_grad):>9} {p.numel():12g} {str(list(p.shape)):>20} "
                        f"{p.mean().item():10.3g} {p.std().item() if p.numel() > 1 else 0.0:10.3g}")
    try:
        gflops = model_gflops(model, imgsz)
        fs = f", {gflops:.1f} GFLOPs"
    except Exception as e:  # a summary must never break model building
        LOGGER.debug(f"FLOPs not counted: {e}")
        gflops, fs = None, ""
    yaml_file = getattr(model, "yaml_file", None)
    name = Path(yaml_file).stem.replace("yolov5", "YOLOv5") if yaml_file else "Model"
    n_l = len(list(model.modules()))
    LOGGER.info(f"{name} summary: {n_l} layers, {n_p} parameters, {n_g} gradients{fs}")
    return n_l, n_p, n_g, gflops


def scale_img(img, ratio=1.0, same_shape=False, gs=32):
    """Resize a (b, 3, h, w) batch by ``ratio`` (bilinear); pad to a multiple of ``gs`` with 0.447 (ImageNet mean)."""
    if ratio == 1.0:
        return img
    h, w = img.shape[2:]
    s = (int(h * ratio), int(w * ratio))
    img = F.interpolate(img, size=s, mode="bilinear", align_corners=False)
    if not same_shape:
        h, w = (math.ceil(x * ratio / gs) * gs for x in (h, w))
    return F.pad(img, [0, w - s[1], 0, h - s[0]], value=0.447)


# --------------------------------------------------------------------------------------------------- profiling
def _sizes(x):
    return tuple(x.shape) if hasattr(x, "shape") else "list"


def profile(input, ops, n=10, device=None):
    """Speed, memory and FLOPs of each op on each input, printed as ultralytics' table.

    Args:
        input: a tensor or a list of tensors (the inputs to try). ops: a module / callable or a list of them.
        n: timed repetitions. device: where to run (default: the input's device).
    Returns:
        one row per (input, op): [parameters, GFLOPs, GPU memory GB, forward ms, backward ms, input shape, output
        shape], or None where the op failed (e.g. out of memory).
    """
    results = []
    LOGGER.info(f"{'Params':>12s}{'GFLOPs':>12s}{'GPU_mem (GB)':>14s}{'forward (ms)':>14s}{'backward (ms)':>14s}"
                f"{'input':>24s}{'output':>24s}")
    for x in input if isinstance(input, list) else [input]:
        x = x.to(device) if device is not None else x
        x.requires_grad = True
        for m in ops if isinstance(ops, list) else [ops]:
            m = m.to(device) if device is not None and hasattr(m, "to") else m
            try:
                row = _profile_one(x, m, n)
            except Exception as e:  # an op that does not fit (memory) is reported, not fatal
                LOGGER.info(f"{type(e).__name__}: {e}")
                row = None
            results.append(row)
            if row:
                p, flops, mem, tf, tb, s_in, s_out = row
                LOGGER.info(f"{p:12}{flops:12.4g}{mem:>14.3f}{tf:14.4g}{tb:14.4g}{str(s_in):>24s}{str(s_out):>24s}")
    return results


def _profile_one(x, m, n):
    flops = count_flops(m, x) * 2 / 1e9 if isinstance(m, nn.Module) else 0.0
    tf = tb = 0.0
    for _ in range(n):
        t0 = time_sync()
        y = m(x)
        t1 = time_sync()
        try:
            (sum(yi.sum() for yi in y) if isinstance(y, list) else y).sum().backward()
            t2 = time_sync()
        except Exception:  # no backward (e.g. no parameters and an input without grad)
            t2 = float("nan")
        tf += (t1 - t0) * 1000 / n
        tb += (t2 - t1) * 1000 / n
    params = sum(p.numel() for p in m.parameters()) if isinstance(m, nn.Module) else 0
    return [params, flops, cuda_memory_reserved_gb(), tf, tb, _sizes(x), _sizes(y)]
