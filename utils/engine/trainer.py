"""The training loop every task shares (``BaseTrainer``); a task subclass supplies the hooks.

The base owns: device and DDP (utils.dist.Dist), seeding, the run folder (hyp.yaml, opt.yaml), optimizer parameter
groups, warmup and the per-epoch schedule, nominal-batch accumulation, AMP, gradient clipping, EMA, resume, atomic
checkpoints, results.csv, early stopping, callbacks (ultralytics' hook names), the progress bar and the plots at the
end. A task says what differs, through these hooks:

    load_data()              dataset description -> sets self.data, self.nc, self.names
    build_model()            the model from weights / YAML (self.ckpt: the checkpoint when resuming)
    build_dataloaders()      (train loader, val loader or None); self.dataset is the training dataset
    optimizer_settings()     (lr0, momentum, weight decay, nominal batch size); lr_lambda(): epoch -> lr factor
    warmup_iters(nb)         iterations of warmup (0: none)
    before_training()        steps before the first epoch (AutoAnchor, label plots); rank 0, not when resuming
    after_setup()            model attributes and loss settings once the data is known (hyp scaling, class weights)
    build_loss(), build_validator()
    preprocess_batch(raw)    the loader's batch record -> the same record, 'img' float 0-1 on the device
                             (utils/data/batch.py: Batch, DetectionBatch, MaskBatch)
    compute_loss(preds, batch) -> (loss to backpropagate, detached loss items)
    train_step(batch), build_train_graph()   forward + loss + backward of a batch (eager by default; detection's
                             uses the compiled step of --graph on OneFlow)
    start_message(), closing_message(), progress_header(), progress_row(epoch, mem, mloss, batch)
    validate(model, pbar=None) -> the validation values in results.csv order (after the training losses)
    fitness_rows(rows) (fitness of result rows; also for --evolve), lr_values(epoch), plot_batch(batch, ni),
    plot_metrics(), final_validation()
and these attributes: loss_names (train/val loss columns), metric_keys, lr_keys, ema_attrs, csv_width,
scale_loss_by_world, validate_on_last_batch; result_keys() gives the results.csv columns.

Under DDP (``dist``: a started utils.dist.Dist) every rank trains on its shard with batch/WORLD_SIZE images; rank 0
alone writes files, logs, validates and keeps the EMA; the other ranks meet it only at collectives (broadcast of the
model state, stop flags, the final barrier), so no rank skips a collective the others enter.
"""

import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
import yaml
from tqdm import tqdm

from models.experimental import model_to_dict, strip_optimizer
from utils import backend, checkpoint
from utils.checkpoint.writer import CheckpointWriteError
from utils.backend import (GradScaler, autocast, clip_grad_norm_, cuda_memory_reserved_gb, from_numpy, init_seeds,
                           load_optimizer_state, nn, optimizer_state)
from utils.autobatch import check_train_batch_size
from utils.callbacks import Callbacks
from utils.data.batch import AnyBatch, Tensor
from utils.dist import Dist
from utils.engine.config import plain
from utils.engine.interrupt import SignalStop, interrupted, script_name
from utils.engine.validator import Validator
from utils.errors import FlagError, report
from utils.log import LOGGER, TQDM_BAR_FORMAT, colorstr
from utils.backend.distributed import average_gradients
from utils.backend.fused import fused_paths
from utils.backend.graph import OptimizerStepGraph, ddp_graphs_hang, optimizer_step_note, train_step_note
from utils.model_tools import de_parallel
from utils.training import EarlyStopping, ModelEMA, smart_optimizer



def write_results_csv(file, keys, epoch, values, width=20):
    """Add the row of ``epoch`` to results.csv in ultralytics' layout (right-aligned columns of ``width`` characters,
    'epoch' first; ultralytics uses 20 for detection and segmentation, 23 for classification).

    Rows of this epoch or later (left by a run killed after its CSV row but before its checkpoint, then resumed from
    the previous epoch) and a torn last line are dropped, so the file holds one row per finished epoch. The file is
    replaced atomically.
    """
    file, keys = Path(file), ["epoch", *keys]

    def kept(line):
        cells = line.split(",")
        try:
            return len(cells) == len(keys) and float(cells[0]) < epoch
        except ValueError:
            return False

    rows = [ln for ln in file.read_text().splitlines()[1:] if kept(ln)] if file.exists() else []
    header = (f"%{width}s," * len(keys) % tuple(keys)).rstrip(",")
    row = (f"%{width}.5g," * len(keys) % tuple([epoch, *values])).rstrip(",")
    tmp = file.with_name(f".{file.name}.tmp")
    tmp.write_text("\n".join([header, *rows, row]) + "\n")
    os.replace(tmp, file)


class BaseTrainer:
    """One training run: ``Trainer(cfg, callbacks, device, dist).fit()``; see the module docstring for the hooks."""

    loss_names = ()  # e.g. ("box_loss", "obj_loss", "cls_loss"): train/<name> and val/<name> columns
    metric_keys = ()  # results.csv metric columns, in the order validate() returns them
    lr_keys = ("x/lr0", "x/lr1", "x/lr2")
    ema_attrs = ("yaml", "nc", "names", "stride", "class_weights")  # copied onto the EMA model each epoch
    csv_width = 20  # results.csv column width
    scale_loss_by_world = True  # DDP: loss x WORLD_SIZE (a loss summed over the batch, as detection's)
    validate_on_last_batch = False  # validate inside the epoch's last step (its progress bar shows the results)
    max_grad_norm = 10.0  # gradient clipping at every optimizer step, as ultralytics
    scheduler_lag = 0  # epochs the schedule runs behind (ultralytics' detection and segmentation: 1, see there)

    def __init__(self, cfg, callbacks=None, device=None, dist=None):
        self.cfg = cfg
        self.dist = dist or Dist()
        self.callbacks = (callbacks or Callbacks()) if self.dist.main else Callbacks()  # loggers live on rank 0
        self.device = device if device is not None else backend.select_device(cfg.device, cfg.batch_size)
        self.save_dir = Path(cfg.save_dir)
        self.wdir = self.save_dir / "weights"
        self.last, self.best = self.wdir / "last.pt", self.wdir / "best.pt"
        self.epochs, self.batch_size = cfg.epochs, cfg.batch_size  # batch_size: the total over all processes
        self.local_batch_size = cfg.batch_size // self.dist.world_size
        self.plots = not cfg.evolve and not cfg.noplots and self.dist.main
        self.hyp = dict(getattr(cfg, "hyp", None) or {})  # the task may scale its copy (detection does)
        self.ckpt, self.ema, self.validator = None, None, None
        self.train_graph, self.step_graph = None, None  # --graph (setup)
        self.amp = False
        self.best_fitness, self.start_epoch = 0.0, 0
        self.signals, self.stop_signal, self.saved_epoch = SignalStop(), None, None

    @classmethod
    def result_keys(cls):
        """results.csv columns after 'epoch': train losses, metrics, validation losses, learning rates."""
        return (*(f"train/{n}" for n in cls.loss_names), *cls.metric_keys, *(f"val/{n}" for n in cls.loss_names),
                *cls.lr_keys)

    # ------------------------------------------------------------------------------------------------------- setup
    def setup(self):
        cfg = self.cfg
        self.callbacks.run("on_pretrain_routine_start")
        if self.hyp:
            LOGGER.info(colorstr("hyperparameters: ") + ", ".join(f"{k}={v}" for k, v in self.hyp.items()))
        self.save_settings()
        init_seeds(cfg.seed + 1 + max(self.dist.rank, 0), deterministic=True)  # per-rank augmentation streams
        self.load_data()
        self.model = self.build_model().to(self.device)
        self.amp = backend.amp_supported(self.device)
        if self.batch_size == -1:  # --batch-size -1: AutoBatch (single process; launch.py refuses it under DDP)
            imgsz = getattr(self, "imgsz", self.cfg.imgsz)  # detection checks it in build_model
            self.batch_size = self.local_batch_size = check_train_batch_size(self.model, imgsz, self.amp)
            self.callbacks.run("on_params_update", {"batch_size": self.batch_size})
        with self.dist.zero_first():  # rank 0 writes the dataset caches; the others read them
            self.train_loader, self.val_loader = self.build_dataloaders()
        self.build_optimizer()
        self.resume_state()
        if not cfg.resume and self.dist.main:
            self.before_training()
        self.dist.broadcast_state(self.model)  # rank 0's weights (and AutoAnchor's anchors) on every rank
        self.callbacks.run("on_pretrain_routine_end", *self.pretrain_end_args())
        self.after_setup()
        self.loss = self.build_loss()
        if self.dist.main:
            self.validator = self.build_validator()
            # --graph: the validation forward is compiled (utils/backend/graph.py), not under OneFlow DDP
            self.validator.graph = cfg.graph and not (self.dist.ddp and ddp_graphs_hang())
        self.model = self.dist.wrap(self.model, sync_bn=cfg.sync_bn, log=LOGGER.info)  # after the EMA deepcopy
        self.train_graph = self.build_train_graph() if cfg.graph else None
        self.step_graph = self.build_step_graph() if cfg.graph else None

    def save_settings(self):
        """hyp.yaml and opt.yaml in the run folder (rank 0; not for evolve generations), as ultralytics."""
        if not self.dist.main:
            return
        self.wdir.mkdir(parents=True, exist_ok=True)
        if not self.cfg.evolve:
            if self.hyp:
                with open(self.save_dir / "hyp.yaml", "w") as f:
                    yaml.safe_dump(plain(self.hyp), f, sort_keys=False)
            with open(self.save_dir / "opt.yaml", "w") as f:
                yaml.safe_dump(self.cfg.opt, f, sort_keys=False)

    def build_optimizer(self):
        lr0, momentum, decay, self.nbs = self.optimizer_settings()
        self.accumulate = max(round(self.nbs / self.batch_size), 1)
        decay *= self.batch_size * self.accumulate / self.nbs  # weight decay scaled to the nominal batch
        self.fused_iou, multi_tensor = fused_paths(self.device, getattr(self.cfg, "bbox_iou_optim", False),
                                                   self.cfg.multi_tensor_optimizer)  # one-yolov5's speed flags
        self.optimizer = smart_optimizer(self.model, self.cfg.optimizer, lr0, momentum, decay, multi_tensor)
        for g in self.optimizer.param_groups:
            g["initial_lr"] = g["lr"]
        self.lf = self.lr_lambda()
        self.ema = ModelEMA(self.model, multi_tensor=multi_tensor) if self.dist.main else None  # before DDP wrapping

    def resume_state(self):
        """Optimizer, EMA, best fitness and epoch from the checkpoint when resuming (ultralytics' smart_resume)."""
        ckpt, cfg = self.ckpt, self.cfg
        if not (cfg.resume and ckpt):
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
        weights = getattr(cfg, "weights", "")
        if self.start_epoch <= 0:
            raise FlagError(f"{weights} training to {self.epochs} epochs is finished, nothing to resume.\n"
                            f"Start a new training without --resume, i.e. 'python train.py --weights {weights}'")
        LOGGER.info(f"Resuming training from {weights} from epoch {self.start_epoch} to {self.epochs} total epochs")

    # ---------------------------------------------------------------------------------------------------- the loop
    def fit(self):
        """Train; returns the last validation values (metrics then losses; rank 0) as a tuple."""
        self.setup()
        self.nb = len(self.train_loader)
        self.nw = self.warmup_iters(self.nb)
        self.last_opt_step = -1
        self.results = (0.0,) * (len(self.metric_keys) + len(self.loss_names))
        self.scaler = GradScaler(enabled=self.amp)
        self.stopper = EarlyStopping(patience=self.cfg.patience)
        self.t0 = time.time()
        self.callbacks.run("on_train_start")
        LOGGER.info(self.start_message())
        with SignalStop() as self.signals:  # Ctrl-C / SIGTERM: stop at the next safe point, see utils.engine.interrupt
            epoch = self.run_epochs()
        self.dist.barrier("end of training")  # past this point ranks may exit independently
        if self.dist.watchdog:
            self.dist.watchdog.stop()
        if not self.dist.main:
            return tuple(self.results)
        with backend.unbound_cpus():  # the other ranks are done
            return self.finish(epoch)

    def run_epochs(self):
        """The epoch loop; returns the last epoch run. Raises Interrupted after a signal (every rank alike)."""
        epoch = self.start_epoch - 1
        for epoch in range(self.start_epoch, self.epochs):
            self.callbacks.run("on_train_epoch_start")
            mloss = self.train_one_epoch(epoch)
            if self.stop_signal:  # mid-epoch: nothing of this epoch is validated or saved
                self.stop_interrupted(epoch, finished=False)
            if self.callbacks.stop_training:
                break
            stop = self.end_epoch(epoch, mloss)
            _, self.stop_signal = self.dist.stop_votes(False, self.signals.signum, "stop signal")
            if self.stop_signal:  # arrived while validating or saving: this epoch's checkpoint is complete
                self.stop_interrupted(epoch, finished=True)
            if stop:
                break
        return epoch

    def stop_interrupted(self, epoch, finished):
        """Raise Interrupted; rank 0 says what last.pt holds first, and every rank passes a barrier after it, so the
        message is out before any rank exits (then with 130 / 143)."""
        saved = self.saved_epoch if self.saved_epoch is not None else (
            self.start_epoch - 1 if self.cfg.resume and self.last.exists() else None)
        err = interrupted(self.stop_signal, epoch, finished, self.last, saved)
        if self.dist.ddp:
            if self.dist.main:
                report(err)
            err.reported = True
            self.dist.barrier("interrupted run")
        raise err

    def set_epoch_lr(self, epoch):
        """LambdaLR-equivalent: lr = initial_lr * lf(epoch - scheduler_lag) for every group, at each epoch start."""
        for g in self.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * self.lf(max(epoch - self.scheduler_lag, 0))

    def warmup(self, ni, epoch):
        """Linear warmup of lr (bias group from warmup_bias_lr), momentum and accumulation over the first nw steps."""
        xi = [0, self.nw]
        self.accumulate = max(1, np.interp(ni, xi, [1, self.nbs / self.batch_size]).round())
        for j, g in enumerate(self.optimizer.param_groups):
            start = self.hyp["warmup_bias_lr"] if j == 0 else 0.0  # biases fall from warmup_bias_lr, others rise
            g["lr"] = np.interp(ni, xi, [start, g["initial_lr"] * self.lf(epoch)])
            if "momentum" in g:
                g["momentum"] = np.interp(ni, xi, [self.hyp["warmup_momentum"], self.hyp["momentum"]])

    def train_one_epoch(self, epoch):
        self.model.train()
        self.set_epoch_lr(epoch)
        self.before_epoch(epoch)
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # DDP: a new shard permutation every epoch, the same on every rank
            sampler.set_epoch(epoch)
        mloss = np.zeros(len(self.loss_names))
        self.validated = False
        if self.progress_header():
            LOGGER.info(self.progress_header())
        pbar = tqdm(enumerate(self.train_loader), total=self.nb, bar_format=TQDM_BAR_FORMAT, disable=not self.dist.main)
        self.optimizer.zero_grad()
        for i, raw in pbar:
            self.callbacks.run("on_train_batch_start")
            ni = i + self.nb * epoch
            batch = self.preprocess_batch(raw)
            if self.nw and ni <= self.nw:  # no warmup when nw is 0
                self.warmup(ni, epoch)
            with self.dist.waiting("training step (gradient all-reduce)"):
                loss_items = self.train_step(batch)
            if ni - self.last_opt_step >= self.accumulate:
                self.optimizer_step()
                self.last_opt_step = ni
            mloss = (mloss * i + backend.to_numpy(loss_items)) / (i + 1)
            pbar.set_description(self.progress_row(epoch, f"{cuda_memory_reserved_gb():.3g}G", mloss, batch))
            self.callbacks.run("on_train_batch_end", self.model, ni, batch.img, batch.targets,
                               getattr(batch, "paths", None), list(mloss))
            if self.plots and ni < 3:
                self.plot_batch(batch, ni)
            if self.validate_on_last_batch and i == self.nb - 1 and self.dist.main:
                with backend.unbound_cpus():
                    self.results, self.validated = tuple(self.validate(self.ema.ema, pbar=pbar)), True
            # callbacks run on rank 0 only, a signal may reach one rank only: every rank takes the same decision
            self.callbacks.stop_training, self.stop_signal = self.dist.stop_votes(self.callbacks.stop_training,
                                                                                  self.signals.signum)
            if self.callbacks.stop_training or self.stop_signal:
                break
        self.lr = [float(g["lr"]) for g in self.optimizer.param_groups]
        return mloss

    def train_step(self, batch: AnyBatch) -> Tensor:
        """Forward, loss and backward of one batch (gradients added to .grad); returns the detached loss items."""
        loss, loss_items = self.forward_loss(batch)
        self.scaler.scale(loss).backward()
        return loss_items

    def build_train_graph(self):
        """--graph: a compiled training step for train_step, or None (eager) after one line saying why."""
        LOGGER.info(train_step_note(f"no compiled training step for the {getattr(self, 'task', 'this')} task"))

    def build_step_graph(self):
        """--graph: the optimizer step (clipping, SGD, EMA) compiled (utils/backend/graph.OptimizerStepGraph), or
        None (eager) after one line saying why; nothing more is said under OneFlow DDP, where nothing compiles."""
        if self.dist.ddp and ddp_graphs_hang():
            return None
        reason = OptimizerStepGraph.supported(self.optimizer, ddp=self.dist.ddp, amp=self.amp, device=self.device)
        LOGGER.info(optimizer_step_note(reason))
        return None if reason else OptimizerStepGraph(de_parallel(self.model), self.optimizer, self.ema,
                                                      max_norm=self.max_grad_norm)

    def forward_loss(self, batch):
        """(loss to backpropagate, detached loss items) of one batch.

        Under DDP the loss is multiplied by WORLD_SIZE because DDP averages gradients over ranks: the step then equals
        a single process's on the whole batch (exactly when BatchNorm statistics and loss normalisers agree).
        """
        with autocast(self.amp):
            loss, loss_items = self.compute_loss(self.model(batch.img), batch)
            if self.dist.ddp and self.scale_loss_by_world:
                loss = loss * self.dist.world_size
        return loss, loss_items

    def optimizer_step(self):
        with self.dist.waiting("gradient all-reduce"):
            average_gradients(self.model)  # OneFlow DDP on the CPU averages here, not in backward (utils/backend)
        if self.step_graph is not None:  # --graph: clipping, step and EMA update compiled
            self.step_graph()
            self.optimizer.zero_grad()
            return
        self.scaler.unscale_(self.optimizer)
        clip_grad_norm_(self.model.parameters(), max_norm=self.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        if self.ema is not None:
            self.ema.update(self.model)

    def end_epoch(self, epoch, mloss):
        """Rank 0 validates, logs and saves; every rank then takes rank 0's early-stop decision."""
        if self.dist.main:
            with backend.unbound_cpus():  # the other ranks wait: a CPU rank bound to one core may use them all
                stop = self.end_epoch_main(epoch, mloss)
        else:
            stop = False
        return self.dist.broadcast_flag(stop, "rank 0 validating/saving (early-stop flag)")

    def end_epoch_main(self, epoch, mloss):
        self.callbacks.run("on_train_epoch_end", epoch=epoch)
        self.ema.update_attr(self.model, include=list(self.ema_attrs))
        final_epoch = (epoch + 1 == self.epochs) or self.stopper.possible_stop
        if (not self.cfg.noval or final_epoch) and not self.validated:
            self.results = tuple(self.validate(self.ema.ema))
        fi = self.fitness(self.results)
        stop = self.stopper(epoch=epoch, fitness=fi)
        if fi > self.best_fitness:
            self.best_fitness = fi
        log_vals = list(mloss) + list(self.results) + self.lr_values(epoch)
        write_results_csv(self.save_dir / "results.csv", self.result_keys(), epoch, log_vals, self.csv_width)
        self.callbacks.run("on_fit_epoch_end", log_vals, epoch, self.best_fitness, fi)
        if (not self.cfg.nosave) or (final_epoch and not self.cfg.evolve):
            self.save_checkpoint(epoch, fi)
        return stop

    def checkpoint_dict(self, epoch):
        return {
            "epoch": epoch,
            "best_fitness": float(self.best_fitness),
            "model": model_to_dict(de_parallel(self.model), half=False),
            "ema": model_to_dict(self.ema.ema, half=False),
            "updates": self.ema.updates,
            "optimizer": optimizer_state(self.optimizer),
            "opt": self.cfg.opt,
            "hyp": plain(self.hyp),
            "git": {},
            "date": datetime.now().isoformat(),
            "versions": {"backend": backend.NAME, "framework": backend.VERSION, "format": "one-yolov5/1"},
        }

    def save_checkpoint(self, epoch, fi):
        ckpt = self.checkpoint_dict(epoch)
        self.write_checkpoint(ckpt, self.last, epoch)  # atomic: a crash never leaves a half-written last.pt
        self.saved_epoch = epoch
        if self.best_fitness == fi:
            self.write_checkpoint(ckpt, self.best, epoch)
        period = getattr(self.cfg, "save_period", -1)
        if period > 0 and epoch % period == 0:
            self.write_checkpoint(ckpt, self.wdir / f"epoch{epoch}.pt", epoch)
        self.callbacks.run("on_model_save", self.last, epoch, epoch + 1 == self.epochs, self.best_fitness, fi)

    def write_checkpoint(self, ckpt, path, epoch):
        """checkpoint.write, or (disk full, no permission) a CheckpointWriteError saying the previous file is intact
        and how to go on: training cannot continue without saving."""
        try:
            checkpoint.write(ckpt, path)
        except OSError as e:
            kept = (f"the previous {path.name} (epoch {self.saved_epoch}) is intact" if self.saved_epoch is not None
                    else f"no {path.name} was written before")
            hint = f"; resume with python {script_name()} --resume {self.last}" if self.saved_epoch is not None else ""
            err = CheckpointWriteError(f"could not save epoch {epoch} to {path}: {e.strerror or e}; {kept}. Free "
                                       f"space (or fix the permissions){hint}")
            err.errno, err.strerror, err.filename = e.errno, e.strerror, str(path)
            raise err from e

    def finish(self, epoch):
        LOGGER.info(f"\n{epoch - self.start_epoch + 1} epochs completed in {(time.time() - self.t0) / 3600:.3f} hours.")
        for f in self.last, self.best:
            if f.exists():
                LOGGER.info(f"Optimizer stripped from {f}, {strip_optimizer(f) / 1e6:.1f}MB")
        if self.best.exists():
            self.final_validation()
        if self.plots:
            self.plot_metrics()
        LOGGER.info(self.closing_message())
        self.callbacks.run("on_train_end", self.last, self.best, epoch, self.results)
        return tuple(self.results)

    # ---------------------------------------------------------------------------------- hooks with a default
    def start_message(self):
        return (f"Image sizes {self.imgsz} train, {self.imgsz} val\n"
                f"Using {self.train_loader.num_workers} dataloader workers\n"
                f"Logging results to {colorstr('bold', self.save_dir)}\n"
                f"Starting training for {self.epochs} epochs...")

    def closing_message(self):
        return f"Results saved to {colorstr('bold', self.save_dir)}"

    def warmup_iters(self, nb):
        return 0

    def before_epoch(self, epoch):
        """Per-epoch data steps (detection: image-weighted resampling)."""

    def before_training(self):
        """Steps on rank 0 before the first epoch of a new run (AutoAnchor, label plots)."""

    def after_setup(self):
        """Model attributes and loss settings once data and model are known."""

    def pretrain_end_args(self):
        return ()

    def lr_values(self, epoch):
        """The learning rates logged for ``epoch`` (one per lr_keys)."""
        return list(self.lr)

    def plot_batch(self, batch: AnyBatch, ni: int) -> None:
        pass

    def plot_metrics(self) -> None:
        pass

    def final_validation(self) -> None:
        pass

    # ------------------------------------------------------------------------------------------- task hooks
    def load_data(self) -> None:
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def build_dataloaders(self) -> tuple[Iterable, Optional[Iterable]]:
        raise NotImplementedError

    def optimizer_settings(self) -> tuple[float, float, float, int]:
        raise NotImplementedError

    def lr_lambda(self) -> Callable[[int], float]:
        raise NotImplementedError

    def build_loss(self) -> Callable:
        raise NotImplementedError

    def build_validator(self) -> Validator:
        raise NotImplementedError

    def preprocess_batch(self, raw: AnyBatch) -> AnyBatch:
        raise NotImplementedError

    def compute_loss(self, preds: Any, batch: AnyBatch) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def progress_header(self) -> Optional[str]:
        raise NotImplementedError

    def progress_row(self, epoch: int, mem: str, mloss: np.ndarray, batch: AnyBatch) -> str:
        raise NotImplementedError

    def validate(self, model: nn.Module, pbar: Any = None) -> Sequence[float]:
        raise NotImplementedError

    @staticmethod
    def fitness_rows(x):
        """Fitness of each row of validation results (n, len(metric_keys) + ...): the task's weighting."""
        raise NotImplementedError

    def fitness(self, values):
        return float(self.fitness_rows(np.array(values).reshape(1, -1))[0])
