"""Your own network from your own Python: `function: my_models:build_net` (or `path/to/file.py:build_net`).

The function is called as `function(input_shape, num_classes, **kwargs)` with `kwargs` from the
YAML (each a sweepable key: `architecture.kwargs.width=16`) and returns a `tf_keras.Model`
(`import tf_keras as keras`: the Keras 2 the pipeline trains, quantizes and converts). A module
name is imported from the Python path or the directory you run from; a `.py` path is read as is.
An option named `builder` or `<anything>_builder` is one of these.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import MISSING

from tinyml_exp.errors import ConfigError
from tinyml_exp.models.base import Architecture
from tinyml_exp.registry import register_option

if TYPE_CHECKING:
    import tf_keras


def import_function(spec: str) -> Callable[..., Any]:
    """`module:function` or `file.py:function` -> the function; `ConfigError` naming what failed."""
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise ConfigError(f"architecture.function={spec!r}: expected 'module:function' or 'file.py:function'")
    try:
        module = _load_file(Path(where)) if where.endswith(".py") else _import_module(where)
    except ConfigError:
        raise
    except Exception as e:  # any error the user's module raises while it is imported
        raise ConfigError(
            f"architecture.function={spec!r}: importing {where} failed: {type(e).__name__}: {e}"
        ) from e
    function = getattr(module, attr, None)
    if not callable(function):
        raise ConfigError(f"architecture.function={spec!r}: {where} has no function {attr!r}")
    return function


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is None or not name.startswith(e.name):
            raise  # the module exists but imports something missing: reported with its name
    cwd = str(Path.cwd())
    if cwd in sys.path:
        raise ConfigError(f"architecture.function: no module {name!r} on the Python path or in {cwd}")
    sys.path.insert(0, cwd)  # the user's project directory, as `python -m` would have it
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        raise ConfigError(f"architecture.function: no module {name!r} on the Python path or in {cwd}") from e
    finally:
        sys.path.remove(cwd)


def _load_file(path: Path) -> Any:
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"architecture.function: {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"tinyml_exp_user_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@register_option("architecture", "builder")
@register_option("architecture", "*_builder")
@dataclass
class Builder(Architecture):
    function: str = MISSING  # module:function or path/to/file.py:function
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> tf_keras.Model:
        import tf_keras as keras

        function = import_function(self.function)
        try:
            model = function(tuple(input_shape), num_classes, **dict(self.kwargs))
        except TypeError as e:
            raise ConfigError(
                f"architecture.function={self.function!r} called with architecture.kwargs: {e}"
            ) from e
        if not isinstance(model, keras.Model):
            raise ConfigError(
                f"architecture.function={self.function!r} returned {type(model).__name__}, not a tf_keras.Model "
                "(build it with `import tf_keras as keras`)"
            )
        return model

    def fingerprint(self) -> str:
        """The digest of the function's source file: editing it trains a new base model."""
        import hashlib
        import inspect

        try:
            source = inspect.getsourcefile(import_function(self.function))
        except TypeError:  # a builtin or C function: no file to follow
            return ""
        return hashlib.sha256(Path(source).read_bytes()).hexdigest()[:20] if source else ""
