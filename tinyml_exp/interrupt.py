"""Ctrl-C that is never lost, and `kill` treated as Ctrl-C.

Python raises KeyboardInterrupt wherever the main thread happens to be; when that is inside a
weakref callback or a `__del__` (frequent while TensorFlow frees graphs), the exception is printed
as "Exception ignored" and the run simply goes on. The handler installed here also remembers the
request, and `check()` — called at every stage and job boundary — raises it again.

SIGTERM (`kill`, `timeout`, SLURM at its time limit, a CI runner) takes the same path: Python's
default would end the process at once, leaving its MLflow runs RUNNING for ever and the sweep's
report unwritten. A second SIGTERM ends the process at once, as the default does.
"""

from __future__ import annotations

import os
import signal
import threading

_requested = threading.Event()


def _handler(signum: int, frame: object) -> None:
    if signum == signal.SIGTERM and _requested.is_set():  # asked twice: stop now
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
    _requested.set()
    raise KeyboardInterrupt(f"interrupted ({signal.Signals(signum).name})")


def install() -> None:
    """Route SIGINT and SIGTERM through the handler (main thread only; a signal the process was
    told to ignore stays ignored)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _handler)


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed, even if its first raise was swallowed."""
    if _requested.is_set():
        raise KeyboardInterrupt("interrupted (Ctrl-C or SIGTERM)")
