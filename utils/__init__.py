"""The project's library. For ultralytics' notebooks and scripts, ``import utils`` also gives the names its
``utils/__init__.py`` defines (``utils.notebook_init()``, ``TryExcept``, ``threaded``, ``join_threads``, ``emojis``),
resolved on first use from the modules where they live."""


def __getattr__(name):
    """ultralytics' ``utils`` package names (for outside scripts only; the project imports them from their modules)."""
    if name in ("TryExcept", "threaded", "join_threads"):
        from utils import checks  # noqa: PLC0415 (compat path, see the layering test)

        return getattr(checks, name)
    if name == "emojis":
        from utils.log import emojis  # noqa: PLC0415 (compat path)

        return emojis
    if name == "notebook_init":
        from utils.torch_utils import notebook_init  # noqa: PLC0415 (compat path)

        return notebook_init
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
