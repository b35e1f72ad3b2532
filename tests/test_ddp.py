"""DDP training (utils/dist.py): launches with the real launchers, gradient equivalence, bad input, hang guards.

Launchers: `python -m oneflow.distributed.launch` on OneFlow, `python -m torch.distributed.run` (torchrun) on PyTorch;
both run 2 CPU processes here. This file is also the worker of the gradient check when run as a script:
    <launcher> --nproc_per_node 2 tests/test_ddp.py grad <data.yaml> <out_dir>
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

HYP = ROOT / "data" / "hyps" / "hyp.scratch-low.yaml"
LAUNCH_ENV_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                   "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID", "PYTHONPATH")


# ------------------------------------------------------------------------------------------------------ helpers
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_cmd(backend_name, nproc, port, *args):
    """The real launcher of ``backend_name`` running ``args`` (a script and its flags) in ``nproc`` processes."""
    module = "oneflow.distributed.launch" if backend_name == "oneflow" else "torch.distributed.run"
    return [sys.executable, "-m", module, "--nproc_per_node", str(nproc), "--master_port", str(port), *map(str, args)]


def launch_env(backend_name, **extra):
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV_KEYS}  # `import oneflow` set some of them here
    env.update(YOLOV5_BACKEND=backend_name, MPLBACKEND="Agg", PYTHONUNBUFFERED="1", **extra)
    return env


def run_launcher(cmd, env, timeout, cwd=ROOT):
    """(returncode, combined output, seconds); the whole process group is killed if ``timeout`` passes."""
    t0 = time.time()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        pytest.fail(f"launcher still running after {timeout} s (a hang):\n{out[-4000:]}")
    return p.returncode, out, time.time() - t0


def train_args(data, project, autoanchor=False, **kw):
    args = dict(data=data, cfg="yolov5n.yaml", weights="", img=64, epochs=1, batch=8, workers=0, project=project,
                name="exp", device="cpu")
    args.update(kw)
    flags = []
    for k, v in args.items():
        flags += [f"--{k.replace('_', '-')}", str(v)] if v is not True else [f"--{k.replace('_', '-')}"]
    return ["train.py", *flags, "--noplots"] + ([] if autoanchor else ["--noautoanchor"])


@pytest.fixture(scope="module")
def ddp_data(tmp_path_factory):
    """16 train / 8 val images at 64 px; every label file holds exactly one box of the same size and place (classes
    differ), so each shard of the gradient check has the same matched-target counts per level as the whole batch."""
    from utils.data.synthetic import make_dataset
    yaml_file = make_dataset(tmp_path_factory.mktemp("ddp_syn"), n_train=16, n_val=8, imgsz=64, seed=3)
    for i, f in enumerate(sorted((Path(yaml_file).parent / "labels" / "train").glob("*.txt"))):
        f.write_text(f"{i % 6} 0.5 0.5 0.375 0.3125\n")
    return Path(yaml_file)


# ------------------------------------------------------------------------------------------ gradient equivalence
def _grad_trainer(data, out, d, batch_size):
    """A DetectionTrainer set up (data, model, optimizer, DDP wrap) with augmentation off, plus an unshuffled loader."""
    from utils import cli
    from utils.backend import select_device
    from utils.data.build import create_dataloader
    from utils.engine.config import DetectTrainConfig
    from utils.engine.detection import DetectionTrainer

    opt = cli.options("train", dict(data=str(data), cfg="yolov5n.yaml", weights="", imgsz=64, epochs=1,
                                    batch_size=batch_size, workers=0, noplots=True, noautoanchor=True, device="cpu"))
    cfg = DetectTrainConfig.from_opt(opt, save_dir=out / "run", hyp=yaml.safe_load(HYP.read_text()))
    device = select_device("cpu")
    if d.ddp:
        d.start(device)
    trainer = DetectionTrainer(cfg, None, device, dist=d)
    trainer.setup()
    loader, _ = create_dataloader(trainer.data["train"], trainer.imgsz, trainer.local_batch_size, trainer.gs,
                                  hyp=trainer.hyp, augment=False, rank=d.rank, world_size=d.world_size, workers=0,
                                  shuffle=False)
    return trainer, loader


def _first_step_grads(trainer, loader, init_state=None):
    """Gradients of the trainer's loss on the loader's first batch; BatchNorm uses its running statistics, the one
    thing per-process batches (DDP without SyncBatchNorm) cannot reproduce."""
    from utils.backend import distributed, from_numpy, nn, to_numpy
    from utils.model_tools import de_parallel

    bare = de_parallel(trainer.model)
    if init_state is not None:
        own = bare.state_dict()
        bare.load_state_dict({k: from_numpy(init_state[k], dtype=v.dtype) for k, v in own.items()})
    trainer.model.train()
    for m in bare.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    batch = next(iter(loader))
    paths = batch.paths
    trainer.optimizer.zero_grad()
    loss, _ = trainer.forward_loss(batch._replace(img=batch.img.to(trainer.device).float() / 255))
    loss.backward()
    distributed.average_gradients(trainer.model)  # what the trainer does before its optimizer step (OneFlow, CPU)
    grads = {k: to_numpy(p.grad).copy() for k, p in bare.named_parameters() if p.grad is not None}
    return grads, [Path(p).name for p in paths]


def _grad_worker(data, out):
    """Launched on every rank: the DDP first-step gradients of 2 x batch 8 (rank 0 writes them)."""
    from utils import dist
    d = dist.preflight()  # before the framework import, as train.py does
    from utils.backend import to_numpy
    from utils.model_tools import de_parallel

    out = Path(out)
    trainer, loader = _grad_trainer(data, out, d, batch_size=16)
    from utils import backend
    from utils.backend import distributed
    total = distributed.dist_all_reduce_(backend.torch.tensor([d.rank + 1.0], device=d.device))
    assert float(to_numpy(total)[0]) == 3.0  # the backend's all_reduce sums over both ranks
    state = {k: to_numpy(v).copy() for k, v in de_parallel(trainer.model).state_dict().items()}
    grads, paths = _first_step_grads(trainer, loader)
    (out / f"paths{d.rank}.json").write_text(json.dumps(paths))
    if d.main:
        np.savez(out / "ddp_grads.npz", **grads)
        np.savez(out / "init_state.npz", **state)
    d.barrier()
    d.close()


@pytest.mark.parametrize("tol", [1e-4])
def test_ddp_gradients_match_single_process(ddp_data, tmp_path, backend_name, tol):
    """2 processes x batch 8 (real launcher) == 1 process x batch 16 on the same 16 images, first-step gradients."""
    from utils.dist import Dist

    rc, out, secs = run_launcher(launch_cmd(backend_name, 2, free_port(), "tests/test_ddp.py", "grad", ddp_data,
                                            tmp_path), launch_env(backend_name), timeout=240)
    assert rc == 0, out[-4000:]
    shards = [json.loads((tmp_path / f"paths{r}.json").read_text()) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 8 and not set(shards[0]) & set(shards[1])  # disjoint halves
    trainer, loader = _grad_trainer(ddp_data, tmp_path / "single", Dist(), batch_size=16)
    with np.load(tmp_path / "init_state.npz") as z:
        init = dict(z)
    ref, paths = _first_step_grads(trainer, loader, init_state=init)
    assert sorted(paths) == sorted(shards[0] + shards[1])  # the same 16 images
    with np.load(tmp_path / "ddp_grads.npz") as z:
        ddp = dict(z)
    assert ddp.keys() == ref.keys() and len(ref) > 100
    scale = max(float(np.abs(g).max()) for g in ref.values())
    max_diff = max(float(np.abs(ddp[k] - ref[k]).max()) for k in ref)
    print(f"first-step gradients, {backend_name}: max |ddp - single| = {max_diff:.3g}, max |grad| = {scale:.3g}, "
          f"relative {max_diff / scale:.3g} (tolerance {tol})")
    assert max_diff <= tol * scale


# ------------------------------------------------------------------------------------------------- in-process
def test_dist_from_env_single_and_launched():
    from utils.dist import from_env
    assert not from_env({}).ddp and from_env({}).main
    # what `import oneflow` leaves in a plain process: still a single process
    assert not from_env({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_PORT": "29500"}).ddp
    d = from_env({"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2"})
    assert d.ddp and not d.main and (d.rank, d.local_rank, d.world_size, d.local_world_size) == (1, 1, 2, 2)
    assert from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"}, local_rank_flag=1).local_rank == 1


def test_requested_backend_read_without_import():
    from utils import backend
    from utils.dist import requested_backend
    assert requested_backend(["train.py"], {}) == "oneflow"
    assert requested_backend(["train.py", "--backend", "torch"], {"YOLOV5_BACKEND": "oneflow"}) == "torch"
    assert requested_backend(["train.py", "--backend=of"], {"YOLOV5_BACKEND": "torch"}) == "oneflow"
    assert requested_backend(["train.py"], {"YOLOV5_BACKEND": "pytorch"}) == "torch"
    for argv, env in ((["x"], {}), (["x", "--backend", "pt"], {}), (["x"], {"YOLOV5_BACKEND": "flow"})):
        assert requested_backend(argv, env) == backend._requested_backend(argv, env)  # the same rule


def test_train_py_imports_no_framework():
    """dist.preflight() in train.py must run before `import oneflow` (which joins the process group)."""
    code = "import sys, train; print(sorted({'oneflow', 'torch'} & set(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_launch_checks():
    import argparse

    from utils.dist import DDPError, Dist, check_launch, select_ddp_device
    d = Dist(rank=0, local_rank=0, world_size=2, local_world_size=2)
    ok = dict(batch_size=16, image_weights=False, evolve=None)
    check_launch(d, argparse.Namespace(**ok))
    for bad, msg in ((dict(batch_size=15), "multiple of WORLD_SIZE 2"), (dict(batch_size=-1), "AutoBatch"),
                     (dict(image_weights=True), "image-weights"), (dict(evolve=300), "evolve")):
        with pytest.raises(DDPError, match=msg):
            check_launch(d, argparse.Namespace(**{**ok, **bad}))
    many = Dist(rank=0, local_rank=0, world_size=64, local_world_size=64)
    with pytest.raises(DDPError, match="CPU core"):
        select_ddp_device(many, "cpu")
    with pytest.raises(DDPError, match="Invalid CUDA"):  # these machines have no GPU
        select_ddp_device(d, "0,1")


def test_cpu_ranks_bound_to_their_share_of_cores(monkeypatch):
    """One OneFlow process per core on a CPU machine: each rank bound to its own cores (utils/backend)."""
    from utils import backend
    monkeypatch.setattr(backend, "CPUS_BEFORE_BINDING", None)
    monkeypatch.setattr(backend.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4}, raising=False)
    calls = []

    def pin(env):
        calls.clear()
        return backend._pin_cpu_rank(env, setaffinity=lambda pid, cpus: calls.append(sorted(cpus)))

    assert pin({"LOCAL_RANK": "1", "WORLD_SIZE": "2"}) == 2 and calls == [[2, 3]]
    assert backend.CPUS_BEFORE_BINDING == (0, 1, 2, 3, 4)
    assert pin({"LOCAL_RANK": "3", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}) == 1 and calls == [[3]]
    for env in ({}, {"LOCAL_RANK": "0", "WORLD_SIZE": "1"}, {"LOCAL_RANK": "0", "WORLD_SIZE": "6"},
                {"LOCAL_RANK": "0", "WORLD_SIZE": "2", "YOLOV5_CPU_AFFINITY": "0"}, {"LOCAL_RANK": "x"}):
        assert pin(env) == 0 and calls == [], env  # not launched, more ranks than cores, opted out, garbage


def test_unbound_cpus_and_back(monkeypatch):
    from utils import backend
    if not hasattr(backend.os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this OS")
    own = backend.os.sched_getaffinity(0)
    monkeypatch.setattr(backend, "CPUS_BEFORE_BINDING", None)
    with backend.unbound_cpus():  # an unbound process: nothing changes
        assert backend.os.sched_getaffinity(0) == own
    if len(own) < 2:
        pytest.skip("one core: nothing to bind")
    one = {min(own)}
    backend.os.sched_setaffinity(0, one)
    try:
        monkeypatch.setattr(backend, "CPUS_BEFORE_BINDING", tuple(sorted(own)))
        with backend.unbound_cpus():
            assert backend.os.sched_getaffinity(0) == own
        assert backend.os.sched_getaffinity(0) == one
    finally:
        backend.os.sched_setaffinity(0, own)


def test_average_gradients_outside_ddp_is_a_no_op():
    from utils.backend import distributed, nn, to_numpy, torch
    m = nn.Linear(2, 1)
    m(torch.ones(1, 2)).sum().backward()
    before = to_numpy(m.weight.grad).copy()
    distributed.average_gradients(m)
    assert (to_numpy(m.weight.grad) == before).all() and not distributed.is_ddp_wrapped(m)


def test_sampler_shards_every_epoch(ddp_data):
    """Per epoch, the ranks' shards are disjoint and cover the data; each epoch reshuffles (set_epoch, or by itself
    when a pass starts before set_epoch, as with prefetching workers); both ranks agree without communicating."""
    from utils.data.build import create_dataloader
    from utils.data.dataset_yaml import check_dataset
    train = check_dataset(str(ddp_data))["train"]

    def epochs(rank, set_epoch):
        loader, _ = create_dataloader(train, 64, 4, 32, rank=rank, world_size=2, workers=0, shuffle=True, seed=0)
        out = []
        for e in range(3):
            if set_epoch:
                loader.sampler.set_epoch(e)
            out.append([Path(p).name for _, _, paths, _ in loader for p in paths])
        return out

    r0, r1 = epochs(0, True), epochs(1, True)
    for a, b in zip(r0, r1):
        assert len(a) == len(b) == 8 and not set(a) & set(b)
    assert r0[0] != r0[1] != r0[2]
    assert epochs(0, False) == r0  # the same orders when nobody calls set_epoch


def test_zero_first_and_flags_without_collectives(monkeypatch):
    """Rank 0 runs a zero_first block (labels cache) before the others; a single process needs no collective."""
    from utils.dist import Dist
    for rank, expected in ((0, ["body", "barrier"]), (1, ["barrier", "body"])):
        d = Dist(rank=rank, local_rank=rank, world_size=2, local_world_size=2)
        calls = []
        monkeypatch.setattr(d, "barrier", lambda what="", calls=calls: calls.append("barrier"))
        with d.zero_first():
            calls.append("body")
        assert calls == expected
    single = Dist()
    with single.zero_first():
        pass
    single.barrier()
    assert single.broadcast_flag(True) is True and single.broadcast_json({"a": 1}) == {"a": 1}
    assert single.wrap("model") == "model" and single.broadcast_state("model") == "model"


def test_watchdog_peer_exit_and_stall():
    from utils.dist import Watchdog, pid_alive
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert pid_alive(os.getpid()) and not pid_alive(p.pid)
    now = [0.0]
    w = Watchdog(rank=0, peers={1: os.getpid()}, timeout=5, clock=lambda: now[0])
    assert w.check() is None
    w.arm("barrier")
    now[0] = 4.0
    assert w.check() is None
    now[0] = 6.0
    assert "waited more than 5 s" in w.check() and "barrier" in w.check()
    w.disarm()
    assert w.check() is None
    dead = Watchdog(rank=0, peers={1: p.pid}, timeout=5)
    assert "rank 1" in dead.check() and "has exited" in dead.check()
    fired = []
    dead.exit_fn, dead.interval = fired.append, 0.05
    dead.start()
    for _ in range(100):
        if fired:
            break
        time.sleep(0.05)
    assert fired and "has exited" in fired[0]


@pytest.mark.skipif(os.getenv("YOLOV5_BACKEND", "oneflow") != "oneflow", reason="OneFlow-specific hang")
def test_no_cuda_synchronize_under_oneflow_ddp(monkeypatch):
    """oneflow.cuda.synchronize() under DDP can hang (one-yolov5#47): time_sync() must not call it there."""
    from utils import backend
    calls = []
    monkeypatch.setattr(backend, "cuda_available", lambda: True)
    monkeypatch.setattr(backend.torch.cuda, "synchronize", lambda *a: calls.append(1))
    backend.cuda_synchronize()
    assert calls == [1]  # single process: synchronised
    monkeypatch.setattr(backend.torch.env, "get_world_size", lambda: 2)
    backend.time_sync()
    assert calls == [1]


def test_ddp_code_path_in_one_process(ddp_data, tmp_path, monkeypatch, backend_name):
    """The DDP branch of the trainer (shards, broadcasts, wrapping, rank-0 work) in a one-process group: one epoch,
    a normal run folder, no deepcopy of the wrapped model, and --sync-bn on the CPU explained."""
    from utils import cli, training
    from utils.backend import distributed, select_device
    from utils.dist import Dist
    from utils.engine.config import DetectTrainConfig
    from utils.engine.detection import DetectionTrainer

    real_deepcopy = training.deepcopy

    def guarded_deepcopy(x, *a):
        assert not distributed.is_ddp_wrapped(x), "deepcopy of a DDP-wrapped model (hangs on OneFlow)"
        return real_deepcopy(x, *a)

    monkeypatch.setattr(training, "deepcopy", guarded_deepcopy)
    if backend_name == "torch":  # a one-process gloo group needs a rendezvous address
        for k, v in dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), RANK="0", WORLD_SIZE="1").items():
            monkeypatch.setenv(k, v)
    logs = []
    opt = cli.options("train", dict(data=str(ddp_data), cfg="yolov5n.yaml", weights="", imgsz=64, epochs=1,
                                    batch_size=8, workers=0, noplots=True, noautoanchor=True, sync_bn=True))
    cfg = DetectTrainConfig.from_opt(opt, save_dir=tmp_path / "exp", hyp=yaml.safe_load(HYP.read_text()))
    device = select_device("cpu")
    d = Dist(rank=0, local_rank=0, world_size=1, forced=True).start(device, timeout=600)
    try:
        trainer = DetectionTrainer(cfg, None, device, dist=d)
        monkeypatch.setattr("utils.engine.trainer.LOGGER.info", lambda m, *a, **k: logs.append(str(m)))
        trainer.fit()
    finally:
        d.close()
    assert distributed.is_ddp_wrapped(trainer.model) and trainer.ema is not None
    assert any("--sync-bn needs CUDA" in m for m in logs)
    for f in ("results.csv", "weights/last.pt", "weights/best.pt", "opt.yaml"):
        assert (tmp_path / "exp" / f).is_file(), f


# -------------------------------------------------------------------------------------- bad input, real launcher
BAD_INPUTS = {
    "batch not divisible": (2, dict(batch=7), "must be a multiple of WORLD_SIZE 2"),
    "missing GPU": (2, dict(device="0"), "Invalid CUDA '--device 0' requested"),
    "more processes than cores": (None, {}, "CPU core"),
}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if i else c  # same path: 1 in the fast run
                                  for i, c in enumerate(BAD_INPUTS)])
def test_bad_input_one_error_all_exit(case, ddp_data, tmp_path, backend_name):
    nproc, kw, msg = BAD_INPUTS[case]
    if nproc is None:  # one process more than this machine's cores, with a batch they divide
        nproc = len(os.sched_getaffinity(0)) + 1
        kw = dict(batch=4 * nproc)
    cmd = launch_cmd(backend_name, nproc, free_port(), *train_args(ddp_data, tmp_path, **kw))
    rc, out, secs = run_launcher(cmd, launch_env(backend_name), timeout=120)
    assert rc != 0
    errors = [line for line in out.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and msg in errors[0], out[-3000:]
    assert not (tmp_path / "exp").exists()


def test_port_in_use(tmp_path, ddp_data, backend_name):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        cmd = launch_cmd(backend_name, 2, port, *train_args(ddp_data, tmp_path))
        rc, out, secs = run_launcher(cmd, launch_env(backend_name), timeout=120)
    assert rc != 0
    if backend_name == "oneflow":  # ours (OneFlow itself would abort in `import oneflow` with a glog trace)
        assert f"ERROR: MASTER_PORT {port} on 127.0.0.1 is already in use" in out
    else:  # torchrun's agent binds the port before any worker starts and says so
        assert re.search("address already in use|EADDRINUSE", out, re.I), out[-3000:]


# -------------------------------------------------------------------------------------------------- slow runs
def _children(pid):
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _rank_pid(launcher_pid, rank, wait_s=120):
    """pid of the worker with RANK=rank below the launcher (torchrun: below its agent process)."""
    t0 = time.time()
    while time.time() - t0 < wait_s:
        todo = _children(launcher_pid)
        while todo:
            pid = todo.pop()
            try:
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"RANK={rank}".encode() in env and b"LOCAL_RANK=" + str(rank).encode() in env:
                return pid
            todo += _children(pid)
        time.sleep(0.5)
    return None


@pytest.mark.slow
@pytest.mark.parametrize("task", ["segment", "classify"])
def test_two_process_segment_and_classify(task, tmp_path, backend_name):
    """segment/train.py and classify/train.py on 2 processes (on OneFlow's CPU: gradients averaged per optimizer
    step, no DDP wrapper): one run folder, one results.csv row per epoch, weights."""
    from utils.data.synthetic import make_dataset
    data = make_dataset(tmp_path / "data", n_train=16, n_val=4, imgsz=64, task=task, seed=3)
    common = ["--img", "64", "--epochs", "2", "--batch-size", "8", "--workers", "0", "--project", tmp_path / "runs",
              "--name", task, "--noplots" if task == "segment" else "--pretrained=False"]
    args = (["segment/train.py", "--data", data, "--cfg", "models/segment/yolov5n-seg.yaml", "--weights", ""]
            if task == "segment" else ["classify/train.py", "--data", Path(data).parent, "--model", "yolov5n.yaml"])
    rc, out, secs = run_launcher(launch_cmd(backend_name, 2, free_port(), *args, *common), launch_env(backend_name),
                                 timeout=300)
    assert rc == 0, out[-4000:]
    run = tmp_path / "runs" / task
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [task]
    assert len((run / "results.csv").read_text().splitlines()) == 3
    assert (run / "weights" / "last.pt").exists()


@pytest.mark.slow
def test_two_process_run_and_resume(ddp_data, tmp_path, backend_name):
    """A real 2-process run (AutoAnchor on rank 0): one run folder with results.csv and weights; then --resume of an
    interrupted run."""
    cmd = launch_cmd(backend_name, 2, free_port(), *train_args(ddp_data, tmp_path, autoanchor=True, batch=8, epochs=1))
    rc, out, secs = run_launcher(cmd, launch_env(backend_name), timeout=300)
    print(f"2-process {backend_name} run: {secs:.1f} s")
    assert rc == 0, out[-4000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]  # one run folder, not one per rank
    run = tmp_path / "exp"
    assert len((run / "results.csv").read_text().splitlines()) == 2
    assert sorted(p.name for p in (run / "weights").iterdir()) == ["best.pt", "last.pt"]
    assert out.count("Starting training for 1 epochs") == 1 and out.count("AutoAnchor: ") == 1  # rank 0 alone
    assert secs < 240

    # --resume under DDP: an interrupted single-process run (epoch 0 of 2 saved) continues on 2 processes
    import train
    from utils import checkpoint
    from utils.callbacks import Callbacks

    class Stop(Exception):
        pass

    def interrupt(last, epoch, *a):
        raise Stop

    cb = Callbacks()
    cb.register_action("on_model_save", callback=interrupt)
    opt = train.parse_opt(known=True)
    for k, v in dict(data=str(ddp_data), cfg="yolov5n.yaml", weights="", imgsz=64, epochs=2, batch_size=8, workers=0,
                     project=str(tmp_path), name="part", noplots=True, noautoanchor=True).items():
        setattr(opt, k, v)
    with pytest.raises(Stop):
        train.main(opt, callbacks=cb)
    last = tmp_path / "part" / "weights" / "last.pt"
    rc, out, secs = run_launcher(launch_cmd(backend_name, 2, free_port(), "train.py", "--resume", last),
                                 launch_env(backend_name), timeout=300)
    assert rc == 0, out[-4000:]
    assert "Resuming training" in out and checkpoint.read(last)["epoch"] == -1
    assert len((tmp_path / "part" / "results.csv").read_text().splitlines()) == 3  # header + epochs 0, 1


@pytest.mark.slow
@pytest.mark.parametrize("task", ["segment", "classify"])
def test_two_process_segment_and_classify(task, tmp_path, backend_name):
    """segment/train.py and classify/train.py under the real launcher: one run folder, every epoch logged once."""
    from utils.data.synthetic import make_dataset
    data = make_dataset(tmp_path / "data", n_train=16, n_val=8, imgsz=64, seed=2, task=task)
    common = ["--epochs", "2", "--batch", "8", "--workers", "0", "--project", tmp_path / "runs", "--name", "exp",
              "--device", "cpu"]
    if task == "segment":
        args = ["segment/train.py", "--data", data, "--cfg", "yolov5n-seg.yaml", "--weights", "", "--img", "64",
                "--noautoanchor", "--noplots", *common]
    else:
        args = ["classify/train.py", "--model", "yolov5n.yaml", "--pretrained", "False", "--data", data.parent,
                "--img", "48", *common]
    rc, out, secs = run_launcher(launch_cmd(backend_name, 2, free_port(), *args), launch_env(backend_name),
                                 timeout=400)
    print(f"2-process {backend_name} {task} run: {secs:.1f} s")
    assert rc == 0, out[-4000:]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["exp"]
    run = tmp_path / "runs" / "exp"
    assert len((run / "results.csv").read_text().splitlines()) == 3  # header + 2 epochs, written by rank 0 alone
    assert sorted(p.name for p in (run / "weights").iterdir()) == ["best.pt", "last.pt"]


@pytest.mark.slow
def test_killed_worker_stops_the_job(ddp_data, tmp_path, backend_name):
    """SIGKILL rank 1 mid-training: the launcher must exit non-zero with a message, not hang."""
    cmd = launch_cmd(backend_name, 2, free_port(), *train_args(ddp_data, tmp_path, epochs=50, batch=4))
    p = subprocess.Popen(cmd, cwd=ROOT, env=launch_env(backend_name), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        victim = _rank_pid(p.pid, 1)
        assert victim, "rank 1 not found"
        deadline = time.time() + 180
        while time.time() < deadline and not (tmp_path / "exp" / "results.csv").exists():
            time.sleep(0.5)  # wait until training runs (an epoch has ended)
        os.kill(victim, signal.SIGKILL)
        t0 = time.time()
        out, _ = p.communicate(timeout=120)
        secs = time.time() - t0
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        pytest.fail("the job hung after a worker was killed")
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    print(f"{backend_name}: launcher exited {p.returncode} {secs:.1f} s after rank 1 was killed")
    assert p.returncode != 0
    assert re.search(r"has exited|SIGKILL|Signals\.SIGKILL|exitcode\s*:\s*-9|died with", out), out[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_every_rank(signum, ddp_data, tmp_path, backend_name):
    """Ctrl-C (SIGINT to the launcher's process group) or SIGTERM during DDP training: every rank stops at a safe
    point, rank 0 says how to resume, last.pt stays loadable, and the job ends without a hang."""
    from utils import checkpoint
    cmd = launch_cmd(backend_name, 2, free_port(), *train_args(ddp_data, tmp_path, epochs=50, batch=4, noval=True))
    p = subprocess.Popen(cmd, cwd=ROOT, env=launch_env(backend_name), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    last = tmp_path / "exp" / "weights" / "last.pt"
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not last.exists() and p.poll() is None:
            time.sleep(0.5)
        assert last.exists(), "no epoch ended"
        os.killpg(p.pid, signum)  # as a terminal's Ctrl-C: the launcher and both ranks receive it
        out, _ = p.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        pytest.fail(f"the job hung after {signal.Signals(signum).name}")
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    print(f"{backend_name}: launcher exited {p.returncode} after {signal.Signals(signum).name}")
    assert p.returncode != 0
    # oneflow.distributed.launch answers a Ctrl-C by sending SIGTERM to the ranks, which then report SIGTERM
    said = "SIGINT|SIGTERM" if signum == signal.SIGINT else "SIGTERM"
    assert re.search(f"Interrupted: training stopped by ({said})", out) and "--resume" in out, out[-3000:]
    ours = re.search(r'File "[^"]*(/train\.py|/utils/|/models/)', out)  # torchrun's agent prints its own traceback
    assert ours is None, out[-3000:]  # on SIGTERM (SignalException): not ours to change, but none from our ranks
    assert checkpoint.read(last)["epoch"] >= 0  # loadable, with the state to resume from


def _stall_worker():
    """Launched: rank 1 takes a code path without the collective (sleeps); rank 0 must not wait forever."""
    from utils import dist
    d = dist.preflight()
    from utils.backend import select_device

    d.start(select_device("cpu"))
    if d.rank == 1:
        time.sleep(300)
    d.barrier("a barrier rank 1 never enters")


@pytest.mark.slow
def test_stuck_rank_times_out(backend_name):
    """A rank that skips a collective: the other one stops after $YOLOV5_DDP_TIMEOUT with a message, the job ends."""
    env = launch_env(backend_name, YOLOV5_DDP_TIMEOUT="5")
    rc, out, secs = run_launcher(launch_cmd(backend_name, 2, free_port(), "tests/test_ddp.py", "stall"), env,
                                 timeout=120)
    print(f"{backend_name}: stuck job ended with {rc} after {secs:.1f} s")
    assert rc != 0 and secs < 60
    assert re.search("waited more than 5 s|timed out|Timeout|timeout", out), out[-3000:]


def _raise_worker(failing_rank):
    """Launched: ``failing_rank`` raises (as a failed validation would) while the other waits in a collective."""
    from utils import dist
    d = dist.preflight()

    def main():
        from utils.backend import select_device
        d.start(select_device("cpu"))
        if d.rank == failing_rank:
            raise RuntimeError(f"rank {d.rank} failed on purpose")
        d.broadcast_flag(False, "rank 0 validating")

    dist.call_main(main)


@pytest.mark.slow
@pytest.mark.parametrize("failing_rank", [0, 1])
def test_exception_on_one_rank_ends_the_job(backend_name, failing_rank):
    """An exception on one rank must end the job (OneFlow's normal exit would wait for the blocked peer forever)."""
    rc, out, secs = run_launcher(launch_cmd(backend_name, 2, free_port(), "tests/test_ddp.py", "raise", failing_rank),
                                 launch_env(backend_name), timeout=120)
    assert rc != 0 and secs < 60
    assert f"rank {failing_rank} failed on purpose" in out and f"DDP rank {failing_rank} failed" in out


if __name__ == "__main__":
    if sys.argv[1:2] == ["grad"]:
        _grad_worker(*sys.argv[2:4])
    elif sys.argv[1:2] == ["stall"]:
        _stall_worker()
    elif sys.argv[1:2] == ["raise"]:
        _raise_worker(int(sys.argv[2]))
