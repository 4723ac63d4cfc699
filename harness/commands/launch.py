"""``run`` and ``sweep``: Hydra composes the jobs, each trial runs in a child process.

Hydra's own runtime (``@hydra.main``, its multirun and basic launcher) drives the jobs,
so ``hydra.sweep.dir=...``, ``--cfg job`` and ``hydra.sweeper.params`` in experiment
files all work as Hydra users expect. The job function below runs in this (parent)
process: it prepares the job's dataset and writes its resolved config. When every job is
ready, the trials run in rounds: round 1 runs each job once, in an order shuffled with a
seeded generator, then round 2 in a new order, and so on (Google Benchmark's random
interleaving), so a change in machine load spreads over the variants instead of landing
on the one whose repeats ran back to back. Before Hydra starts, every job of the grid is
composed and validated, so a bad value anywhere fails before the first trial, and a
``hydra.sweep.dir`` that already holds results is refused unless ``--overwrite`` is given.
SIGTERM and SIGINT stop the sweep cleanly (:mod:`harness.trial.stop`).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from harness.commands.outputs import FAILED_TRIALS_EXIT, new_result_dir, write_trial_config
from harness.config import CONF_DIR, register_configs
from harness.config.compose import compose, expand_sweep, to_typed
from harness.config.validate import validate
from harness.errors import HarnessError
from harness.results.model import RESULT_FILE, TrialResult
from harness.results.table import TABLE_FILE, write_table
from harness.trial import stop

SCHEDULE_FILE = "schedule.json"  # the sweep's seed and each round's order of jobs


def launch(overrides: Sequence[str], *, multirun: bool) -> Path | None:
    """Validate every job, run them through Hydra, and return the result folder.

    A SIGTERM or SIGINT stops the running trial with its workers and records it as
    ``interrupted``; results.csv and the report are written for what finished, then
    :class:`SystemExit` carries 128 + the signal's number (143, 130), as a shell reports it.
    """
    overrides, overwrite = take_overwrite(overrides)
    overrides, flags = split_flags(overrides)
    if flags:  # --cfg job, --info ...: Hydra answers and runs nothing
        _run_hydra([sys.argv[0]] + (["--multirun"] if multirun else []) + flags + overrides)
        return None
    jobs = expand_sweep(overrides) if multirun else [overrides]
    configs = _validate(jobs)
    dir_key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    given = [o.split("=", 1)[1] for o in overrides if o.startswith(dir_key + "=")]
    root = Path(given[0]) if given else new_result_dir(min(c.name for c in configs), multirun)
    claim_folder(root, dir_key, overwrite, "sweep" if multirun else "run")  # here, not in _job: once, before any trial
    argv = [sys.argv[0], *(["--multirun"] if multirun else []), *overrides, *([] if given else [f"{dir_key}={root}"])]
    print(f"harness: {len(jobs)} job(s) -> {root}", flush=True)
    with stop.stopping_on_signals():
        _run_all(argv, root, multirun)
        _write_outputs(root, multirun, trace=configs[0].monitor.trace)
    signum = stop.requested()
    if signum is not None:
        _exit_interrupted(root, signum)
    return root if root.exists() else None


def _validate(jobs: Sequence[Sequence[str]]) -> list[DictConfig]:
    """Compose and check every job, so that a bad value anywhere fails before the first trial."""
    configs = [compose(job) for job in jobs]
    for cfg in configs:
        validate(cfg)
    return configs


def _run_all(argv: list[str], root: Path, multirun: bool) -> None:
    """Plan every job through Hydra, run the trials in rounds, then any augbench; a signal cuts it short."""
    _PLANNED.clear()
    try:
        _run_hydra(argv)
        run_rounds(list(_PLANNED), root)
        if multirun and root.exists():
            from harness.commands.augbench import bench_sweep

            bench_sweep(root)
    except stop.Interrupted:
        pass  # every finished trial keeps its result.json, the stopped one says interrupted: write what there is


def _write_outputs(root: Path, multirun: bool, *, trace: bool) -> None:
    """results.csv, and for a sweep the merged trace and the report, over every trial that finished."""
    if not root.exists() or not any(root.glob(f"**/{RESULT_FILE}")):
        return  # stopped before any trial ended
    try:
        write_table(root)
        if multirun and trace:
            from harness.monitor.trace import write_sweep_trace

            write_sweep_trace(root)
        if multirun:
            from harness.report.render import write_report

            write_report(root)
    except stop.Interrupted:  # a second signal: the trials are already stopped, so leave at once
        print(f"stopped while writing the report; python -m harness report {root} writes it", file=sys.stderr, flush=True)


def _exit_interrupted(root: Path, signum: int) -> None:
    """Print what finished and leave with the status a shell gives a process ended by ``signum``."""
    name = signal.Signals(signum).name
    if (root / TABLE_FILE).exists():
        print(f"interrupted by {name}: the running trial was stopped with its workers; finished trials are kept", flush=True)
        finish(root)
    else:
        print(f"interrupted by {name} before any trial finished", flush=True)
    raise SystemExit(stop.exit_status(signum))


OVERWRITE_FLAG = "--overwrite"  # the harness's own flag, taken out before Hydra sees the command line
# What a run or sweep writes at the top of its folder; --overwrite deletes these and nothing else.
OUTPUT_FILES = (TABLE_FILE, "report.html", "summary.md", SCHEDULE_FILE, "trace.json", "multirun.yaml", "trial.yaml")


def take_overwrite(args: Sequence[str]):
    """(the arguments without ``--overwrite``, whether it was given)."""
    rest = [a for a in args if a != OVERWRITE_FLAG]
    return rest, len(rest) != len(args)


def claim_folder(root: Path, dir_key: str, overwrite: bool, what: str = "sweep") -> None:
    """Refuse a folder that holds an earlier run's results, or clear them under ``--overwrite``.

    An earlier sweep's jobs would otherwise sit beside the new ones, in the table and the
    report, as if this sweep had run them.
    """
    if not root.is_dir():
        return
    results = len(list(root.glob(f"**/{RESULT_FILE}")))
    # Hydra writes multirun.yaml and the job folders' trial.yaml before the first trial
    planned = any((root / name).exists() for name in (SCHEDULE_FILE, "multirun.yaml", "trial.yaml")) or any(root.glob("*/trial.yaml"))
    if not results and not planned:
        return
    if not overwrite:
        raise HarnessError(
            f"{dir_key}={root} already holds a {what} ({results} results); choose another folder, or add "
            f"{OVERWRITE_FLAG} to delete them first (python -m harness {what} {OVERWRITE_FLAG} ...)"
        )
    made = [entry for entry in root.iterdir() if _made_here(entry)]
    for entry in made:
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    print(f"{OVERWRITE_FLAG}: deleted the earlier {what} in {root} ({results} results, {len(made)} entries)", flush=True)


def _made_here(entry: Path) -> bool:
    """Whether a run or sweep writes this entry of its folder (job and repeat folders, tables, report)."""
    from harness.commands.augbench import BENCH_DIR

    if entry.is_symlink() or not entry.is_dir():
        return entry.name in OUTPUT_FILES
    job = entry.name.isdigit() and ((entry / "trial.yaml").exists() or (entry / ".hydra").exists())
    return job or entry.name in (".hydra", BENCH_DIR) or re.fullmatch(r"repeat-\d+", entry.name) is not None


# Hydra's own flags that take a value
_FLAGS_WITH_VALUE = ("--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")


def split_flags(args: Sequence[str]):
    """(overrides, Hydra flags such as ``--cfg job``) from a command line."""
    overrides, flags, take = [], [], False
    for arg in args:
        if take:
            flags.append(arg)
            take = False
        elif arg.startswith("-"):
            flags.append(arg)
            take = arg in _FLAGS_WITH_VALUE
        else:
            overrides.append(arg)
    return overrides, flags


def _run_hydra(argv: list[str]) -> None:
    import hydra

    register_configs()
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # a failure past validation is a bug: keep its traceback
    saved = sys.argv
    sys.argv = argv
    try:
        hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(_job)()
    finally:
        sys.argv = saved


@dataclass
class JobPlan:
    """One job of the sweep, ready to run: its resolved config on disk, its dataset built."""

    job: int  # Hydra job number
    job_dir: Path  # the job's folder (trial.yaml, repeat-N/)
    root: Path  # the sweep's (or run's) folder, where results.csv goes
    config_file: Path  # job_dir/trial.yaml
    config: dict  # the resolved config as plain containers
    overrides: list[str]  # the job's overrides
    repeats: int  # trial.repeats
    timeout_s: float  # trial.timeout_s
    seed: int  # trial.seed: also seeds the order of the rounds
    error: str | None = None  # why no trial can run (e.g. a folder without images)


_PLANNED: list[JobPlan] = []  # filled by Hydra's task function, run by run_rounds once Hydra returns


def _job(cfg: DictConfig) -> int:
    """Hydra's task function: get one job ready; its trials run later, interleaved with the other jobs'."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    job_dir = Path(hc.runtime.output_dir)
    root = Path(hc.sweep.dir) if multirun else job_dir
    job = int(hc.job.num) if multirun else 0
    _PLANNED.append(plan_job(cfg, job_dir, root, job=job, overrides=list(hc.overrides.task)))
    return 0


def _as_dict(container) -> dict:
    """A DictConfig's container, which OmegaConf types as any container."""
    if not isinstance(container, dict):
        raise TypeError(f"expected a mapping, got {type(container).__name__}")
    return container


def plan_job(cfg: DictConfig, job_dir: Path, root: Path, *, job: int, overrides: list[str]) -> JobPlan:
    """Write the job's trial.yaml and build the dataset its trials read."""
    from harness.data.build import prepare
    from harness.loaders import get_loader

    config_file, plain = write_trial_config(cfg, job_dir)
    typed = to_typed(plain)
    plan = JobPlan(
        job,
        job_dir,
        root,
        config_file,
        _as_dict(OmegaConf.to_container(plain, resolve=True)),
        overrides,
        typed.trial.repeats,
        typed.trial.timeout_s,
        typed.trial.seed,
    )
    try:
        needs = get_loader(typed.loader.name).needs(typed.loader)
        if needs.dataset:
            t = time.perf_counter()
            manifest = prepare(typed.dataset, tfrecord=needs.tfrecord)
            elapsed = time.perf_counter() - t
            if elapsed > 1:
                print(f"  dataset ready in {elapsed:.1f} s: {manifest.root}", flush=True)
            _tell_dataset_notes(manifest)
    except HarnessError as exc:  # e.g. a folder without images: every repeat fails the same way
        plan.error = str(exc)
    return plan


_TOLD: set = set()  # datasets whose notes this sweep printed: once each, not once per job


def _tell_dataset_notes(manifest) -> None:
    """Which files were skipped, converted or left out: once per dataset, before any trial."""
    if manifest.root not in _TOLD:
        _TOLD.add(manifest.root)
        for line in manifest.notes():
            print(f"  {line}", flush=True)


def schedule(plans: Sequence[JobPlan], seed: int) -> list[list[JobPlan]]:
    """Rounds of trials: round r runs every job that has an r-th repeat, in a shuffled order.

    The order of each round comes from ``random.Random(seed)``, so the same sweep runs
    its trials in the same order and the order is recorded with the results.
    """
    rng = random.Random(seed)
    rounds = []
    for r in range(max((p.repeats for p in plans), default=0)):
        this = [p for p in plans if p.repeats > r]
        rng.shuffle(this)
        rounds.append(this)
    return rounds


def run_rounds(plans: Sequence[JobPlan], root: Path) -> list[TrialResult]:
    """Run every planned trial, round by round, and record the order in ``root/schedule.json``."""
    from harness.data.manifest import write_json_atomic
    from harness.trial.spawn import run_trial

    if not plans:
        return []
    seed = plans[0].seed
    rounds = schedule(plans, seed)
    if len(rounds) > 1 and len(plans) > 1:
        print(f"  {len(rounds)} rounds, each job once per round in a shuffled order (seed {seed})", flush=True)
    write_json_atomic(Path(root) / SCHEDULE_FILE, {"seed": seed, "rounds": [[p.job for p in this] for this in rounds]})
    results = []
    for r, this in enumerate(rounds):
        for position, plan in enumerate(this):
            stop.check()  # a signal between two trials: start no other
            trial_dir = _trial_dir(plan.job_dir, r, plan.repeats)
            where = {"round": r, "position": position, "jobs_in_round": len(this)}
            if plan.error is not None:
                result = TrialResult("failed", plan.config, plan.overrides, plan.job, r, error=plan.error, timing=dict(where))
                result.write(trial_dir)
            else:
                result = run_trial(
                    plan.config_file,
                    trial_dir,
                    job=plan.job,
                    repeat=r,
                    overrides=plan.overrides,
                    config=plan.config,
                    timeout_s=plan.timeout_s,
                    schedule=where,
                )
            results.append(result)
            print(format_line(result), flush=True)
            write_table(plan.root)
    return results


def _trial_dir(job_dir: Path, repeat: int, repeats: int) -> Path:
    path = job_dir / f"repeat-{repeat}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def format_line(result: TrialResult) -> str:
    """One terminal line per trial."""
    head = f"  job {result.job} repeat {result.repeat}: {result.status:7s}"
    if result.status != "ok":
        return f"{head} {result.error}"
    s = result.summary
    line = (
        f"{head} {s['samples_per_s']:9.1f} samples/s {s['batches_per_s']:7.2f} batches/s "
        f"stall {s['stall_pct']:5.1f}%  AU {s['au_pct']:5.1f}%  ttfb {s['ttfb_s']:.2f} s"
    )
    restarts = s.get("restart_pct")
    return line + (f"  restarts {restarts:.0f}% (steady {s['steady_samples_per_s']:.0f}/s)" if restarts and restarts > 5 else "")


def finish(root: Path | None) -> int:
    """Print the closing lines of a run or sweep, the folder last.

    Returns:
        0 when every trial was ok, :data:`FAILED_TRIALS_EXIT` when some were not (failed, timeout,
        too_short; an interrupted sweep leaves through :class:`SystemExit` with 128 + the signal).
    """
    if root is None:
        return 0
    from harness.report.orders import order_summary
    from harness.results.table import rows

    table = rows(root)
    for line in order_summary(root):
        print(line)
    failed = [r for r in table if r["status"] != "ok"]
    print(f"{len(table)} trial(s): {len(table) - len(failed)} ok, {len(failed)} not ok")
    for row in failed:
        print(f"  job {row['job']} repeat {row['repeat']}: {row['status']}: {row['error']}  ({root / row['result']})")
    print(f"table: {root / 'results.csv'}")
    if (root / "report.html").exists():
        print(f"report: {root / 'report.html'} (and summary.md)")
    print(root)
    return FAILED_TRIALS_EXIT if failed else 0
