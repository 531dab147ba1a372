"""A content-addressed cache of trained base models, safe when several processes want one at once.

The key hashes everything that determines the trained weights (resolved dataset, architecture and
training config, the seed, and a format version), so a sweep over compression methods trains the
base once, and any change to those keys trains a new one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tf_keras

log = logging.getLogger(__name__)

# Bump when the stored layout or the training code changes what a key produces.
CACHE_FORMAT = 1
_MODEL_FILE = "model.keras"
_META_FILE = "meta.json"


def cache_key(payload: dict[str, Any]) -> str:
    text = json.dumps({"format": CACHE_FORMAT, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class ModelCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def entry(self, key: str) -> Path:
        return self.root / key

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Exclusive per-key lock: the first process trains, the others wait and then read."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f"{key}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def has(self, key: str) -> bool:
        entry = self.entry(key)
        return (entry / _MODEL_FILE).is_file() and (entry / _META_FILE).is_file()

    def load(self, key: str) -> tuple[tf_keras.Model, dict[str, Any]]:
        import tf_keras as keras

        entry = self.entry(key)
        model = keras.models.load_model(entry / _MODEL_FILE)
        return model, self.read_meta(key)

    def read_meta(self, key: str) -> dict[str, Any]:
        return json.loads((self.entry(key) / _META_FILE).read_text())

    def store(self, key: str, model: tf_keras.Model, meta: dict[str, Any]) -> None:
        """Write into a temporary directory, then rename it: readers never see half an entry."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.root))
        try:
            model.save(tmp / _MODEL_FILE)
            (tmp / _META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
            target = self.entry(key)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("cached base model %s in %s", key, self.entry(key))

    def update_meta(self, key: str, extra: dict[str, Any]) -> None:
        """Add figures computed later (e.g. the base's .tflite size); atomic rename."""
        meta = {**self.read_meta(key), **extra}
        path = self.entry(key) / _META_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
        os.replace(tmp, path)
