"""What MLflow's run page shows beside our own tags: the run's data as dataset inputs, the
standard source and git tags, and the description.

Digests hash the arrays' bytes in place (no copies); a dataset's source is its `path` when it has
one, else the code that made it (the synthetic set).
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import subprocess
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from tinyml_exp.data import DatasetSplits

# MLflow's names for these (mlflow.utils.mlflow_tags); spelled here so nothing imports MLflow early.
SOURCE_NAME, SOURCE_TYPE, USER = "mlflow.source.name", "mlflow.source.type", "mlflow.user"
GIT_COMMIT, GIT_BRANCH, GIT_REPO_URL = (
    "mlflow.source.git.commit",
    "mlflow.source.git.branch",
    "mlflow.source.git.repoURL",
)
NOTE = "mlflow.note.content"
CONTEXT_TAG = "mlflow.data.context"
# Splits logged as inputs, with the context the UI shows for each.
SPLITS = (("train", "train"), ("val", "validation"), ("test", "test"))


def array_digest(*arrays: np.ndarray) -> str:
    """A hash of the arrays' shapes, dtypes and bytes (a view of each, never a copy unless the
    array is not contiguous)."""
    import numpy as np

    h = hashlib.blake2b(digest_size=8)
    for array in arrays:
        h.update(f"{array.dtype.str}{array.shape}".encode())
        h.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return h.hexdigest()


def dataset_inputs(data: DatasetSplits, source_path: str | None) -> list[Any]:
    """One `mlflow.entities.DatasetInput` per non-empty split, built from `mlflow.data.from_numpy`
    (schema and row counts in its profile) with our digest and the split as its context."""
    import mlflow.data
    from mlflow.entities import Dataset, DatasetInput, InputTag

    source = str(Path(source_path).expanduser().resolve()) if source_path else None
    sizes = ", ".join(f"{k}={v}" for k, v in data.sizes().items())
    inputs = []
    for split, context in SPLITS:
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if not len(y):
            continue
        with warnings.catch_warnings():  # "source can be interpreted in multiple ways": a local path
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_numpy(
                x, targets=y, source=source, name=data.name, digest=array_digest(x, y)
            )
        tags = [InputTag(CONTEXT_TAG, context), InputTag("split_sizes", sizes)]
        inputs.append(DatasetInput(Dataset(**dataset.to_dict()), tags))
    return inputs


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def source_tags(package_root: Path) -> dict[str, str]:
    """MLflow's standard source tags as its fluent `start_run` sets them: the entry point, LOCAL,
    the user, and the git state of the project run from (the working directory's repository, else
    the package's checkout; none when neither is one)."""
    tags = {SOURCE_NAME: str(Path(sys.argv[0]).resolve()), SOURCE_TYPE: "LOCAL"}
    with contextlib.suppress(KeyError, OSError):  # no passwd entry (some containers)
        tags[USER] = getpass.getuser()
    for root in (Path.cwd(), package_root):
        commit = _git(root, "rev-parse", "HEAD")
        if commit:
            tags[GIT_COMMIT] = commit
            if branch := _git(root, "rev-parse", "--abbrev-ref", "HEAD"):
                tags[GIT_BRANCH] = branch
            if url := _git(root, "config", "--get", "remote.origin.url"):
                tags[GIT_REPO_URL] = url
            break
    return tags
