"""How a job knows it runs inside a sweep: the environment variables the sweep callback
(`tinyml_exp.cli.sweep.MlflowSweepCallback`) sets before the launcher starts its workers, and the
tag a resumed sweep puts on the runs it reuses. Orchestration itself lives with the faces, so
`tracking` never imports `report`.
"""

from __future__ import annotations

import os

PARENT_RUN_ENV = "TINYML_EXP_PARENT_RUN_ID"
SWEEP_ID_ENV = "TINYML_EXP_SWEEP_ID"
# Tag set on a run finished by an earlier sweep that a resumed sweep reuses: `reused_by.<parent id>`.
REUSED_TAG_PREFIX = "reused_by."


def sweep_context() -> dict[str, str]:
    """Tags a job adds when it runs inside a sweep (empty for a single run)."""
    parent = os.environ.get(PARENT_RUN_ENV)
    if not parent:
        return {}
    return {"mlflow.parentRunId": parent, "sweep_id": os.environ.get(SWEEP_ID_ENV, "")}
