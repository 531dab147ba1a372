"""Opening the tracking store: fail fast on an unreachable server, fall back only when asked, and
create experiments with the kind MLflow's UI needs to open them in its model-training view.

MLflow retries an HTTP request 7 times with exponential backoff and a 120 s timeout each (minutes
before a refused connection surfaces). The first request goes out with tight settings, so a wrong
`tracking.uri` fails in seconds, before any training; the rest of the run keeps a few retries to
ride out a hiccup. Both only where the user set no `MLFLOW_HTTP_REQUEST_*` variable of their own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tinyml_exp.errors import TinymlExpError

log = logging.getLogger(__name__)

# MLflow 3.17's UI reads this experiment tag: without it an experiment opens in the GenAI view.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

_RETRIES, _TIMEOUT, _BACKOFF = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
)
# First request: at most 2 tries of 5 s (+1 s backoff) ≈ 11 s when the host swallows packets.
PROBE_HTTP_SETTINGS = {_RETRIES: "1", _TIMEOUT: "5", _BACKOFF: "1"}
# The rest of the run: a few retries, not MLflow's 4 minutes.
RUN_HTTP_SETTINGS = {_RETRIES: "3", _TIMEOUT: "30", _BACKOFF: "1"}


class TrackingUnreachable(TinymlExpError):
    """The tracking store named by `tracking.uri` does not answer."""


def is_remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


@contextmanager
def http_settings(settings: dict[str, str]) -> Iterator[None]:
    """Set MLflow's HTTP retry variables the user did not set; the probe's are undone after."""
    ours = {k: v for k, v in settings.items() if k not in os.environ}
    os.environ.update(ours)
    try:
        yield
    finally:
        for key in ours:
            os.environ.pop(key, None)


def use_run_http_settings() -> None:
    for key, value in RUN_HTTP_SETTINGS.items():
        os.environ.setdefault(key, value)


def probe(client: Any, uri: str) -> None:
    """One cheap request; TrackingUnreachable naming `tracking.uri` when it fails."""
    try:
        with http_settings(PROBE_HTTP_SETTINGS):
            client.search_experiments(max_results=1)
    except Exception as e:  # MlflowException, requests' ConnectionError, ...: all mean the same here
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise TrackingUnreachable(
            f"tracking.uri={uri} is unreachable ({reason}): start the tracking server, fix "
            "tracking.uri, or set tracking.fallback_uri=sqlite:///mlflow.db to log locally instead"
        ) from e


def ensure_experiment(client: Any, name: str, artifact_location: str | None) -> str:
    """The experiment's id, created with the classic-ML kind, or given that kind if it lacks one
    (experiments created before this tag existed)."""
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(
            name, artifact_location=artifact_location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
        )
    if EXPERIMENT_KIND_TAG not in found.tags:
        client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return found.experiment_id
