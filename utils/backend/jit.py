"""JIT: loading TorchScript files back (part of the backend package: it may import torch).

This is the inference side of TorchScript, kept apart from the writers in ``utils.backend.export`` so that running a
``.torchscript`` file (utils/runtime/torchscript.py) never imports the ONNX/TorchScript export machinery; export's
own check of a file it wrote (utils/export/torchscript.py) loads it through here too.
"""

import warnings

from utils.backend import IS_ONEFLOW, torch


class TorchScriptUnavailableError(RuntimeError):
    """TorchScript runs on the PyTorch backend only; the message says to use --backend torch."""


def load_torchscript(f, device=None, extra_names=("config.txt",)):
    """Load a TorchScript file (a regular or a lite-interpreter one) and the named extra files saved inside it.

    Args:
        f: path of the .torchscript file.
        device: where to map its tensors (default CPU).
        extra_names: extra files to read from the archive (export writes ``config.txt``: stride, names, task).
    Returns:
        (module, {name: text}); a name absent from the file maps to ''.
    Raises:
        TorchScriptUnavailableError: on the OneFlow backend, which has no torch.jit.
    """
    if IS_ONEFLOW:
        raise TorchScriptUnavailableError(f"{f}: TorchScript files run on the PyTorch backend only (--backend torch)")
    extra = {name: "" for name in extra_names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation note in torch >= 2.9
        try:
            module = torch.jit.load(str(f), _extra_files=extra, map_location=device or "cpu")
        except RuntimeError:  # a lite-interpreter file (export --optimize) is not a regular TorchScript archive
            from torch.jit.mobile import _load_for_lite_interpreter  # noqa: PLC0415
            module = _load_for_lite_interpreter(str(f), map_location=device or "cpu")
    return module, {k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items()}
