"""The base-model cache: keys, atomic entries, one trainer when two processes want the same key."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import numpy as np

from tests.helpers import compose_config
from tinyml_exp.models.base_model import base_model_key
from tinyml_exp.models.cache import ModelCache


def test_key_changes_with_what_decides_the_weights_only() -> None:
    base = base_model_key(compose_config())
    assert base == base_model_key(compose_config())
    for override in ("seed=1", "train.epochs=5", "architecture.filters=8", "dataset.train_limit=100"):
        assert base_model_key(compose_config([override])) != base, override
    for override in (
        "compression.quantize=int8",
        "tracking.experiment=x",
        "train.verbose=2",
        "target=qemu_netduinoplus2",
    ):
        assert base_model_key(compose_config([override])) == base, override


def test_store_and_load_round_trip(tmp_path: Path) -> None:
    import tf_keras as keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    cache = ModelCache(tmp_path)
    assert not cache.has("k")
    cache.store("k", model, {"history": {"loss": [1.0]}})
    loaded, _meta = cache.load("k")
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])
    cache.update_meta("k", {"reference": {"x": 1}})
    assert cache.read_meta("k") == {"history": {"loss": [1.0]}, "reference": {"x": 1}}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _hold_lock(root: str, log: str, name: str) -> None:
    cache = ModelCache(root)
    with cache.lock("key"):
        with open(log, "a") as f:
            f.write(f"{name} in\n")
        time.sleep(0.3)
        with open(log, "a") as f:
            f.write(f"{name} out\n")


def test_lock_serialises_processes(tmp_path: Path) -> None:
    log = tmp_path / "log"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_hold_lock, args=(str(tmp_path), str(log), n)) for n in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    lines = log.read_text().split()
    # Each "in" is immediately followed by the same process's "out": no interleaving.
    pairs = [(lines[i], lines[i + 2]) for i in range(0, len(lines), 4)]
    assert len(lines) == 8 and all(a == b for a, b in pairs)
