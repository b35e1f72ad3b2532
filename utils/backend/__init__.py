"""The one place that imports a deep-learning framework.

Every other module writes ``from utils.backend import torch, nn, F`` and keeps reading like PyTorch code, while each
difference between OneFlow and PyTorch is a named function in this package: here the core (selection, devices,
tensors, NMS kernel, AMP, capabilities), in ``export`` the ONNX/TorchScript writers, in ``jit`` the TorchScript loader
(inference side), in ``distributed`` the process-group calls. No other module of the project imports oneflow or torch.

Selection, first match wins:
  1. ``--backend {oneflow,torch}`` (or ``--backend=...``) on the command line of the running script,
  2. the ``YOLOV5_BACKEND`` environment variable,
  3. ``oneflow``.
The backend is fixed per process: it is chosen when this module is first imported.
"""

import contextlib
import ctypes
import glob
import importlib.util
import os
import platform
import random
import sys
import tempfile
import time
from datetime import datetime

import numpy as np

from utils.errors import FlagError  # the --device / batch-size mistakes select_device reports

BACKENDS = ("oneflow", "torch")


def _requested_backend(argv=None, environ=None):
    """Return the backend named by argv (--backend X / --backend=X), else YOLOV5_BACKEND, else 'oneflow'."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    name = None
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            name = argv[i + 1]
        elif arg.startswith("--backend="):
            name = arg.split("=", 1)[1]
    name = (name or environ.get("YOLOV5_BACKEND") or "oneflow").strip().lower()
    aliases = {"of": "oneflow", "flow": "oneflow", "pytorch": "torch", "pt": "torch"}
    name = aliases.get(name, name)
    if name not in BACKENDS:
        raise SystemExit(f"ERROR: unknown backend '{name}', choose one of {', '.join(BACKENDS)} "
                         f"(--backend or YOLOV5_BACKEND)")
    return name


def _gpu_present():
    """True if this machine shows an NVIDIA device node (checked without touching any CUDA library)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def _prepare_oneflow_env():
    """Environment OneFlow reads at import; the user's own settings always win (setdefault).

    - GLOG_minloglevel=2 hides the per-import CUDA-driver warnings; without a GPU, 3, which also hides the
      "Failed to get cuda runtime version" error line nn.Graph prints (ONNX export); real errors still raise.
    - Without a GPU, OneFlow's VM worker threads spin (sched_yield/futex) and burn a second core at no gain; these two
      switches make them block instead (system time 40% -> 2%). Not the second one under --graph: with it a compiled
      nn.Graph burns twice the CPU time of its kernels. Nor for a CPU DDP rank bound to one core (_pin_cpu_rank).
    - The OpenBLAS inside OneFlow 0.9.0 predates Zen: on AMD CPUs it falls back to 'Barcelona' (SSE3) kernels.
      OPENBLAS_CORETYPE=Zen (AVX2/FMA kernels) makes the yolov5n training step ~16 % faster and validation ~15 %
      (AMD EPYC, measured A/B). Not set on Intel CPUs: there forcing a newer core type was measured slower.
    """
    os.environ.setdefault("GLOG_minloglevel", "2" if _gpu_present() else "3")
    if not _gpu_present():
        if _pin_cpu_rank() == 1:  # one core per rank: its VM thread must yield to the rank's own Python thread
            os.environ.setdefault("ONEFLOW_VM_ENABLE_SCHEDULE_YIELD", "1")
        os.environ.setdefault("ONEFLOW_VM_COMPUTE_ON_WORKER_THREAD", "0")
        if "--graph" not in sys.argv:
            os.environ.setdefault("ONEFLOW_VM_ENABLE_SCHEDULE_YIELD", "0")
    if _amd_with_avx2():
        os.environ.setdefault("OPENBLAS_CORETYPE", "Zen")


CPUS_BEFORE_BINDING = None  # the allowed cores before _pin_cpu_rank bound this rank to its share (utils.dist)


def _pin_cpu_rank(environ=None, setaffinity=None):
    """CPU-only DDP (one OneFlow process per core): bind this rank to its share of the allowed cores; returns how many
    cores it got (0: not a launched rank, fewer cores than ranks, or ``YOLOV5_CPU_AFFINITY=0``; nothing changed).

    An eager OneFlow process keeps two threads busy, Python issuing ops and the VM thread running them. Two unbound
    ranks on two cores are four such threads migrating between the cores: measured on a 2-core machine, each rank's
    yolov5n step (batch 8, 128 px) took 520-650 ms against 350 ms alone. Bound to one core each, with the VM thread
    yielding instead of blocking (ONEFLOW_VM_ENABLE_SCHEDULE_YIELD=1, so the hand-over between the two threads costs
    no wake-up), each took 383-390 ms. Ranks with two or more cores keep the blocking VM (nothing to yield to).
    Threads started later (OneFlow's, data loader workers) inherit the binding. Linux only.
    """
    env = os.environ if environ is None else environ
    setaffinity = setaffinity or getattr(os, "sched_setaffinity", None)
    try:
        local_rank = int(env.get("LOCAL_RANK", -1))
        ranks = int(env.get("LOCAL_WORLD_SIZE") or env.get("WORLD_SIZE") or 1)
        cpus = sorted(os.sched_getaffinity(0))
    except (ValueError, AttributeError):
        return 0
    if env.get("YOLOV5_CPU_AFFINITY", "1") == "0" or setaffinity is None or ranks < 2 or not 0 <= local_rank < ranks:
        return 0
    per = len(cpus) // ranks
    if per < 1:
        return 0
    try:
        setaffinity(0, set(cpus[local_rank * per:(local_rank + 1) * per]))
    except OSError:
        return 0
    global CPUS_BEFORE_BINDING
    CPUS_BEFORE_BINDING = tuple(cpus)
    return per


@contextlib.contextmanager
def unbound_cpus():
    """Within: this process's threads may run on every core it had before _pin_cpu_rank bound it (rank 0 validating,
    saving and plotting while the other ranks wait); bound again after. Nothing happens for an unbound process."""
    if not CPUS_BEFORE_BINDING:
        yield
        return
    bound = os.sched_getaffinity(0)
    _bind_threads(set(CPUS_BEFORE_BINDING))
    try:
        yield
    finally:
        _bind_threads(bound)


def _bind_threads(cpus):
    """Every thread of this process (OneFlow's VM and communication threads included) onto ``cpus``."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:  # the thread ended meanwhile
            pass


def _amd_with_avx2(cpuinfo="/proc/cpuinfo"):
    """True on an AMD CPU with AVX2 and FMA (Linux; False where /proc/cpuinfo cannot be read)."""
    try:
        with open(cpuinfo) as f:
            head = f.read(8192)  # the first processor's block
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in head.splitlines() if line.startswith("flags")), [])
    return "AuthenticAMD" in head and {"avx2", "fma"} <= set(flags)


def _preload_nvidia_libs():
    """Load cuBLAS 11 / cuDNN 8 from the nvidia-* wheels globally, so OneFlow finds them without LD_LIBRARY_PATH.

    The oneflow wheel's RPATH usually finds them when both live in one site-packages; this is the safety net for
    other layouts. Failures are ignored here: the import of oneflow then reports what is missing.
    """
    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return
    order = ("cublas/lib/libcublasLt.so.*", "cublas/lib/libcublas.so.*", "cudnn/lib/libcudnn*.so.*")
    for root in spec.submodule_search_locations:
        for pattern in order:
            for lib in sorted(glob.glob(os.path.join(root, pattern))):
                with contextlib.suppress(OSError):
                    ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)


@contextlib.contextmanager
def _quiet_fd2():
    """Silence file descriptor 2 (C-level prints such as 'libibverbs not available'); replay it if import fails."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr (e.g. closed): nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            tmp.seek(0)
            sys.stderr.write(tmp.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _import_backend(name):
    install = {
        "oneflow": "make venv   (creates .venv with Python 3.10 and `pip install -r requirements.txt`)",
        "torch": "make venv-torch   (creates .venv-torch and `pip install -r requirements-torch.txt`)",
    }[name]
    try:
        if name == "oneflow":
            _prepare_oneflow_env()
            _preload_nvidia_libs()
            with _quiet_fd2():
                import oneflow as fw
                import oneflow.nn as fw_nn
                import oneflow.nn.functional as fw_F
        else:
            import torch as fw
            import torch.nn as fw_nn
            import torch.nn.functional as fw_F
    except ImportError as e:
        raise SystemExit(f"ERROR: backend '{name}' is not importable in {sys.executable} ({e}).\n"
                         f"Install it with: {install}\nor choose the other backend with --backend / YOLOV5_BACKEND.")
    return fw, fw_nn, fw_F


NAME = _requested_backend()
torch, nn, F = _import_backend(NAME)
VERSION = str(torch.__version__)
IS_ONEFLOW = NAME == "oneflow"
Tensor = torch.Tensor


# ----------------------------------------------------------------------------------------------------------------- CUDA
def cuda_available():
    """torch.cuda.is_available(), safe everywhere (OneFlow aborts the process on other CUDA calls without a GPU)."""
    if IS_ONEFLOW and not _gpu_present():
        return False
    try:
        return bool(torch.cuda.is_available())
    except Exception:
        return False


def cuda_device_count():
    return int(torch.cuda.device_count()) if cuda_available() else 0


def cuda_synchronize():
    if cuda_available() and not _oneflow_ddp():  # oneflow.cuda.synchronize() can hang under DDP (see distributed.py)
        torch.cuda.synchronize()


def cuda_memory_reserved_gb():
    """Reserved CUDA memory in GB for the progress bar, 0.0 where unknown (OneFlow lacks memory_reserved)."""
    if not cuda_available():
        return 0.0
    fn = getattr(torch.cuda, "memory_reserved", None)
    return fn() / 1e9 if fn else 0.0


def time_sync():
    """time.time() after waiting for queued CUDA work, for accurate timings."""
    cuda_synchronize()
    return time.time()


def file_date():
    return datetime.fromtimestamp(os.path.getmtime(__file__)).strftime("%Y-%m-%d")


def banner():
    """'YOLOv5 🚀 <date> Python-3.10.13 oneflow-0.9.0': the backend and its version, for each script's first line."""
    return f"YOLOv5 🚀 {file_date()} Python-{platform.python_version()} {NAME}-{VERSION} "


def select_device(device="", batch_size=0, newline=True, log=None):
    """Parse '--device' ('' | 'cpu' | '0' | '0,1' | 'cuda:0') and return a backend device, as ultralytics does.

    Args:
        device: the --device string; '' picks CUDA:0 when available, else the CPU.
        batch_size: checked to be a multiple of the number of GPUs when several are used.
        log: callable for the banner line (LOGGER.info); None returns silently.
    Returns:
        torch.device('cpu') or torch.device('cuda:0').
    Raises:
        ValueError: CUDA devices requested that this machine/backend does not have.
    """
    s = banner()
    device = str(device).strip().lower().replace("cuda:", "").replace("none", "")
    cpu = device == "cpu"
    if cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # as ultralytics: later cuda_available() calls say False
    elif device:
        ids = [d for d in device.replace(" ", "").split(",") if d != ""]
        if not all(d.isdigit() for d in ids):
            raise FlagError(f"Invalid --device '{device}': use 'cpu', '0' or '0,1,2,3'")
        n = cuda_device_count()
        if n == 0 or max(int(d) for d in ids) >= n:
            raise FlagError(f"Invalid CUDA '--device {device}' requested, use '--device cpu' or pass valid CUDA "
                             f"device(s); this machine has {n} CUDA device(s) visible to {NAME}-{VERSION}")
    use_cuda = not cpu and cuda_available()
    if use_cuda:
        ids = device.split(",") if device else ["0"]
        if len(ids) > 1 and batch_size > 0 and batch_size % len(ids):
            raise FlagError(f"batch-size {batch_size} not multiple of GPU count {len(ids)}")
        space = " " * (len(s) + 1)
        for i, d in enumerate(ids):
            p = torch.cuda.get_device_properties(int(d))
            s += f"{'' if i == 0 else space}CUDA:{d} ({p.name}, {p.total_memory / (1 << 20):.0f}MiB)\n"
        dev = torch.device(f"cuda:{ids[0]}")
    else:
        s += "CPU\n"
        dev = torch.device("cpu")
    if log:
        log(s if newline else s.rstrip())
    return dev


# ---------------------------------------------------------------------------------------------------------- determinism
def init_seeds(seed=0, deterministic=False):
    """Seed python, numpy and the framework (CUDA only where present: OneFlow aborts otherwise)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if cuda_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic and not IS_ONEFLOW:  # OneFlow has no use_deterministic_algorithms (capabilities() says so)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        os.environ["PYTHONHASHSEED"] = str(seed)


# ------------------------------------------------------------------------------------------------------ tensor helpers
def to_numpy(t):
    """Tensor (any device, any grad state) -> numpy array; numpy input passes through."""
    if isinstance(t, np.ndarray):
        return t
    return t.detach().cpu().numpy()


def from_numpy(a, device=None, dtype=None):
    """numpy array -> tensor (copied, so the framework owns its memory), optionally moved/cast."""
    t = torch.from_numpy(np.array(a, copy=True, order="C"))  # np.ascontiguousarray would turn 0-d into 1-d
    if dtype is not None:
        t = t.to(dtype)
    return t.to(device) if device is not None else t


def meshgrid_ij(*tensors):
    """torch.meshgrid(..., indexing='ij') on every supported version of either backend."""
    try:
        return torch.meshgrid(*tensors, indexing="ij")
    except TypeError:  # frameworks that predate the indexing argument default to 'ij'
        return torch.meshgrid(*tensors)


def inference_mode():
    """torch.inference_mode where it exists (PyTorch), else no_grad (OneFlow)."""
    fn = getattr(torch, "inference_mode", None)
    return fn() if fn is not None else torch.no_grad()


def is_tensor(x):
    return isinstance(x, Tensor)


def nms(boxes, scores, iou_thres, max_keep=None):
    """The framework's greedy NMS kernel: indices of kept boxes in descending score order (at most ``max_keep``).

    torchvision.ops.nms on PyTorch, oneflow.nms on OneFlow; CUDA devices only (OneFlow has no CPU kernel, and the
    host path of utils.nms is faster than a round trip through torchvision's CPU one for our batch shapes).
    Raises RuntimeError where native_nms_available(device) is False.

    Args:
        boxes: (n, 4) xyxy tensor; scores: (n,) tensor; iou_thres: suppress IoU > iou_thres.
    """
    native = _native_nms(boxes.device)
    if native is None:
        raise RuntimeError(f"no NMS kernel for {boxes.device} on {NAME}: use utils.nms (host NMS)")
    keep = native(boxes, scores, iou_thres)
    return keep[:max_keep] if max_keep else keep


def native_nms_available(device):
    """True where the framework has an NMS kernel for ``device`` (CUDA)."""
    return _native_nms(device) is not None


def _native_nms(device):
    if str(device).startswith("cuda"):
        if IS_ONEFLOW:
            return torch.nms
        with contextlib.suppress(Exception):
            import torchvision  # noqa: F401  (optional; imported lazily because it may be absent or broken)
            return torchvision.ops.nms
    return None


def _oneflow_ddp():
    return IS_ONEFLOW and torch.env.get_world_size() > 1


# ------------------------------------------------------------------------------------------------------ mixed precision
def amp_supported(device):
    """Eager AMP training is offered by PyTorch on CUDA only; OneFlow's eager GradScaler differs, so we refuse it."""
    return (not IS_ONEFLOW) and str(device).startswith("cuda")


def autocast(enabled=True, device_type="cuda"):
    """Context manager for mixed precision; a no-op when disabled."""
    if not enabled:
        return contextlib.nullcontext()
    if IS_ONEFLOW:
        return torch.autocast(device_type)
    return torch.autocast(device_type, enabled=True)


class GradScaler:
    """torch.amp.GradScaler with the same methods when enabled; a transparent pass-through when disabled."""

    def __init__(self, enabled=False):
        self.enabled = bool(enabled)
        self._scaler = None
        if self.enabled:
            if IS_ONEFLOW:
                raise RuntimeError("AMP training is not available on the oneflow backend (eager GradScaler); "
                                   "train without AMP or use --backend torch on CUDA")
            amp = getattr(torch, "amp", None)
            self._scaler = amp.GradScaler("cuda") if hasattr(amp, "GradScaler") else torch.cuda.amp.GradScaler()

    def scale(self, loss):
        return self._scaler.scale(loss) if self.enabled else loss

    def unscale_(self, optimizer):
        if self.enabled:
            self._scaler.unscale_(optimizer)

    def step(self, optimizer):
        return self._scaler.step(optimizer) if self.enabled else optimizer.step()

    def update(self):
        if self.enabled:
            self._scaler.update()

    def state_dict(self):
        return self._scaler.state_dict() if self.enabled else {}

    def load_state_dict(self, state):
        if self.enabled and state:
            self._scaler.load_state_dict(state)


# ----------------------------------------------------------------------------------------------------------- capability
def capabilities():
    """What this backend can do here; flags consult it and refuse or warn instead of silently doing nothing."""
    cuda = cuda_available()
    caps = {
        "backend": NAME,
        "version": VERSION,
        "python": platform.python_version(),
        "cuda": cuda,
        "cuda_devices": cuda_device_count(),
        "fp16_cpu": not IS_ONEFLOW,  # OneFlow 0.9 has no fp16 conv kernels on the CPU
        "fp16_cuda": cuda,
        "amp": (not IS_ONEFLOW) and cuda,
        "channels_last": not IS_ONEFLOW,
        "sync_bn_cpu": False,  # SyncBatchNorm needs CUDA (OneFlow refuses CPU tensors; torch needs a GPU process group)
        "sync_bn": cuda,
        "deterministic_algorithms": not IS_ONEFLOW,
        "native_nms": (cuda and IS_ONEFLOW) or (not IS_ONEFLOW and importlib.util.find_spec("torchvision") is not None),
        "graph": IS_ONEFLOW,  # nn.Graph static compilation
        "onnx_export": True,
        "torchscript": not IS_ONEFLOW,
    }
    return caps


def nn_module_path(module):
    """'torch.nn.modules.conv.Conv2d'-style path of a framework module class, independent of the backend."""
    cls = type(module)
    mod = cls.__module__
    prefix = "oneflow.nn." if IS_ONEFLOW else "torch.nn."
    if mod.startswith(prefix):
        return "torch.nn." + mod[len(prefix):] + "." + cls.__name__
    return f"{mod}.{cls.__name__}"


# ---------------------------------------------------------------------------------------------------- biased convs
_SPLIT_CONV_BIAS = IS_ONEFLOW  # OneFlow 0.9.0's CPU convolution with a bias: see conv_with_bias


def conv_with_bias(conv, x):
    """conv(x) for an nn.Conv2d that carries a bias (fused Conv+BN layers, the Detect head's 1x1 convolutions).

    OneFlow 0.9.0's eager CPU convolution with a bias costs about 2x (3x3) to 4.5x (1x1) the same convolution without
    one, while a separate broadcast add is nearly free (yolov5n shapes), so there the bias is added after an unbiased
    convolution. Same parameters, state_dict and classes as a plain call (pickles and exports are unchanged: traced
    graphs keep the single biased convolution); outputs equal up to float rounding of the summation order.
    """
    lazy_whole = getattr(x, "is_lazy", False) and not _SPLIT_IN_GRAPH  # traced for export: one biased conv
    if not _SPLIT_CONV_BIAS or conv.bias is None or x.device.type != "cpu" or lazy_whole:
        return conv(x)
    y = F.conv2d(x, conv.weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)
    return y + conv.bias.reshape(1, -1, 1, 1)


_SPLIT_IN_GRAPH = False  # True while utils.backend.graph traces an inference nn.Graph (the same split pays there)


@contextlib.contextmanager
def split_conv_bias_in_graph():
    """Within the block conv_with_bias also splits the bias of convolutions traced into an nn.Graph (--graph)."""
    global _SPLIT_IN_GRAPH
    before, _SPLIT_IN_GRAPH = _SPLIT_IN_GRAPH, True
    try:
        yield
    finally:
        _SPLIT_IN_GRAPH = before


@contextlib.contextmanager
def whole_conv_calls():
    """Within the block conv_with_bias always calls the module itself (per-module FLOP counting wraps its forward)."""
    global _SPLIT_CONV_BIAS
    before, _SPLIT_CONV_BIAS = _SPLIT_CONV_BIAS, False
    try:
        yield
    finally:
        _SPLIT_CONV_BIAS = before


# ------------------------------------------------------------------------------------------------------- missing layers
if hasattr(nn, "MultiheadAttention"):
    MultiheadAttention = nn.MultiheadAttention
else:

    class MultiheadAttention(nn.Module):
        """torch.nn.MultiheadAttention for backends without one (OneFlow 0.9): same parameters, same state_dict keys
        (in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias), sequence-first inputs (L, N, E), no masks."""

        def __init__(self, embed_dim, num_heads, bias=True):
            super().__init__()
            assert embed_dim % num_heads == 0, "embed_dim must be divisible by num_heads"
            self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
            self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
            self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim)) if bias else None
            self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
            nn.init.xavier_uniform_(self.in_proj_weight)
            if bias:
                nn.init.zeros_(self.out_proj.bias)

        def forward(self, query, key, value, need_weights=True):
            L, N, E = query.shape
            S = key.shape[0]
            w = self.in_proj_weight.split(E, 0)
            b = self.in_proj_bias.split(E, 0) if self.in_proj_bias is not None else (None, None, None)
            h, d = self.num_heads, self.head_dim
            q = F.linear(query, w[0], b[0]).reshape(L, N * h, d).transpose(0, 1) * (d**-0.5)
            k = F.linear(key, w[1], b[1]).reshape(S, N * h, d).transpose(0, 1)
            v = F.linear(value, w[2], b[2]).reshape(S, N * h, d).transpose(0, 1)
            attn = torch.softmax(torch.bmm(q, k.transpose(1, 2)), dim=-1)  # (N*h, L, S)
            out = torch.bmm(attn, v).transpose(0, 1).reshape(L, N, E)
            out = F.linear(out, self.out_proj.weight, self.out_proj.bias)  # not a call: FLOP rules as torch
            weights = attn.view(N, h, L, S).mean(1) if need_weights else None
            return out, weights


# ------------------------------------------------------------------------------------------------------------- data
# Dataset / DataLoader / samplers of the active framework (oneflow.utils.data mirrors torch.utils.data).
data = torch.utils.data
Dataset = data.Dataset
DataLoader = data.DataLoader
Sampler = data.Sampler
DistributedSampler = data.distributed.DistributedSampler


def data_generator(seed=0):
    """A seeded torch.Generator for DataLoader shuffling (reproducible epochs)."""
    g = torch.Generator()
    g.manual_seed(seed)
    return g


# ------------------------------------------------------------------------------------------------ optimizer state I/O
def _map_tensors(obj, fn):
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_tensors(v, fn) for v in obj)
    return fn(obj)


def optimizer_state(optimizer):
    """optimizer.state_dict() as plain data (tensors -> numpy) for our checkpoints; its layout is backend-specific."""
    return {"backend": NAME, "state_dict": _map_tensors(optimizer.state_dict(),
                                                       lambda v: to_numpy(v) if isinstance(v, Tensor) else v)}


def load_optimizer_state(optimizer, saved, device=None):
    """Restore optimizer_state() output; returns False (optimizer left fresh) when it came from the other backend."""
    if not saved or saved.get("backend") != NAME:
        return False
    optimizer.load_state_dict(_map_tensors(saved["state_dict"],
                                           lambda v: from_numpy(v, device) if isinstance(v, np.ndarray) else v))
    return True


def clip_grad_norm_(parameters, max_norm):
    return nn.utils.clip_grad_norm_(parameters, max_norm=max_norm)
