"""Multi-process (DDP) training: who this process is, the checks, the collectives the trainer needs, a watchdog.

Launch (the launcher sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR/PORT for every process):
    python -m oneflow.distributed.launch --nproc_per_node 2 train.py --batch 16 ...          # OneFlow
    torchrun --nproc_per_node 2 train.py --backend torch --batch 16 ...                       # PyTorch
Semantics as ultralytics YOLOv5: --batch-size is the total over all processes; a DistributedSampler shards each epoch;
rank 0 alone logs, validates, plots and saves while the others wait at collectives; the early-stop decision is
broadcast from rank 0. On CPU-only machines each process trains on the CPU (PyTorch: gloo); with GPUs, process
LOCAL_RANK uses the LOCAL_RANK-th device of --device (NCCL on PyTorch).

The framework is imported lazily here: ``preflight()`` must run before ``import oneflow``, which already joins the
process group (it blocks until every rank has started, and aborts with a bare glog line if MASTER_PORT is taken).
"""

import contextlib
import ctypes
import errno
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
import zlib

from utils import errors
from utils.errors import UserError

TIMEOUT_ENV = "YOLOV5_DDP_TIMEOUT"
DEFAULT_TIMEOUT_S = 10800  # as ultralytics' process group: rank 0 may validate a large set while the others wait
OVERSUBSCRIBE_ENV = "YOLOV5_DDP_OVERSUBSCRIBE"  # =1 allows more CPU processes than cores (slow, but possible)
REPORT_GRACE_S = 15.0  # how long ranks > 0 wait for rank 0 to report a shared error (the launcher ends them sooner)


class DDPError(UserError, ValueError):
    """A launch or flag error that every rank detects alike: rank 0 reports it once and every rank exits 1."""


def timeout_s():
    """Seconds a rank may wait in one collective before giving up ($YOLOV5_DDP_TIMEOUT, default 3 h)."""
    return float(os.getenv(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))


def usable_cpus():
    """CPU cores this process may use; for a rank that utils.backend bound to its share, the cores before that."""
    bound = getattr(sys.modules.get("utils.backend"), "CPUS_BEFORE_BINDING", None)
    if bound:
        return len(bound)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Dist:
    """This process's place in a DDP job and the collectives the trainer uses.

    A single process is ``Dist()`` (rank -1, world 1): every method is then a cheap no-op, so the trainer calls them
    unconditionally. ``forced=True`` runs the DDP code paths in a one-process group (tests).
    """

    def __init__(self, rank=-1, local_rank=-1, world_size=1, local_world_size=1, forced=False):
        self.rank, self.local_rank = rank, local_rank
        self.world_size, self.local_world_size = world_size, local_world_size
        self.forced = forced
        self.device = None
        self.watchdog = None
        self._started = False

    def __repr__(self):
        return (f"Dist(rank={self.rank}, local_rank={self.local_rank}, world_size={self.world_size}, "
                f"local_world_size={self.local_world_size})")

    @property
    def ddp(self):
        return self.world_size > 1 or self.forced

    @property
    def main(self):
        """True on the process that logs, validates and saves (rank 0, or the only one)."""
        return self.rank in (-1, 0)

    # ------------------------------------------------------------------------------------------------- lifecycle
    def start(self, device, timeout=None):
        """Join the process group on ``device``, check the framework agrees with the launcher, start the watchdog."""
        from utils import backend  # noqa: PLC0415
        from utils.backend import distributed  # noqa: PLC0415

        self.device = device
        timeout = timeout_s() if timeout is None else timeout
        rank, world, local_world = distributed.dist_init(device, int(timeout))
        if (rank, world) != (max(self.rank, 0), self.world_size):
            raise DDPError(f"the launcher says rank {self.rank} of {self.world_size} but {backend.NAME} reports rank "
                           f"{rank} of {world}; launch with the tool of the active backend (see README)")
        self.local_world_size = local_world if self.world_size > 1 else 1
        self._started = True
        self.watchdog = Watchdog(self.rank, self._local_peers(), timeout)
        self.watchdog.start()
        return self

    def close(self):
        """After the last collective: stop the watchdog (ranks finish at different times) and leave the group."""
        if self.watchdog:
            self.watchdog.stop()
        if self._started:
            from utils.backend import distributed  # noqa: PLC0415
            distributed.dist_close()
            self._started = False

    def _local_peers(self):
        """{rank: pid} of the other ranks on this host, for the watchdog (one all_gather at start-up)."""
        from utils import backend  # noqa: PLC0415
        from utils.backend import distributed  # noqa: PLC0415

        host = zlib.crc32(socket.gethostname().encode()) & 0x7FFFFFFF
        mine = backend.torch.tensor([host, os.getpid()], dtype=backend.torch.int64, device=self.device)
        rows = [backend.to_numpy(t).tolist() for t in distributed.dist_all_gather(mine, max(self.world_size, 1))]
        return {r: int(pid) for r, (h, pid) in enumerate(rows) if h == host and r != max(self.rank, 0)}

    # ------------------------------------------------------------------------------------------------ collectives
    @contextlib.contextmanager
    def waiting(self, what):
        """Mark a stretch in which this rank may block on the others (the watchdog times it)."""
        if self.watchdog is None:
            yield
            return
        self.watchdog.arm(what)
        try:
            yield
        finally:
            self.watchdog.disarm()

    def barrier(self, what="barrier"):
        if self.ddp:
            from utils.backend import distributed  # noqa: PLC0415
            with self.waiting(what):
                distributed.dist_barrier()

    @contextlib.contextmanager
    def zero_first(self):
        """Rank 0 runs the block first (e.g. writes the labels cache); the others run it after it has finished."""
        if self.ddp and not self.main:
            self.barrier("rank 0 preparing data")
        yield
        if self.ddp and self.main:
            self.barrier("rank 0 preparing data")

    def broadcast_flag(self, flag, what="stop flag"):
        """Rank 0's bool on every rank (the early-stop and callback-stop decisions)."""
        if not self.ddp:
            return bool(flag)
        from utils import backend  # noqa: PLC0415
        from utils.backend import distributed  # noqa: PLC0415
        t = backend.torch.tensor([1 if flag else 0], dtype=backend.torch.int64, device=self.device)
        with self.waiting(what):
            distributed.dist_broadcast_(t, 0)
        return bool(int(backend.to_numpy(t)[0]))

    def stop_votes(self, callback_stop, signum, what="stop flags"):
        """(callback stop, signal) agreed by every rank after a batch: a callback's stop request (rank 0) or a
        SIGINT/SIGTERM seen by any rank stops them all at the same step (SIGTERM wins over SIGINT); cheap without
        DDP. Returns (bool, signal number or None)."""
        votes = [int(bool(callback_stop)), int(signum == signal.SIGINT), int(signum == signal.SIGTERM)]
        if self.ddp:
            from utils import backend  # noqa: PLC0415
            from utils.backend import distributed  # noqa: PLC0415
            t = backend.torch.tensor(votes, dtype=backend.torch.int64, device=self.device)
            with self.waiting(what):
                distributed.dist_all_reduce_(t)
            votes = [int(v) for v in backend.to_numpy(t)]
        sig = signal.SIGTERM if votes[2] else signal.SIGINT if votes[1] else None
        return bool(votes[0]), sig

    def broadcast_json(self, obj, what="broadcast"):
        """Rank 0's JSON-able value (str, numbers, lists, dicts) on every rank."""
        if not self.ddp:
            return obj
        from utils import backend  # noqa: PLC0415
        from utils.backend import distributed  # noqa: PLC0415
        torch = backend.torch
        payload = json.dumps(obj).encode() if self.main else b""
        n = torch.tensor([len(payload)], dtype=torch.int64, device=self.device)
        with self.waiting(what):
            distributed.dist_broadcast_(n, 0)
            size = int(backend.to_numpy(n)[0])
            import numpy as np  # noqa: PLC0415
            buf = np.frombuffer(payload, np.uint8) if self.main else np.zeros(size, np.uint8)
            t = backend.from_numpy(buf, device=self.device)
            distributed.dist_broadcast_(t, 0)
        return json.loads(backend.to_numpy(t).tobytes().decode())

    def broadcast_state(self, model):
        """Copy rank 0's parameters and buffers (e.g. AutoAnchor's anchors) into ``model`` on every rank."""
        if not self.ddp:
            return model
        from utils import backend  # noqa: PLC0415
        from utils.backend import distributed  # noqa: PLC0415
        with self.waiting("model state"), backend.torch.no_grad():
            for v in model.state_dict().values():
                distributed.dist_broadcast_(v, 0)
        return model

    # ------------------------------------------------------------------------------------------------- the model
    def wrap(self, model, sync_bn=False, log=None):
        """DDP-wrap ``model`` (after the EMA copy is taken: a wrapped OneFlow module must never be deep-copied).

        ``sync_bn`` converts BatchNorm to SyncBatchNorm where the framework supports it (CUDA), else says so.
        """
        if not self.ddp:
            return model
        from utils import backend  # noqa: PLC0415
        from utils.backend import distributed  # noqa: PLC0415
        if sync_bn:
            if distributed.sync_bn_supported(self.device):
                model = distributed.convert_sync_batchnorm(model).to(self.device)
                if log:
                    log("Using SyncBatchNorm()")
            elif log:
                log(f"WARNING ⚠️ --sync-bn needs CUDA devices: {backend.NAME} has no SyncBatchNorm for "
                    f"{self.device} tensors; training continues with per-process BatchNorm statistics")
        with self.waiting("DDP parameter broadcast"):
            return distributed.ddp_wrap(model, self.device)


# ---------------------------------------------------------------------------------------------------- start-up
def from_env(environ=None, local_rank_flag=-1):
    """Dist from the launcher's environment. WORLD_SIZE > 1 means launched; `import oneflow` itself sets RANK=0,
    WORLD_SIZE=1 (and MASTER_*) in a plain process, so those alone mean a single process."""
    env = os.environ if environ is None else environ
    world = int(env.get("WORLD_SIZE") or 1)
    if world <= 1:
        return Dist()
    rank = int(env.get("RANK") or 0)
    local_rank = env.get("LOCAL_RANK")
    if local_rank in (None, ""):  # old launchers pass --local_rank instead
        local_rank = local_rank_flag if local_rank_flag >= 0 else rank
    local_world = int(env.get("LOCAL_WORLD_SIZE") or world)
    return Dist(rank, int(local_rank), world, local_world)


def _die_with_parent():
    """Ask Linux to SIGTERM this process when the launcher dies, so a worker never outlives it (e.g. blocked inside
    `import oneflow` waiting for a rank that will never come)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def port_in_use(addr, port):
    """True when something already listens on addr:port (a stale TIME_WAIT socket does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((addr, port))
        except OSError as e:
            return e.errno == errno.EADDRINUSE
    return False


def preflight(environ=None):
    """Checks to run in train.py before the framework is imported; returns from_env().

    Ranks are tied to the launcher's life. On rank 0, a taken MASTER_PORT is reported in one line (OneFlow would
    abort inside `import oneflow` with a glog trace); torchrun's agent holds the port itself, so it is not probed then.
    """
    env = os.environ if environ is None else environ
    d = from_env(env)
    if not d.ddp:
        return d
    _die_with_parent()
    if "TORCHELASTIC_RUN_ID" in env and requested_backend(environ=env) == "oneflow":
        report_and_exit(d, DDPError("torchrun launches the torch backend only (its agent holds MASTER_PORT, which "
                                    "OneFlow needs): use python -m oneflow.distributed.launch, or add --backend torch"))
    if "TORCHELASTIC_RUN_ID" in env or {"oneflow", "torch"} & set(sys.modules):
        return d  # torchrun's agent holds the port; or the framework already joined the group (nothing to wait for)
    addr, port = env.get("MASTER_ADDR") or "127.0.0.1", int(env.get("MASTER_PORT") or 29500)
    if d.rank == 0 and port_in_use(addr, port):
        report_and_exit(d, DDPError(f"MASTER_PORT {port} on {addr} is already in use: pass a free one to the "
                                    f"launcher, e.g. --master_port {port + 1}"))
    if d.rank > 0:
        wait_for_listener(addr, port)
    return d


def requested_backend(argv=None, environ=None):
    """'oneflow' or 'torch': utils.backend's choice (--backend, else $YOLOV5_BACKEND, else oneflow), read without
    importing it (aliases folded as there)."""
    argv = sys.argv if argv is None else argv
    name = (environ if environ is not None else os.environ).get("YOLOV5_BACKEND")
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            name = argv[i + 1]
        elif arg.startswith("--backend="):
            name = arg.split("=", 1)[1]
    name = (name or "oneflow").strip().lower()
    return "torch" if name in ("torch", "pytorch", "pt") else "oneflow" if name in ("oneflow", "of", "flow") else name


def wait_for_listener(addr, port, limit_s=120.0):
    """Block until rank 0 listens on addr:port (or ``limit_s`` passes). OneFlow's bootstrap client retries a refused
    connection only after about 10 s, so a rank that dials before rank 0 is up costs every launch 10 s."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            if s.connect_ex((addr, port)) == 0:
                return True
        time.sleep(0.05)
    return False


def report_and_exit(d, err, code=1, grace=True):
    """Rank 0 reports ``err`` in one line (utils.errors); every rank exits ``code`` without framework teardown (which
    would wait for peers). Ranks > 0 wait a little first (``grace``), so rank 0's message is out before the launcher
    stops the job; an error every rank raised at the same agreed point (an interruption) needs no wait."""
    if d.main:
        errors.report(err)
    elif grace:
        time.sleep(REPORT_GRACE_S)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def call_main(main, *args, **kwargs):
    """A training script's entry: ``main(*args)`` inside utils.errors.guard(). Under DDP a user error becomes one
    message from rank 0 and its exit status on every rank, and any other exception ends its rank at once after the
    traceback: a normal interpreter exit would wait in OneFlow's shutdown for ranks that are themselves waiting for
    this one in a collective (a hang)."""
    d = from_env()
    if not d.ddp:
        with errors.guard():
            return main(*args, **kwargs)
    try:
        return main(*args, **kwargs)
    except Exception as e:
        if not errors.is_user_error(e):
            _die_with_traceback(d)
        report_and_exit(d, e, errors.exit_code(e), grace=not isinstance(e, errors.Interrupted))
    except KeyboardInterrupt:
        _die_with_traceback(d)


def _die_with_traceback(d):
    traceback.print_exc()
    print(f"ERROR: DDP rank {d.rank} failed (traceback above); stopping it without waiting for the other ranks",
          file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)


def check_launch(d, opt):
    """Flags that DDP cannot honour, as ultralytics refuses them, plus the process/device counts; raises DDPError."""
    if opt.batch_size == -1:
        raise DDPError("--batch-size -1 (AutoBatch) is not available in DDP mode; pass a total --batch-size")
    if opt.batch_size % d.world_size:
        raise DDPError(f"--batch-size {opt.batch_size} must be a multiple of WORLD_SIZE {d.world_size} "
                       f"(it is the total batch, split evenly over the processes)")
    if getattr(opt, "image_weights", False):
        raise DDPError("--image-weights is not compatible with DDP training (each rank samples a fixed shard)")
    if getattr(opt, "evolve", None):
        raise DDPError("--evolve is not compatible with DDP training; evolve in a single process")


def select_ddp_device(d, device_flag, log=None):
    """This rank's device: the LOCAL_RANK-th of --device's CUDA ids (all visible ones for ''), or the CPU."""
    from utils import backend  # noqa: PLC0415

    flag = str(device_flag).strip().lower().replace("cuda:", "").replace("none", "")
    if flag == "cpu" or (flag == "" and not backend.cuda_available()):
        cores = usable_cpus()
        if d.local_world_size > cores and os.getenv(OVERSUBSCRIBE_ENV) != "1":
            raise DDPError(f"{d.local_world_size} processes on this machine but only {cores} CPU core(s): use "
                           f"--nproc_per_node {cores} or fewer (or set {OVERSUBSCRIBE_ENV}=1 to run anyway)")
        return backend.select_device("cpu", log=log if d.main else None)
    try:
        backend.select_device(flag, log=log if d.main else None)  # validates the ids against this machine
    except ValueError as e:
        raise DDPError(str(e)) from None
    ids = [int(x) for x in flag.split(",") if x.strip()] if flag else list(range(backend.cuda_device_count()))
    if d.local_world_size > len(ids):
        raise DDPError(f"{d.local_world_size} processes on this machine but --device gives {len(ids)} CUDA device(s) "
                       f"({','.join(map(str, ids)) or 'none'}): use --nproc_per_node {len(ids)} or list more devices")
    return backend.torch.device(f"cuda:{ids[d.local_rank]}")


def setup(opt, log=None):
    """The Dist of this process for a training script's main(): single process -> Dist() (device chosen by the
    caller); launched -> checks, device, process group, watchdog. ``opt`` (the flags) is only read; the caller takes
    rank 0's run folder with ``d.broadcast_json``."""
    d = from_env(local_rank_flag=getattr(opt, "local_rank", -1))
    if not d.ddp:
        if getattr(opt, "sync_bn", False) and log:
            log("WARNING ⚠️ --sync-bn is only available in DDP mode (multiple processes); ignored")
        tip = faster_cpu_tip(opt.device)
        if tip and log:
            log(tip)
        return d
    check_launch(d, opt)
    device = select_ddp_device(d, opt.device, log=log)
    d.start(device)
    if log and d.main:
        log(f"DDP: {d.world_size} processes ({d.local_world_size} on this machine), "
            f"{opt.batch_size // d.world_size} images per process, device {device}")
    return d


def faster_cpu_tip(device_flag):
    """One line pointing single-process OneFlow CPU training at the launcher, or None.

    OneFlow runs its CPU kernels on one thread, so one process per core is its fastest CPU set-up (benchmarks/
    ddp_speed.py measures it); PyTorch already uses every core in one process.
    """
    from utils import backend  # noqa: PLC0415

    cores, flag = usable_cpus(), str(device_flag).strip().lower()
    if not backend.IS_ONEFLOW or cores < 2 or flag not in ("", "cpu") or (flag == "" and backend.cuda_available()):
        return None
    return (f"Tip: OneFlow trains on one CPU core per process; on this {cores}-core CPU one process per core is "
            f"faster: python -m oneflow.distributed.launch --nproc_per_node {cores} train.py ... (same flags; "
            f"--batch-size is the total)")


# ------------------------------------------------------------------------------------------------- watchdog
def pid_alive(pid):
    """True while ``pid`` runs (a zombie, i.e. exited but not yet reaped by its launcher, counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to a signal-0 probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class Watchdog:
    """Ends this rank (exit 1, with a message) instead of letting it wait forever for the others.

    Two checks, once per ``interval`` seconds in a daemon thread (the frameworks release the GIL while they block):
      - a peer rank on this host has exited (before the job's final barrier, that is always an error);
      - this rank has been waiting in one armed stretch (a collective, a training step) for more than ``timeout`` s.
    """

    def __init__(self, rank, peers, timeout, interval=1.0, exit_fn=None, clock=time.monotonic):
        self.rank, self.peers, self.timeout, self.interval = rank, dict(peers), float(timeout), interval
        self.exit_fn = exit_fn or self._exit
        self.clock = clock
        self._armed = None  # (what, since)
        self._stop = threading.Event()
        self._thread = None

    def arm(self, what):
        self._armed = (what, self.clock())

    def disarm(self):
        self._armed = None

    def check(self):
        """The reason to stop now, or None."""
        for r, pid in self.peers.items():
            if not pid_alive(pid):
                return (f"DDP rank {r} (pid {pid}) has exited; stopping rank {max(self.rank, 0)} too instead of "
                        f"waiting for it (see rank {r}'s output above for the cause)")
        armed = self._armed
        if armed and self.clock() - armed[1] > self.timeout:
            return (f"DDP rank {max(self.rank, 0)} waited more than {self.timeout:.0f} s for the other ranks "
                    f"({armed[0]}); a rank is stuck or took another code path. Stopping ({TIMEOUT_ENV} sets the limit)")
        return None

    def start(self):
        self._thread = threading.Thread(target=self._run, name="ddp-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()

    def _run(self):
        while not self._stop.wait(self.interval):
            reason = self.check()
            if reason and not self._stop.is_set():
                self.exit_fn(reason)
                return

    @staticmethod
    def _exit(reason):
        print(f"ERROR: {reason}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(1)
