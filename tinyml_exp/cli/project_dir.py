"""`tinyml-exp --config-dir DIR`: a project's own conf/, known to every part of the run.

Hydra puts `--config-dir` first on its search path; the schemas (`tinyml_exp.config.store_schemas`)
and `--help` need the same directory before Hydra starts, and the other faces read
`TINYML_EXP_CONFIG_DIR`. So the flag sets the variable, and the variable alone (no flag) becomes
the flag: either one gives the same composition.
"""

from __future__ import annotations

import os
from pathlib import Path

from tinyml_exp.config import CONFIG_DIR_ENV, project_config_dir
from tinyml_exp.errors import ConfigError

FLAGS = ("--config-dir", "-cd")


def _flag_value(args: list[str]) -> tuple[str | None, list[str]]:
    """(the flag's value, the arguments without the flag and its value)."""
    value, rest, i = None, [], 0
    while i < len(args):
        arg = args[i]
        if arg in FLAGS:
            if i + 1 == len(args):
                raise ConfigError(f"{arg} needs a directory: tinyml-exp {arg} conf ...")
            value, i = args[i + 1], i + 2
            continue
        if arg.startswith(tuple(f"{flag}=" for flag in FLAGS)):
            value = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return value, rest


def use_project_config_dir(args: list[str]) -> list[str]:
    """The command line for Hydra: `--config-dir` given -> TINYML_EXP_CONFIG_DIR set to it
    (checked); only the variable set -> `--config-dir` added."""
    value, _ = _flag_value(args)
    if value is not None:
        path = Path(value).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(f"--config-dir {value}: no such directory (give your project's conf/)")
        os.environ[CONFIG_DIR_ENV] = str(path)
        return args
    project = project_config_dir()
    return ["--config-dir", str(project), *args] if project is not None else args


def without_config_dir(args: list[str]) -> list[str]:
    """The arguments without `--config-dir DIR` (what `--help` composes from)."""
    return _flag_value(args)[1]
