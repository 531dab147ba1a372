"""Child process for TFLM arena measurements: `python _arena_child.py MODEL.tflite`.

Runs as a plain script (no `tinyml_exp` import) so it starts in ≈ 0.25 s. A too-small arena can
crash TFLM's allocator (segfault) instead of raising, so the parent talks to this process over
stdin/stdout, one JSON object per line, and restarts it when it dies:

  {"cmd": "report", "arena": N, "runs": K} -> {"ok", "total", "head", "tail", "invoke_ms", "error"}
  {"cmd": "try", "arena": N}               -> {"ok", "error"}   (init + one invoke)
  {"cmd": "quit"}

TFLM writes its errors and `print_allocations()` to the C-level stderr; each command redirects
file descriptor 2 to a temporary file so the text can be returned in the reply.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
_HEAD = re.compile(r"Arena allocation head (\d+) bytes")
_TAIL = re.compile(r"Arena allocation tail (\d+) bytes")


def _captured(fn: Callable[[], Any]) -> tuple[Any, str, BaseException | None]:
    """Run fn with fd 2 redirected to a temp file; returns (result, stderr text, exception)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        result, error = None, None
        try:
            result = fn()
        except Exception as e:  # the interpreter raises RuntimeError; report any failure as data
            error = e
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    return result, text, error


def _interpreter(model: bytes, arena: int):
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena)
    detail = interpreter.get_input_details(0)
    sample = np.zeros(tuple(int(d) for d in detail["shape"]), dtype=detail["dtype"])
    interpreter.set_input(sample, 0)
    interpreter.invoke()
    return interpreter


def _error_text(text: str, error: BaseException | None) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    parts = [*lines[:4], f"{type(error).__name__}: {error}" if error else ""]
    return " | ".join(p for p in parts if p)


def _report(model: bytes, arena: int, runs: int) -> dict[str, Any]:
    interpreter, text, error = _captured(lambda: _interpreter(model, arena))
    if error is not None:
        return {"ok": False, "error": _error_text(text, error)}
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        timings.append((time.perf_counter() - start) * 1000.0)
    _, text, error = _captured(interpreter.print_allocations)
    figures = {}
    for key, pattern in (("total", _TOTAL), ("head", _HEAD), ("tail", _TAIL)):
        match = pattern.search(text)
        figures[key] = int(match.group(1)) if match else None
    if figures["total"] is None:
        return {
            "ok": False,
            "error": "print_allocations() printed no arena total: " + _error_text(text, error),
        }
    return {"ok": True, **figures, "invoke_ms": timings}


def _try(model: bytes, arena: int) -> dict[str, Any]:
    _, text, error = _captured(lambda: _interpreter(model, arena))
    return {"ok": error is None, "error": _error_text(text, error) if error else ""}


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        model = f.read()
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "quit":
            break
        if request["cmd"] == "report":
            reply = _report(model, int(request["arena"]), int(request.get("runs", 0)))
        else:
            reply = _try(model, int(request["arena"]))
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
