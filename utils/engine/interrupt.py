"""Stopping a training run at a safe point on Ctrl-C (SIGINT) or SIGTERM, with a message that says how to resume.

Python's default turns Ctrl-C into a KeyboardInterrupt wherever the interpreter happens to be (inside the data
loader, half-way through an optimizer step); OneFlow then exits with status 255 and no message, PyTorch with a
traceback, and SIGTERM kills the process outright. While training, ``SignalStop`` only records the first signal; the
trainer looks at it after every batch and after every epoch's checkpoint (where ``last.pt`` is complete), all DDP
ranks agree on it (utils.dist.Dist.stop_votes), and the run ends with ``utils.errors.Interrupted``: one line saying
what ``last.pt`` holds and the ``--resume`` command, exit status 130 (SIGINT) or 143 (SIGTERM). A second Ctrl-C
interrupts at once, for a user who cannot wait for the batch to finish.
"""

import os
import signal
import sys
import threading
from pathlib import Path

from utils.errors import Interrupted
from utils.files import ROOT

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalStop:
    """Context manager: while active, SIGINT/SIGTERM set ``signum`` instead of interrupting (main thread only; a
    no-op elsewhere, e.g. a run started from a worker thread). The previous handlers come back on exit."""

    def __init__(self):
        self.signum = None
        self._previous = {}
        self._pid = os.getpid()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
        return False

    def _handle(self, signum, frame):
        if os.getpid() != self._pid:  # a data-loader worker forked while active: the training process decides
            if signum == signal.SIGTERM:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            return  # Ctrl-C reaches the whole process group: workers keep serving until the batch is done
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C
        if self.signum is None:
            print(f"\n{signal.Signals(signum).name} received: stopping after this batch (last.pt keeps the last "
                  f"finished epoch; Ctrl-C again to stop at once)", file=sys.stderr, flush=True)
        self.signum = signum


def script_name():
    """The training script as the user ran it, for the resume command (train.py when not run from a file)."""
    p = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else Path("train.py")
    try:
        return p.relative_to(ROOT).as_posix() if p.suffix == ".py" else "train.py"
    except ValueError:  # the Python API from a script elsewhere: the command line's equivalent
        return "train.py"


def interrupted(signum, epoch, finished, last, saved_epoch):
    """The Interrupted error for a run stopped by ``signum`` during (or, ``finished``, after) ``epoch``.

    ``last``/``saved_epoch``: the last.pt on disk and the epoch it holds (None: no checkpoint yet).
    """
    name = signal.Signals(signum).name
    where = f"after epoch {epoch} was saved" if finished else f"during epoch {epoch} (its partial progress is dropped)"
    if saved_epoch is None:
        kept = "no epoch had finished, so there is nothing to resume: start the run again"
    else:
        kept = f"{last} holds epoch {saved_epoch}: resume with python {script_name()} --resume {last}"
    return Interrupted(f"training stopped by {name} {where}; {kept}", signum)
