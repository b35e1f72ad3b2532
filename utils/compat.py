"""ultralytics YOLOv5 v7.0's own helpers that this project does not use itself, for scripts and notebooks written
against ultralytics (``from utils.general import check_requirements``, ``from utils.torch_utils import smart_DDP``,
``import utils; utils.notebook_init()``, ``from utils.segment.dataloaders import create_dataloader``).

This module sits at the top of the layers (layer 7, above the scripts): it may import anything in the library, and
nothing in the library imports it. The ultralytics module paths (``utils/general.py``, ``utils/torch_utils.py``,
``utils/dataloaders.py``, ``utils/segment/*.py`` ...) are shims that re-export from here and from the modules where
the project's own code lives.

Importing it loads no framework: ``import utils; utils.TryExcept`` resolves here and must stay cheap, so the helpers
that need the backend (or the data pipeline, which imports it) import it inside their bodies, on first use.
Nothing here installs, downloads or changes anything on its own: where ultralytics would ``pip install`` a missing
requirement or fetch a font, we say what is missing.
"""

import contextlib
import functools
import glob
import inspect
import os
import platform
import re
import signal
import socket
import subprocess
import threading
import urllib.parse
from datetime import datetime
from pathlib import Path

import numpy as np

from utils.downloads import is_url
from utils.files import ROOT
from utils.log import LOGGER, colorstr, emojis

FONT = "Arial.ttf"  # ultralytics' default annotation font name
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts", "/Library/Fonts",
              "C:/Windows/Fonts")


# ------------------------------------------------------------------------------------------------- where we run
def is_colab():
    """True inside a Google Colab instance."""
    return "google.colab" in os.environ.get("PYTHONPATH", "") or "COLAB_GPU" in os.environ


def is_kaggle():
    """True inside a Kaggle kernel."""
    return os.environ.get("PWD") == "/kaggle/working" and os.environ.get("KAGGLE_URL_BASE") == "https://www.kaggle.com"


def is_notebook():
    """True inside a Jupyter notebook (an IPython kernel with a ZMQ shell)."""
    with contextlib.suppress(Exception):
        from IPython import get_ipython  # noqa: PLC0415 (optional package)

        return "IPKernelApp" in get_ipython().config
    return False


def is_docker():
    """True inside a Docker container."""
    if Path("/.dockerenv").exists():
        return True
    with contextlib.suppress(OSError):
        return "docker" in Path("/proc/self/cgroup").read_text()
    return False


def is_writeable(folder, test=False):
    """Whether ``folder`` can be written (``test``: by creating and removing a file, as some mounts lie)."""
    if not test:
        return os.access(folder, os.W_OK)
    probe = Path(folder) / ".write-test"
    try:
        probe.write_text("")
        probe.unlink()
        return True
    except OSError:
        return False


def user_config_dir(dir="Ultralytics", env_var="YOLOV5_CONFIG_DIR"):
    """The settings folder ultralytics uses (``$YOLOV5_CONFIG_DIR``, else the OS's per-user config folder).

    Unlike ultralytics it is not created here: nothing is written until something is saved into it.
    """
    env = os.getenv(env_var)
    if env:
        return Path(env)
    cfg = {"Windows": "AppData/Roaming", "Linux": ".config", "Darwin": "Library/Application Support"}
    base = Path.home() / cfg.get(platform.system(), "")
    base = base if is_writeable(base) else Path("/tmp")
    return base / dir


CONFIG_DIR = user_config_dir()


def check_online(host=("1.1.1.1", 443), timeout=2):
    """True when a TCP connection to ``host`` opens within ``timeout`` seconds."""
    try:
        socket.create_connection(host, timeout=timeout).close()
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------------------------------- versions
def _version_tuple(v):
    return tuple(int(x) for x in re.findall(r"\d+", str(v))[:4])


def check_version(current="0.0.0", minimum="0.0.0", name="version ", pinned=False, hard=False, verbose=False):
    """Whether ``current`` >= ``minimum`` (== when ``pinned``); ``hard`` raises, ``verbose`` warns when not."""
    c, m = _version_tuple(current), _version_tuple(minimum)
    ok = c == m if pinned else c >= m
    message = f"WARNING ⚠️ {name}{minimum} is required by YOLOv5, but {name}{current} is currently installed"
    if hard and not ok:
        raise ModuleNotFoundError(message)
    if verbose and not ok:
        LOGGER.warning(message)
    return ok


def check_python(minimum="3.7.0"):
    """Raise unless the running Python is at least ``minimum``."""
    return check_version(platform.python_version(), minimum, name="Python ", hard=True)


def _requirement_lines(requirements):
    if isinstance(requirements, (str, Path)) and Path(requirements).is_file():
        lines = Path(requirements).read_text().splitlines()
    else:
        lines = [requirements] if isinstance(requirements, str) else list(requirements)
    return [x.split("#")[0].strip() for x in lines if x.split("#")[0].strip() and not x.strip().startswith("-")]


def check_requirements(requirements=ROOT / "requirements.txt", exclude=(), install=True, cmds=""):
    """Report the requirements that are missing or too old; returns True when all are met.

    ultralytics installs them with pip when ``install``; here nothing is installed behind the user's back: the
    message gives the pip command (the project's venvs are made by ``make venv`` / ``make venv-torch``).
    """
    from importlib import metadata  # noqa: PLC0415 (only needed here)

    missing = []
    for req in _requirement_lines(requirements):
        name = re.split(r"[<>=!~;\[ ]", req, 1)[0]
        if not name or name in exclude:
            continue
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(req)
            continue
        low = re.search(r">=\s*([\w.]+)", req)
        if low and not check_version(have, low.group(1)):
            missing.append(req)
    if missing:
        LOGGER.warning(f"{colorstr('red', 'bold', 'requirements:')} {', '.join(missing)} not found or too old; "
                       f"install with: pip install {' '.join(repr(m) for m in missing)} {cmds}".rstrip())
    return not missing


# ------------------------------------------------------------------------------------------------- names and files
def url2file(url):
    """'https://url.com/file.txt?auth' -> 'file.txt'."""
    return Path(urllib.parse.unquote(str(url))).name.split("?")[0]


def clean_str(s):
    """``s`` with the characters that cannot be in file names (``|@#!¡·$€%&()=?¿^*;:,¨´><+``) replaced by '_'."""
    return re.sub(pattern="[|@#!¡·$€%&()=?¿^*;:,¨´><+]", repl="_", string=s)


def check_suffix(file="yolov5s.pt", suffix=(".pt",), msg=""):
    """Raise ValueError unless every file name in ``file`` ends in one of ``suffix``."""
    suffixes = [suffix] if isinstance(suffix, str) else list(suffix)
    for f in [file] if isinstance(file, (str, Path)) else list(file):
        s = Path(f).suffix.lower()
        if s and s not in suffixes:
            raise ValueError(f"{msg}{f} acceptable suffix is {suffixes}")


def check_file(file, suffix=""):
    """The path of ``file``: as given when it exists, else found under the repository (data/, models/, utils/).

    A URL is not fetched here (ultralytics downloads it): the error says to download it first.
    Raises:
        FileNotFoundError: not found, or found more than once (the matches are named).
    """
    if suffix:
        check_suffix(file, suffix)
    file = str(file)
    if not file or Path(file).is_file():
        return file
    if is_url(file):
        raise FileNotFoundError(f"{file} is a URL: download it first (one-yolov5 does not fetch files named by a flag)")
    files = [f for d in ("data", "models", "utils") for f in glob.glob(str(ROOT / d / "**" / file), recursive=True)]
    if not files:
        raise FileNotFoundError(f"File not found: {file}")
    if len(files) > 1:
        raise FileNotFoundError(f"Multiple files match '{file}', specify exact path: {files}")
    return files[0]


def check_font(font=FONT, progress=False):
    """The path of font file ``font``: as given, in the settings folder, or among the system fonts.

    ultralytics downloads Arial.ttf when it is missing; we only look locally (drawing falls back to OpenCV's own
    font when none is found).
    Raises:
        FileNotFoundError: no such font file on this machine.
    """
    name = Path(font).name
    candidates = [Path(font), CONFIG_DIR / name]
    for d in _FONT_DIRS:
        candidates += sorted(Path(os.path.expanduser(d)).glob(f"**/{name}"))
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(f"font {name} not found (looked in {CONFIG_DIR} and the system font folders); put the "
                            f"file into {CONFIG_DIR} to use it")


def check_imshow(warn=False):
    """Whether cv2.imshow can open a window here (not in Docker, notebooks or without a display)."""
    import cv2  # noqa: PLC0415 (only needed here)

    try:
        if is_notebook() or is_docker() or (platform.system() == "Linux" and not os.environ.get("DISPLAY")):
            raise RuntimeError("no display")
        cv2.imshow("test", np.zeros((1, 1, 3), dtype=np.uint8))
        cv2.waitKey(1)
        cv2.destroyAllWindows()
        cv2.waitKey(1)
        return True
    except Exception as e:
        if warn:
            LOGGER.warning(f"WARNING ⚠️ Environment does not support cv2.imshow() or PIL Image.show()\n{e}")
        return False


def file_age(path=__file__):
    """Days since ``path`` was last modified."""
    return (datetime.now() - datetime.fromtimestamp(Path(path).stat().st_mtime)).days


# ------------------------------------------------------------------------------------------------------ python
def get_default_args(func):
    """{argument: default} of ``func``'s keyword defaults."""
    return {k: v.default for k, v in inspect.signature(func).parameters.items() if v.default is not inspect._empty}


def methods(instance):
    """Names of the public methods of ``instance``."""
    return [f for f in dir(instance) if callable(getattr(instance, f)) and not f.startswith("__")]


class Timeout(contextlib.ContextDecorator):
    """Raise TimeoutError when the block runs longer than ``seconds`` (POSIX main thread; elsewhere a no-op)."""

    def __init__(self, seconds, *, timeout_msg="", suppress_timeout_errors=True):
        self.seconds, self.timeout_message, self.suppress = int(seconds), timeout_msg, bool(suppress_timeout_errors)

    def _handler(self, signum, frame):
        raise TimeoutError(self.timeout_message)

    def __enter__(self):
        self.active = hasattr(signal, "SIGALRM")
        if self.active:
            signal.signal(signal.SIGALRM, self._handler)
            signal.alarm(self.seconds)

    def __exit__(self, exc_type, exc_val, exc_tb):
        if self.active:
            signal.alarm(0)
        return self.suppress and exc_type is TimeoutError


class WorkingDirectory(contextlib.ContextDecorator):
    """Run the block with ``new_dir`` as the working folder, then return to the previous one."""

    def __init__(self, new_dir):
        self.dir, self.cwd = new_dir, Path.cwd().resolve()

    def __enter__(self):
        os.chdir(self.dir)

    def __exit__(self, exc_type, exc_val, exc_tb):
        os.chdir(self.cwd)


class TryExcept(contextlib.ContextDecorator):
    """``@TryExcept(msg)`` / ``with TryExcept(msg):``: an exception inside is printed (after ``msg``) and swallowed."""

    def __init__(self, msg=""):
        self.msg = msg

    def __enter__(self):
        return self

    def __exit__(self, exc_type, value, traceback):
        if value is not None:
            print(emojis(f"{self.msg}: {value}" if self.msg else str(value)))
        return True


def threaded(func):
    """Decorator: each call runs ``func`` in a new daemon thread and returns that thread."""

    @functools.wraps(func)
    def start(*args, **kwargs):
        t = threading.Thread(target=func, args=args, kwargs=kwargs, daemon=True)
        t.start()
        return t

    return start


def join_threads(verbose=False):
    """Wait for every other thread of the process (e.g. ``@threaded`` plotting) to finish."""
    for t in threading.enumerate():
        if t is not threading.current_thread() and t is not threading.main_thread():
            if verbose:
                print(f"Joining thread {t.name}")
            t.join()


# --------------------------------------------------------------------------------------------------------- git
def _git(*args, path=ROOT):
    try:
        return subprocess.check_output(["git", "-C", str(path), *args], stderr=subprocess.DEVNULL,
                                       timeout=10).decode().strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def git_describe(path=ROOT):
    """``git describe --tags --long --always`` of the repository, or '' outside a git checkout."""
    return _git("describe", "--tags", "--long", "--always", path=path)


def check_git_info(path=ROOT):
    """{remote, branch, commit} of the repository (ultralytics stores it in checkpoints), {} outside git."""
    commit = _git("rev-parse", "HEAD", path=path)
    if not commit:
        return {}
    return {"remote": _git("config", "--get", "remote.origin.url", path=path) or None,
            "branch": _git("rev-parse", "--abbrev-ref", "HEAD", path=path) or None, "commit": commit}


def check_git_status(repo="ultralytics/yolov5", branch="master"):
    """ultralytics compares the checkout with GitHub; here only the local state is logged (no network access)."""
    info = check_git_info()
    LOGGER.info(f"{colorstr('github: ')}{'local checkout ' + info['commit'][:7] if info else 'not a git checkout'} "
                f"(one-yolov5 does not contact {repo} to compare with {branch})")
    return info


# ------------------------------------------------------------------------------------ ultralytics' torch_utils
# Process placement from the launcher's environment, as ultralytics' module globals (the trainer uses utils.dist).
LOCAL_RANK = int(os.getenv("LOCAL_RANK", -1))
RANK = int(os.getenv("RANK", -1))
WORLD_SIZE = int(os.getenv("WORLD_SIZE", 1))


def smart_inference_mode(torch_1_9=True):
    """Decorator: run the function under inference_mode (PyTorch) / no_grad (OneFlow), as ultralytics' of that name."""
    from utils.backend import inference_mode  # noqa: PLC0415 (framework on first use, see the module docstring)

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
    from utils.backend.distributed import dist_barrier  # noqa: PLC0415 (framework on first use, see above)

    if local_rank not in (-1, 0):
        dist_barrier()
    yield
    if local_rank == 0:
        dist_barrier()


def smart_DDP(model):
    """The model wrapped in the active backend's DistributedDataParallel (an initialised process group needed)."""
    from utils.backend.distributed import ddp_wrap  # noqa: PLC0415 (framework on first use, see the module docstring)

    return ddp_wrap(model, next(model.parameters()).device)


def device_count():
    """Number of visible CUDA devices (0 without CUDA, safely on either backend)."""
    from utils.backend import cuda_device_count  # noqa: PLC0415 (framework on first use, see the module docstring)

    return cuda_device_count()


def is_parallel(model):
    """True for a model inside a DataParallel / DistributedDataParallel wrapper."""
    from utils.model_tools import de_parallel  # noqa: PLC0415 (framework on first use, see the module docstring)

    return de_parallel(model) is not model


def intersect_dicts(da, db, exclude=()):
    """Entries of state dict ``da`` whose key is in ``db`` with the same shape and contains none of ``exclude``."""
    return {k: v for k, v in da.items() if k in db and all(x not in k for x in exclude) and v.shape == db[k].shape}


def find_modules(model, mclass=None):
    """Indices in ``model.module_list`` of the modules of class ``mclass`` (default: the backend's Conv2d)."""
    from utils.backend import nn  # noqa: PLC0415 (framework on first use, see the module docstring)

    mclass = nn.Conv2d if mclass is None else mclass  # resolved here: a default would load the framework on import
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
    from utils.backend import nn, torch  # noqa: PLC0415 (framework on first use, see the module docstring)

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
    from utils.backend import amp_supported  # noqa: PLC0415 (framework on first use, see the module docstring)

    return amp_supported(next(model.parameters()).device)


def notebook_init(verbose=True):
    """ultralytics' first notebook cell (``import utils; display = utils.notebook_init()``): check the set-up, print
    the device line and (``verbose``) the CPUs, RAM and disk; returns ``IPython.display`` (None outside IPython)."""
    import shutil  # noqa: PLC0415 (only needed here)

    from utils.backend import select_device  # noqa: PLC0415 (framework on first use, see the module docstring)

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


# ------------------------------------------------------------------------------------------------ segment data
def create_segment_dataloader(path, imgsz, batch_size, stride, single_cls=False, hyp=None, augment=False, cache=False,
                              pad=0.0, rect=False, rank=-1, workers=8, image_weights=False, quad=False, prefix="",
                              shuffle=False, mask_downsample_ratio=1, overlap_mask=False, seed=0, world_size=None):
    """ultralytics' ``utils.segment.dataloaders.create_dataloader``: utils.data.build.create_dataloader on the mask
    dataset (LoadImagesAndLabelsAndMasks), with ultralytics' argument names.

    Args:
        mask_downsample_ratio: --mask-ratio. overlap_mask: not --no-overlap. Others: see utils.data.build.
    Returns:
        (loader, dataset); batches carry images, targets, paths, shapes and masks.
    Raises:
        FlagError: ``quad`` (not supported for segmentation).
    """
    from utils.data.build import create_dataloader  # noqa: PLC0415 (framework on first use, see the module docstring)
    from utils.segment.dataset import mask_loader_args  # noqa: PLC0415 (imports the backend too)

    extra = mask_loader_args(mask_downsample_ratio, overlap_mask, quad=quad)
    return create_dataloader(path, imgsz, batch_size, stride, single_cls=single_cls, hyp=hyp, augment=augment,
                             cache=cache, pad=pad, rect=rect, rank=rank, workers=workers, image_weights=image_weights,
                             prefix=prefix, shuffle=shuffle, seed=seed, world_size=world_size, **extra)
