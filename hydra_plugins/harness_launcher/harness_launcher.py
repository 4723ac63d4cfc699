"""``hydra/launcher=harness``: the thin plugin Hydra discovers; the work is in :mod:`._core`.

Hydra imports every module under ``hydra_plugins`` to find plugins, so this one imports
nothing heavy: the ConfigStore entry and a class that hands over to ``_core``.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class HarnessLauncherConf:
    _target_: str = "hydra_plugins.harness_launcher.harness_launcher.HarnessLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="harness", node=HarnessLauncherConf, provider="harness")


class HarnessLauncher(Launcher):
    """Runs a sweep's jobs on this machine, one at a time.

    Every job's config is composed before the first runs. With the harness's task
    function (:func:`harness.engine.task`) the jobs are also checked, planned, and their
    trials run in interleaved rounds, one process per trial; any other task function
    runs job after job, as Hydra's basic launcher does.
    """

    def __init__(self) -> None:
        super().__init__()
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hydra_plugins.harness_launcher import _core

        return _core.launch(self, job_overrides, initial_job_idx)
