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

The training step (``TrainStepGraph``, OneFlow, detection): forward, loss and backward of each batch as one nn.Graph
per (input shape, padded target count); the gradients land in ``.grad`` as after an eager backward, and the
optimizer step, warmup, accumulation, clipping and the EMA stay eager. Single process only: under DDP OneFlow
0.9.0's graphs hang the ranks (measured), and there every core already runs a rank. Why not the whole step:
  - OneFlow 0.9.0 refuses boolean-mask indexing in a graph ("Advanced indexing by boolean(mask) tensor only valid
    in eager mode") and the YOLOv5 target matching is built on it: the graph uses the loss's fixed-shape form
    (``ComputeLoss.static``: every candidate kept with a mask, targets padded), equal up to summation order;
  - a compiled optimizer cannot follow this trainer's step: the warmup changes SGD's momentum every iteration
    (0.8 -> 0.937) while a graph bakes it into the job (``SGD._generate_conf_for_graph``: ``momentum_conf.beta``),
    the nominal-batch accumulation steps every ``accumulate`` batches (1 -> nbs/batch during warmup) while a graph
    steps on every call, and LambdaLR has no graph form;
  - ``autograd.grad`` inside ``nn.Graph.build`` crashes OneFlow 0.9.0 (a segmentation fault), so the gradients come
    out through "taps" (see TrainStepGraph).
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
                "shape); the optimizer step with its warmup, accumulation and the EMA stay eager "
                "(utils/backend/graph.py); the validation forward is compiled too")
    if ddp_graphs_hang():
        return f"--graph: nothing is compiled: {reason}"
    what = "nn.Graph" if IS_ONEFLOW else "torch.compile"
    return f"--graph: the validation forward is compiled ({what}); the training step stays eager: {reason}"


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
    parameter's ``.grad`` exactly as an eager ``loss.backward()`` adds them; the optimizer step (warmup momentum,
    nominal-batch accumulation, clipping) and the EMA then run eager, as without --graph.

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

