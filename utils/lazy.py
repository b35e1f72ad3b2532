"""Packages whose public names load from their submodules on first use (utils.data, utils.classify).

``from utils.data import check_dataset`` then imports only utils/data/dataset_yaml.py, so a light piece (a dataset
YAML check, a synthetic dataset writer) needs no deep-learning framework, OpenCV or matplotlib.

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"dataset_yaml": ("check_dataset",), ...})
"""

import importlib
import sys


def lazy_exports(package, exports):
    """Module-level ``(__getattr__, __dir__, __all__)`` for ``package``.

    Args:
        package: the package's ``__name__``. exports: {submodule: names it defines that the package offers}.
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        setattr(sys.modules[package], name, value)  # loaded once: later lookups are plain attributes
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__, sorted(where)
