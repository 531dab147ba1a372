"""What a stage hands back: its figures, tags and files, for the pipeline to log.

A stage never logs to MLflow itself. It returns a `StageResult` (each stage has a subclass with
its own typed parts: the model, the build, the profile ...); when it fails it raises a
`StageError` that carries the partial result, so the pipeline still logs what was measured.
This module imports nothing of the package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class StageResult:
    """`metrics`: metric name → value, the unit in the name (`flash/firmware_bytes`,
    `latency/ms`); `tags`: name → text; `artifacts`: (MLflow folder, file) pairs to keep."""

    metrics: dict[str, float] = field(default_factory=dict, kw_only=True)
    tags: dict[str, str] = field(default_factory=dict, kw_only=True)
    artifacts: list[tuple[str, Path]] = field(default_factory=list, kw_only=True)

    def to_metrics(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.metrics.items()}

    def to_tags(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.tags.items()}

    def add(self, other: StageResult) -> None:
        """Take in another result's metrics, tags and artifacts (a stage made of steps)."""
        self.metrics.update(other.metrics)
        self.tags.update(other.tags)
        self.artifacts.extend(other.artifacts)
