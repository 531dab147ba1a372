"""Keep TensorFlow's C++ chatter off the terminal unless `verbose=true`.

TensorFlow 2.21 logs through absl before `TF_CPP_MIN_LOG_LEVEL` is read ("All log messages before
absl::InitializeLog() ...", oneDNN and CUDA notes, `failed call to cuInit`, `NodeDef mentions
attribute ...`), straight to file descriptor 2, so no Python logging setting reaches it. While a
run lasts, fd 2 is a pipe read by a thread that drops lines in absl's format (and TFLite's delegate
notes) and passes everything else through unchanged: Python's own log lines and tracebacks, and
the output of child processes (compiler, QEMU), which inherit the pipe.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

# absl / TSL: "I0000 00:00:1796169623.865129   24368 port.cc:153] ..."; TFLite's notes on stderr.
NATIVE_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|INFO: Created TensorFlow Lite \w+ delegate"
    rb"|INFO: Initialized TensorFlow Lite runtime)"
)
# Python loggers whose INFO lines are noise on a run's terminal (store creation, migrations).
_CHATTY_LOGGERS = ("mlflow", "alembic")


def is_native_chatter(line: bytes) -> bool:
    return NATIVE_LINE.match(line) is not None


def _write(out_fd: int, data: bytes) -> None:
    # A terminal that went away must not stop the pump: a full, undrained pipe would block every
    # writer of fd 2 (the run itself included), so the bytes are dropped instead.
    with suppress(OSError):
        os.write(out_fd, data)


def _pump(read_fd: int, out_fd: int) -> None:
    """Copy complete lines from the pipe to the terminal, minus the native chatter."""
    pending = b""
    while chunk := os.read(read_fd, 65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if not is_native_chatter(line))
        if b"\r" in pending:  # a progress bar redraws its line: show it now
            kept, pending = kept + pending, b""
        if kept:
            _write(out_fd, kept)
    if pending and not is_native_chatter(pending):
        _write(out_fd, pending)
    os.close(read_fd)


@contextmanager
def native_logs(verbose: bool) -> Iterator[None]:
    """Within: the terminal without native log lines (or, `verbose`, with everything, TensorFlow's
    INFO lines included)."""
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        yield
        return
    # MLflow sets its logger's level when imported (after this, in a run): its variable says WARNING.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    levels = {name: logging.getLogger(name).level for name in _CHATTY_LOGGERS}
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    sys.stderr.flush()
    terminal = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = threading.Thread(target=_pump, args=(read_fd, terminal), name="stderr-filter", daemon=True)
    pump.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes our write end: the pump reads to the end and stops
        pump.join(timeout=5)  # a child that still holds the pipe (a stray emulator) must not hang us
        if not pump.is_alive():  # else the pump still writes to it: leave it open
            os.close(terminal)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
