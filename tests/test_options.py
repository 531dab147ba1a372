""" "Adding an option = one YAML + one class": a new `conf/compression/foo.yaml` and the class
registered for `foo` compose, sweep and run with no other change (no list, no import to add)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, tiny_overrides
from tinyml_exp.config import compose, config_dir, option_classes, to_object
from tinyml_exp.errors import ConfigError

FOO_YAML = "# A new method: the base model, exported as float32, with one knob of its own.\nquantize: none\nscale: 2.0\n"
FOO_CLASS = """
from dataclasses import dataclass

from tinyml_exp.compress.none import NoCompression
from tinyml_exp.registry import register_option


@register_option("compression", "foo")
@dataclass
class Foo(NoCompression):
    scale: float = 1.0
"""


def conf_with_foo(tmp_path: Path) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(config_dir(), conf)
    (conf / "compression" / "foo.yaml").write_text(FOO_YAML)
    return conf


def test_a_new_option_composes_from_its_yaml_and_class(tmp_path: Path) -> None:
    conf = conf_with_foo(tmp_path)
    module_file = tmp_path / "foo_option.py"
    module_file.write_text(FOO_CLASS)
    spec = importlib.util.spec_from_file_location("foo_option", module_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # what discovery does for a module of tinyml_exp.compress

    assert option_classes("compression", conf)["foo"] is module.Foo
    foo = to_object(compose(["compression=foo"], conf=conf).compression)
    assert isinstance(foo, module.Foo) and foo.name == "foo" and foo.scale == 2.0
    assert to_object(compose(["compression=foo", "compression.scale=3"], conf=conf).compression).scale == 3.0
    with pytest.raises(Exception, match="scael"):
        compose(["compression=foo", "compression.scael=3"], conf=conf)
    # The course sweep takes it up: its list is `glob(*)` over the group's YAML files.
    from tests.test_experiments import swept_options

    full = compose(["experiment=seed_exercise6"], conf=conf, with_hydra=True)
    assert "foo" in swept_options("compression", full.hydra.sweeper.params.compression, conf)


def test_a_yaml_without_a_class_fails_naming_the_fix(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(config_dir(), conf)
    (conf / "architecture" / "bar.yaml").write_text("units: 3\n")
    with pytest.raises(
        ConfigError,
        match=r'conf/architecture/bar.yaml has no class: register one with @register_option\("architecture", "bar"\)',
    ):
        option_classes("architecture", conf)


def checkout_with_foo(tmp_path: Path) -> Path:
    """A copy of the checkout with only the two new files: foo.yaml and a module holding its class."""
    root = tmp_path / "checkout"
    junk = shutil.ignore_patterns("__pycache__", "build")
    # hydra_plugins: the default sweeper (conf/launch.yaml) lives there, as in the wheel.
    for name in ("tinyml_exp", "hydra_plugins", "conf", "firmware"):
        shutil.copytree(REPO / name, root / name, ignore=junk)
    (root / "conf" / "compression" / "foo.yaml").write_text(FOO_YAML)
    (root / "tinyml_exp" / "compress" / "foo.py").write_text(FOO_CLASS)
    return root


def app(root: Path, args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy, not this checkout
    command = [sys.executable, "-m", "tinyml_exp", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_the_app_discovers_a_new_option_module(tmp_path: Path) -> None:
    root = checkout_with_foo(tmp_path)
    done = app(root, ["--cfg", "job", "compression=foo"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "name: foo" in done.stdout and "scale: 2.0" in done.stdout
    listed = app(root, ["--help"], tmp_path)
    assert "foo" in next(line for line in listed.stdout.splitlines() if line.startswith("compression:"))


@pytest.mark.slow
def test_a_new_option_runs_end_to_end(tmp_path: Path) -> None:
    root = checkout_with_foo(tmp_path)
    args = [*tiny_overrides(tmp_path), "compression=foo", "evaluate.tflm=false", "firmware.enabled=false"]
    done = app(root, args, tmp_path, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        (status,) = db.execute("SELECT status FROM runs").fetchone()
        params = dict(db.execute("SELECT key, value FROM params WHERE key LIKE 'compression.%'"))
    assert status == "FINISHED"
    assert params.get("compression.name") == "foo" and params.get("compression.scale") == "2.0"


def test_a_name_beats_a_pattern_and_the_longest_pattern_wins() -> None:
    from tinyml_exp.registry import class_for, register_option

    classes = {key: type(f"C{i}", (), {}) for i, key in enumerate(("*", "q_*", "q_int*", "q_int8"))}
    for key, cls in classes.items():
        register_option("_registry_test", key)(cls)
    assert class_for("_registry_test", "q_int8") is classes["q_int8"]
    assert class_for("_registry_test", "q_int16") is classes["q_int*"]
    assert class_for("_registry_test", "q_float") is classes["q_*"]
    assert class_for("_registry_test", "other") is classes["*"]
    assert class_for("_registry_test_none", "other") is None
    with pytest.raises(ValueError, match="registered twice"):
        register_option("_registry_test", "q_int8")(type("Another", (), {}))
