"""The task-independent pieces of a training loop: the learning-rate ramp, optimizer parameter groups, the weights'
exponential moving average and early stopping.

Why this name and module: the engine's trainers (utils/engine/trainer.py and its task subclasses) compose these
pieces, and benchmarks and tests use them on bare models, so they live below the engine, apart from the model tools
they build on (utils/model_tools.py). ultralytics keeps them in ``utils/torch_utils.py``; that path is now a shim.

Runs on either backend; the fused multi-tensor updates come from utils.backend.fused.
"""

import math
from copy import deepcopy

from utils.backend import nn, torch
from utils.backend.fused import ema_update_, optimizer_options
from utils.log import LOGGER, colorstr
from utils.model_tools import de_parallel


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
            LOGGER.warning("WARNING ⚠️ --multi_tensor_optimizer: RMSProp has no multi-tensor update, "
                           "the plain one runs")
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
        """The decay used at update number ``updates``."""
        return self.decay_max * (1 - math.exp(-updates / self.tau))

    def update(self, model):
        """Move the average one step towards ``model``'s current floating-point state."""
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
        """Copy ``model``'s plain attributes (names, hyp, stride ...) onto the average, but not DDP's own."""
        copy_attr(self.ema, de_parallel(model), include, exclude)


class EarlyStopping:
    """Stop when fitness has not improved for ``patience`` epochs (0 or less disables it)."""

    def __init__(self, patience=30):
        self.best_fitness = 0.0
        self.best_epoch = 0
        self.patience = patience if patience and patience > 0 else float("inf")
        self.possible_stop = False

    def __call__(self, epoch, fitness):
        """Record ``fitness`` of ``epoch``; True when training should stop."""
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
