"""Writing whole pickled ``nn.Module`` objects in torch's zip layout, without torch: ultralytics' own checkpoint form.

Why: ultralytics' tools (``attempt_load``, detect.py, val.py, export.py, ``torch.hub.load(..., 'custom', ...)``) read
a checkpoint whose 'model' is a pickled ``models.yolo.DetectionModel`` object, not a state dict. To hand weights
trained here back to them, this module pickles a plain description of the module tree the way torch pickles an
``nn.Module``: ``GLOBAL <class path>``, ``EMPTY_TUPLE``, ``NEWOBJ``, then ``BUILD`` with the module's ``__dict__``
(torch 1.x field layout: OrderedDict tables and hook dicts, which every torch >= 1.7 unpickles). Parameters become
``torch._utils._rebuild_parameter(tensor, requires_grad, OrderedDict())``. Nothing is imported to do it: class paths
are written as names, and :func:`utils.checkpoint.read` reads the files back through its allow-list.
"""

import collections
import pickle

from utils.checkpoint.writer import _dump, _Global, _Pickler, _to_plain, _write_archive

# torch's own Module fields after training/_parameters/_buffers (torch 1.x order; torch 2.x adds the rest itself)
_HOOK_FIELDS = ("_backward_hooks", "_is_full_backward_hook", "_forward_hooks", "_forward_pre_hooks",
                "_state_dict_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")


class TorchModule:
    """One ``nn.Module`` to pickle.

    Args:
        cls: class path as it will be unpickled, e.g. ``'models.common.Conv'``, ``'torch.nn.modules.conv.Conv2d'``.
        attrs: the module's other ``__dict__`` entries (plain data, arrays, :class:`MethodRef`).
        parameters, buffers: name -> numpy array (or None), in order. modules: name -> TorchModule, in order.
        non_persistent: buffer names left out of the state dict. requires_grad: of every parameter.
    The same TorchModule object used twice is written once (the pickle memo), as a shared torch module is.
    """

    def __init__(self, cls, attrs=None, parameters=None, buffers=None, modules=None, non_persistent=(),
                 requires_grad=False):
        self.cls, self.requires_grad = cls, requires_grad
        self.attrs = dict(attrs or {})
        self.parameters = collections.OrderedDict(parameters or {})
        self.buffers = collections.OrderedDict(buffers or {})
        self.modules = collections.OrderedDict(modules or {})
        self.non_persistent = tuple(non_persistent)


class MethodRef:
    """A function attribute such as ultralytics' ``Segment.detect = Detect.forward``: pickled as getattr(cls, name)."""

    def __init__(self, cls, name):
        self.cls, self.name = cls, name


class _Parameter:
    def __init__(self, data, requires_grad):
        self.data, self.requires_grad = data, requires_grad


class _ModulePickler(_Pickler):
    """The checkpoint writer's pickler plus modules, parameters and method references."""

    dispatch = dict(_Pickler.dispatch)

    def reducer_override(self, obj):
        kind = type(obj)
        if kind is _Parameter:
            return _Global("torch._utils", "_rebuild_parameter"), (
                obj.data, obj.requires_grad, collections.OrderedDict())
        if kind is MethodRef:
            return _Global("builtins", "getattr"), (_Global(*obj.cls.rsplit(".", 1)), obj.name)
        return super().reducer_override(obj)

    def module_state(self, node):
        """The ``__dict__`` torch would pickle for this module."""
        params = collections.OrderedDict(
            (k, None if v is None else _Parameter(v, node.requires_grad)) for k, v in node.parameters.items())
        state = {"training": False, "_parameters": params, "_buffers": collections.OrderedDict(node.buffers),
                 "_non_persistent_buffers_set": set(node.non_persistent)}
        for field in _HOOK_FIELDS:
            state[field] = None if field == "_is_full_backward_hook" else collections.OrderedDict()
        state["_modules"] = collections.OrderedDict(node.modules)
        state.update(node.attrs)
        return state

    def save_module(self, node):
        self.save(_Global(*node.cls.rsplit(".", 1)))
        self.write(pickle.EMPTY_TUPLE + pickle.NEWOBJ)  # cls.__new__(cls): no constructor runs on loading
        self.memoize(node)
        self.save(self.module_state(node))
        self.write(pickle.BUILD)

    dispatch[TorchModule] = save_module


def _checked(obj, where, arrays, active, seen):
    """A validated copy: plain data as writer.write accepts it, plus TorchModule trees and MethodRefs."""
    if isinstance(obj, MethodRef):
        return obj
    if isinstance(obj, TorchModule):
        if id(obj) not in seen:
            seen[id(obj)] = obj
            for group in ("attrs", "parameters", "buffers"):
                table = getattr(obj, group)
                for k in table:
                    table[k] = _checked(table[k], f"{where}.{k}", arrays, active, seen)
            for k, child in obj.modules.items():
                if not isinstance(child, TorchModule):
                    raise TypeError(f"write_modules: {where}.{k} is a {type(child).__name__}, not a TorchModule")
                _checked(child, f"{where}.{k}", arrays, active, seen)
        return obj
    if type(obj) in (dict, collections.OrderedDict, list, tuple):
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        if any(isinstance(v, (TorchModule, MethodRef)) or type(v) in (dict, list, tuple, collections.OrderedDict)
               for _, v in items):
            if isinstance(obj, dict):
                return type(obj)((k, _checked(v, f"{where}[{k!r}]", arrays, active, seen)) for k, v in obj.items())
            return type(obj)(_checked(v, f"{where}[{i}]", arrays, active, seen) for i, v in enumerate(obj))
    return _to_plain(obj, where, arrays, active)


def write_modules(obj, path, prefix="archive"):
    """Write plain data holding :class:`TorchModule` trees as a torch zip checkpoint, atomically.

    Args:
        obj: e.g. ultralytics' checkpoint dict ``{'epoch': -1, 'model': TorchModule(...), ...}``.
        path: destination; the previous file there stays intact until the new one is complete.
        prefix: the archive folder name ('archive', as the torch 1.x that wrote the v7.0 release files).
    Raises:
        TypeError: something in ``obj`` is not plain data, an array, a TorchModule or a MethodRef.
    """
    checked = _checked(obj, "obj", {}, set(), {})
    pickled, storages = _dump(checked, _ModulePickler)
    _write_archive(path, pickled, storages, prefix=prefix, byteorder=True)
