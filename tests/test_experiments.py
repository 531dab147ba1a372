"""Every named study in conf/experiment/ composes, and runs end to end on a fast override."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import CONFIG_DIR, compose_config, run_app
from tinyml_exp.config import option_names

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
# Seconds instead of minutes: synthetic data, one epoch, small test split, no TFLM pass.
FAST = ["dataset=synthetic", "train.epochs=1", "dataset.num_test=100", "evaluate.tflm=false"]
# Per study: a cut-down sweep (CLI sweep overrides replace the study's own lists).
CUT_DOWN = {
    "seed_exercise6": ["compression=none,ptq_int8,pqat"],
    "targets": ["target=b_l475e_iot01a,pico_rp2040"],
    "search": ["hydra.sweeper.n_trials=2", "compression=choice(none,ptq_int8)"],
    # end to end (on the emulated board, killed and resumed) in tests/test_study.py
    "search_hil": None,
    # FAST's dataset=synthetic is put back to the data of each architecture's input shape
    "mlperf_tiny": [
        "architecture=ds_cnn,fc_autoencoder",
        "dataset=synthetic_${architecture}",
        "dataset.train_limit=300",
    ],
}


def swept_options(group: str, value: str, conf: Path | None = None) -> set[str]:
    """The options of `group` a sweep value names, as Hydra's basic sweeper expands it (a list,
    or `glob(...)` over the group's YAML files)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Glob

    parsed = OverridesParser.create().parse_override(f"{group}={value}").value()
    if isinstance(parsed, Glob):
        return set(parsed.filter(option_names(group, conf)))
    return {str(v).strip() for v in parsed.list} if hasattr(parsed, "list") else {str(parsed)}


def test_every_experiment_is_covered_here() -> None:
    assert EXPERIMENTS and set(EXPERIMENTS) == set(CUT_DOWN)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_every_swept_option_exists(experiment: str) -> None:
    full = compose_config([f"experiment={experiment}"], with_hydra=True)
    sweep = full.hydra.sweeper.params or {}
    assert sweep, f"{experiment} sweeps nothing"
    groups = {"compression", "target", "architecture", "dataset"}
    for key, value in sweep.items():
        if key in groups and "(" not in str(value):  # a plain list of options
            for option in str(value).split(","):
                compose_config([f"experiment={experiment}", f"{key}={option.strip()}"])
        elif key in groups and str(value).startswith("glob("):
            assert list((Path(CONFIG_DIR) / key).glob("*.yaml"))
    assert full.tracking.experiment == experiment


def test_seed_exercise6_sweeps_every_compression_option() -> None:
    full = compose_config(["experiment=seed_exercise6"], with_hydra=True)
    swept = swept_options("compression", full.hydra.sweeper.params.compression)
    assert swept == {p.stem for p in (Path(CONFIG_DIR) / "compression").glob("*.yaml")}
    assert full.hydra.launcher._target_.endswith("JoblibLauncher")


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_end_to_end(experiment: str, tmp_path: Path) -> None:
    if CUT_DOWN[experiment] is None:
        pytest.skip(f"{experiment} runs end to end in its own test (see CUT_DOWN)")
    args = [
        "-m",
        f"experiment={experiment}",
        *FAST,
        *CUT_DOWN[experiment],
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"cache.dir={tmp_path}/cache",
        f"hydra.sweep.dir={tmp_path}/sweep",
    ]
    done = run_app(args, tmp_path, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    children = [r for r in runs if r.data.tags.get("run_kind") != "sweep_parent"]
    assert len(children) >= 2 and {r.info.status for r in children} == {"FINISHED"}
    assert (tmp_path / "sweep" / "report" / "summary.md").is_file()
    # the sweep shares one base model (search and mlperf_tiny vary the architecture)
    if experiment not in ("search", "mlperf_tiny"):
        keys = {r.data.tags["base_model.cache_key"] for r in children}
        assert len(keys) == 1
