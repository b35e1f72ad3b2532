"""Logging as ultralytics YOLOv5 prints it: one 'yolov5' logger, rank-0 only, coloured strings on terminals."""

import logging
import os
import platform
import sys

LOGGING_NAME = "yolov5"
VERBOSE = str(os.getenv("YOLOv5_VERBOSE", True)).lower() == "true"
TQDM_BAR_FORMAT = "{l_bar}{bar:10}{r_bar}"  # every progress bar: a 10-character bar between the counts


def _rank():
    return int(os.getenv("RANK", -1))


def set_logging(name=LOGGING_NAME, verbose=True):
    """Configure the named logger once: INFO on rank -1/0, ERROR elsewhere, message-only format on stdout."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    level = logging.INFO if verbose and _rank() in {-1, 0} else logging.ERROR
    logger.setLevel(level)
    for h in logger.handlers:
        h.setLevel(level)
    return logger


LOGGER = set_logging(LOGGING_NAME, verbose=VERBOSE)


def emojis(s=""):
    """Strip emojis where the console cannot print them (Windows)."""
    return s.encode().decode("ascii", "ignore") if platform.system() == "Windows" else s


_COLORS = {
    "black": "\033[30m", "red": "\033[31m", "green": "\033[32m", "yellow": "\033[33m", "blue": "\033[34m",
    "magenta": "\033[35m", "cyan": "\033[36m", "white": "\033[37m", "bright_black": "\033[90m",
    "bright_red": "\033[91m", "bright_green": "\033[92m", "bright_yellow": "\033[93m", "bright_blue": "\033[94m",
    "bright_magenta": "\033[95m", "bright_cyan": "\033[96m", "bright_white": "\033[97m", "end": "\033[0m",
    "bold": "\033[1m", "underline": "\033[4m"}


def colorstr(*args):
    """colorstr('blue', 'bold', 'text'): text wrapped in ANSI codes (default blue bold), as ultralytics."""
    *styles, text = args if len(args) > 1 else ("blue", "bold", args[0])
    return "".join(_COLORS[s] for s in styles) + f"{text}" + _COLORS["end"]
