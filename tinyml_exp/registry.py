"""The option registry: which class gives `conf/<group>/<name>.yaml` its schema and behaviour.

A leaf module (it imports nothing of the package), so every option module can register itself
without importing the config machinery. An option's name is its YAML file's name; a class is
registered for a name or a glob pattern of names (`ptq_*`; `*` = every option of the group that
has no class of its own), so one class can serve many YAML files without listing them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_OPTIONS: dict[tuple[str, str], type] = {}


def register_option(group: str, name: str = "*") -> Callable[[type[T]], type[T]]:
    """Class decorator: the dataclass that is the schema of the `group` options matching `name`."""

    def decorator(cls: type[T]) -> type[T]:
        key = (group, name)
        # The same class imported again (a module reloaded) replaces itself; another class is a clash.
        if key in _OPTIONS and _qualified(_OPTIONS[key]) != _qualified(cls):
            raise ValueError(
                f"config option {group}/{name} registered twice: {_qualified(_OPTIONS[key])} and {_qualified(cls)}"
            )
        _OPTIONS[key] = cls
        return cls

    return decorator


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def registered_options(group: str) -> dict[str, type]:
    """{name or pattern: class} registered for `group`."""
    return {name: cls for (g, name), cls in _OPTIONS.items() if g == group}


def class_for(group: str, option: str) -> type | None:
    """The class of option `option`: registered for its exact name, else for the most specific
    pattern that matches it (the longest), else None."""
    registered = registered_options(group)
    if option in registered:
        return registered[option]
    matches = sorted((p for p in registered if fnmatch.fnmatchcase(option, p)), key=len, reverse=True)
    if len(matches) > 1 and len(matches[0]) == len(matches[1]):
        raise ValueError(f"{group}/{option} matches {matches[0]!r} and {matches[1]!r}: register one by name")
    return registered[matches[0]] if matches else None


def to_object(node: Any) -> Any:
    """The option object (dataclass instance) for a composed group node."""
    from omegaconf import OmegaConf

    return OmegaConf.to_object(node)
