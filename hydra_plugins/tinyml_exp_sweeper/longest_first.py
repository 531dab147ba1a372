"""`hydra/sweeper=tinyml_basic` (the project's default): Hydra's basic sweeper with each batch of
jobs launched longest first (`tinyml_exp.cli.sweep_plan.longest_first`).

Hydra's own order is the command line's: in the seed study the three-phase PCQAT came ninth of
twelve, so on two workers it ran alone at the end while the other core idled (28 s measured).
Job numbers, and so the sweep's sub-directories, follow the launch order. Imported by Hydra at
every start-up: nothing heavy at module level.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore


@dataclass
class TinymlBasicSweeperConf:
    _target_: str = "hydra_plugins.tinyml_exp_sweeper.longest_first.LongestFirstBasicSweeper"
    max_batch_size: int | None = None  # as Hydra's basic sweeper
    params: dict[str, str] | None = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="tinyml_basic", node=TinymlBasicSweeperConf, provider="tinyml_exp"
)


class LongestFirstBasicSweeper(BasicSweeper):
    def get_job_batch(self) -> Sequence[Sequence[str]]:
        from tinyml_exp.cli.sweep_plan import longest_first

        batch = super().get_job_batch()
        return longest_first(self.config, batch) if len(batch) > 1 else batch
