"""Composition and validation: typos and wrong types fail at start, naming the key."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from tests.helpers import compose_config
from tinyml_exp.config import to_object
from tinyml_exp.errors import ConfigError
from tinyml_exp.pipeline import Options
from tinyml_exp.validate import validate


def test_defaults_compose_to_the_course_setup() -> None:
    cfg = compose_config()
    assert cfg.dataset.name == "fashion_mnist"
    assert cfg.architecture.name == "seed_cnn"
    assert cfg.compression.name == "none"
    assert cfg.target.name == "b_l475e_iot01a"
    for key in ("seed", "train.epochs", "train.batch_size", "train.learning_rate", "dataset.path"):
        assert cfg.get(key.split(".")[0]) is not None
    assert cfg.dataset.train_limit is None and cfg.dataset.test_limit is None
    assert cfg.tracking.uri and cfg.tracking.experiment


@pytest.mark.parametrize("group", ["dataset", "architecture", "compression", "target"])
def test_every_option_of_every_group_composes_into_its_class(group: str) -> None:
    from pathlib import Path

    from tests.helpers import CONFIG_DIR

    options = sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))
    assert options
    for option in options:
        obj = to_object(compose_config([f"{group}={option}"])[group])
        assert obj.name == option


def test_misspelt_key_fails_naming_it() -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_config(["train.epoks=3"])
    assert "epoks" in str(info.value) or "epoks" in str(info.value.__cause__)


def test_misspelt_option_key_fails_naming_it() -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_config(["dataset.trian_limit=3"])
    assert "trian_limit" in f"{info.value} {info.value.__cause__}"


def test_wrong_type_fails_naming_key_and_value() -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_config(["train.epochs=many"])
    text = f"{info.value} {info.value.__cause__}"
    assert "epochs" in text and "many" in text
    assert isinstance(info.value.__cause__, ValidationError | ConfigKeyError)


def test_unknown_option_lists_the_available_ones() -> None:
    with pytest.raises(Exception) as info:
        compose_config(["dataset=imagenet"])
    assert "imagenet" in str(info.value) and "fashion_mnist" in str(info.value)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.epochs=0", "train.epochs"),
        ("train.batch_size=-1", "train.batch_size"),
        ("train.learning_rate=0", "train.learning_rate"),
        ("dataset.val_fraction=1.5", "dataset.val_fraction"),
        ("dataset.train_limit=0", "dataset.train_limit"),
        ("compression.quantize=int4", "compression.quantize"),
    ],
)
def test_nonsense_values_fail_validation_naming_the_key(override: str, key: str) -> None:
    cfg = compose_config([override])
    with pytest.raises(ConfigError) as info:
        validate(cfg, Options.from_config(cfg))
    value = override.split("=", 1)[1]
    assert key in str(info.value) and value in str(info.value)


def test_cli_path_imports_no_heavy_package() -> None:
    """`--help` and `--cfg job` stay fast only while composing the config imports neither
    TensorFlow, MLflow nor NumPy (benchmarks/cli_startup.py measures the time)."""
    import subprocess
    import sys

    probe = (
        "import sys; sys.argv = ['tinyml_exp', '--cfg', 'job']\n"
        "import contextlib, io\n"
        "from tinyml_exp.__main__ import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main()\n"
        "heavy = sorted({'tensorflow', 'tf_keras', 'mlflow', 'numpy', 'matplotlib'} & set(sys.modules))\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip().splitlines()[-1:] in ([], [""]), f"imported on the CLI path: {done.stdout}"


def test_option_modules_never_import_the_config_machinery() -> None:
    """config.py imports every module of the group packages (discovery), so none of them may
    import config, the faces or the pipeline back, even lazily: that would be an import circle."""
    import ast
    import importlib
    import pkgutil
    from pathlib import Path

    from tinyml_exp.config import option_packages

    forbidden = ("tinyml_exp.config", "tinyml_exp.cli", "tinyml_exp.pipeline", "tinyml_exp.__main__")
    offenders = []
    for package in option_packages().values():
        module = importlib.import_module(package)
        paths = [Path(module.__file__)]
        paths += [
            Path(i.module_finder.path) / f"{i.name}.py"
            for i in pkgutil.iter_modules(getattr(module, "__path__", []))
        ]
        for path in (p for p in paths if p.is_file()):
            tree = ast.parse(path.read_text())
            type_checking = {
                id(n)
                for b in ast.walk(tree)
                if isinstance(b, ast.If) and "TYPE_CHECKING" in ast.unparse(b.test)
                for s in b.body
                for n in ast.walk(s)
            }
            for node in ast.walk(tree):
                lazy_or_top = isinstance(node, ast.ImportFrom) and id(node) not in type_checking
                if lazy_or_top and (node.module or "").startswith(forbidden):
                    offenders.append(f"{path.name}: from {node.module}")
    assert not offenders, offenders


@pytest.mark.parametrize("face", ["tinyml_exp.cli.profile", "tinyml_exp.cli.bench", "tinyml_exp.cli.report"])
def test_console_script_help_imports_no_heavy_package(face: str) -> None:
    import subprocess
    import sys

    probe = (
        "import contextlib, io, runpy, sys\n"
        "sys.argv = ['face', '--help']\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        f"    runpy.run_module({face!r}, run_name='__main__')\n"
        "print(','.join(sorted({'tensorflow', 'tf_keras', 'mlflow', 'numpy', 'matplotlib'} & set(sys.modules))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "", f"{face} --help imported: {done.stdout}"
