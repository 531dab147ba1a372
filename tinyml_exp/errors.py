"""Errors a user can fix. The CLI prints them as one line (no traceback) and exits non-zero."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tinyml_exp.results import StageResult


class TinymlExpError(Exception):
    """Base class: the message names what is wrong and how to fix it."""


class ConfigError(TinymlExpError):
    """A config value, or a combination of values across groups, that cannot work."""


class DataError(TinymlExpError):
    """A dataset that is missing or malformed."""


class StageError(TinymlExpError):
    """A stage could not finish; the run is marked FAILED with this reason. `partial` holds what
    the stage measured before it failed (the pipeline logs it first), or None."""

    def __init__(self, message: str, partial: StageResult | None = None) -> None:
        super().__init__(message)
        self.partial = partial


class StageInterrupted(KeyboardInterrupt):
    """Ctrl-C inside a stage that had measured something: the run ends KILLED, after the pipeline
    logged `partial`."""

    def __init__(self, partial: StageResult) -> None:
        super().__init__()
        self.partial = partial
