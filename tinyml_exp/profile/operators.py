"""Pre-flight operator check: which backend can run each operator of a `.tflite`, before export.

Run right after conversion so an unsupported operator is reported in seconds, not at firmware
build or device start-up.

- TFLM: the operators the installed `tflite-micro` build registers, read from the `Register_<OP>`
  symbols of its `_runtime.so` (the Python interpreter registers every kernel it was built with,
  so this is the list a firmware's op resolver can draw from). Names only: data types are checked
  by each kernel's Prepare, which the arena probe exercises by really initialising the interpreter.
- CMSIS-NN: TFLM runs every TFLM operator; `CMSIS_NN_OPTIMIZED` are those with a CMSIS-NN kernel
  (tflite-micro `tensorflow/lite/micro/kernels/cmsis_nn/`), the rest fall back to reference code.
- Generated C: `tinyml_exp.export.cgen.SUPPORTED_OPERATORS` (imported lazily; that package is
  another stage's). Its data-type rules are checked by the generator itself.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from tinyml_exp.tflite_graph import Graph

log = logging.getLogger(__name__)

BACKENDS = ("tflm_reference", "tflm_cmsis_nn", "cgen")

# Operators with a CMSIS-NN kernel in TFLM (int8/int16 only; float runs the reference kernel).
CMSIS_NN_OPTIMIZED = frozenset(
    {
        "ADD",
        "BATCH_MATMUL",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "MAXIMUM",
        "MINIMUM",
        "MUL",
        "MAX_POOL_2D",
        "AVERAGE_POOL_2D",
        "PAD",
        "SOFTMAX",
        "SVDF",
        "TRANSPOSE_CONV",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
    }
)

# Itanium-mangled `tflite::Register_<OP>()`: a decimal length, then the identifier.
_REGISTER_SYMBOL = re.compile(rb"(\d+)(Register_[A-Z0-9_]+)")


@lru_cache(maxsize=1)
def tflm_operators() -> frozenset[str]:
    """Operator names the installed tflite-micro build registers (empty if it is not installed)."""
    try:
        from tflite_micro.python.tflite_micro import _runtime
    except ImportError:
        log.warning("tflite-micro is not installed: TFLM operator support unknown")
        return frozenset()
    names = set()
    for match in _REGISTER_SYMBOL.finditer(Path(_runtime.__file__).read_bytes()):
        length, ident = int(match.group(1)), match.group(2)
        if len(ident) >= length:
            names.add(ident[:length].decode()[len("Register_") :])
    return frozenset(names)


def cgen_operators() -> frozenset[str] | None:
    """Operators the C generator lowers, or None if the generator is not available."""
    try:
        from tinyml_exp.export.cgen import SUPPORTED_OPERATORS
    except ImportError as e:
        log.warning("C generator not available (%s): generated-C operator support unknown", e)
        return None
    return frozenset(SUPPORTED_OPERATORS)


@dataclass(frozen=True)
class OperatorCheck:
    """The model's distinct (operator, version) pairs and, per backend, the ones it cannot run."""

    operators: tuple[tuple[str, int], ...]
    unsupported: dict[str, tuple[str, ...]] = field(default_factory=dict)  # backend -> operator names
    unknown: tuple[str, ...] = ()  # backends whose support list is not available

    def supported(self, backend: str) -> bool | None:
        """True / False, or None when the backend's list is not available."""
        if backend in self.unknown:
            return None
        return not self.unsupported.get(backend)

    @property
    def operator_list(self) -> str:
        return ", ".join(f"{name} v{version}" for name, version in self.operators)

    def tags(self) -> dict[str, str]:
        tags = {"ops.list": self.operator_list}
        for backend in BACKENDS:
            ok = self.supported(backend)
            tags[f"ops.{backend}_supported"] = "unknown" if ok is None else str(ok).lower()
            if ok is False:
                tags[f"ops.{backend}_unsupported"] = ", ".join(self.unsupported[backend])
        return tags

    def markdown(self) -> str:
        lines = [
            "| operator | version | " + " | ".join(BACKENDS) + " |",
            "|---|---|" + "---|" * len(BACKENDS),
        ]
        for name, version in self.operators:
            cells = []
            for backend in BACKENDS:
                if backend in self.unknown:
                    cells.append("?")
                else:
                    cells.append("no" if name in self.unsupported.get(backend, ()) else "yes")
            lines.append(f"| {name} | {version} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def check_operators(graph: Graph) -> OperatorCheck:
    """Which of the graph's operators each backend supports (by name; see module docstring)."""
    names = [name for name, _ in graph.opcodes]
    tflm = tflm_operators()
    lists: dict[str, frozenset[str] | None] = {
        "tflm_reference": tflm or None,
        "tflm_cmsis_nn": tflm or None,
        "cgen": cgen_operators(),
    }
    unsupported: dict[str, tuple[str, ...]] = {}
    unknown = []
    for backend, known in lists.items():
        if known is None:
            unknown.append(backend)
            continue
        missing = tuple(dict.fromkeys(n for n in names if n.removeprefix("CUSTOM:") not in known))
        if missing:
            unsupported[backend] = missing
    check = OperatorCheck(operators=graph.opcodes, unsupported=unsupported, unknown=tuple(unknown))
    for backend, missing in unsupported.items():
        log.warning("backend %s does not support %s", backend, ", ".join(missing))
    return check
