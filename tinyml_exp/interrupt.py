"""Ctrl-C that is never lost.

Python raises KeyboardInterrupt wherever the main thread happens to be; when that is inside a
weakref callback or a `__del__` (frequent while TensorFlow frees graphs), the exception is printed
as "Exception ignored" and the run simply goes on. The handler installed here also remembers the
request, and `check()` — called at every stage and job boundary — raises it again.
"""

from __future__ import annotations

import signal
import threading

_requested = threading.Event()


def _handler(signum: int, frame: object) -> None:
    _requested.set()
    raise KeyboardInterrupt


def install() -> None:
    """Route SIGINT through the handler (main thread only; leaves an ignored SIGINT ignored)."""
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    ):
        signal.signal(signal.SIGINT, _handler)


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed, even if its first raise was swallowed."""
    if _requested.is_set():
        raise KeyboardInterrupt("interrupted (Ctrl-C)")
