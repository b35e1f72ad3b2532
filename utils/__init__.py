"""The project's library. For ultralytics' notebooks and scripts, ``import utils`` also gives the names its
``utils/__init__.py`` defines (``utils.notebook_init()``, ``TryExcept``, ``threaded``, ``join_threads``, ``emojis``),
resolved on first use from utils/compat.py and utils/log.py, so that ``import utils`` itself loads no framework."""


def __getattr__(name):
    """ultralytics' ``utils`` package names (for outside scripts only; the project imports them from their modules)."""
    if name in ("TryExcept", "threaded", "join_threads", "notebook_init"):
        from utils import compat  # noqa: PLC0415 (compat path, see the layering test)

        return getattr(compat, name)
    if name == "emojis":
        from utils.log import emojis  # noqa: PLC0415 (compat path)

        return emojis
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
