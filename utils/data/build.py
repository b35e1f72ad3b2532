"""create_dataloader: the detection dataset plus its loader (sampler, workers, seeding), as train.py/val.py use it."""

import os
import random

import numpy as np

from utils.backend import DataLoader, DistributedSampler, cuda_available, cuda_device_count, data_generator, torch
from utils.data.datasets import LoadImagesAndLabels
from utils.log import LOGGER

PIN_MEMORY = str(os.getenv("PIN_MEMORY", True)).lower() == "true"  # used only where CUDA is present
_SEED_BASE = 6148914691236517205  # ultralytics' generator offset, kept so shuffles match it for equal seeds


class _RepeatSampler:
    """A batch sampler that starts over forever, so the loader's iterator (and its workers) never ends."""

    def __init__(self, sampler):
        self.sampler = sampler

    def __iter__(self):
        while True:
            yield from iter(self.sampler)


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
    """worker_init_fn: seed numpy and random from the framework's per-worker seed (distinct, reproducible)."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def num_workers(batch_size, workers, n_devices=None):
    """min(cpus per device, batch size (0 for batch 1), requested workers), as ultralytics."""
    nd = cuda_device_count() if n_devices is None else n_devices
    return min((os.cpu_count() or 1) // max(nd, 1), batch_size if batch_size > 1 else 0, workers)


def create_dataloader(path, imgsz, batch_size, stride, single_cls=False, hyp=None, augment=False, cache=False,
                      pad=0.0, rect=False, rank=-1, workers=8, image_weights=False, quad=False, prefix="",
                      shuffle=False, seed=0):
    """Build LoadImagesAndLabels on ``path`` and its loader.

    Args:
        path: image dir / .txt list / list of those. imgsz: image size. batch_size: per-process batch.
        stride: model stride (rect shapes). hyp: augmentation hyperparameters (needed when ``augment``).
        cache: False | 'ram' | 'disk'. pad: rect padding in strides. rect: rectangular batches (disables shuffle).
        rank: DDP rank (-1: single process); a DistributedSampler is used otherwise.
        workers: upper bound on loader worker processes. image_weights: plain DataLoader so ``dataset.indices``
        updates reach each epoch. quad: collate 4 images into 1 (collate_fn4). shuffle, seed: sampling order.
    Returns:
        (loader, dataset); batches are (images uint8 (b, 3, h, w), targets (n, 6), paths, shapes).
    """
    if rect and shuffle:
        LOGGER.warning("WARNING ⚠️ --rect is incompatible with DataLoader shuffle, setting shuffle=False")
        shuffle = False
    # Under DDP every rank may scan labels at once: the cache is written atomically, so the last writer wins intact.
    dataset = LoadImagesAndLabels(path, imgsz, batch_size, augment=augment, hyp=hyp, rect=rect,
                                  cache_images=cache, single_cls=single_cls, stride=int(stride), pad=pad,
                                  image_weights=image_weights, prefix=prefix, workers=workers)
    batch_size = min(batch_size, len(dataset))
    nw = num_workers(batch_size, workers)
    sampler = None
    if rank != -1:  # replicas and rank from the launcher's environment: no process group needed to build it
        sampler = DistributedSampler(dataset, num_replicas=int(os.getenv("WORLD_SIZE", 1)),
                                     rank=int(os.getenv("RANK", rank)), shuffle=shuffle)
    loader_cls = DataLoader if image_weights else InfiniteDataLoader
    generator = data_generator(_SEED_BASE + seed + int(os.getenv("RANK", -1)))
    kwargs = dict(batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                  pin_memory=PIN_MEMORY and cuda_available(),  # pinning needs CUDA (OneFlow aborts without it)
                  collate_fn=LoadImagesAndLabels.collate_fn4 if quad else LoadImagesAndLabels.collate_fn,
                  worker_init_fn=seed_worker, generator=generator)
    try:
        loader = loader_cls(dataset, num_workers=nw, **kwargs)
    except (OSError, RuntimeError) as e:  # e.g. no /dev/shm or process limits: load in this process instead
        if nw == 0:
            raise
        LOGGER.warning(f"{prefix}WARNING ⚠️ {nw} dataloader worker processes could not start ({e}); "
                       f"loading data in the main process (workers=0)")
        kwargs["generator"] = data_generator(_SEED_BASE + seed + int(os.getenv("RANK", -1)))
        loader = loader_cls(dataset, num_workers=0, **kwargs)
    return loader, dataset
