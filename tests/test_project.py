"""Your own project: a `conf/` outside the package adds options to every group, shadows and
re-defaults the package's, through Hydra's search path (`--config-dir` / TINYML_EXP_CONFIG_DIR);
examples/kws_project runs from a directory outside the repo with the installed wheel."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, app_env, run_app
from tinyml_exp.config import compose, config_dir, option_classes, option_names, to_object
from tinyml_exp.data.synthetic import SyntheticDataset
from tinyml_exp.errors import ConfigError
from tinyml_exp.models.seed_cnn import SeedCNN

EXAMPLE = REPO / "examples" / "kws_project"


def project(conf: Path) -> list[Path]:
    """The search path `tinyml-exp --config-dir conf` composes from."""
    return [conf, config_dir()]


def test_the_example_adds_an_option_to_every_group_beside_the_packages() -> None:
    dirs = project(EXAMPLE / "conf")
    mine = {"architecture": "kws_cnn", "dataset": "kws_words", "compression": "kws_prune_int8"}
    mine |= {"target": "nucleo_l432kc", "experiment": "kws_sweep"}
    for group, name in mine.items():
        assert {name} < set(option_names(group, dirs)) and set(option_names(group)) < set(
            option_names(group, dirs)
        )
    cfg = compose([], conf=dirs)  # the project's defaults: conf/project/default.yaml
    assert [cfg[g].name for g in ("architecture", "dataset", "compression", "target")] == [
        "kws_cnn",
        "kws_words",
        "kws_prune_int8",
        "nucleo_l432kc",
    ]
    network, data = to_object(cfg.architecture), to_object(cfg.dataset)
    # No class of their own: the class of the option their defaults list extends, their values.
    assert type(network) is SeedCNN and network.filters == 8
    assert type(data) is SyntheticDataset and data.image_shape == [20, 10]
    assert data.class_names == ["yes", "no", "up", "down"] and cfg.train.epochs == 1
    assert to_object(cfg.compression).sparsity == 0.3 and cfg.target.ram_bytes == 65536
    # An experiment overrides the project's defaults; the command line overrides both.
    swept = compose(["experiment=kws_sweep", "architecture.filters=4"], conf=dirs, with_hydra=True)
    assert swept.compression.name == "ptq_int8" and swept.architecture.filters == 4
    assert swept.hydra.sweeper.params.architecture == "kws_cnn,seed_cnn"
    assert compose(["architecture=mlp", "train.epochs=3"], conf=dirs).architecture.name == "mlp"


def test_a_project_option_shadows_the_packages_and_may_extend_its_own(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "architecture").mkdir(parents=True)
    (conf / "architecture" / "seed_cnn.yaml").write_text("filters: 3\n")
    (conf / "architecture" / "tiny.yaml").write_text("defaults: [kws_cnn]\nkernel_size: 5\n")
    shutil.copy(EXAMPLE / "conf" / "architecture" / "kws_cnn.yaml", conf / "architecture")
    dirs = project(conf)
    # Shadowed: the project's file wins, the package's class stays (its defaults for unset keys).
    shadowed = to_object(compose(["architecture=seed_cnn"], conf=dirs).architecture)
    assert type(shadowed) is SeedCNN and shadowed.filters == 3 and shadowed.kernel_size == 3
    tiny = to_object(compose(["architecture=tiny"], conf=dirs).architecture)
    assert type(tiny) is SeedCNN and (tiny.name, tiny.filters, tiny.kernel_size) == ("tiny", 8, 5)
    assert compose([], conf=dirs).dataset.name == "fashion_mnist"  # no project/default.yaml: the package's


def test_a_project_option_with_no_class_and_a_project_config_yaml_name_the_fix(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "architecture").mkdir(parents=True)
    (conf / "architecture" / "my_net.yaml").write_text("units: 3\n")
    with pytest.raises(ConfigError) as info:
        option_classes("architecture", project(conf))
    message = str(info.value)
    assert f"{conf}/architecture/my_net.yaml has no class" in message
    assert '@register_option("architecture", "my_net")' in message
    suggested = re.search(r"`defaults: \[(\w+)\]`", message)  # a package option to extend
    assert suggested is not None and suggested.group(1) in option_names("architecture", config_dir())
    (conf / "config.yaml").write_text("train:\n  epochs: 1\n")
    with pytest.raises(
        ConfigError,
        match=r"config.yaml would replace tinyml_exp's own config: move its values to .*project/default.yaml",
    ):
        compose([], conf=project(conf))


def test_config_dir_flag_and_variable_compose_alike(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE / "conf", tmp_path / "conf")
    by_flag = run_app(["--config-dir", "conf", "--cfg", "job", "target=nucleo_l432kc"], tmp_path, timeout=120)
    assert by_flag.returncode == 0, by_flag.stderr[-2000:]
    assert "name: kws_cnn" in by_flag.stdout and "board: NUCLEO-L432KC" in by_flag.stdout
    by_env = run_app(
        ["--cfg", "job", "target=nucleo_l432kc"], tmp_path, 120, {"TINYML_EXP_CONFIG_DIR": "conf"}
    )
    assert by_env.returncode == 0 and by_env.stdout == by_flag.stdout, by_env.stderr[-2000:]
    listed = run_app(["--config-dir", "conf", "--help"], tmp_path, timeout=120)
    architectures = re.search(r"^architecture: (.*)$", listed.stdout, re.M)
    assert architectures is not None  # the project's option listed beside the package's
    assert {"kws_cnn", "mlp", "resnet8", "seed_cnn"} <= set(architectures.group(1).split(", "))
    # The other faces read the variable: the profile CLI lists (and composes) the project's board.
    profile = [sys.executable, "-m", "tinyml_exp.cli.profile", "--help"]
    env = app_env({"TINYML_EXP_CONFIG_DIR": str(tmp_path / "conf")})
    helped = subprocess.run(profile, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert helped.returncode == 0 and "nucleo_l432kc" in helped.stdout, helped.stderr[-2000:]
    env["TINYML_EXP_CONFIG_DIR"] = str(tmp_path / "nowhere")
    bad = subprocess.run(profile, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("tinyml-exp-profile: config directory "), bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    missing = run_app(["--config-dir", "nowhere", "--cfg", "job"], tmp_path, timeout=120)
    assert missing.returncode != 0
    assert (
        missing.stderr.strip()
        == "tinyml-exp: --config-dir nowhere: no such directory (give your project's conf/)"
    )


def runs(db: Path, experiment: str) -> list[tuple[str, dict[str, str]]]:
    """(status, {tag: value}) of the runs of `experiment` that ran a model (sweep parents have none)."""
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT r.run_uuid, r.status FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id "
            "WHERE e.name = ?",
            (experiment,),
        ).fetchall()
        found = []
        for run_id, status in rows:
            tags = dict(con.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)))
            if "architecture" in tags:
                found.append((status, tags))
    return found


@pytest.mark.slow
def test_the_example_project_runs_outside_the_repo_with_the_installed_wheel(tmp_path: Path) -> None:
    from tests.test_wheel import install_wheel, run_installed

    _, bin_dir = install_wheel(tmp_path)
    where = tmp_path / "kws_project"
    shutil.copytree(EXAMPLE, where)
    assert not where.is_relative_to(REPO)

    single = run_installed(bin_dir, "tinyml-exp", ["--config-dir", "conf"], where)
    assert single.returncode == 0, (single.stdout + single.stderr)[-4000:]
    ((status, tags),) = runs(where / "mlflow.db", "kws_project")
    assert status == "FINISHED"
    assert {k: tags[k] for k in ("architecture", "dataset", "compression", "target")} == {
        "architecture": "kws_cnn",
        "dataset": "kws_words",
        "compression": "kws_prune_int8",
        "target": "nucleo_l432kc",
    }

    sweep = run_installed(
        bin_dir, "tinyml-exp", ["-m", "--config-dir", "conf", "experiment=kws_sweep"], where
    )
    assert sweep.returncode == 0, (sweep.stdout + sweep.stderr)[-4000:]
    jobs = runs(where / "mlflow.db", "kws_sweep")
    assert sorted(status for status, _ in jobs) == ["FINISHED", "FINISHED"]
    # The project's network next to the package's, on the project's data and board.
    assert sorted(tags["architecture"] for _, tags in jobs) == ["kws_cnn", "seed_cnn"]
    assert {(tags["dataset"], tags["target"]) for _, tags in jobs} == {("kws_words", "nucleo_l432kc")}
