"""DISTRIBUTED (DDP): the framework calls behind utils/dist.py, which owns rank/world logic, checks and the watchdog.

Part of the backend package (it may import oneflow / torch).
  OneFlow: the launcher's RANK/WORLD_SIZE/MASTER_* are read inside `import oneflow`, which already joins the group
           (it blocks until every rank has started); there is no init_process_group. Collectives are oneflow.comm.*,
           DDP returns the module itself with gradient hooks (no `.module`), SyncBatchNorm refuses CPU tensors, and
           oneflow.cuda.synchronize() under DDP can hang (one-yolov5#47), so cuda_synchronize() skips it there.
  PyTorch: init_process_group (nccl on CUDA, gloo on the CPU) with a timeout on every collective; DDP wraps.
"""

import os
from datetime import timedelta

from utils.backend import IS_ONEFLOW, nn, torch

def dist_init(device, timeout_s=10800):
    """Join the launcher's process group on ``device``; returns (rank, world_size, local_world_size) as reported by
    the framework (torchrun sets LOCAL_WORLD_SIZE; OneFlow derives it from its node count)."""
    cuda = str(device).startswith("cuda")
    if IS_ONEFLOW:
        if cuda:
            torch.cuda.set_device(torch.device(device).index or 0)
        env = torch.env
        return env.get_rank(), env.get_world_size(), env.get_world_size() // max(env.get_node_size(), 1)
    dist = torch.distributed
    if not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s))
    world = dist.get_world_size()
    return dist.get_rank(), world, int(os.environ.get("LOCAL_WORLD_SIZE", world))


def dist_close():
    """Leave the process group (PyTorch); OneFlow's ends with the process."""
    if not IS_ONEFLOW and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def dist_barrier():
    if IS_ONEFLOW:
        torch.comm.barrier()
    else:
        torch.distributed.barrier()


def dist_broadcast_(tensor, src=0):
    """Overwrite ``tensor`` in place with rank ``src``'s (same shape and dtype on every rank)."""
    if IS_ONEFLOW:
        torch.comm.broadcast(tensor, src)
    else:
        torch.distributed.broadcast(tensor, src)
    return tensor


def dist_all_reduce_(tensor):
    """Sum ``tensor`` over all ranks, in place."""
    if IS_ONEFLOW:
        torch.comm.all_reduce(tensor)
    else:
        torch.distributed.all_reduce(tensor)
    return tensor


def dist_all_gather(tensor, world_size):
    """[rank 0's tensor, rank 1's, ...] (same shape and dtype on every rank)."""
    out = [torch.zeros_like(tensor) for _ in range(world_size)]
    if IS_ONEFLOW:
        torch.comm.all_gather(out, tensor)
    else:
        torch.distributed.all_gather(out, tensor)
    return out


def ddp_wrap(model, device):
    """DistributedDataParallel of ``model`` (parameters broadcast from rank 0; gradients averaged in backward).

    OneFlow returns ``model`` itself with hooks attached: never deepcopy it afterwards (one-yolov5#47, OneFlow#9538);
    de_parallel() gives the bare module on both frameworks. OneFlow's hook accepts a tensor or a flat list/tuple of
    tensors only, while a segmentation model trains with ([maps per level], prototypes): a hook before it flattens
    nested outputs and one after it restores their structure.
    """
    if IS_ONEFLOW and not str(device).startswith("cuda"):
        return _average_at_step(model)
    if IS_ONEFLOW:
        spec = []
        model.register_forward_hook(lambda m, inputs, out: _flatten(out, spec))
        model = nn.parallel.DistributedDataParallel(model)
        model.register_forward_hook(lambda m, inputs, out: _unflatten(out, spec))
        return model
    cuda = str(device).startswith("cuda")
    ids = [torch.device(device).index] if cuda else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None)


def _average_at_step(model):
    """OneFlow on the CPU: ``model`` itself, its parameters broadcast from rank 0, marked so that
    ``average_gradients`` averages its gradients over the ranks once per optimizer step.

    OneFlow's DDP hooks all-reduce every bucket of 10 gradients during each backward: 18 collectives per batch for
    yolov5n, each a rendezvous of the two ranks' VM and communication threads. On a 2-core machine that made each
    rank's step (batch 8, 128 px) 525-670 ms against 350-390 ms for two independent processes; one all-reduce of
    all gradients before the optimizer step brings it to ~400 ms. The update is the same: DDP sums per-batch averages
    over the accumulated batches, this averages the accumulated sums (equal up to float rounding). BatchNorm buffers
    are not broadcast: rank 0, whose model the EMA follows and the checkpoints hold, would receive its own values.
    """
    with torch.no_grad():
        for p in model.parameters():
            requires_grad = p.requires_grad
            torch._C.comm_broadcast(p, inplace=True)
            p.requires_grad_(requires_grad)  # comm_broadcast drops it (OneFlow 0.9.0)
    model._average_gradients_at_step = True
    return model


def average_gradients(model):
    """Before an optimizer step: the mean over the ranks of every parameter's gradient (models from
    ``_average_at_step``; a no-op for DDP-wrapped ones, whose hooks already did it, and outside DDP). One all-reduce
    of all gradients flattened; a missing gradient counts as zeros, so every rank sends the same shape."""
    if not getattr(model, "_average_gradients_at_step", False):
        return
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.no_grad():
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        torch.comm.all_reduce(flat)
        flat.mul_(1.0 / torch.env.get_world_size())
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset:offset + n].view(p.grad.shape))
            offset += n


def _nested(out):
    return isinstance(out, (list, tuple)) and any(isinstance(x, (list, tuple)) for x in out)


def _flatten(out, spec):
    """Nested lists/tuples of tensors -> a flat tuple; ``spec`` (cleared and refilled) records how to rebuild them."""
    spec.clear()
    if not _nested(out):
        return out
    spec.append([(type(x), len(x)) if isinstance(x, (list, tuple)) else (None, 1) for x in out])
    spec.append(type(out))
    return tuple(t for x in out for t in (x if isinstance(x, (list, tuple)) else [x]))


def _unflatten(out, spec):
    if not spec:
        return out
    items, rebuilt, i = list(out), [], 0
    for kind, n in spec[0]:
        rebuilt.append(items[i] if kind is None else kind(items[i:i + n]))
        i += n
    return spec[1](rebuilt)


def is_ddp_wrapped(model):
    if IS_ONEFLOW:
        return bool(getattr(model, "_is_ddp_module", False) or getattr(model, "_average_gradients_at_step", False))
    return isinstance(model, nn.parallel.DistributedDataParallel)


def sync_bn_supported(device):
    """SyncBatchNorm works on CUDA only: OneFlow refuses CPU tensors, PyTorch raises for CPU inputs in training."""
    return str(device).startswith("cuda") and hasattr(nn, "SyncBatchNorm")


def convert_sync_batchnorm(model):
    """Every BatchNorm*d of ``model`` as SyncBatchNorm (same parameters and buffers); call before ddp_wrap()."""
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)
