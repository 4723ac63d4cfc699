"""``hydra/launcher=harness``: the thin plugin Hydra discovers; the work is in :mod:`._core`.

Hydra imports every module under ``hydra_plugins`` to find plugins, so this one imports
nothing heavy: the ConfigStore entry and a class that hands over to ``_core``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class HarnessLauncherConf:
    _target_: str = "hydra_plugins.harness_launcher.harness_launcher.HarnessLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="harness", node=HarnessLauncherConf, provider="harness")


class ComposedOnce:
    """Hydra's config loader, keeping each sweep config it composes until :meth:`take` hands it out (once).

    Every other call goes to the loader unchanged. A config the launcher takes is the one the
    sweeper composed and dropped (``validate_batch_is_legal``), so no other holder sees it change.
    """

    def __init__(self, loader: Any) -> None:
        self._loader = loader
        self._kept: dict[tuple, DictConfig] = {}

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        composed = self._loader.load_sweep_config(master_config, sweep_overrides)
        self._kept[(id(master_config), tuple(sweep_overrides))] = composed
        return composed

    def take(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        """The config composed for these overrides and not taken yet, else a new composition."""
        kept = self._kept.pop((id(master_config), tuple(sweep_overrides)), None)
        return kept if kept is not None else self._loader.load_sweep_config(master_config, sweep_overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


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
        # The sweeper composes each job to check it and then hands it here, where it would be composed again:
        # about 0.4 s a job on 2 cores. The context the sweeper shares keeps each of its compositions for launch().
        if not isinstance(hydra_context.config_loader, ComposedOnce):
            hydra_context.config_loader = ComposedOnce(hydra_context.config_loader)  # type: ignore[assignment]
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hydra_plugins.harness_launcher import _core

        return _core.launch(self, job_overrides, initial_job_idx)
