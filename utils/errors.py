"""The errors a user can fix, and the one handler that reports them in every script.

A bad path, flag value or file content is not a bug in this code: the user needs one line saying what is wrong and
what to do, not a traceback. Every such error derives from ``UserError``; the existing classes (DatasetError,
WeightsError, ...) keep their old bases as well, so callers catching ``ValueError`` or ``FileNotFoundError`` still
work. Every script's ``__main__`` runs inside ``guard()`` (training scripts through ``utils.dist.call_main``):

    ERROR: <what is wrong, naming the file/flag/value, and what to do>      exit status 1

Anything else (our bugs) keeps its traceback. ``YOLOV5_TRACEBACK=1`` shows the traceback of user errors too, for bug
reports (``--verbose`` is taken: val.py and classify use it for other output). A run stopped by Ctrl-C / SIGTERM
exits 130 / 143, the shell's convention for death by that signal.
"""

import contextlib
import errno
import os
import signal
import sys
import traceback

import yaml

TRACEBACK_ENV = "YOLOV5_TRACEBACK"
# errors raised by the OS or a library that always concern the user's files or machine, never our logic: a missing
# path, a full or read-only disk, permissions, a malformed YAML file. Reported in one line like UserError.
_OS_HINTS = {errno.ENOENT: "check the path", errno.ENOSPC: "free disk space, then run again",
             errno.EDQUOT: "free disk space, then run again", errno.EROFS: "write to another folder",
             errno.EACCES: "fix the permissions or write to another folder",
             errno.EPERM: "fix the permissions or write to another folder"}


class UserError(Exception):
    """Something the user can fix: a path, a flag value, the content of a file. One 'ERROR:' line, exit 1."""

    exit_code = 1
    label = "ERROR"


class FlagError(UserError, ValueError):
    """A flag (or run() keyword) value outside its valid range; the message names the flag and the range."""


class InputError(UserError, ValueError):
    """A file the user gave (hyp YAML, image, ...) whose content cannot be used; the message names the file."""


class DatasetError(UserError, FileNotFoundError):
    """The dataset named by a YAML is not usable here; the message says what is missing and how to fix it."""


class DatasetYAMLError(InputError):
    """A dataset YAML (``--data``) whose content cannot be used; the message names the file and the key."""


class Interrupted(UserError):
    """Training stopped at a safe point by SIGINT/SIGTERM; the message says what was kept and how to resume.

    ``reported``: the message was already logged (DDP: by rank 0, before every rank exits).
    """

    label = "Interrupted"

    def __init__(self, message, signum=signal.SIGINT, reported=False):
        super().__init__(message)
        self.signum, self.reported = int(signum), reported
        self.exit_code = 128 + self.signum


def is_user_error(e):
    """True for errors reported in one line: UserError, a missing file, a full or read-only disk, permissions, a
    malformed YAML file."""
    if isinstance(e, (UserError, FileNotFoundError, yaml.YAMLError)):
        return True
    return isinstance(e, OSError) and e.errno in _OS_HINTS


def one_line(e):
    """'ERROR: message' of a user error, its lines joined (a terminal shows one line; logs grep one line)."""
    if isinstance(e, OSError) and not isinstance(e, UserError) and e.strerror:
        where = f" {e.filename}" if e.filename else ""
        text = f"{e.strerror}:{where} ({_OS_HINTS.get(e.errno, 'check the path')})"
    elif isinstance(e, yaml.YAMLError):
        text = f"not valid YAML: {e}"
    else:
        text = str(e) or type(e).__name__
    label = getattr(e, "label", "ERROR")
    return f"{label}: " + " ".join(part.strip() for part in text.splitlines() if part.strip())


def exit_code(e):
    return getattr(e, "exit_code", 1)


def show_traceback():
    return os.getenv(TRACEBACK_ENV, "").strip().lower() not in ("", "0", "false", "no")


def report(e, file=None):
    """Print a user error as one line on stderr (its traceback first when YOLOV5_TRACEBACK is set)."""
    file = file or sys.stderr
    if show_traceback():
        traceback.print_exception(type(e), e, e.__traceback__, file=file)
    if not getattr(e, "reported", False):
        print(one_line(e), file=file, flush=True)


@contextlib.contextmanager
def guard():
    """Run a script's main: user errors become one line and their exit status; Ctrl-C exits 130 with a word.

    Other exceptions propagate unchanged (traceback, exit 1): they are bugs to report.
    """
    try:
        yield
    except KeyboardInterrupt:
        sys.stdout.flush()
        print("\nInterrupted (Ctrl-C)", file=sys.stderr, flush=True)
        sys.exit(128 + signal.SIGINT)
    except Exception as e:
        if not is_user_error(e):
            raise
        sys.stdout.flush()
        report(e)
        sys.exit(exit_code(e))
