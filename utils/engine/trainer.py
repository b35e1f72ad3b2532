"""Detection training, as ultralytics YOLOv5 v7.0 trains (FACTS.md 6.3), on either backend.

``DetectionTrainer(opt, hyp, callbacks).fit()`` runs the whole recipe: data, model (scratch / pretrained / resume),
AutoAnchor, optimizer groups, warmup + LambdaLR-equivalent schedule, nominal-batch accumulation, gradient clipping,
EMA, per-epoch validation on the EMA model, fitness, results.csv, last/best checkpoints, early stopping, final
validation of best.pt. ``opt`` is the argparse Namespace of train.py and stops here: library calls get explicit
arguments.

Under DDP (``dist``: utils.dist.Dist of a launched process) every rank trains on its shard with batch/WORLD_SIZE
images; rank 0 alone writes files, logs, validates and keeps the EMA; the other ranks meet it at collectives only
(AutoAnchor result, stop flags, the final barrier), so no rank ever skips a collective the others enter.
"""

import math
import os
import random
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from models.experimental import attempt_load, model_to_dict, read_weights
from models.yolo import DetectionModel
from utils import backend, checkpoint
from utils.autoanchor import check_anchors
from utils.backend import (GradScaler, autocast, clip_grad_norm_, cuda_memory_reserved_gb, from_numpy,
                           load_optimizer_state, optimizer_state, to_numpy, torch)
from utils.callbacks import Callbacks
from utils.cli import check_img_size
from utils.dist import Dist
from utils.log import LOGGER, colorstr
from utils.loss import ComputeLoss
from utils.torch_utils import EarlyStopping, ModelEMA, de_parallel, init_seeds, one_cycle, smart_optimizer

TQDM_BAR_FORMAT = "{l_bar}{bar:10}{r_bar}"
RESULT_KEYS = ("train/box_loss", "train/obj_loss", "train/cls_loss", "metrics/precision", "metrics/recall",
               "metrics/mAP_0.5", "metrics/mAP_0.5:0.95", "val/box_loss", "val/obj_loss", "val/cls_loss",
               "x/lr0", "x/lr1", "x/lr2")


def fitness(x):
    """0.1 * mAP@0.5 + 0.9 * mAP@0.5:0.95 of [P, R, mAP@0.5, mAP@0.5:0.95] rows."""
    w = np.array([0.0, 0.0, 0.1, 0.9])
    return (np.asarray(x)[:, :4] * w).sum(1)


def labels_to_class_weights(labels, nc=80):
    """Inverse class frequency of a list of (n, 5) label arrays, normalised to sum 1 (empty classes count as 1)."""
    if not len(labels) or not sum(len(lb) for lb in labels):
        return np.ones(nc, np.float32) / nc
    classes = np.concatenate(labels, 0)[:, 0].astype(int)
    weights = np.bincount(classes, minlength=nc).astype(np.float64)
    weights[weights == 0] = 1
    weights = 1 / weights
    return (weights / weights.sum()).astype(np.float32)


def labels_to_image_weights(labels, nc=80, class_weights=np.ones(80)):
    """Per-image sampling weight: sum of the class weights of its labels."""
    counts = np.array([np.bincount(lb[:, 0].astype(int), minlength=nc) for lb in labels])
    return (class_weights.reshape(1, nc) * counts).sum(1)


def plain(obj):
    """opt/hyp values made plain data for YAML and checkpoints (paths -> str, numpy scalars -> numbers)."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def write_results_csv(file, epoch, values):
    """Add the row of ``epoch`` to results.csv with ultralytics' layout (right-aligned %20 columns).

    Rows of this epoch or later ones (left by a run killed after its CSV row but before its checkpoint, then resumed
    from the previous epoch) and a torn last line are dropped, so the file always holds one row per finished epoch.
    The file is replaced atomically.
    """
    file, keys = Path(file), ["epoch", *RESULT_KEYS]

    def kept(line):
        cells = line.split(",")
        try:
            return len(cells) == len(keys) and float(cells[0]) < epoch
        except ValueError:
            return False

    rows = [ln for ln in file.read_text().splitlines()[1:] if kept(ln)] if file.exists() else []
    header = ("%20s," * len(keys) % tuple(keys)).rstrip(",")
    row = ("%20.5g," * len(keys) % tuple([epoch, *values])).rstrip(",")
    tmp = file.with_name(f".{file.name}.tmp")
    tmp.write_text("\n".join([header, *rows, row]) + "\n")
    os.replace(tmp, file)


class DetectionTrainer:
    """One training run. Build it with train.py's opt, a hyp dict and Callbacks; call fit()."""

    def __init__(self, opt, hyp, callbacks=None, device=None, dist=None):
        self.opt = opt
        self.hyp = dict(hyp)
        self.dist = dist or Dist()
        self.callbacks = (callbacks or Callbacks()) if self.dist.main else Callbacks()  # loggers live on rank 0
        self.device = device if device is not None else backend.select_device(opt.device, opt.batch_size)
        self.save_dir = Path(opt.save_dir)
        self.wdir = self.save_dir / "weights"
        self.last, self.best = self.wdir / "last.pt", self.wdir / "best.pt"
        self.epochs, self.batch_size = opt.epochs, opt.batch_size  # batch_size: the total over all processes
        self.local_batch_size = opt.batch_size // self.dist.world_size
        self.plots = not opt.evolve and not opt.noplots and self.dist.main
        self.ema = None

    # ------------------------------------------------------------------------------------------------------- setup
    def setup(self):
        opt, hyp = self.opt, self.hyp
        self.callbacks.run("on_pretrain_routine_start")
        LOGGER.info(colorstr("hyperparameters: ") + ", ".join(f"{k}={v}" for k, v in hyp.items()))
        opt.hyp = dict(hyp)  # the unscaled hyps travel in opt.yaml and the checkpoint, as ultralytics
        if self.dist.main:
            self.wdir.mkdir(parents=True, exist_ok=True)
            if not opt.evolve:
                with open(self.save_dir / "hyp.yaml", "w") as f:
                    yaml.safe_dump(plain(hyp), f, sort_keys=False)
                with open(self.save_dir / "opt.yaml", "w") as f:
                    yaml.safe_dump(plain(vars(opt)), f, sort_keys=False)
        init_seeds(opt.seed + 1 + max(self.dist.rank, 0), deterministic=True)  # per-rank augmentation streams
        from utils.data.dataset_yaml import check_dataset  # noqa: PLC0415
        self.data_dict = check_dataset(opt.data)
        self.nc = 1 if opt.single_cls else int(self.data_dict["nc"])
        names = self.data_dict["names"]
        self.names = {0: "item"} if opt.single_cls and len(names) != 1 else names
        self.is_coco = str(self.data_dict.get("val", "")).endswith("coco/val2017.txt")
        self.build_model()
        self.build_dataloaders()
        self.build_optimizer()
        self.resume_state()
        if not opt.resume and self.dist.main:
            if not opt.noautoanchor:
                check_anchors(self.dataset, model=self.model, thr=hyp["anchor_t"], imgsz=self.imgsz)
            self.plot_labels()
        self.dist.broadcast_state(self.model)  # rank 0's weights and (AutoAnchor) anchors on every rank
        self.callbacks.run("on_pretrain_routine_end", self.labels, self.names)
        nl = de_parallel(self.model).model[-1].nl
        hyp["box"] *= 3 / nl
        hyp["cls"] *= self.nc / 80 * 3 / nl
        hyp["obj"] *= (self.imgsz / 640) ** 2 * 3 / nl
        hyp["label_smoothing"] = opt.label_smoothing
        m = de_parallel(self.model)
        m.nc, m.hyp, m.names = self.nc, hyp, self.names
        m.class_weights = from_numpy(labels_to_class_weights(self.dataset.labels, self.nc) * self.nc,
                                     device=self.device)
        self.compute_loss = ComputeLoss(self.model, hyp)
        self.model = self.dist.wrap(self.model, sync_bn=opt.sync_bn, log=LOGGER.info)  # after the EMA deepcopy

    def build_model(self):
        opt, hyp = self.opt, self.hyp
        weights = str(opt.weights or "")
        self.ckpt = None
        if weights.endswith(".pt"):
            from utils.downloads import attempt_download  # noqa: PLC0415
            self.ckpt, rec, _ = read_weights(attempt_download(weights), prefer_ema=False)
            model = DetectionModel(opt.cfg or rec["yaml"], ch=3, nc=self.nc, anchors=hyp.get("anchors"))
            exclude = ["anchor"] if (opt.cfg or hyp.get("anchors")) and not opt.resume else []
            own = model.state_dict()
            csd = {k: v for k, v in rec["state"].items()
                   if k in own and not any(x in k for x in exclude) and tuple(v.shape) == tuple(own[k].shape)}
            model.load_state_dict({k: from_numpy(np.asarray(v, np.float32) if v.dtype.kind == "f" else v,
                                                 dtype=own[k].dtype) for k, v in csd.items()}, strict=False)
            LOGGER.info(f"Transferred {len(csd)}/{len(own)} items from {weights}")
        else:
            if not opt.cfg:
                raise ValueError("--cfg is required when training from scratch (--weights '')")
            model = DetectionModel(opt.cfg, ch=3, nc=self.nc, anchors=hyp.get("anchors"))
        model = model.to(self.device)
        freeze = [f"model.{x}." for x in (opt.freeze if len(opt.freeze) > 1 else range(opt.freeze[0]))]
        for k, v in model.named_parameters():
            v.requires_grad_(True)
            if any(x in k for x in freeze):
                LOGGER.info(f"freezing {k}")
                v.requires_grad_(False)
        self.model = model
        self.gs = max(int(model.stride.max()), 32)
        self.imgsz = check_img_size(opt.imgsz, self.gs, floor=self.gs * 2)
        self.amp = bool(getattr(opt, "amp", True)) and backend.amp_supported(self.device)

    def build_dataloaders(self):
        opt, hyp = self.opt, self.hyp
        from utils.data.build import create_dataloader  # noqa: PLC0415
        with self.dist.zero_first():  # rank 0 writes the labels cache; the others read it
            self.train_loader, self.dataset = create_dataloader(
                self.data_dict["train"], self.imgsz, self.local_batch_size, self.gs, opt.single_cls, hyp=hyp,
                augment=True, cache=None if opt.cache == "val" else opt.cache, rect=opt.rect, rank=self.dist.rank,
                world_size=self.dist.world_size, workers=opt.workers, image_weights=opt.image_weights, quad=opt.quad,
                prefix=colorstr("train: "), shuffle=True, seed=opt.seed)
        self.labels = np.concatenate(self.dataset.labels, 0) if len(self.dataset.labels) else np.zeros((0, 5))
        if len(self.labels) and int(self.labels[:, 0].max()) >= self.nc:
            raise ValueError(f"Label class {int(self.labels[:, 0].max())} exceeds nc={self.nc} in {opt.data}. "
                             f"Possible class labels are 0-{self.nc - 1}")
        if self.dist.main:  # validation runs on rank 0 only
            self.val_loader = create_dataloader(
                self.data_dict["val"], self.imgsz, self.local_batch_size * 2, self.gs, opt.single_cls, hyp=hyp,
                cache=None if opt.noval else opt.cache, rect=True, rank=-1, workers=opt.workers * 2, pad=0.5,
                prefix=colorstr("val: "))[0]

    def build_optimizer(self):
        opt, hyp = self.opt, self.hyp
        nbs = 64  # nominal batch size
        self.nbs = nbs
        self.accumulate = max(round(nbs / self.batch_size), 1)
        hyp["weight_decay"] *= self.batch_size * self.accumulate / nbs
        self.optimizer = smart_optimizer(self.model, opt.optimizer, hyp["lr0"], hyp["momentum"], hyp["weight_decay"])
        for g in self.optimizer.param_groups:
            g["initial_lr"] = g["lr"]
        self.lf = one_cycle(1, hyp["lrf"], self.epochs) if opt.cos_lr else (
            lambda x: (1 - x / self.epochs) * (1.0 - hyp["lrf"]) + hyp["lrf"])
        self.ema = ModelEMA(self.model) if self.dist.main else None  # before DDP wrapping (no deepcopy after)
        self.best_fitness, self.start_epoch = 0.0, 0

    def resume_state(self):
        """Optimizer, EMA, best fitness and epoch from the checkpoint when resuming (ultralytics' smart_resume)."""
        ckpt, opt = self.ckpt, self.opt
        if not (opt.resume and ckpt):
            return
        if ckpt.get("optimizer") is not None and not load_optimizer_state(self.optimizer, ckpt["optimizer"]):
            LOGGER.warning("WARNING ⚠️ optimizer state was saved by another backend; it restarts fresh")
        self.best_fitness = float(ckpt.get("best_fitness") or 0.0)
        if ckpt.get("ema") is not None and self.ema is not None:
            ema_state = ckpt["ema"]["state_dict"]
            own = self.ema.ema.state_dict()
            self.ema.ema.load_state_dict({k: from_numpy(ema_state[k], dtype=v.dtype) for k, v in own.items()})
            self.ema.updates = int(ckpt.get("updates") or 0)
        self.start_epoch = int(ckpt["epoch"]) + 1
        if self.start_epoch <= 0:
            raise ValueError(f"{opt.weights} training to {self.epochs} epochs is finished, nothing to resume.\n"
                             f"Start a new training without --resume, i.e. 'python train.py --weights {opt.weights}'")
        LOGGER.info(f"Resuming training from {opt.weights} from epoch {self.start_epoch} to {self.epochs} total epochs")

    # ----------------------------------------------------------------------------------------------------- the loop
    def fit(self):
        self.setup()
        opt = self.opt
        self.nb = len(self.train_loader)
        self.nw = max(round(self.hyp["warmup_epochs"] * self.nb), 100)
        self.last_opt_step = -1
        self.maps = np.zeros(self.nc)
        self.results = (0, 0, 0, 0, 0, 0, 0)
        self.scaler = GradScaler(enabled=self.amp)
        self.stopper, stop = EarlyStopping(patience=opt.patience), False
        self.t0 = time.time()
        self.callbacks.run("on_train_start")
        LOGGER.info(f"Image sizes {self.imgsz} train, {self.imgsz} val\n"
                    f"Using {self.train_loader.num_workers} dataloader workers\n"
                    f"Logging results to {colorstr('bold', self.save_dir)}\n"
                    f"Starting training for {self.epochs} epochs...")
        epoch = self.start_epoch - 1
        for epoch in range(self.start_epoch, self.epochs):
            self.callbacks.run("on_train_epoch_start")
            mloss = self.train_one_epoch(epoch)
            if self.callbacks.stop_training:
                break
            stop = self.end_epoch(epoch, mloss)
            if stop:
                break
        self.dist.barrier("end of training")  # past this point ranks may exit independently
        if self.dist.watchdog:
            self.dist.watchdog.stop()
        return self.finish(epoch) if self.dist.main else self.results

    def set_epoch_lr(self, epoch):
        """LambdaLR-equivalent: lr = initial_lr * lf(epoch) for every group, set at the start of each epoch."""
        for g in self.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * self.lf(epoch)

    def warmup(self, ni, epoch):
        xi = [0, self.nw]
        self.accumulate = max(1, np.interp(ni, xi, [1, self.nbs / self.batch_size]).round())
        for j, g in enumerate(self.optimizer.param_groups):
            g["lr"] = np.interp(ni, xi, [self.hyp["warmup_bias_lr"] if j == 0 else 0.0, g["initial_lr"] * self.lf(epoch)])
            if "momentum" in g:
                g["momentum"] = np.interp(ni, xi, [self.hyp["warmup_momentum"], self.hyp["momentum"]])

    def train_one_epoch(self, epoch):
        opt = self.opt
        self.model.train()
        self.set_epoch_lr(epoch)
        if opt.image_weights:
            cw = to_numpy(de_parallel(self.model).class_weights) * (1 - self.maps) ** 2 / self.nc
            iw = labels_to_image_weights(self.dataset.labels, nc=self.nc, class_weights=cw)
            self.dataset.indices = random.choices(range(self.dataset.n), weights=iw, k=self.dataset.n)
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # DDP: a new shard permutation every epoch, the same on every rank
            sampler.set_epoch(epoch)
        mloss = np.zeros(3)
        LOGGER.info(("\n" + "%11s" * 7) % ("Epoch", "GPU_mem", "box_loss", "obj_loss", "cls_loss", "Instances", "Size"))
        pbar = tqdm(enumerate(self.train_loader), total=self.nb, bar_format=TQDM_BAR_FORMAT, disable=not self.dist.main)
        self.optimizer.zero_grad()
        for i, (imgs, targets, paths, _) in pbar:
            self.callbacks.run("on_train_batch_start")
            ni = i + self.nb * epoch
            imgs = imgs.to(self.device).float() / 255
            if ni <= self.nw:
                self.warmup(ni, epoch)
            if opt.multi_scale:
                imgs = self.multi_scale(imgs)
            with self.dist.waiting("training step (gradient all-reduce)"):
                loss, loss_items = self.forward_loss(imgs, targets)
                self.scaler.scale(loss).backward()
            if ni - self.last_opt_step >= self.accumulate:
                self.optimizer_step()
                self.last_opt_step = ni
            mloss = (mloss * i + to_numpy(loss_items)) / (i + 1)
            mem = f"{cuda_memory_reserved_gb():.3g}G"
            pbar.set_description(("%11s" * 2 + "%11.4g" * 5) %
                                 (f"{epoch}/{self.epochs - 1}", mem, *mloss, targets.shape[0], imgs.shape[-1]))
            self.callbacks.run("on_train_batch_end", self.model, ni, imgs, targets, paths, list(mloss))
            if self.plots and ni < 3:
                self.plot_batch(imgs, targets, paths, self.save_dir / f"train_batch{ni}.jpg")
            if self.dist.ddp:  # callbacks run on rank 0 only: its stop request must reach every rank
                self.callbacks.stop_training = self.dist.broadcast_flag(self.callbacks.stop_training)
            if self.callbacks.stop_training:
                break
        self.lr = [float(g["lr"]) for g in self.optimizer.param_groups]
        return mloss

    def forward_loss(self, imgs, targets):
        """(loss to backpropagate, detached (box, obj, cls) items) of one batch of float images in 0-1.

        Under DDP the loss is multiplied by WORLD_SIZE because DDP averages gradients over ranks: the step then equals
        a single process's on the whole batch (exactly when BatchNorm statistics and loss normalisers agree).
        """
        with autocast(self.amp):
            pred = self.model(imgs)
            loss, loss_items = self.compute_loss(pred, targets.to(self.device))
            if self.opt.quad:
                loss = loss * 4.0
            if self.dist.ddp:
                loss = loss * self.dist.world_size
        return loss, loss_items

    def optimizer_step(self):
        self.scaler.unscale_(self.optimizer)
        clip_grad_norm_(self.model.parameters(), max_norm=10.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        if self.ema is not None:
            self.ema.update(self.model)

    def multi_scale(self, imgs):
        sz = random.randrange(int(self.imgsz * 0.5), int(self.imgsz * 1.5) + self.gs) // self.gs * self.gs
        sf = sz / max(imgs.shape[2:])
        if sf != 1:
            ns = [math.ceil(x * sf / self.gs) * self.gs for x in imgs.shape[2:]]
            imgs = torch.nn.functional.interpolate(imgs, size=ns, mode="bilinear", align_corners=False)
        return imgs

    def end_epoch(self, epoch, mloss):
        """Rank 0 validates, logs and saves; every rank then takes rank 0's early-stop decision."""
        stop = self.end_epoch_main(epoch, mloss) if self.dist.main else False
        return self.dist.broadcast_flag(stop, "rank 0 validating/saving (early-stop flag)")

    def end_epoch_main(self, epoch, mloss):
        opt = self.opt
        self.callbacks.run("on_train_epoch_end", epoch=epoch)
        self.ema.update_attr(self.model, include=["yaml", "nc", "hyp", "names", "stride", "class_weights"])
        final_epoch = (epoch + 1 == self.epochs) or self.stopper.possible_stop
        if not opt.noval or final_epoch:
            self.results, self.maps, _ = self.validate(self.ema.ema)
        fi = float(fitness(np.array(self.results).reshape(1, -1))[0])
        stop = self.stopper(epoch=epoch, fitness=fi)
        if fi > self.best_fitness:
            self.best_fitness = fi
        log_vals = list(mloss) + list(self.results) + self.lr
        write_results_csv(self.save_dir / "results.csv", epoch, log_vals)
        self.callbacks.run("on_fit_epoch_end", log_vals, epoch, self.best_fitness, fi)
        if (not opt.nosave) or (final_epoch and not opt.evolve):
            self.save_checkpoint(epoch, fi)
        return stop

    def validate(self, model, **kwargs):
        import val as validate  # noqa: PLC0415 (the validator lives with val.py)
        args = dict(batch_size=self.local_batch_size * 2, imgsz=self.imgsz, half=self.amp, model=model,
                    single_cls=self.opt.single_cls, dataloader=self.val_loader, save_dir=self.save_dir, plots=False,
                    callbacks=self.callbacks, compute_loss=self.compute_loss)
        return validate.run(self.data_dict, **{**args, **kwargs})

    def checkpoint_dict(self, epoch):
        return {
            "epoch": epoch,
            "best_fitness": float(self.best_fitness),
            "model": model_to_dict(de_parallel(self.model), half=False),
            "ema": model_to_dict(self.ema.ema, half=False),
            "updates": self.ema.updates,
            "optimizer": optimizer_state(self.optimizer),
            "opt": plain(vars(self.opt)),
            "hyp": plain(self.hyp),
            "git": {},
            "date": datetime.now().isoformat(),
            "versions": {"backend": backend.NAME, "framework": backend.VERSION, "format": "one-yolov5/1"},
        }

    def save_checkpoint(self, epoch, fi):
        ckpt = self.checkpoint_dict(epoch)
        checkpoint.write(ckpt, self.last)  # atomic: a crash never leaves a half-written last.pt
        if self.best_fitness == fi:
            checkpoint.write(ckpt, self.best)
        if self.opt.save_period > 0 and epoch % self.opt.save_period == 0:
            checkpoint.write(ckpt, self.wdir / f"epoch{epoch}.pt")
        self.callbacks.run("on_model_save", self.last, epoch, epoch + 1 == self.epochs, self.best_fitness, fi)

    def finish(self, epoch):
        LOGGER.info(f"\n{epoch - self.start_epoch + 1} epochs completed in {(time.time() - self.t0) / 3600:.3f} hours.")
        for f in self.last, self.best:
            if f.exists():
                strip_optimizer(f)
                if f is self.best:
                    LOGGER.info(f"\nValidating {f}...")
                    model = attempt_load(str(f), self.device)
                    self.results, _, _ = self.validate(model, iou_thres=0.65 if self.is_coco else 0.60,
                                                       save_json=self.is_coco, verbose=True, plots=self.plots)
        if self.plots:
            from utils.train_plots import plot_results  # noqa: PLC0415
            plot_results(file=self.save_dir / "results.csv")
        LOGGER.info(f"Results saved to {colorstr('bold', self.save_dir)}")
        self.callbacks.run("on_train_end", self.last, self.best, epoch, self.results)
        return self.results

    # ----------------------------------------------------------------------------------------------------- plots
    def plot_labels(self):
        if self.plots and len(self.labels):
            from utils.train_plots import plot_labels  # noqa: PLC0415
            plot_labels(self.labels, self.names, self.save_dir)

    def plot_batch(self, imgs, targets, paths, fname):
        from utils.plots import plot_images  # noqa: PLC0415
        plot_images(imgs, targets, paths, fname, self.names)


def strip_optimizer(f):
    """Finalise a checkpoint for release: EMA weights in FP16 as 'model'; optimizer, EMA and updates removed."""
    ckpt = checkpoint.read(f)
    src = ckpt.get("ema") or ckpt["model"]
    src = dict(src, state_dict={k: v.astype(np.float16) if v.dtype == np.float32 else v
                                for k, v in src["state_dict"].items()})
    ckpt.update(model=src, ema=None, optimizer=None, updates=None, best_fitness=None, epoch=-1)
    checkpoint.write(ckpt, f)
    mb = os.path.getsize(f) / 1e6
    LOGGER.info(f"Optimizer stripped from {f}, {mb:.1f}MB")
