"""create_dataloader: the detection dataset plus its loader (sampler, workers, seeding), as train.py/val.py use it."""

import os
import random

import numpy as np

from utils.backend import DataLoader, DistributedSampler, cuda_available, cuda_device_count, data_generator, torch
from utils.data.datasets import LoadImagesAndLabels
from utils.log import LOGGER

PIN_MEMORY = str(os.getenv("PIN_MEMORY", True)).lower() == "true"  # used only where CUDA is present
SEED_BASE = 6148914691236517205  # ultralytics' generator offset, kept so shuffles match it for equal seeds


class _RepeatSampler:
    """A batch sampler that starts over forever, so the loader's iterator (and its workers) never ends.

    A DistributedSampler inside moves to the next epoch after each pass unless set_epoch() already did: worker
    prefetching may start a pass before the trainer's set_epoch() call, and every pass must still get a new shard
    permutation (the same one on every rank, since all ranks pass in step).
    """

    def __init__(self, sampler):
        self.sampler = sampler

    def __iter__(self):
        inner = getattr(self.sampler, "sampler", None)
        while True:
            epoch = getattr(inner, "epoch", None)
            yield from iter(self.sampler)
            if epoch is not None and inner.epoch == epoch:
                inner.set_epoch(epoch + 1)


class InfiniteDataLoader(DataLoader):
    """A DataLoader whose worker processes live across epochs (no re-spawn each epoch); same arguments.

    One iterator over an endless batch sampler is made once; each ``iter(loader)`` yields ``len(loader)`` batches of
    it, so an epoch is exactly one pass of the underlying sampler.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "batch_sampler", _RepeatSampler(self.batch_sampler))
        self.iterator = super().__iter__()

    def __len__(self):
        return len(self.batch_sampler.sampler)

    def __iter__(self):
        for _ in range(len(self)):
            yield next(self.iterator)


def seed_worker(worker_id):
    """worker_init_fn: seed numpy and random from the framework's per-worker seed (distinct, reproducible).

    Workers also leave the trainer's process group: a terminal's Ctrl-C or a `kill` of the group reaches the trainer
    alone, which stops at a safe point; the workers end with it (at its exit, or when they see it gone).
    """
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)


def num_workers(batch_size, workers, n_devices=None):
    """min(cpus per device, batch size (0 for batch 1), requested workers), as ultralytics."""
    nd = cuda_device_count() if n_devices is None else n_devices
    return min((os.cpu_count() or 1) // max(nd, 1), batch_size if batch_size > 1 else 0, workers)


def build_loader(dataset, batch_size, rank=-1, workers=8, shuffle=False, seed=0, world_size=None, collate_fn=None,
                 infinite=True, prefix=""):
    """The loader of any task's dataset, as ultralytics builds it: batch capped at the dataset size, a
    DistributedSampler under DDP, workers from the CPU count, a seeded generator, worker seeding.

    Args:
        dataset: the Dataset. batch_size: per-process batch. rank: DDP rank (-1: single process); otherwise a
            DistributedSampler over ``world_size`` shards (default: $WORLD_SIZE) on this rank.
        workers: upper bound on worker processes. shuffle, seed: sampling order (``seed`` is added to ultralytics'
            generator seed, so 0 gives its order on PyTorch). collate_fn: the batch collation (None: default).
        infinite: an InfiniteDataLoader (workers kept across epochs) rather than a DataLoader.
    """
    batch_size = min(batch_size, len(dataset))
    sampler, n_procs = None, None
    if rank != -1:  # replicas and rank given explicitly: no process group needed to build it
        replicas = int(world_size or os.getenv("WORLD_SIZE", 1))
        sampler = DistributedSampler(dataset, num_replicas=replicas, rank=rank, shuffle=shuffle, seed=seed)
        # CPU DDP: each process is a "device" sharing the cores (workers per process = cores / processes)
        n_procs = max(cuda_device_count(), int(os.getenv("LOCAL_WORLD_SIZE") or replicas))
    nw = num_workers(batch_size, workers, n_devices=n_procs)
    loader_cls = InfiniteDataLoader if infinite else DataLoader
    kwargs = dict(batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                  pin_memory=PIN_MEMORY and cuda_available(),  # pinning needs CUDA (OneFlow aborts without it)
                  worker_init_fn=seed_worker, generator=data_generator(SEED_BASE + seed + rank))
    if collate_fn is not None:
        kwargs["collate_fn"] = collate_fn
    try:
        return loader_cls(dataset, num_workers=nw, **kwargs)
    except (OSError, RuntimeError) as e:  # e.g. no /dev/shm or process limits: load in this process instead
        if nw == 0:
            raise
        LOGGER.warning(f"{prefix}WARNING ⚠️ {nw} dataloader worker processes could not start ({e}); "
                       f"loading data in the main process (workers=0)")
        kwargs["generator"] = data_generator(SEED_BASE + seed + rank)
        return loader_cls(dataset, num_workers=0, **kwargs)


def create_dataloader(path, imgsz, batch_size, stride, single_cls=False, hyp=None, augment=False, cache=False,
                      pad=0.0, rect=False, rank=-1, workers=8, image_weights=False, quad=False, prefix="",
                      shuffle=False, seed=0, world_size=None, dataset_cls=None, dataset_kwargs=None):
    """Build LoadImagesAndLabels (or ``dataset_cls``) on ``path`` and its loader.

    Args:
        path: image dir / .txt list / list of those. imgsz: image size. batch_size: per-process batch.
        stride: model stride (rect shapes). hyp: augmentation hyperparameters (needed when ``augment``).
        cache: False | 'ram' | 'disk'. pad: rect padding in strides. rect: rectangular batches (disables shuffle).
        rank: DDP rank (-1: single process); a DistributedSampler is used otherwise, over ``world_size`` shards
        (default: $WORLD_SIZE). Each rank then loads ``batch_size`` images per step from its own shard.
        workers: upper bound on loader worker processes. image_weights: plain DataLoader so ``dataset.indices``
        updates reach each epoch. quad: collate 4 images into 1 (collate_fn4). shuffle, seed: sampling order.
        dataset_cls: a LoadImagesAndLabels subclass for another task (its collate_fn / collate_fn4 are used);
        dataset_kwargs: extra keyword arguments of its constructor (e.g. the segmentation mask options).
    Returns:
        (loader, dataset); batches are utils.data.batch.DetectionBatch (images uint8 (b, 3, h, w), targets (n, 6),
        paths, shapes), or the record of ``dataset_cls``'s collate (segmentation: MaskBatch).
    """
    dataset_cls = dataset_cls or LoadImagesAndLabels
    if rect and shuffle:
        LOGGER.warning("WARNING ⚠️ --rect is incompatible with DataLoader shuffle, setting shuffle=False")
        shuffle = False
    # Under DDP the trainer builds this on rank 0 first (Dist.zero_first), so one rank writes the labels cache.
    dataset = dataset_cls(path, imgsz, batch_size, augment=augment, hyp=hyp, rect=rect, cache_images=cache,
                          single_cls=single_cls, stride=int(stride), pad=pad, image_weights=image_weights,
                          prefix=prefix, workers=workers, rank=rank, **(dataset_kwargs or {}))
    loader = build_loader(dataset, batch_size, rank=rank, workers=workers, shuffle=shuffle, seed=seed,
                          world_size=world_size, collate_fn=dataset_cls.collate_fn4 if quad else dataset_cls.collate_fn,
                          infinite=not image_weights, prefix=prefix)
    return loader, dataset
