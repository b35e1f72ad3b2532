"""GRAPH: what --graph compiles (train.py, val.py, detect.py and the segment/classify scripts).

OneFlow: the inference forward of an eval-mode model runs as an ``oneflow.nn.Graph``. A graph is compiled for one
input shape, and validation batches (rectangular letterboxes) and detect.py images vary in shape, so
``compile_forward`` keeps a small cache of graphs, one per (shape, dtype, device), and compiles on first sight. The
graphs share the model's parameter and buffer tensors: in-place updates (the EMA during training) are seen by every
compiled graph; replaced tensors (``.half()``, ``fuse()``, ``load_state_dict`` into new storage) drop the cache.
TTA (``augment``), ``visualize`` and training-mode calls run eager. Speed on a 2-core CPU (yolov5n, 128 px, batch
16, benchmarks/graph_speed.py): compiled ~1.0-1.5x eager, and only because (a) under --graph utils.backend leaves
OneFlow's VM scheduler yielding (with ONEFLOW_VM_ENABLE_SCHEDULE_YIELD=0 a graph burns twice the CPU: 0.5-0.7x eager)
and (b) biased convolutions are split in the graph too (``split_conv_bias_in_graph``; whole: 0.3-0.4x eager, fused).

PyTorch: the same forward goes through ``torch.compile``; if compiling fails, one message and eager from then on.

The training step (OneFlow, single process), as two graphs:
  - ``TrainStepGraph`` (detection): forward, loss and backward of each batch, one nn.Graph per (input shape, padded
    target count); the gradients land in ``.grad`` as after an eager backward.
  - ``OptimizerStepGraph`` (every task whose optimizer is SGD): gradient clipping, the SGD step with the learning
    rates and momentum of the warmup/schedule as inputs, and the EMA update; the accumulation decides when it runs.
Two graphs and not one, because of OneFlow 0.9.0:
  - it refuses boolean-mask indexing in a graph ("Advanced indexing by boolean(mask) tensor only valid in eager
    mode") and the YOLOv5 target matching is built on it: the graph uses the loss's fixed-shape form
    (``ComputeLoss.static``: every candidate kept with a mask, targets padded), equal up to summation order;
  - a graph changes its variables only through its own compiled optimizer, which bakes SGD's momentum into the job
    (``SGD._generate_conf_for_graph``: ``momentum_conf.beta``; the warmup moves it 0.8 -> 0.937) and steps on every
    call (training accumulates over ``accumulate`` batches): both graphs therefore use a plain SGD with lr 1 on
    tensors whose "gradient" is made to be exactly the wanted change (the taps of TrainStepGraph, the update steps of
    OptimizerStepGraph);
  - ``autograd.grad`` inside ``nn.Graph.build`` crashes (a segmentation fault), so one graph cannot take the gradients
    of the loss and then use them in the update.
Under DDP nothing is compiled: OneFlow 0.9.0's graphs hang the ranks (measured), and there every core already runs a
rank. On a CPU the compiled optimizer step is slower than the eager one (the figures are in OptimizerStepGraph), so
it is compiled there only with YOLOV5_GRAPH_OPTIMIZER=1; on CUDA (not measured here) the graph replaces ~1000 small
eager kernel launches.
PyTorch: the training step stays eager (the target matching has data-dependent shapes), with one line saying so.
"""

import contextlib
import itertools
import os
import warnings
from collections import OrderedDict

from utils.backend import (F, IS_ONEFLOW, NAME, VERSION, Tensor, nn, split_conv_bias_in_graph, torch,
                           whole_conv_calls)

MAX_GRAPHS = 8  # compiled input shapes kept per model (rect validation batches: a handful; detect.py: few)


def train_step_note(reason=""):
    """The one line --graph prints on the train scripts: what is compiled, or why the training step stays eager."""
    if not reason:
        return ("--graph: each training step's forward, loss and backward run as an nn.Graph (compiled once per input "
                "shape); the validation forward is compiled too")
    if ddp_graphs_hang():
        return f"--graph: nothing is compiled: {reason}"
    what = "nn.Graph" if IS_ONEFLOW else "torch.compile"
    return f"--graph: the validation forward is compiled ({what}); the training step stays eager: {reason}"


def optimizer_step_note(reason=""):
    """The one line --graph prints about the optimizer step: compiled, or why it stays eager."""
    if not reason:
        return ("--graph: the optimizer step (gradient clipping, SGD with the warmup's learning rates and momentum, "
                "the EMA update) runs as an nn.Graph; the accumulation decides when")
    return f"--graph: the optimizer step stays eager: {reason}"


def ddp_graphs_hang():
    """True in a OneFlow DDP process: there an nn.Graph (training step, or rank 0's validation forward) never
    finishes compiling (OneFlow 0.9.0, 2 CPU ranks, bound to cores or not). Even a graph of one nn.Linear on local
    tensors, compiled by both ranks of `python -m oneflow.distributed.launch --nproc_per_node 2`, returns on rank 1
    and never on rank 0. So --graph compiles nothing under DDP."""
    return IS_ONEFLOW and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def compile_forward(model, log=None):
    """``model``'s inference forward, compiled for this backend: a callable taking what ``model`` takes.

    Args:
        model: an nn.Module (eval mode when called; training-mode calls run eager).
        log: callable for the one-line notice when compiling is not possible (e.g. LOGGER.info).
    Returns:
        GraphForward (OneFlow) or TorchCompiledForward (PyTorch); ``.module`` is ``model``.
    """
    return GraphForward(model, log) if IS_ONEFLOW else TorchCompiledForward(model, log)


class _CompiledForward:
    """Shared part: eager for the calls a compiled forward does not cover."""

    def __init__(self, model, log=None):
        self.module = model
        self.log = log or (lambda s: None)

    def eager_only(self, args, kwargs):
        """TTA / visualize / profile flags, or a model in training mode: run the module itself."""
        return self.module.training or any(args) or any(bool(v) for v in kwargs.values())

    def __getattr__(self, name):  # stride, names, ... of the wrapped model
        if name == "module":
            raise AttributeError(name)
        return getattr(self.module, name)


class GraphForward(_CompiledForward):
    """OneFlow: one ``nn.Graph`` of the forward per input shape (least recently used dropped past MAX_GRAPHS)."""

    def __init__(self, model, log=None, max_graphs=MAX_GRAPHS):
        super().__init__(model, log)
        self.graphs = OrderedDict()
        self.max_graphs = max_graphs
        self.tensor_ids = None

    def __call__(self, x, *args, **kwargs):
        if self.eager_only(args, kwargs) or not isinstance(x, Tensor):
            return self.module(x, *args, **kwargs)
        ids = self._tensor_ids()
        if ids != self.tensor_ids:  # parameters replaced (half/fuse/load): compiled graphs read stale tensors
            self.graphs.clear()
            self.tensor_ids = ids
        key = (tuple(x.shape), str(x.dtype), str(x.device))
        graph = self.graphs.pop(key, None) or self._compile(x)
        self.graphs[key] = graph
        while len(self.graphs) > self.max_graphs:
            self.graphs.popitem(last=False)
        return graph(x)

    def _tensor_ids(self):
        return tuple(id(t) for t in itertools.chain(self.module.parameters(), self.module.buffers()))

    def _compile(self, x):
        graph = _ForwardGraph(self.module)
        with warnings.catch_warnings(), _plain_attributes(self.module), split_conv_bias_in_graph():
            warnings.simplefilter("ignore")  # "Interpolate() is called in a nn.Graph, but not registered" (harmless)
            graph._compile(x)
        return graph


if IS_ONEFLOW:

    class _ForwardGraph(nn.Graph):
        def __init__(self, module):
            super().__init__()
            self.module = module

        def build(self, x):
            return self.module(x)


@contextlib.contextmanager
def _plain_attributes(model):
    """During a graph trace, module attributes that are tensors but neither parameters nor buffers (a YOLO head's
    ``stride``, its cached ``grid`` / ``anchor_grid`` lists) must not be read as lazy tensors, nor left holding lazy
    tensors afterwards: 1-D tensors become tuples of floats (``float(stride[i])`` stays a constant), lists of tensors
    become fresh empty tensors (the trace rebuilds its own caches); everything is put back after the trace."""
    saved = []
    for m in model.modules():
        for name, value in list(vars(m).items()):
            if isinstance(value, Tensor) and value.ndim <= 1:
                saved.append((m, name, value))
                setattr(m, name, tuple(float(v) for v in value.reshape(-1).tolist()))
            elif isinstance(value, list) and value and all(isinstance(v, Tensor) for v in value):
                saved.append((m, name, value))
                setattr(m, name, [torch.empty(0) for _ in value])
    try:
        yield
    finally:
        for m, name, value in saved:
            setattr(m, name, value)


class TorchCompiledForward(_CompiledForward):
    """PyTorch: ``torch.compile`` of the module; a failed compile says so once and runs eager from then on."""

    def __init__(self, model, log=None):
        super().__init__(model, log)
        self.compiled = None if IS_ONEFLOW else torch.compile(model)
        self.failed = self.compiled is None
        self.log("--graph: torch.compile compiles the forward on its first call per input shape (on a CPU: minutes)")

    def __call__(self, x, *args, **kwargs):
        if self.failed or self.eager_only(args, kwargs):
            return self.module(x, *args, **kwargs)
        try:
            return self.compiled(x)
        except Exception as e:  # inductor needs a C++ compiler; some builds and devices lack one
            self.failed = True
            self.log(f"--graph: torch.compile failed ({type(e).__name__}: {str(e).strip().splitlines()[0][:200]}); "
                     f"running eager")
            return self.module(x, *args, **kwargs)


# ---------------------------------------------------------------------------------------------- the training step
TAPPED_TYPES = (nn.Conv2d, nn.BatchNorm2d)  # modules whose parameters a compiled training step can read gradients of
MIN_TARGET_SLOTS = 256  # targets are padded to a power of two at least this: one compiled graph for most datasets


class TrainStepGraph:
    """OneFlow: the forward, loss and backward of a training batch as one ``nn.Graph``, gradients added to each
    parameter's ``.grad`` exactly as an eager ``loss.backward()`` adds them; the optimizer step follows at the
    nominal-batch accumulation (OptimizerStepGraph under --graph).

    How the gradients get out: an nn.Graph applies them only through an optimizer compiled into it. Each trainable
    parameter ``w`` gets a zero "tap" ``d`` of its shape, the traced convolutions and BatchNorms use ``w + d``, and
    the graph's optimizer is plain SGD with lr 1 on the taps alone: after a call ``d = 0 - 1 * dL/dw``, which is the
    gradient itself (exact: no rounding), and the forward saw ``w + 0 = w``. The step reads ``-d`` into ``w.grad`` and
    zeroes the taps.

    Shapes: a graph is compiled per (images shape, target slots); targets are padded to a power of two (at least
    MIN_TARGET_SLOTS) and the loss's fixed-shape form (``loss.static``) masks the padding. The loss equals the eager
    one up to float summation order (tests/test_graph.py).

    Args:
        model: the detection model; every trainable parameter must belong to an nn.Conv2d or nn.BatchNorm2d
            (``supported`` says why not otherwise).
        loss: a ComputeLoss (``static(p, targets, valid)``).
        loss_scale: what the backward sees is loss * loss_scale (4 with --quad, as the eager trainer).
    """

    def __init__(self, model, loss, loss_scale=1.0, max_graphs=MAX_GRAPHS):
        self.model, self.loss, self.loss_scale = model, loss, float(loss_scale)
        self.params = [(m, name, p) for m in model.modules() for name, p in m.named_parameters(recurse=False)
                       if p.requires_grad]
        self.graphs = OrderedDict()
        self.max_graphs = max_graphs
        self.taps = _Taps([p for _, _, p in self.params])
        self.compiled = 0

    @staticmethod
    def supported(model, loss, ddp=False, amp=False):
        """'' when a compiled training step can run ``model`` with ``loss``, else the reason (one line)."""
        if not IS_ONEFLOW:
            return f"{NAME} has no nn.Graph (torch.compile is used for the validation forward only)"
        if ddp:
            return (f"under DDP the graphs of {NAME}-{VERSION} never finish compiling (measured: 2 CPU processes "
                    f"hang), and DDP already uses every core")
        if amp:
            return "AMP's gradient scaler runs on the eager backward"
        if not getattr(loss, "has_static_form", lambda: False)():
            return f"the {type(loss).__module__}.{type(loss).__name__} loss has no fixed-shape form"
        others = sorted({type(m).__name__ for m in model.modules() for p in m.parameters(recurse=False)
                         if p.requires_grad and not isinstance(m, TAPPED_TYPES)})
        if others:
            return f"gradients of {', '.join(others)} parameters cannot be read out of a graph here"
        return ""

    def accepts(self, imgs, batch_size):
        """Full batches only: the last, smaller batch of an epoch runs eager rather than costing a compilation."""
        return imgs.shape[0] == batch_size

    def __call__(self, imgs, targets):
        """(loss, detached loss items) like ComputeLoss; the gradients are already in ``.grad`` on return."""
        nt = int(targets.shape[0])
        slots = max(MIN_TARGET_SLOTS, 1 << max(nt - 1, 0).bit_length())
        padded = torch.zeros(slots, 6, device=targets.device, dtype=imgs.dtype)
        valid = torch.zeros(slots, device=targets.device, dtype=imgs.dtype)
        if nt:
            padded[:nt] = targets.to(imgs.dtype)
            valid[:nt] = 1.0
        key = (tuple(imgs.shape), slots, str(imgs.dtype))
        graph = self.graphs.pop(key, None) or self._compile()
        self.graphs[key] = graph
        while len(self.graphs) > self.max_graphs:
            self.graphs.popitem(last=False)
        with _tapped_layers(self.taps.lookup):
            loss, items = graph(imgs, padded, valid)
        self._collect()
        return loss, items

    def _compile(self):
        self.compiled += 1
        return _TrainGraph(self.model, self.loss, self.taps, self.loss_scale)

    def _collect(self):
        """-tap is the gradient: add it to .grad (or set it), zero the taps."""
        with torch.no_grad():
            for (_, _, p), d in zip(self.params, self.taps.tensors):
                if p.grad is None:
                    p.grad = -d
                else:
                    p.grad.sub_(d)
            self.taps.zero_()


class _Taps(nn.Module if IS_ONEFLOW else object):
    """One zero parameter per trainable parameter (registered one by one: a ParameterList does not trace)."""

    def __init__(self, params):
        super().__init__()
        self.tensors = []
        self.owner = {}
        for i, p in enumerate(params):
            d = nn.Parameter(torch.zeros_like(p))
            self.register_parameter(f"tap{i}", d)
            self.tensors.append(d)
            self.owner[id(p)] = i
        self.traced = {}  # during a trace: id(parameter) -> its tap as a lazy tensor

    def lookup(self, param):
        return self.traced.get(id(param))

    def zero_(self):
        for d in self.tensors:
            d.zero_()


if IS_ONEFLOW:

    class _TrainGraph(nn.Graph):
        def __init__(self, model, loss, taps, loss_scale):
            super().__init__()
            self.model, self.taps = model, taps
            self._loss, self._scale, self._ids, self._traced = loss, loss_scale, list(taps.owner), taps.traced
            frozen = [p for p in model.parameters() if p.requires_grad]
            for p in frozen:  # the optimizer below must see the taps as the only trainable variables
                p.requires_grad_(False)
            try:
                self.add_optimizer(torch.optim.SGD(taps.parameters(), lr=1.0, momentum=0.0, weight_decay=0.0))
            finally:
                for p in frozen:
                    p.requires_grad_(True)
            self._frozen = frozen

        def __call__(self, *args):
            for p in self._frozen:  # (re)compiled with the model's parameters as constants of the backward
                p.requires_grad_(False)
            try:
                with warnings.catch_warnings(), whole_conv_calls():
                    warnings.simplefilter("ignore")  # "Zeros() is called in a nn.Graph, but not registered" (harmless)
                    return super().__call__(*args)
            finally:
                for p in self._frozen:
                    p.requires_grad_(True)

        def build(self, imgs, targets, valid):
            self._traced.update({pid: getattr(self.taps, f"tap{i}") for i, pid in enumerate(self._ids)})  # lazy
            try:
                loss, items = self._loss.static(self.model(imgs), targets, valid)
            finally:
                self._traced.clear()
            (loss * self._scale).backward()
            return loss, items


_TAP = None  # while a training graph runs: parameter -> its tap (None: the layers run as they are)


@contextlib.contextmanager
def _tapped_layers(lookup):
    """Within: nn.Conv2d and nn.BatchNorm2d compute with weight + tap, bias + tap (during a trace; their taps are
    looked up by parameter identity). OneFlow's CPU convolution adds its bias separately (see conv_with_bias)."""
    global _TAP
    saved = nn.Conv2d.forward, nn.BatchNorm2d.forward
    _TAP = lookup
    nn.Conv2d.forward, nn.BatchNorm2d.forward = _conv_forward, _bn_forward
    try:
        yield
    finally:
        nn.Conv2d.forward, nn.BatchNorm2d.forward = saved
        _TAP = None


def _tapped(module, name):
    value = getattr(module, name)
    if value is None:
        return None
    origin = module.to(nn.Module) if type(module).__name__ == "ProxyModule" else module
    tap = _TAP(getattr(origin, name)) if _TAP is not None else None
    return value if tap is None else value + tap


def _conv_forward(self, x):
    w, b = _tapped(self, "weight"), _tapped(self, "bias")
    y = F.conv2d(x, w, None, self.stride, self.padding, self.dilation, self.groups)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def _bn_forward(self, x):
    if self.training and self.track_running_stats and self.num_batches_tracked is not None:
        self.num_batches_tracked.add_(1)
    training = self.training or (self.running_mean is None and self.running_var is None)
    return torch._C.normalization(x, self.running_mean, self.running_var, _tapped(self, "weight"),
                                  _tapped(self, "bias"), axis=self.channel_axis, epsilon=self.eps,
                                  momentum=self.momentum, is_training=training)



# ------------------------------------------------------------------------------------------ the optimizer step
GRAPH_OPTIMIZER_ENV = "YOLOV5_GRAPH_OPTIMIZER"  # --graph optimizer step: 1 compiled, 0 eager, unset: not on a CPU

class OptimizerStepGraph:
    """OneFlow: the trainer's optimizer step as one ``nn.Graph``: gradient clipping (total norm ``max_norm``), SGD
    with Nesterov momentum and weight decay per parameter group, and the EMA update (ModelEMA: every floating-point
    entry of the EMA model moves towards the model's new value). The learning rates, momenta, weight decays and the
    EMA decay are inputs of each call, so the warmup (lr and momentum change every iteration) and the per-epoch
    schedule run compiled without recompiling; the nominal-batch accumulation decides, eagerly, when to call.

    How the updates get in: OneFlow 0.9.0 keeps a graph's results in its variables only through the graph's own
    optimizer (an in-place op on a parameter inside ``build`` is not written back, measured), and a compiled SGD bakes
    its momentum into the job. So every tensor the step changes (parameter, momentum buffer, EMA entry) ``v`` is
    trained by a plain SGD with lr 1 on ``dot(v, (v - v_new).detach())``, whose gradient is ``v - v_new``: after a call
    ``v - (v - v_new) = v_new``, within one float rounding. The update rules are the eager ones (OneFlow's SGD: d = g +
    wd * w, buf = momentum * buf + d, w -= lr * (d + momentum * buf); tests/test_graph.py compares them step by step).
    The graph sees these tensors through its own nn.Parameter views sharing their storage: the model's Parameter
    objects themselves, registered in a graph, were left unchanged by its optimizer (measured).

    Speed (yolov5n, OneFlow 0.9.0 on the 2-core CPU): 103-127 ms a call against 21-30 ms for the eager clipping, SGD
    step and EMA update. One op costs ~30 us in a CPU graph and a pass over the 1.9 M parameters ~3 ms, and making the
    updates gradients costs passes the eager kernels do not make. The arithmetic already runs on one flat vector per
    parameter group (a dozen ops per tensor took ~1 s a call) and multiplies vector * scalar (scalar * vector runs
    ~10x slower in a CPU graph).

    Args:
        model: the trained model (not DDP-wrapped); ``ema``: its ModelEMA (or None: no EMA update).
        optimizer: the trainer's SGD (``supported`` says why not otherwise); its momentum buffers are created here,
            zero as in an eager first step, so checkpoints and resume see them.
        max_norm: gradient clipping norm (the trainer's 10).
    """

    def __init__(self, model, optimizer, ema=None, max_norm=10.0):
        self.model, self.optimizer, self.ema, self.max_norm = model, optimizer, ema, float(max_norm)
        self.graph, self.state_ids = None, None

    @staticmethod
    def supported(optimizer, ddp=False, amp=False, device="cpu"):
        """'' when the optimizer step should run compiled, else the reason (one line). On a CPU it is slower than
        the eager step (measured, see above), so there it is compiled only with YOLOV5_GRAPH_OPTIMIZER=1; on other
        devices unless YOLOV5_GRAPH_OPTIMIZER=0."""
        if not IS_ONEFLOW:
            return f"{NAME} has no nn.Graph"
        if ddp:
            return f"under DDP the graphs of {NAME}-{VERSION} never finish compiling"
        if amp:
            return "AMP's gradient scaler steps eagerly"
        if type(optimizer).__name__ != "SGD":
            return f"only SGD is compiled (this run uses {type(optimizer).__name__})"
        for g in optimizer.param_groups:
            options = g.options
            if not options["nesterov"] or options["dampening"] or options.get("maximize") or options.get("fused"):
                return "only SGD with Nesterov momentum, no dampening, no maximize, not fused is compiled"
        choice = os.environ.get(GRAPH_OPTIMIZER_ENV, "").strip()
        if choice == "0":
            return f"{GRAPH_OPTIMIZER_ENV}=0"
        if choice != "1" and str(getattr(device, "type", device)).startswith("cpu"):
            return (f"on a CPU the compiled step is slower than eager (yolov5n: 103-127 ms against 21-30 ms, "
                    f"utils/backend/graph.py); {GRAPH_OPTIMIZER_ENV}=1 compiles it anyway")
        return ""

    def __call__(self):
        """One optimizer step from the gradients in ``.grad`` (not zeroed here); returns the total gradient norm."""
        opt = self.optimizer
        buffers = self._momentum_buffers()
        ids = tuple(map(id, buffers))  # (the EMA's tensors are read once, at compile: the trainer never replaces them)
        if ids != self.state_ids:  # built, or the optimizer state was replaced (load_state_dict): compile (again)
            self.graph, self.state_ids = _OptimizerGraph(self.model, opt, buffers, self.ema, self.max_norm), ids
        groups, device = opt.param_groups, self.graph.params[0].device
        hyp = torch.tensor([[float(g[k]) for g in groups] for k in ("lr", "momentum", "weight_decay")], device=device)
        decay = 0.0
        if self.ema is not None:
            self.ema.updates += 1
            decay = self.ema.decay(self.ema.updates)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.graph.params]
        norm = self.graph(hyp, torch.tensor(float(decay), device=device), *grads)
        opt._state["step"] = opt._state.get("step", 0) + 1  # as an eager step counts
        return norm

    def _momentum_buffers(self):
        state = self.optimizer._state
        out = []
        for g in self.optimizer.param_groups:
            for p in g.parameters:
                if p.requires_grad:
                    if "momentum_buf" not in state[p]:
                        state[p]["momentum_buf"] = torch.zeros_like(p)
                    out.append(state[p]["momentum_buf"])
        return out


class _Views(nn.Module if IS_ONEFLOW else object):
    """Trainable nn.Parameter views (shared storage) of the tensors the optimizer graph updates, and the tensors its
    EMA update only reads (BatchNorm statistics, frozen parameters) as buffers."""

    def __init__(self, updated, read):
        super().__init__()
        self.n_updated, self.n_read = len(updated), len(read)
        for i, t in enumerate(updated):
            self.register_parameter(f"v{i}", nn.Parameter(t.detach()))
        for i, t in enumerate(read):
            self.register_buffer(f"r{i}", t.detach())

    def flat(self, start, stop, prefix="v"):
        """Tensors start..stop-1 (as the graph traces them) concatenated into one vector."""
        parts = [getattr(self, f"{prefix}{i}").reshape(-1) for i in range(start, stop)]
        return torch.cat(parts) if parts else None


def _apply(v, step):
    """The loss whose gradient with respect to v is ``step`` (so the graph's SGD with lr 1 makes v ``v - step``)."""
    return torch.dot(v, step.detach())


if IS_ONEFLOW:

    class _OptimizerGraph(nn.Graph):
        """The arithmetic runs on one flat vector per parameter group (and one for the EMA): a few dozen ops over
        all parameters instead of a dozen per tensor, which a CPU graph runs ~30 us each (measured 1 s a call)."""

        def __init__(self, model, optimizer, buffers, ema, max_norm):
            super().__init__()
            self.max_norm = max_norm
            self.params, self.bounds = [], [0]  # trainable parameters in group order; group j: bounds[j]:bounds[j+1]
            for g in optimizer.param_groups:
                self.params += [p for p in g.parameters if p.requires_grad]
                self.bounds.append(len(self.params))
            n = len(self.params)
            ema_params, read = [], []  # the EMA entries of the trainable parameters (their order), the others
            self.has_ema = ema is not None
            if self.has_ema:
                own = {name: p for name, p in model.named_parameters()}
                entry = {id(own[k]): e for k, e in ema.ema.state_dict().items() if k in own}
                ema_params = [entry[id(p)] for p in self.params]
                model_state, trained = model.state_dict(), {id(p) for p in self.params}
                for k, e in ema.ema.state_dict().items():
                    if e.is_floating_point() and not (k in own and id(own[k]) in trained):
                        read.append((e, model_state[k]))  # a BatchNorm statistic, or a frozen parameter
            self.n = n
            self.views = _Views(self.params + buffers + ema_params + [e for e, _ in read], [m for _, m in read])
            self.add_optimizer(torch.optim.SGD(self.views.parameters(), lr=1.0, momentum=0.0, weight_decay=0.0))

        def build(self, hyp, decay, *grads):
            views, n = self.views, self.n
            flat_grads = torch.cat([g.reshape(-1) for g in grads])
            norm = torch.linalg.vector_norm(flat_grads, 2)
            coef = (self.max_norm / (norm + 1e-6)).clamp(max=1.0)  # clip_grad_norm_
            terms, new, offset = [], [], 0
            for j in range(len(self.bounds) - 1):
                a, b = self.bounds[j], self.bounds[j + 1]
                if a == b:
                    continue
                w, buf = views.flat(a, b), views.flat(n + a, n + b)
                size = w.shape[0]
                lr, momentum, wd = hyp[0, j], hyp[1, j], hyp[2, j]
                # vector * scalar, never scalar * vector: OneFlow 0.9.0's CPU graph runs the latter ~10x slower
                d = flat_grads[offset:offset + size] * coef + w * wd
                offset += size
                buf_step = buf * (1.0 - momentum) - d  # buf - (momentum * buf + d)
                w_step = (d + (buf - buf_step) * momentum) * lr  # Nesterov, as OneFlow's (and PyTorch's) SGD
                terms += [_apply(buf, buf_step), _apply(w, w_step)]
                new.append((w - w_step).detach())
            if self.has_ema:  # ModelEMA.update: e = d * e + (1 - d) * model, the parameters as updated
                e = views.flat(2 * n, 3 * n)
                terms.append(_apply(e, (e - torch.cat(new)) * (1.0 - decay)))  # e - (d * e + (1 - d) * new)
                if views.n_read:
                    e = views.flat(3 * n, views.n_updated)
                    terms.append(_apply(e, (e - views.flat(0, views.n_read, "r")) * (1.0 - decay)))
            torch.stack(terms).sum().backward()
            return norm
