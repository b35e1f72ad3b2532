"""Model utilities shared by the builders: weight init, Conv+BN fusion, parameter and FLOP counting, summaries.

Runs on either backend (everything framework-specific comes from utils.backend). The FLOP counter is our own; it
reproduces the numbers ultralytics prints (which come from thop 0.1.1) rule for rule, so summaries agree.
"""

import contextlib
import functools
import math
import os
from copy import deepcopy
from pathlib import Path

from utils.backend import F  # noqa: F401
from utils.backend.fused import ema_update_, optimizer_options
from utils.backend import (cuda_synchronize, from_numpy, init_seeds, inference_mode, nn,  # noqa: F401 (re-exports)
                           select_device, time_sync, to_numpy, torch, whole_conv_calls)
from utils.backend import amp_supported, cuda_device_count, cuda_memory_reserved_gb
from utils.backend.distributed import ddp_wrap, dist_barrier
from utils.checks import check_font
from utils.log import LOGGER, colorstr, emojis


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


# --------------------------------------------------------------------------------------------------------- training
def one_cycle(y1=0.0, y2=1.0, steps=100):
    """Cosine ramp from y1 to y2 over ``steps`` (https://arxiv.org/pdf/1812.01187.pdf)."""
    return lambda x: ((1 - math.cos(x * math.pi / steps)) / 2) * (y2 - y1) + y1


def copy_attr(a, b, include=(), exclude=()):
    """Copy b's plain attributes onto a (only ``include`` when given), skipping private ones and ``exclude``."""
    for k, v in b.__dict__.items():
        if (len(include) and k not in include) or k.startswith("_") or k in exclude:
            continue
        setattr(a, k, v)


def smart_optimizer(model, name="Adam", lr=0.001, momentum=0.9, decay=1e-5, multi_tensor_optimizer=False):
    """Optimizer with 3 parameter groups as ultralytics: biases (group 0, no decay), weights with ``decay``,
    normalisation-layer weights without decay. ``multi_tensor_optimizer``: OneFlow's fused update (SGD/Adam/AdamW;
    the caller decides where it runs, see utils.backend.fused)."""
    g = [], [], []  # decayed weights, norm weights, biases
    norms = tuple(v for k, v in vars(nn).items() if "Norm" in k and isinstance(v, type))
    for m in model.modules():
        for p_name, p in m.named_parameters(recurse=False):
            if p_name == "bias":
                g[2].append(p)
            elif p_name == "weight" and isinstance(m, norms):
                g[1].append(p)
            else:
                g[0].append(p)
    fused = optimizer_options(multi_tensor_optimizer)
    if name == "Adam":
        optimizer = torch.optim.Adam(g[2], lr=lr, betas=(momentum, 0.999), **fused)
    elif name == "AdamW":
        optimizer = torch.optim.AdamW(g[2], lr=lr, betas=(momentum, 0.999), weight_decay=0.0, **fused)
    elif name == "RMSProp":
        if fused:
            LOGGER.warning("WARNING ⚠️ --multi_tensor_optimizer: RMSProp has no multi-tensor update, the plain one runs")
        optimizer = torch.optim.RMSprop(g[2], lr=lr, momentum=momentum)
    elif name == "SGD":
        optimizer = torch.optim.SGD(g[2], lr=lr, momentum=momentum, nesterov=True, **fused)
    else:
        raise NotImplementedError(f"Optimizer {name} not implemented (choose SGD, Adam, AdamW or RMSProp)")
    optimizer.add_param_group({"params": g[0], "weight_decay": decay})
    optimizer.add_param_group({"params": g[1], "weight_decay": 0.0})
    LOGGER.info(f"{colorstr('optimizer:')} {type(optimizer).__name__}(lr={lr}) with parameter groups "
                f"{len(g[1])} weight(decay=0.0), {len(g[0])} weight(decay={decay}), {len(g[2])} bias")
    return optimizer


class ModelEMA:
    """Exponential moving average of a model's floating-point state (parameters and BN buffers).

    decay(u) = decay * (1 - exp(-u / tau)) with u the number of updates, so early updates follow the model closely.
    ``multi_tensor``: one fused kernel updates every tensor (OneFlow CUDA only, see utils.backend.fused).
    """

    def __init__(self, model, decay=0.9999, tau=2000, updates=0, multi_tensor=False):
        self.ema = deepcopy(de_parallel(model)).eval()
        self.updates = updates
        self.multi_tensor = multi_tensor
        self.decay_max, self.tau = decay, tau
        for p in self.ema.parameters():
            p.requires_grad_(False)

    def decay(self, updates):
        return self.decay_max * (1 - math.exp(-updates / self.tau))

    def update(self, model):
        self.updates += 1
        d = self.decay(self.updates)
        msd = de_parallel(model).state_dict()
        with torch.no_grad():
            pairs = [(v, msd[k].detach()) for k, v in self.ema.state_dict().items() if v.is_floating_point()]
            if self.multi_tensor:
                ema_update_([e for e, _ in pairs], [m for _, m in pairs], d)
                return
            for v, m in pairs:
                v.mul_(d).add_(m * (1 - d))

    def update_attr(self, model, include=(), exclude=("process_group", "reducer")):
        copy_attr(self.ema, de_parallel(model), include, exclude)


class EarlyStopping:
    """Stop when fitness has not improved for ``patience`` epochs (0 or less disables it)."""

    def __init__(self, patience=30):
        self.best_fitness = 0.0
        self.best_epoch = 0
        self.patience = patience if patience and patience > 0 else float("inf")
        self.possible_stop = False

    def __call__(self, epoch, fitness):
        if fitness >= self.best_fitness:  # >= : zero fitness early in training still counts as progress
            self.best_epoch = epoch
            self.best_fitness = fitness
        delta = epoch - self.best_epoch
        self.possible_stop = delta >= (self.patience - 1)
        stop = delta >= self.patience
        if stop:
            LOGGER.info(f"Stopping training early as no improvement observed in last {self.patience} epochs. "
                        f"Best results observed at epoch {self.best_epoch}, best model saved as best.pt.\n"
                        f"To update EarlyStopping(patience={self.patience}) pass a new patience value, "
                        f"i.e. `python train.py --patience 300` or use `--patience 0` to disable EarlyStopping.")
        return stop


# ------------------------------------------------------------------------------------- ultralytics' other helpers
# Process placement from the launcher's environment, as ultralytics' module globals (the trainer uses utils.dist).
LOCAL_RANK = int(os.getenv("LOCAL_RANK", -1))
RANK = int(os.getenv("RANK", -1))
WORLD_SIZE = int(os.getenv("WORLD_SIZE", 1))


def smart_inference_mode(torch_1_9=True):
    """Decorator: run the function under inference_mode (PyTorch) / no_grad (OneFlow), as ultralytics' of that name."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode():
                return fn(*args, **kwargs)

        return wrapper

    return decorate


@contextlib.contextmanager
def torch_distributed_zero_first(local_rank: int):
    """Let the local master (rank 0) run the block first while the other ranks wait at a barrier."""
    if local_rank not in (-1, 0):
        dist_barrier()
    yield
    if local_rank == 0:
        dist_barrier()


def smart_DDP(model):
    """The model wrapped in the active backend's DistributedDataParallel (an initialised process group needed)."""
    return ddp_wrap(model, next(model.parameters()).device)


def device_count():
    """Number of visible CUDA devices (0 without CUDA, safely on either backend)."""
    return cuda_device_count()


def is_parallel(model):
    """True for a model inside a DataParallel / DistributedDataParallel wrapper."""
    return de_parallel(model) is not model


def intersect_dicts(da, db, exclude=()):
    """Entries of state dict ``da`` whose key is in ``db`` with the same shape and contains none of ``exclude``."""
    return {k: v for k, v in da.items() if k in db and all(x not in k for x in exclude) and v.shape == db[k].shape}


def find_modules(model, mclass=nn.Conv2d):
    """Indices in ``model.module_list`` of the modules of class ``mclass``."""
    return [i for i, m in enumerate(model.module_list) if isinstance(m, mclass)]


def sparsity(model):
    """Fraction of the model's parameters that are exactly zero."""
    total = zeros = 0
    for p in model.parameters():
        total += p.numel()
        zeros += int((p == 0).sum())
    return zeros / max(total, 1)


def prune(model, amount=0.3):
    """Zero the ``amount`` smallest-magnitude weights of every Conv2d (L1 unstructured pruning, made permanent)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and m.weight.numel():
                w = m.weight
                k = int(amount * w.numel())
                if k:
                    cut = torch.sort(w.abs().flatten())[0][k - 1]
                    w.mul_((w.abs() > cut).to(w.dtype))
    LOGGER.info(f"Model pruned to {sparsity(model):.3g} global sparsity")


def check_amp(model):
    """Whether mixed-precision training is used for ``model`` (PyTorch on CUDA; never on the CPU or on OneFlow)."""
    return amp_supported(next(model.parameters()).device)


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


def notebook_init(verbose=True):
    """ultralytics' first notebook cell (``import utils; display = utils.notebook_init()``): check the set-up, print
    the device line and (``verbose``) the CPUs, RAM and disk; returns ``IPython.display`` (None outside IPython)."""
    import shutil  # noqa: PLC0415 (only needed here)

    print("Checking setup...")
    with contextlib.suppress(FileNotFoundError):  # ultralytics downloads Arial.ttf; we draw with OpenCV's font
        check_font()
    try:
        from IPython import display  # noqa: PLC0415 (optional package)
    except ImportError:
        display = None
    s = ""
    if verbose:
        gb = 1 << 30
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
        total, _, free = shutil.disk_usage("/")
        if display is not None:
            display.clear_output()
        s = f"({os.cpu_count()} CPUs, {ram / gb:.1f} GB RAM, {(total - free) / gb:.1f}/{total / gb:.1f} GB disk)"
    select_device(newline=False, log=LOGGER.info)
    print(emojis(f"Setup complete ✅ {s}"))
    return display


def __getattr__(name):
    """ultralytics names whose code lives above this layer, resolved on first use (for outside scripts only)."""
    if name == "reshape_classifier_output":
        from models.yolo import reshape_classifier_output  # noqa: PLC0415 (compat path, see the layering test)

        return reshape_classifier_output
    if name == "smartCrossEntropyLoss":
        from utils.classify.loss import classification_loss  # noqa: PLC0415 (compat path)

        return classification_loss
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
