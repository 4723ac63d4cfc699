"""The CPU ceilings as the pipelines run, from each work's chain run alone (:mod:`harness.trial.alone`).

Under the harness launcher the runs alone are part of the sweep's own rounds, so the ceiling
and the trials it bounds see the same machine; :func:`pipelines` reads them from
``<sweep>/ceilings/``. A sweep run by another launcher (SLURM, Ray) has none: :func:`run_after`
runs the chain of each work's fastest job alone after the trials, on the sweep's engine.

Per work, the ceiling is the larger of the fastest run's steady state and the usable cores over
the lowest per-sample core time measured doing that work (the CPU of a trial's process tree per
sample, in the runs alone and in the sweep's own trials: Plumber's operational bound, cores over
service demand). The most parallel settings are not always the fastest (tf.data's AUTOTUNE on two
cores can settle below two fixed calls), so the sweep's own trials bound it too. The runs' time
to the first batch (iterator and workers started) is timed apart.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from harness.results.ceilings import Pipeline, Work, work_of
from harness.trial.alone import ALONE_DIR, SECONDS


def pipelines(root: Path, cores: float) -> list[Pipeline]:
    """The :class:`Pipeline` of each work whose chain ran alone into ``root/ceilings/`` (ok runs only)."""
    from harness.results.table import scan

    folder = Path(root) / ALONE_DIR
    if not folder.is_dir():
        return []
    runs: dict[int, list] = {}
    for _, t in scan(folder).results:
        if t.kind == "trial" and t.status == "ok":
            runs.setdefault(t.job, []).append(t)
    doing = _by_work(Path(root))
    grouped: dict[Work, list] = {}  # several groups of variants may share a work (pin_memory on and off): all their runs count
    for _, trials in sorted(runs.items()):
        work = work_of(trials[0].config, trials[0].loader, trials[0].dataset, trials[0].augment)
        if work is not None:
            grouped.setdefault(work, []).extend(trials)
    return [pipeline(work, ts[0].job, list(ts[0].overrides), ts, cores, doing.get(work, [])) for work, ts in grouped.items()]


def _by_work(root: Path) -> dict[Work, list]:
    """The sweep's ok trials by the work they do (a cached chain does none after its first epoch)."""
    from harness.results.ceilings import caches_decoded
    from harness.results.table import scan

    out: dict[Work, list] = {}
    for _, t in scan(root).results:
        if t.kind == "trial" and t.status == "ok" and not caches_decoded(t.loader):
            work = work_of(t.config, t.loader, t.dataset, t.augment)
            if work is not None:
                out.setdefault(work, []).append(t)
    return out


def fastest_jobs(root: Path) -> list[tuple[Work, Any]]:
    """(work, the first ok repeat of the fastest job doing it) per distinct work, in job order.

    Fastest by the median steady-state samples/s of the job's ok repeats, the chain nearest to
    what the machine allows; a cached chain decodes nothing per epoch, so it runs no work.
    """
    from harness.results.bounds import steady
    from harness.results.ceilings import caches_decoded
    from harness.results.table import scan

    jobs: dict[int, list] = {}
    for _, t in scan(Path(root)).results:
        if t.kind == "trial" and t.status == "ok":
            jobs.setdefault(t.job, []).append(t)
    best: dict[Work, tuple[float, Any]] = {}
    for job in sorted(jobs):
        first = jobs[job][0]
        work = None if caches_decoded(first.loader) else work_of(first.config, first.loader, first.dataset, first.augment)
        rates = [r for r in (steady(t) for t in jobs[job]) if r is not None]
        if work is not None and rates and statistics.median(rates) > best.get(work, (0.0, None))[0]:
            best[work] = (statistics.median(rates), first)
    return [(work, trial) for work, (_, trial) in best.items()]


def run_after(root: Path, cores: float, *, seconds: float = SECONDS, repeats: int = 2) -> tuple[list[Pipeline], list[str]]:
    """Run each work's fastest chain alone after the trials, into ``root/ceilings/``; (its pipelines, notes)."""
    from omegaconf import DictConfig

    from harness.config.compose import to_typed
    from harness.engine import run_jobs
    from harness.loaders import get_loader
    from harness.trial import alone

    works = fastest_jobs(Path(root))
    jobs: list[list[str]] = []
    for _, trial in works:
        typed = to_typed(DictConfig(trial.config))
        family = get_loader(typed.loader.name)
        jobs.append(alone.overrides(list(trial.overrides), family, typed.loader, int(cores), seconds=seconds, repeats=repeats))
    if not jobs:
        return [], []
    print(f"  running {len(jobs)} chain(s) alone for the CPU ceilings (no accelerator step, most parallel)", flush=True)
    results = run_jobs(jobs, Path(root) / ALONE_DIR, numbers=[trial.job for _, trial in works])
    notes = []
    for work, trial in works:
        if not any(r.job == trial.job and r.status == "ok" for r in results):
            why = next((f"{r.status}: {r.error}" for r in results if r.job == trial.job), "no trial ran")
            notes.append(f"{work.label}: its chain alone did not run ok ({why}); no CPU ceiling for it")
    return pipelines(Path(root), cores), notes


def pipeline(work: Work, job: int, ran: list[str], trials: list, cores: float, doing: list | None = None) -> Pipeline:
    """The :class:`Pipeline` of one work from its runs alone (ok trials) and the sweep's trials ``doing`` that work."""
    from harness.results.bounds import steady

    rates = [r for r in (steady(t) for t in trials) if r is not None]
    alone_ms = _core_ms(trials)
    sweep_ms = _core_ms(doing or [])
    best = max(rates)
    core_ms = min(alone_ms + sweep_ms) if alone_ms + sweep_ms else 0.0
    ceiling = max(best, cores * 1000.0 / core_ms * (1 + CPU_RESOLUTION)) if core_ms else best
    setup = statistics.median(t.summary.get("ttfb_s") or 0.0 for t in trials)
    continuous = any(t.epochs.get("mode") == "continuous" for t in trials)
    mode = "one repeating iterator" if continuous else "an iterator per epoch, restarts left out"
    knobs = ", ".join(o for o in ran if o.startswith("loader.")) or "as configured"
    where = "its runs alone" if not sweep_ms or min(alone_ms or [float("inf")]) <= min(sweep_ms) else "the sweep's own trials"
    how = (
        f"job {job}'s chain run alone ({knobs}; consumer.step_ms=0, {mode}), {len(trials)} run(s) of "
        f"{trials[0].summary.get('wall_s', 0):.1f} s: steady state {', '.join(f'{r:,.0f}' for r in rates)} samples/s; "
        f"{core_ms:.3f} ms of core time a sample, the lowest measured doing this work ({where}), read {CPU_RESOLUTION:.0%} wide "
        f"(the sampler's resolution); set-up {setup:.2f} s timed apart"
    )
    return Pipeline(
        work, job, ran, round(best, 1), [round(r, 1) for r in rates], round(core_ms, 4), round(ceiling, 1), round(setup, 3), how
    )


MAX_RESTART_SHARE = 0.10  # a trial whose epoch restarts took more of its time says too little about its steady state's CPU
# The sampler reads the process tree's CPU every 100 ms over trials of a few seconds, so a trial's CPU per
# sample resolves about 2%: the cores over the lowest core time are read that much wider
CPU_RESOLUTION = 0.02


def _core_ms(trials: list) -> list[float]:
    """Each trial's CPU of its process tree per steady-state sample, ms, where it was measured.

    The sampler's figure (CPU s per 1000 samples) spreads the CPU of the whole measured phase over
    its samples; the share of time epoch restarts took is taken off, as if the CPU ran at its
    average rate then (a restart mostly waits, so this errs low, as a ceiling's cost should).
    Trials that restarted for more than :data:`MAX_RESTART_SHARE` of their time are left out where
    others did not (epochs of a few steps restart all the time: then every trial counts).
    """
    figures = [(t.summary.get("cpu_s_per_1000_samples"), (t.summary.get("restart_pct") or 0.0) / 100.0) for t in trials]
    measured = [(float(cpu), share) for cpu, share in figures if _positive(cpu)]  # none where the monitor was off
    steady = [(cpu, share) for cpu, share in measured if share <= MAX_RESTART_SHARE] or measured
    return [cpu * (1.0 - min(share, 0.9)) for cpu, share in steady]


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0
