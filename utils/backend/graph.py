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

The training step stays eager on both backends, with the reason in one line (``train_step_note``). On OneFlow 0.9.0
the YOLOv5 loss does not compile at all: its target matching indexes with boolean masks (``t[keep]``, the neighbour
cells), and an ``nn.Graph`` refuses that ("Advanced indexing by boolean(mask) tensor only valid in eager mode"; the
loss is shared with the eager path and stays as it is). Even with a graph-friendly loss, an ``nn.Graph`` applies its
gradients only through an optimizer compiled into the graph, which cannot reproduce this trainer's step exactly:
  - the warmup changes SGD's momentum every iteration (0.8 -> 0.937), and a compiled optimizer bakes momentum into
    the job as a constant (``SGD._generate_conf_for_graph``: ``momentum_conf.beta = param_group["momentum"]``);
  - nominal-batch accumulation steps the optimizer every ``accumulate`` loader batches, with ``accumulate`` rising
    from 1 to nbs/batch during warmup; a graph steps its optimizer on every call, keeps no gradients between calls,
    and its own accumulation (``config.set_gradient_accumulation_steps``) splits one input into equal micro-batches
    along dim 0, which the (n, 6) target list of a detection batch is not;
  - the gradients cannot be taken out of the graph to step the eager optimizer instead: ``autograd.grad`` inside
    ``nn.Graph.build`` crashes OneFlow 0.9.0 (a segmentation fault; without an optimizer it fails with "job has no
    TrainConf"), and ``loss.backward()`` in a graph feeds only the graph's own optimizers;
  - a graph has static shapes, while the target matching produces a different number of matches per batch (and the
    loss branches in Python on that number).
"""

import contextlib
import itertools
import warnings
from collections import OrderedDict

from utils.backend import IS_ONEFLOW, NAME, VERSION, Tensor, nn, split_conv_bias_in_graph, torch

MAX_GRAPHS = 8  # compiled input shapes kept per model (rect validation batches: a handful; detect.py: few)


def train_step_note():
    """The one line --graph prints on train.py: what is compiled and why the training step is not."""
    if IS_ONEFLOW:
        return (f"--graph: the validation forward runs as an nn.Graph; the training step stays eager "
                f"(on {NAME}-{VERSION} the loss's boolean-mask indexing does not compile, and a compiled optimizer "
                f"cannot follow the warmup momentum and nominal-batch accumulation exactly: utils/backend/graph.py)")
    return (f"--graph: the validation forward goes through torch.compile; the training step stays eager "
            f"(the loss's target matching has data-dependent shapes)")


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
