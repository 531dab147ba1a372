"""`model=keras`: the architecture built, trained (or taken from the cache) and compressed."""

from __future__ import annotations

from dataclasses import dataclass

from tinyml_exp.registry import register_option
from tinyml_exp.sources import ModelSource


@register_option("model", "keras")
@dataclass
class KerasSource(ModelSource):
    pass
