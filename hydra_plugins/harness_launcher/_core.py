"""What the harness launcher does: compose every job, check them all, plan each, then run.

A task function that carries the harness's phases (``check``, ``plan``, ``run``, ``outcomes``: see
:func:`harness.engine.task`) gets them called in that order, so no trial starts before
every job of the sweep is known to be valid, whichever sweeper produced the job list
(the basic grid, Optuna's batches). Jobs are planned through Hydra's ``run_job``, so each
job gets its folder, its ``.hydra/`` record and Hydra's callbacks as with any launcher.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from omegaconf import DictConfig, open_dict

if TYPE_CHECKING:
    from hydra_plugins.harness_launcher.harness_launcher import HarnessLauncher

log = logging.getLogger(__name__)


def launch(launcher: HarnessLauncher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
    setup_globals()
    assert launcher.config is not None and launcher.hydra_context is not None and launcher.task_function is not None
    config, task = launcher.config, launcher.task_function
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    configs = [_job_config(launcher, overrides, initial_job_idx + i) for i, overrides in enumerate(job_overrides)]
    phases = _phases(task)
    if phases is not None:
        phases["check"](configs)  # every job, before any job's folder or trial exists
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    log.info(f"Launching {len(job_overrides)} jobs locally")
    returns = []
    for cfg in configs:
        log.info(f"\t#{cfg.hydra.job.num} : {' '.join(filter_overrides(list(cfg.hydra.overrides.task)))}")
        ret = run_job(
            hydra_context=launcher.hydra_context,
            task_function=phases["plan"] if phases is not None else task,
            config=cfg,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        returns.append(ret)
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    if phases is not None:
        _run(phases, returns)
    return returns


def _job_config(launcher: HarnessLauncher, overrides: Sequence[str], idx: int) -> DictConfig:
    """One job's full config (Hydra's node included), numbered as the basic launcher numbers it."""
    assert launcher.hydra_context is not None and launcher.config is not None
    loader = launcher.hydra_context.config_loader
    # the sweeper's composition of these overrides where it made one (harness_launcher.ComposedOnce)
    cfg = (
        loader.take(launcher.config, list(overrides))
        if hasattr(loader, "take")
        else loader.load_sweep_config(launcher.config, list(overrides))
    )
    with open_dict(cfg):
        cfg.hydra.job.id = idx
        cfg.hydra.job.num = idx
    return cfg


def _phases(task: Any) -> dict[str, Any] | None:
    """The harness's phases carried by the task function, or ``None``.

    ``check``, ``plan`` and ``run``, and ``outcomes``: the jobs' return values from their results.
    """
    phases = {name: getattr(task, name, None) for name in ("check", "plan", "run", "outcomes")}
    return phases if all(callable(f) for f in phases.values()) else None


def _run(phases: dict[str, Any], returns: list[JobReturn]) -> None:
    """Run the trials of every planned job; each job's return value becomes its outcome (statuses, objective)."""
    planned = [r for r in returns if r.status == JobStatus.COMPLETED]
    outcomes = phases["outcomes"](phases["run"]([r.return_value for r in planned]))
    for r in planned:
        job = r.return_value.job
        r.return_value = outcomes.get(job)
