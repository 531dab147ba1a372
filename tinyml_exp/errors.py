"""Errors a user can fix. The CLI prints them as one line (no traceback) and exits non-zero."""


class TinymlExpError(Exception):
    """Base class: the message names what is wrong and how to fix it."""


class ConfigError(TinymlExpError):
    """A config value, or a combination of values across groups, that cannot work."""


class DataError(TinymlExpError):
    """A dataset that is missing or malformed."""


class StageError(TinymlExpError):
    """A stage could not finish; the run is marked FAILED with this reason."""
