"""YOLOv5 networks built from YAML: the Detect/Segment heads and Detection/Segmentation/Classification models.

Usage:
    python models/yolo.py --cfg yolov5s.yaml            # layer table and summary (parameters, GFLOPs)
    python models/yolo.py --cfg yolov5s.yaml --test     # build and run every models/**/*.yaml
    python models/yolo.py --cfg yolov5n.yaml --backend torch --profile

Vocabulary: nc classes, na anchors per level, nl output levels, no outputs per anchor (nc + 5 [+ nm masks]).
"""

import ast
import contextlib
import math
import re
import sys
from copy import deepcopy
from pathlib import Path
from typing import NamedTuple

FILE = Path(__file__).resolve()
if str(FILE.parents[1]) not in sys.path:
    sys.path.append(str(FILE.parents[1]))  # run as a script: make the repository importable

import yaml  # noqa: E402

from models.common import (C3, C3SPP, C3TR, SPP, SPPF, Bottleneck, BottleneckCSP, C3Ghost, C3x, Classify,  # noqa: E402
                           Concat, Contract, Conv, CrossConv, DWConv, DWConvTranspose2d, Expand, Focus, GhostBottleneck,
                           GhostConv, MixConv2d, Proto)
from utils import cli, errors  # noqa: E402
from utils.backend import conv_with_bias, meshgrid_ij, nn, nn_module_path, select_device, time_sync, torch  # noqa: E402
from utils.errors import UserError  # noqa: E402
from utils.files import check_yaml  # noqa: E402
from utils.log import LOGGER  # noqa: E402
from utils.model_tools import count_flops, fuse_conv_and_bn, initialize_weights, model_info, scale_img  # noqa: E402


def _plain(e, limit=200):
    """The first line of an exception's message without terminal colour codes (OneFlow colours its errors)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
    return (text.splitlines() or [""])[0][:limit]


class ModelConfigError(UserError, ValueError):
    """A model YAML that cannot be built; the message names the file, the layer and the problem."""


# ------------------------------------------------------------------------------------------------------------- heads
class Detect(nn.Module):
    """Detection head: one 1x1 Conv2d per level to na * (nc + 5) channels, decoded to pixel xywh in eval mode.

    ``anchors`` is a buffer of shape (nl, na, 2) in grid units (pixels / stride), as in official checkpoints.
    """

    stride = None  # (nl,) tensor, set by DetectionModel
    outputs = {"output0": {0: "batch", 1: "anchors"}}  # exported outputs (ultralytics' names) and their dynamic axes
    dynamic = False  # rebuild grids on every call (ONNX export with dynamic shapes)
    export = False  # return only the decoded tensor

    def __init__(self, nc=80, anchors=(), ch=(), inplace=True):
        super().__init__()
        self.nc = nc
        self.no = nc + 5
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.grid = [torch.empty(0) for _ in range(self.nl)]
        self.anchor_grid = [torch.empty(0) for _ in range(self.nl)]
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32).view(self.nl, -1, 2))
        self.m = nn.ModuleList(nn.Conv2d(x, self.no * self.na, 1) for x in ch)
        self.inplace = inplace

    def forward(self, x):
        z = []
        for i in range(self.nl):
            x[i] = conv_with_bias(self.m[i], x[i])
            bs, _, ny, nx = x[i].shape
            bs = -1 if self.export else bs  # exported graphs keep the batch free (dynamic-batch ONNX)
            x[i] = x[i].view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            if not self.training:
                z.append(self._decode(x[i], i).view(bs, self.na * nx * ny, self.no))
        if self.training:
            return x
        return (torch.cat(z, 1),) if self.export else (torch.cat(z, 1), x)

    def _decode(self, p, i):
        """Raw level-i map (bs, na, ny, nx, no) -> pixel xywh, sigmoid objectness and class scores (+ raw masks)."""
        ny, nx = p.shape[2:4]
        if self.dynamic or self.grid[i].shape[2:4] != p.shape[2:4] or self.grid[i].device != p.device:
            self.grid[i], self.anchor_grid[i] = self._make_grid(nx, ny, i)
        stride = float(self.stride[i])
        nm = self.no - self.nc - 5
        if nm:  # Segment: mask coefficients stay raw
            xy, wh, conf, mask = p.split((2, 2, self.nc + 1, nm), 4)
            xy, wh, conf = xy.sigmoid(), wh.sigmoid(), conf.sigmoid()
        else:
            xy, wh, conf = p.sigmoid().split((2, 2, self.nc + 1), 4)
        xy = (xy * 2 + self.grid[i]) * stride
        wh = (wh * 2) ** 2 * self.anchor_grid[i]
        return torch.cat((xy, wh, conf, mask) if nm else (xy, wh, conf), 4)

    def _make_grid(self, nx=20, ny=20, i=0):
        d, t = self.anchors.device, self.anchors.dtype
        shape = (1, self.na, ny, nx, 2)
        yv, xv = meshgrid_ij(torch.arange(ny, device=d, dtype=t), torch.arange(nx, device=d, dtype=t))
        grid = torch.stack((xv, yv), 2).expand(shape) - 0.5  # cell offsets, so xy = 2*sigmoid - 0.5 + cell
        anchor_grid = (self.anchors[i] * float(self.stride[i])).view((1, self.na, 1, 1, 2)).expand(shape)
        return grid, anchor_grid


class Segment(Detect):
    """Instance-segmentation head: Detect with nm mask coefficients per anchor plus a Proto branch on level 0."""

    outputs = {**Detect.outputs, "output1": {0: "batch", 2: "mask_height", 3: "mask_width"}}  # + the protos
    def __init__(self, nc=80, anchors=(), nm=32, npr=256, ch=(), inplace=True):
        super().__init__(nc, anchors, ch, inplace)
        self.nm = nm
        self.npr = npr
        self.no = 5 + nc + self.nm
        self.m = nn.ModuleList(nn.Conv2d(x, self.no * self.na, 1) for x in ch)
        self.proto = Proto(ch[0], self.npr, self.nm)

    def forward(self, x):
        p = self.proto(x[0])
        x = Detect.forward(self, x)
        if self.training:
            return x, p
        return (x[0], p) if self.export else (x[0], p, x[1])


# ------------------------------------------------------------------------------------------------------- YAML parsing
MODULES = {  # YAML module name -> class; an explicit table instead of eval()
    "Conv": Conv, "GhostConv": GhostConv, "Bottleneck": Bottleneck, "GhostBottleneck": GhostBottleneck, "SPP": SPP,
    "SPPF": SPPF, "DWConv": DWConv, "MixConv2d": MixConv2d, "Focus": Focus, "CrossConv": CrossConv,
    "BottleneckCSP": BottleneckCSP, "C3": C3, "C3TR": C3TR, "C3SPP": C3SPP, "C3Ghost": C3Ghost, "C3x": C3x,
    "DWConvTranspose2d": DWConvTranspose2d, "Concat": Concat, "Contract": Contract, "Expand": Expand,
    "Detect": Detect, "Segment": Segment, "Classify": Classify, "Proto": Proto,
    "nn.Upsample": nn.Upsample, "nn.MaxPool2d": nn.MaxPool2d, "nn.ZeroPad2d": nn.ZeroPad2d,
    "nn.BatchNorm2d": nn.BatchNorm2d, "nn.ConvTranspose2d": nn.ConvTranspose2d, "nn.Identity": nn.Identity,
    "nn.Conv2d": nn.Conv2d,
}
CHANNEL_MODULES = {Conv, GhostConv, Bottleneck, GhostBottleneck, SPP, SPPF, DWConv, MixConv2d, Focus, CrossConv,
                   BottleneckCSP, C3, C3TR, C3SPP, C3Ghost, nn.ConvTranspose2d, DWConvTranspose2d, C3x}
REPEAT_MODULES = {BottleneckCSP, C3, C3TR, C3Ghost, C3x}  # take the repeat count as an argument
ACTIVATIONS = ("SiLU", "ReLU", "ReLU6", "LeakyReLU", "Hardswish", "Sigmoid", "Tanh", "GELU", "ELU", "Mish", "Identity")


def make_divisible(x, divisor):
    """Smallest multiple of divisor >= x."""
    return math.ceil(x / divisor) * divisor


def parse_activation(text):
    """'nn.LeakyReLU(0.1)' -> nn.LeakyReLU(0.1), with literal arguments only (no eval)."""
    try:
        call = ast.parse(str(text).strip(), mode="eval").body
        name = ast.unparse(call.func) if isinstance(call, ast.Call) else None
        cls = name.removeprefix("nn.") if name else None
        if cls not in ACTIVATIONS or not hasattr(nn, cls):
            raise ValueError(f"not one of nn.{', nn.'.join(ACTIVATIONS)}")
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        return getattr(nn, cls)(*args, **kwargs)
    except (SyntaxError, ValueError, TypeError) as e:
        raise ModelConfigError(f"activation '{text}': {e}") from None


@contextlib.contextmanager
def default_activation(act):
    """Use ``act`` as Conv's shared activation while one model is built (ultralytics sets it for good)."""
    saved = Conv.default_act
    Conv.default_act = act if act is not None else saved
    try:
        yield
    finally:
        Conv.default_act = saved


def _resolve_arg(a, names):
    """YAML strings that name something ('nc', 'anchors', 'None') become their values; other strings stay."""
    return names[a] if isinstance(a, str) and a in names else a


def _check_from(f, i, where):
    refs = [f] if isinstance(f, int) else f
    if not isinstance(refs, list) or not refs or not all(isinstance(x, int) for x in refs):
        raise ModelConfigError(f"{where}: 'from' must be an int or a list of ints, got {f!r}")
    for x in refs:
        if x == -1 and i == 0:
            continue
        if not (-i <= x < i):
            raise ModelConfigError(f"{where}: 'from' index {x} does not name an earlier layer (layer {i} may use "
                                   f"0..{i - 1} or negative offsets down to -{i})")


def parse_model(d, ch, source="model.yaml"):
    """Build the layer Sequential from a model dict.

    Args:
        d: the YAML dict (nc, depth_multiple, width_multiple, anchors, backbone, head, optional activation).
        ch: [input channels].
        source: file name for error messages.
    Returns:
        (nn.Sequential of layers carrying .i .f .type .np, sorted list of layer indices whose outputs are kept)
    """
    for key in ("nc", "depth_multiple", "width_multiple", "backbone", "head"):
        if key not in d:
            raise ModelConfigError(f"{source}: missing key '{key}'")
    anchors, nc, gd, gw = d.get("anchors", 3), d["nc"], d["depth_multiple"], d["width_multiple"]
    act = parse_activation(d["activation"]) if d.get("activation") else None
    na = (len(anchors[0]) // 2) if isinstance(anchors, list) else anchors
    no = na * (nc + 5)
    names = {"nc": nc, "anchors": anchors, "None": None, "True": True, "False": False}
    LOGGER.info(f"\n{'':>3}{'from':>18}{'n':>3}{'params':>10}  {'module':<40}{'arguments':<30}")
    layers, save, c2 = [], [], ch[-1]
    with default_activation(act):
        for i, row in enumerate(d["backbone"] + d["head"]):
            where = f"{source} layer {i}"
            if not isinstance(row, (list, tuple)) or len(row) != 4:
                raise ModelConfigError(f"{where}: expected [from, number, module, args], got {row!r}")
            f, n, name, args = row
            _check_from(f, i, where)
            if name not in MODULES:
                raise ModelConfigError(f"{where}: unknown module '{name}'; known: {', '.join(sorted(MODULES))}")
            m = MODULES[name]
            args = [_resolve_arg(a, names) for a in (args or [])]
            n = n_ = max(round(n * gd), 1) if n > 1 else n
            try:
                if m in CHANNEL_MODULES:
                    c1, c2 = ch[f], args[0]
                    if c2 != no:
                        c2 = make_divisible(c2 * gw, 8)
                    args = [c1, c2, *args[1:]]
                    if m in REPEAT_MODULES:
                        args.insert(2, n)
                        n = 1
                elif m is nn.BatchNorm2d:
                    args = [ch[f]]
                elif m is Concat:
                    c2 = sum(ch[x] for x in f)
                elif m in (Detect, Segment):
                    args.append([ch[x] for x in f])
                    if isinstance(args[1], int):  # number of anchors: placeholders that AutoAnchor replaces
                        args[1] = [list(range(args[1] * 2))] * len(f)
                    if m is Segment:
                        args[3] = make_divisible(args[3] * gw, 8)
                elif m is Contract:
                    c2 = ch[f] * args[0] ** 2
                elif m is Expand:
                    c2 = ch[f] // args[0] ** 2
                else:
                    c2 = ch[f]
                m_ = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)
            except (TypeError, IndexError, ValueError, AssertionError, ZeroDivisionError, RuntimeError) as e:
                raise ModelConfigError(f"{where}: cannot build {name} with arguments {args}: {e}") from None
            t = nn_module_path(m_[0] if n > 1 else m_)  # as built above (a 'number' below 1 builds one module)
            t = t.replace("__main__.", "")
            np_ = sum(x.numel() for x in m_.parameters())
            m_.i, m_.f, m_.type, m_.np = i, f, t, np_
            LOGGER.info(f"{i:>3}{str(f):>18}{n_:>3}{np_:10.0f}  {t:<40}{str(args):<30}")
            save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)
            layers.append(m_)
            if i == 0:
                ch = []
            ch.append(c2)
    return nn.Sequential(*layers), sorted(save)


# ------------------------------------------------------------------------------------------------------------ models
class BaseModel(nn.Module):
    """Runs the layer list, keeping the outputs that later layers read (``save``)."""

    def forward(self, x, profile=False, visualize=False):
        return self._forward_once(x, profile, visualize)

    def _forward_once(self, x, profile=False, visualize=False):
        y, dt = [], []
        for m in self.model:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            if profile:
                self._profile_one_layer(m, x, dt)
            x = m(x)
            y.append(x if m.i in self.save else None)
            if visualize:
                from utils.annotator import feature_visualization  # noqa: PLC0415 (cv2/matplotlib: load on use)
                feature_visualization(x, m.type, m.i, save_dir=visualize)
        return x

    def _profile_one_layer(self, m, x, dt):
        last = m is self.model[-1]
        inp = x.clone() if hasattr(x, "clone") else list(x)
        flops = count_flops(m, inp) / 1e9 * 2 if not last else 0
        t = time_sync()
        for _ in range(10):
            m(x.clone() if last and hasattr(x, "clone") else (list(x) if last else x))
        dt.append((time_sync() - t) * 100)
        if m is self.model[0]:
            LOGGER.info(f"{'time (ms)':>10s} {'GFLOPs':>10s} {'params':>10s}  module")
        LOGGER.info(f"{dt[-1]:10.2f} {flops:10.2f} {m.np:10.0f}  {m.type}")
        if last:
            LOGGER.info(f"{sum(dt):10.2f} {'-':>10s} {'-':>10s}  Total")

    def fuse(self):
        """Fold every Conv's BatchNorm into its conv (inference only); returns self."""
        LOGGER.info("Fusing layers... ")
        for m in self.model.modules():
            if isinstance(m, (Conv, DWConv)) and hasattr(m, "bn"):
                m.conv = fuse_conv_and_bn(m.conv, m.bn)
                delattr(m, "bn")
                m.forward = m.forward_fuse
        self.info()
        return self

    def info(self, verbose=False, img_size=640):
        return model_info(self, verbose, img_size)


class DetectionModel(BaseModel):
    """YOLOv5 detection model.

    Args:
        cfg: model YAML path (a short name like 'yolov5s.yaml' is looked up under models/) or an already-loaded dict.
        ch: input channels (the YAML's ``ch`` wins if present).
        nc: number of classes, overriding the YAML's.
        anchors: number of anchors per level, overriding the YAML's anchor list.
    """

    def __init__(self, cfg="yolov5s.yaml", ch=3, nc=None, anchors=None):
        super().__init__()
        if isinstance(cfg, dict):
            self.yaml = deepcopy(cfg)
            source = self.yaml.get("yaml_file", "model dict")
        else:
            path = check_yaml(cfg)
            self.yaml_file = Path(path).name
            self.yaml = load_model_yaml(path)
            source = path
        ch = self.yaml["ch"] = self.yaml.get("ch", ch)
        if nc and nc != self.yaml.get("nc"):
            LOGGER.info(f"Overriding model.yaml nc={self.yaml.get('nc')} with nc={nc}")
            self.yaml["nc"] = nc
        if anchors:
            LOGGER.info(f"Overriding model.yaml anchors with anchors={anchors}")
            self.yaml["anchors"] = round(anchors)
        self.model, self.save = parse_model(deepcopy(self.yaml), ch=[ch], source=str(source))
        self.names = {i: f"{i}" for i in range(self.yaml["nc"])}
        self.inplace = self.yaml.get("inplace", True)
        m = self.model[-1]
        if isinstance(m, Detect):
            self._init_head(m, ch)
        initialize_weights(self)
        self.info()
        LOGGER.info("")

    @classmethod
    def from_record(cls, yaml_dict):
        """The network a checkpoint's 'yaml' entry describes (weights still to be loaded)."""
        return cls(yaml_dict)

    def _init_head(self, m, ch, s=256):
        """Strides from a dry run at s x s, anchor order and grid units, prior-based biases (as ultralytics)."""
        m.inplace = self.inplace
        try:  # a config whose layers build but cannot run (zero channels, a bad Upsample, maps shrunk to nothing)
            out = self.forward(torch.zeros(1, ch, s, s))
            out = out[0] if isinstance(m, Segment) else out
            m.stride = torch.tensor([s / x.shape[-2] for x in out])
        except (RuntimeError, ValueError, NotImplementedError, TypeError, ZeroDivisionError, IndexError) as e:
            raise ModelConfigError(f"{getattr(self, 'yaml_file', 'model config')}: the network it describes cannot run "
                                   f"on a {s}x{s} image ({type(e).__name__}: {_plain(e)})") from None
        check_anchor_order(m)
        with torch.no_grad():
            m.anchors /= m.stride.view(-1, 1, 1)
        self.stride = m.stride
        self._initialize_biases()

    def forward(self, x, augment=False, profile=False, visualize=False):
        if augment:
            return self._forward_augment(x)
        return self._forward_once(x, profile, visualize)

    def _forward_augment(self, x):
        """Test-time augmentation: scales 1, 0.83, 0.67 with a left-right flip on the middle one, merged."""
        img_size = x.shape[-2:]
        y = []
        for si, fi in zip((1, 0.83, 0.67), (None, 3, None)):
            xi = scale_img(x.flip(fi) if fi else x, si, gs=int(self.stride.max()))
            y.append(self._descale_pred(self._forward_once(xi)[0], fi, si, img_size))
        y = self._clip_augmented(y)
        return torch.cat(y, 1), None

    def _descale_pred(self, p, flips, scale, img_size):
        x, y, wh = p[..., 0:1] / scale, p[..., 1:2] / scale, p[..., 2:4] / scale
        if flips == 2:
            y = img_size[0] - y
        elif flips == 3:
            x = img_size[1] - x
        return torch.cat((x, y, wh, p[..., 4:]), -1)

    def _clip_augmented(self, y):
        nl = self.model[-1].nl
        g = sum(4**x for x in range(nl))  # grid points
        y[0] = y[0][:, : -(y[0].shape[1] // g)]  # large: drop the smallest-object level
        y[-1] = y[-1][:, (y[-1].shape[1] // g) * 4 ** (nl - 1):]  # small: drop the largest-object level
        return y

    def _initialize_biases(self, cf=None):
        """Objectness prior 8 objects per 640 image, class prior 0.6 / nc (https://arxiv.org/abs/1708.02002 3.3)."""
        m = self.model[-1]
        for mi, s in zip(m.m, m.stride):
            b = mi.bias.detach().clone().view(m.na, -1)
            b[:, 4] += math.log(8 / (640 / float(s)) ** 2)
            if cf is None:
                b[:, 5:5 + m.nc] += math.log(0.6 / (m.nc - 0.99999))
            else:
                b[:, 5:5 + m.nc] += torch.log(cf / cf.sum())
            mi.bias = nn.Parameter(b.view(-1), requires_grad=True)


Model = DetectionModel  # the name used by ultralytics < v6.2 and its checkpoints


class SegmentationModel(DetectionModel):
    """YOLOv5 instance-segmentation model (a Segment head)."""

    def __init__(self, cfg="yolov5s-seg.yaml", ch=3, nc=None, anchors=None):
        super().__init__(cfg, ch, nc, anchors)


class ClassificationModel(BaseModel):
    """YOLOv5 classification model: a detection model's first ``cutoff`` layers, the last replaced by Classify."""

    def __init__(self, cfg=None, model=None, nc=1000, cutoff=10):
        super().__init__()
        if model is None:
            if cfg is None:
                raise ModelConfigError("ClassificationModel needs a detection model or a detection cfg to cut")
            model = DetectionModel(cfg)
        self._from_detection_model(model, nc, cutoff)

    @classmethod
    def from_record(cls, yaml_dict):
        """The classifier of a checkpoint's 'yaml' entry: the detection YAML cut at 'cutoff', 'cls_nc' classes."""
        base = {k: v for k, v in yaml_dict.items() if k not in ("cutoff", "cls_nc")}
        return cls(model=DetectionModel(base), nc=yaml_dict["cls_nc"], cutoff=yaml_dict["cutoff"])

    def _from_detection_model(self, model, nc=1000, cutoff=10):
        model = getattr(model, "model", model) if not isinstance(model, DetectionModel) else model
        layers = model.model[:cutoff]
        m = layers[-1]
        ch = m.conv.in_channels if hasattr(m, "conv") else m.cv1.conv.in_channels
        c = Classify(ch, nc)
        c.i, c.f, c.type, c.np = m.i, m.f, "models.common.Classify", sum(x.numel() for x in c.parameters())
        layers[-1] = c
        self.model = layers
        self.stride = model.stride
        self.save = []
        self.nc = nc
        self.names = {i: f"class{i}" for i in range(nc)}
        self.yaml = dict(getattr(model, "yaml", {}) or {}, cutoff=cutoff, cls_nc=nc)
        if getattr(model, "yaml_file", None):
            self.yaml_file = model.yaml_file.replace(".yaml", "-cls.yaml")


# ---------------------------------------------------------------------------------------------- classifier heads
# Fitting a classifier's output layer to a dataset's class count (ultralytics' reshape_classifier_output). The last
# child module of the network (of ``model.model`` for YOLOv5 models) decides what is replaced, and only when its output
# size differs from ``nc``; a replaced layer is new (freshly initialised), on the CPU:
#   - a YOLOv5 Classify head: its ``linear`` (and the model's nc / yaml cls_nc, which rebuild it from a checkpoint);
#   - an nn.Linear (ResNet ``fc``, DenseNet ``classifier``, flowvision ConvNeXt ``head``): the layer itself;
#   - an nn.Sequential holding an nn.Linear (EfficientNet, MobileNet, ConvNeXt ``classifier``): that Linear;
#     otherwise one holding an nn.Conv2d (SqueezeNet): that Conv2d, same kernel, stride and bias.
# One deliberate difference: ultralytics replaces the *first* Linear (or Conv2d) of the Sequential. In heads with
# several (VGG, AlexNet, MobileNetV3: Linear -> act -> Linear) that breaks the network (the next layer's input no
# longer matches), so here the *last* one, the output layer, is replaced. Heads with a single one are the same.
def _last_of_type(seq, cls):
    """Index of the last module of exactly type ``cls`` in an nn.Sequential, or None."""
    found = [i for i, m in enumerate(seq) if type(m) is cls]
    return found[-1] if found else None


def reshape_classifier_output(model, nc=1000):
    """Give ``model`` an output layer of ``nc`` classes if it has another count (in place).

    Args:
        model: a YOLOv5 ClassificationModel or a torchvision / flowvision classifier.
        nc: number of classes.
    Returns:
        ``model``.
    """
    container = model.model if hasattr(model, "model") else model
    name, m = list(container.named_children())[-1]
    if isinstance(m, Classify):
        if m.linear.out_features != nc:
            m.linear = nn.Linear(m.linear.in_features, nc)
        if isinstance(getattr(model, "yaml", None), dict):
            model.nc, model.yaml["cls_nc"] = nc, nc
    elif isinstance(m, nn.Linear):
        if m.out_features != nc:
            setattr(model, name, nn.Linear(m.in_features, nc))
    elif isinstance(m, nn.Sequential):
        i = _last_of_type(m, nn.Linear)
        if i is not None:
            if m[i].out_features != nc:
                m[i] = nn.Linear(m[i].in_features, nc)
        else:
            i = _last_of_type(m, nn.Conv2d)
            if i is not None and m[i].out_channels != nc:
                c = m[i]
                m[i] = nn.Conv2d(c.in_channels, nc, c.kernel_size, c.stride, bias=c.bias is not None)
    return model


def check_anchor_order(m):
    """Flip the anchor order if mean anchor area does not grow with stride."""
    a = m.anchors.prod(-1).mean(-1).view(-1)
    da = float(a[-1] - a[0])
    ds = float(m.stride[-1] - m.stride[0])
    if da and (da > 0) != (ds > 0):
        LOGGER.info("AutoAnchor: Reversing anchor order")
        with torch.no_grad():
            m.anchors[:] = m.anchors.flip(0)


def load_model_yaml(path):
    """Read a model YAML with a clear error for malformed files."""
    try:
        with open(path, errors="ignore") as f:
            d = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ModelConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(d, dict):
        raise ModelConfigError(f"{path}: expected a mapping with nc, depth_multiple, width_multiple, backbone, head")
    return d


class ModelTask(NamedTuple):
    """A row of TASKS (the other sides' task tables: utils/cli.py, utils/engine/tasks.py): model class, head."""
    model: type
    head: type


TASKS = {
    "detect": ModelTask(DetectionModel, Detect),
    "segment": ModelTask(SegmentationModel, Segment),
    "classify": ModelTask(ClassificationModel, Classify),
}


def model_task(model):
    """The task (a key of TASKS) of a model, a DDP-wrapped model or an Ensemble (its first member): its most derived
    class in TASKS decides; a torchvision / flowvision classifier (``vision_name``) is 'classify'. ValueError for
    any other module."""
    model = getattr(model, "module", model)
    if isinstance(model, nn.ModuleList) and len(model):
        model = model[0]
    if hasattr(model, "vision_name"):
        return "classify"
    task = next((t for cls in type(model).__mro__ for t, row in TASKS.items() if row.model is cls), None)
    if task is None:
        raise ValueError(f"{type(model).__name__} is not a YOLOv5 model (one of {', '.join(TASKS)})")
    return task


def model_class_for(yaml_dict):
    """The model class of a YOLOv5 YAML, from the head its last layer names (DetectionModel when none matches)."""
    head = (yaml_dict.get("head") or [[None, None, None]])[-1]
    name = head[2] if len(head) > 2 else None
    return next((row.model for row in TASKS.values() if row.head.__name__ == name), DetectionModel)


def parse_opt(argv=None):
    return cli.parse("models/yolo", argv)


def main(opt):
    device = select_device(opt.device, log=LOGGER.info)
    im = torch.rand(opt.batch_size, 3, opt.imgsz, opt.imgsz).to(device)
    if opt.test:
        root = Path(__file__).parent
        for cfg in sorted(root.rglob("yolo*.yaml")):
            try:
                model_class_for(load_model_yaml(cfg))(cfg)
            except Exception as e:
                LOGGER.info(f"Error in {cfg}: {e}")
                raise
        return
    model = model_class_for(load_model_yaml(check_yaml(opt.cfg)))(opt.cfg).to(device)
    if opt.line_profile:
        model.eval()(im, profile=True)
    elif opt.profile:
        model.eval()
        with torch.no_grad():
            model(im)  # warm-up
            t = time_sync()
            model(im)
        LOGGER.info(f"forward {opt.batch_size}x3x{opt.imgsz}x{opt.imgsz}: {(time_sync() - t) * 1000:.1f} ms")


if __name__ == "__main__":
    with errors.guard():  # a bad --cfg: one 'ERROR:' line
        main(parse_opt())
