"""The one sweep engine: check every job, get each ready, run its trials in isolated processes.

Hydra composes the jobs and a launcher hands them over. Two launchers reach this code:

- The harness's own (``hydra/launcher=harness``, the default; ``hydra_plugins/harness_launcher``)
  calls :func:`task`'s three phases itself: :func:`check_jobs` on every job's config before
  anything runs, :func:`plan` per job inside Hydra's ``run_job`` (the job's folder, its
  ``trial.yaml``, its dataset), then :func:`run_planned`, which runs the trials of all jobs in
  interleaved rounds: round 1 runs each job once in an order shuffled with a seeded
  generator, round 2 in a new order, and so on (Google Benchmark's random interleaving), so
  a change in machine load spreads over the variants instead of landing on one job's
  repeats. Jobs whose pipeline augments end with the one-thread augbench of each distinct
  pipeline, through the same loop.
- Any other launcher (``hydra/launcher=submitit_local``, a SLURM or Ray one) calls
  :func:`task` once per job, in its own process or machine: the job is planned and its
  repeats run back to back there. :class:`Preflight`, a Hydra callback, checks every job of
  the grid and builds the datasets once in the parent before such a launcher starts.

Whichever launcher ran them, every trial leaves ``JOB/repeat-N/result.json`` (an augbench
job ``JOB/result.json``) in the sweep folder, and the rows of ``results.csv`` are the same.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

import harness.progress as progress
from harness.errors import ConfigError, HarnessError
from harness.results.model import TrialResult
from harness.trial import preflight, stop
from harness.trial.alone import ALONE_DIR

SCHEDULE_FILE = "schedule.json"  # the sweep's seed, each round's order of jobs, then the augbench folders
BENCH_DIR = "augbench"  # <sweep>/augbench/<library-ops>/: the one-thread benchmark of each pipeline a sweep augments
# an augbench process is bounded by its images and passes, not a trial bound; this only catches hangs
BENCH_TIMEOUT_S = 900.0
LAUNCHER_TARGET = "hydra_plugins.harness_launcher.harness_launcher.HarnessLauncher"


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
    kind: str = "trial"  # trial.kind: trial | augbench
    env: dict[str, str] = field(default_factory=dict)  # the child's process settings (augbench: one thread)
    tag: str = ""  # printed before its trials' lines: "chain alone" for a ceiling's run among the sweep's trials

    def trial_dir(self, repeat: int) -> Path:
        """``JOB/repeat-N/`` for a trial; an augbench job runs once and writes into ``JOB/``."""
        path = self.job_dir if self.kind == "augbench" else self.job_dir / f"repeat-{repeat}"
        path.mkdir(parents=True, exist_ok=True)
        return path


# -- checking ----------------------------------------------------------------------------------
def check_job(cfg: DictConfig):
    """The typed config of one composed job, or :class:`HarnessError` saying in one line what is wrong."""
    from harness.config.compose import to_typed
    from harness.config.schema import choice
    from harness.config.validate import check_finite, validate

    typed = to_typed(cfg)
    if choice(typed.trial.kind) == "augbench":
        _check_augbench(typed)
        check_finite(typed)  # not validate(): augbench runs no loader, so the loader's rules do not apply
    else:
        validate(typed)
    return typed


def _check_augbench(typed) -> None:
    from harness.augment.spec import parse
    from harness.config.schema import choice

    if choice(typed.augment.library) == "auto":
        raise ConfigError("augbench: set augment.library (torchvision, albumentations, tf_image, keras_idg; a comma list compares them)")
    if not parse(typed.augment, None).active:
        raise ConfigError("augbench: augment.ops is empty; pick a pipeline (augment=resize_rotate) or list ops")


def check_jobs(configs: Sequence[DictConfig]) -> None:
    """Check every job before the first trial: a bad value in the last job fails as early as one in the first."""
    for cfg in configs:
        check_job(cfg)
    preflight.tell(configs)  # machine-fit warnings (/dev/shm, workers > cores, cache > RAM), once, before any trial


# -- planning ----------------------------------------------------------------------------------
def write_trial_config(cfg: DictConfig, job_dir: Path):
    """The job's resolved config without Hydra's node, as ``job_dir/trial.yaml`` (all a trial reads).

    Returns:
        (the file, the config without ``hydra``).
    """
    job_dir.mkdir(parents=True, exist_ok=True)
    plain = OmegaConf.masked_copy(cfg, [str(k) for k in cfg.keys() if k != "hydra"])
    config_file = job_dir / "trial.yaml"
    child = OmegaConf.to_container(plain, resolve=True)
    assert isinstance(child, dict)
    # trial.code is the parent's business (where the child starts); a base revision older than the key
    # (check --ab HEAD~5) would refuse it as unknown, so the child's copy goes without it
    if isinstance(child.get("trial"), dict):
        child["trial"].pop("code", None)
    config_file.write_text(OmegaConf.to_yaml(child))
    return config_file, plain


def plan(cfg: DictConfig) -> JobPlan:
    """Hydra's job, first half: write the job's trial.yaml and build its dataset (inside Hydra's ``run_job``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    job_dir = Path(hc.runtime.output_dir)
    root = Path(hc.sweep.dir) if multirun else job_dir
    job = int(hc.job.num) if multirun else 0
    return plan_job(cfg, job_dir, root, job=job, overrides=list(hc.overrides.task))


def plan_job(cfg: DictConfig, job_dir: Path, root: Path, *, job: int, overrides: list[str]) -> JobPlan:
    """Write the job's trial.yaml and build the dataset its trials read."""
    from harness.config.compose import to_typed
    from harness.config.schema import choice

    config_file, plain = write_trial_config(cfg, job_dir)
    typed = to_typed(plain)
    kind = choice(typed.trial.kind)
    bench = kind == "augbench"
    plan = JobPlan(
        job,
        job_dir,
        root,
        config_file,
        _as_dict(OmegaConf.to_container(plain, resolve=True)),
        overrides,
        1 if bench else typed.trial.repeats,
        BENCH_TIMEOUT_S if bench else typed.trial.timeout_s,
        typed.trial.seed,
        kind=kind,
        env=_bench_env() if bench else {},
    )
    try:
        _prepare_dataset(typed, bench)
    except HarnessError as exc:  # e.g. a folder without images: every repeat fails the same way
        plan.error = str(exc)
    return plan


def _bench_env() -> dict[str, str]:
    from harness.augment.bench import ONE_THREAD_ENV

    return dict(ONE_THREAD_ENV)


def _prepare_dataset(typed, bench: bool):
    """Build (or find in the cache) the dataset the job reads, and say once which files it left out."""
    from harness.data.build import prepare
    from harness.loaders import get_loader

    needs = get_loader(typed.loader.name).needs(typed.loader)
    if not (needs.dataset or bench):
        return None
    t = time.perf_counter()
    manifest = prepare(typed.dataset, tfrecord=[] if bench else needs.tfrecord, webdataset=0 if bench else needs.webdataset)
    elapsed = time.perf_counter() - t
    if elapsed > 1:
        print(f"  dataset ready in {elapsed:.1f} s: {manifest.root}", flush=True)
    _tell_dataset_notes(manifest)
    return manifest


def _as_dict(container) -> dict:
    """A DictConfig's container, which OmegaConf types as any container."""
    if not isinstance(container, dict):
        raise TypeError(f"expected a mapping, got {type(container).__name__}")
    return container


_TOLD: set = set()  # datasets whose notes this sweep printed: once each, not once per job


def _tell_dataset_notes(manifest) -> None:
    """Which files were skipped, converted or left out: once per dataset, before any trial."""
    if manifest.root not in _TOLD:
        _TOLD.add(manifest.root)
        for line in manifest.notes():
            print(f"  {line}", flush=True)


def bench_plans(plans: Sequence[JobPlan]) -> list[JobPlan]:
    """One augbench job per distinct (library, pipeline, dataset) among the trial jobs that augment.

    Each lands in ``<sweep>/augbench/<library>-<ops>/``, so the sweep's table shows the
    in-loader figure and the one-thread figure of the same pipeline side by side.
    """
    from harness.config.compose import load_trial_config
    from harness.config.validate import augment_spec

    done: set[tuple] = set()
    out = []
    for p in sorted(plans, key=lambda p: p.job):
        if p.kind != "trial" or p.error is not None:
            continue
        cfg = load_trial_config(p.config_file)
        if not cfg.augment.ops or not cfg.augment.bench:
            continue
        spec = augment_spec(cfg)
        dataset = OmegaConf.to_yaml(OmegaConf.structured(cfg.dataset))
        key = (spec.library, spec.signature(), dataset, cfg.batch.channels, cfg.augment.bench_images, cfg.augment.bench_passes)
        if key in done:
            continue
        done.add(key)
        folder = p.root / BENCH_DIR / f"{spec.library}-{'-'.join(op.name for op in spec.ops)}"
        out.append(_bench_plan(p, folder))
    return out


def _bench_plan(p: JobPlan, folder: Path) -> JobPlan:
    """An augbench job over the pipeline of trial job ``p``: its trial.yaml with ``trial.kind=augbench``."""
    config = {**p.config, "trial": {**p.config.get("trial", {}), "kind": "augbench"}}
    config_file, _ = write_trial_config(OmegaConf.create(config), folder)
    return JobPlan(p.job, folder, p.root, config_file, config, p.overrides, 1, BENCH_TIMEOUT_S, p.seed, kind="augbench", env=_bench_env())


# -- running -----------------------------------------------------------------------------------
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


# report.ceilings as the sweep's command line set it ("full", "quick" or None): the harness launcher then runs each
# work's chain alone in the sweep's own rounds (harness.trial.alone); launch sets it around Hydra's run
_ALONE: str | None = None


@contextmanager
def chains_alone(mode: str | None) -> Iterator[None]:
    """Within this block, a sweep's rounds include each work's chain run alone (``mode``: "full", "quick"; None: not)."""
    global _ALONE
    saved, _ALONE = _ALONE, mode
    try:
        yield
    finally:
        _ALONE = saved


def run_planned(plans: Sequence[JobPlan], *, bench: bool = True) -> list[TrialResult]:
    """Every trial of the planned jobs in interleaved rounds, then the augbench of each distinct pipeline.

    Where a sweep calibrates (:func:`chains_alone`), each round also runs every work's chain alone,
    into ``<sweep>/ceilings/``. The order is recorded in ``<sweep>/schedule.json``; results.csv is
    rewritten after each trial. On a terminal a bar under the trials' lines shows trial i/N, the
    variant and an ETA (:mod:`harness.progress`).
    """
    from harness.data.manifest import write_json_atomic

    if not plans:
        return []
    root, seed = plans[0].root, plans[0].seed
    alone = alone_plans(plans) if bench and _ALONE is not None else []
    rounds = schedule([*plans, *alone], seed)
    benches = bench_plans(plans) if bench else []
    if len(rounds) > 1 and len(plans) > 1:
        print(f"  {len(rounds)} rounds, each job once per round in a shuffled order (seed {seed})", flush=True)
    if alone:
        print(f"  and in each round, {len(alone)} chain(s) alone for the CPU ceilings -> {Path(root) / ALONE_DIR}", flush=True)
    sweep_rounds = [[p for p in this if p.root == root] for this in rounds]
    write_json_atomic(Path(root) / SCHEDULE_FILE, _schedule_record(Path(root), seed, sweep_rounds, benches))
    results = []
    with progress.sweep(sum(map(len, rounds)) + len(benches), [p.overrides for p in [*plans, *alone]]) as bar:
        for r, this in enumerate([*rounds, benches]):
            for position, p in enumerate(this):
                where = {"round": r, "position": position, "jobs_in_round": len(this)}
                with bar.trial(p.overrides, r, len(rounds)):
                    result = run_one(p, 0 if p.kind == "augbench" else r, where)
                if p.root == root:  # a chain's run alone (in <sweep>/ceilings) is the calibration's, not a job's outcome
                    results.append(result)
    return results


def alone_plans(plans: Sequence[JobPlan]) -> list[JobPlan]:
    """One job per group of variants doing the same work: the first of the group, run alone (:mod:`harness.trial.alone`).

    Each gets ``<sweep>/ceilings/<that variant's job>/``; a group whose run cannot be composed is left
    to the calibration after the trials, which says why.
    """
    from harness.config.compose import compose, to_typed
    from harness.loaders import get_loader
    from harness.trial import alone

    first: dict[str, tuple[JobPlan, Any]] = {}
    for p in sorted(plans, key=lambda p: p.job):
        if p.kind != "trial" or p.error is not None:
            continue
        typed = to_typed(OmegaConf.create(p.config))
        family = get_loader(typed.loader.name)
        key = alone.group(p.config, family.knobs) if family.needs(typed.loader).dataset else None
        if key is not None and key not in first:
            first[key] = (p, typed)
    seconds = alone.QUICK_SECONDS if _ALONE == "quick" else alone.SECONDS
    out = []
    for p, typed in first.values():
        family = get_loader(typed.loader.name)
        ran = alone.overrides(p.overrides, family, typed.loader, alone.usable_cores(p.config), seconds=seconds, repeats=p.repeats)
        folder = p.root / ALONE_DIR
        try:
            cfg = compose(ran)
            check_job(cfg)
        except HarnessError as exc:
            print(f"  job {p.job}'s chain alone: {exc}; the calibration after the trials tries again", flush=True)
            continue
        planned = plan_job(cfg, folder / str(p.job), folder, job=p.job, overrides=ran)
        planned.tag = "chain alone"
        out.append(planned)
    return out


def _schedule_record(root: Path, seed: int, rounds: list[list[JobPlan]], benches: list[JobPlan]) -> dict:
    """schedule.json's content, extended when a sweeper launches its jobs in batches (Optuna asks, runs, asks again).

    Round r holds repeat r of every job of every batch so far, in the order each batch ran them.
    """
    import json

    record: dict[str, Any] = {"seed": seed, "rounds": [], "then": []}
    try:
        earlier = json.loads((root / SCHEDULE_FILE).read_text())
        if isinstance(earlier.get("rounds"), list) and isinstance(earlier.get("then"), list):
            record["rounds"], record["then"] = earlier["rounds"], earlier["then"]
    except (OSError, ValueError, AttributeError):  # none yet (the first batch), or not ours to extend
        pass
    for r, this in enumerate(rounds):
        if r == len(record["rounds"]):
            record["rounds"].append([])
        record["rounds"][r] += [p.job for p in this]
    record["then"] += [str(b.job_dir.relative_to(root)) for b in benches]
    return record


@dataclass
class JobOutcome:
    """What a job returns to Hydra's sweeper: its trials' statuses, and a number for sweepers that optimize.

    ``float(outcome)`` is the median ``samples_per_s`` of the job's ok trials (0 when none
    was ok), the objective Hydra's Optuna sweeper maximizes for ``harness tune``.
    """

    job: int
    statuses: list[str]
    samples_per_s: float
    # the job's folder, for a sweep folder the job's machine may not share (see harness.results.records)
    files: dict[str, bytes] = field(default_factory=dict, repr=False)
    left_out: list[str] = field(default_factory=list)  # files too large to carry back

    def __float__(self) -> float:
        return self.samples_per_s

    def __reduce__(self):
        # unpickled in the sweep's process, the outcome reaches the box :func:`receiving` holds open there
        return _arrived, (self.job, self.statuses, self.samples_per_s, self.files, self.left_out)


# While the sweep's process waits for another launcher's jobs, the outcomes it unpickles (Ray's
# ray.get, submitit's result files) land here: Hydra's sweeper keeps the return values to itself.
_RECEIVED: list[JobOutcome] | None = None


@contextmanager
def receiving() -> Iterator[list[JobOutcome]]:
    """Collect the :class:`JobOutcome` of every job another launcher sends back to this process."""
    global _RECEIVED
    box: list[JobOutcome] = []
    _RECEIVED = box
    try:
        yield box
    finally:
        _RECEIVED = None


def _arrived(job: int, statuses: list[str], samples_per_s: float, files: dict[str, bytes], left_out: list[str]) -> JobOutcome:
    outcome = JobOutcome(job, statuses, samples_per_s, files, left_out)
    if _RECEIVED is not None:
        _RECEIVED.append(outcome)
    return outcome


def outcomes(results: Sequence[TrialResult]) -> dict[int, JobOutcome]:
    """Each job's :class:`JobOutcome` from its trials' results (augbench runs left out)."""
    import statistics

    by_job: dict[int, list[TrialResult]] = {}
    for result in results:
        if result.kind == "trial":
            by_job.setdefault(result.job, []).append(result)
    out = {}
    for job, trials in by_job.items():
        speeds = [t.summary["samples_per_s"] for t in trials if t.status == "ok"]
        out[job] = JobOutcome(job, [t.status for t in trials], statistics.median(speeds) if speeds else 0.0)
    return out


def run_jobs(jobs: Sequence[Sequence[str]], root: Path, *, first_job: int = 0, numbers: Sequence[int] | None = None) -> list[TrialResult]:
    """Jobs given as override lists (not a grid) through the same engine: check all, plan each, run in rounds.

    For commands whose jobs are not a Cartesian product (``diagnose``: the same loader warm and
    cold beside a consumer fed from memory; ``tune``'s confirmation of the best against AUTOTUNE).
    Job ``i`` gets the folder ``root/<first_job + i>``, or ``root/<numbers[i]>`` where numbers are given.
    """
    from harness.config.compose import compose

    configs = [compose(list(job)) for job in jobs]
    check_jobs(configs)
    ids = list(numbers) if numbers is not None else [first_job + i for i in range(len(jobs))]
    plans = [plan_job(cfg, root / str(n), root, job=n, overrides=list(job)) for n, cfg, job in zip(ids, configs, jobs)]
    return run_planned(plans, bench=False)


def run_one(p: JobPlan, repeat: int, where: dict[str, int]) -> TrialResult:
    """One trial of job ``p`` in a process of its own; its line printed, results.csv brought up to date."""
    from harness.results.table import write_table
    from harness.trial.spawn import run_trial

    stop.check()  # a signal between two trials: start no other
    trial_dir = p.trial_dir(repeat)
    if p.error is not None:
        result = TrialResult("failed", p.config, p.overrides, p.job, repeat, error=p.error, kind=p.kind, timing=dict(where))
        result.write(trial_dir)
    else:
        result = run_trial(
            p.config_file,
            trial_dir,
            job=p.job,
            repeat=repeat,
            overrides=p.overrides,
            config=p.config,
            timeout_s=p.timeout_s,
            kind=p.kind,
            env=p.env or None,
            schedule=where,
        )
    line = format_line(result)
    print(line.replace("  job", f"  {p.tag}, job", 1) if p.tag else line, flush=True)
    write_table(p.root)
    return result


def format_line(result: TrialResult) -> str:
    """One terminal line per trial (an augbench job: its table of per-op figures)."""
    head = f"  job {result.job} repeat {result.repeat}: {result.status:7s}"
    if result.status != "ok":
        return f"{head} {result.error}" if result.kind == "trial" else f"  augbench job {result.job}: {result.status}: {result.error}"
    if result.kind == "augbench":
        from harness.augment.bench import format_table

        return format_table(result)
    s = result.summary
    line = (
        f"{head} {s['samples_per_s']:9.1f} samples/s {s['batches_per_s']:7.2f} batches/s "
        f"stall {s['stall_pct']:5.1f}%  AU {s['au_pct']:5.1f}%  ttfb {s['ttfb_s']:.2f} s"
    )
    restarts = s.get("restart_pct")
    line += f"  restarts {restarts:.0f}% (steady {s['steady_samples_per_s']:.0f}/s)" if restarts and restarts > 5 else ""
    if result.ranks:  # data-parallel ranks: the aggregate above, then who held the others at the all-reduce
        r = result.ranks
        line += f"\n      {r['ranks']} ranks: straggler {s['straggler_pct']:.1f}% (slowest rank {r['slowest']}"
        line += f" at {s['slowest_rank_samples_per_s']:.1f} samples/s), all-reduce {s['allreduce_pct']:.1f}%"
        hosts = r.get("hosts") or []
        line += f", on {len(hosts)} hosts ({', '.join(hosts)})" if len(hosts) > 1 else ""
    return line


# -- Hydra's task function -----------------------------------------------------------------------
def task(cfg: DictConfig) -> JobOutcome:
    """Hydra's task function for a job that a launcher runs on its own: plan it, run its repeats.

    Returns its :class:`JobOutcome` (a launcher ships it back to the sweep's process).
    The harness launcher does not call this: it calls ``task.check``, ``task.plan`` and
    ``task.run`` (below), so that the trials of all jobs interleave.
    """
    check_job(cfg)  # a run, or a job another launcher started: nothing checked it in this process
    _tell_trials_the_cluster()
    rank = _slurm_rank(cfg)
    if rank:  # another node's task of a SLURM job with a rank per node: that rank of each of the job's trials
        return _run_peer(cfg, rank)
    p = plan(cfg)
    if p.root == p.job_dir:  # ``run``: the folder is the run's own, with its schedule.json
        results = run_planned([p], bench=False)
    else:  # a job among others that may run at the same time: the sweep's schedule.json is no one job's to write
        results = [run_one(p, r, {"round": r, "position": 0, "jobs_in_round": 1}) for r in range(p.repeats)]
    outcome = outcomes(results).get(p.job, JobOutcome(p.job, [], 0.0))
    if p.root != p.job_dir:  # a sweep's job, perhaps on a machine that does not share the sweep folder
        from harness.results.records import pack

        outcome.files, outcome.left_out = pack(p.job_dir, p.root)
    return outcome


# how a SLURM peer's repeat ended, when not by itself (harness.trial.spawn.run_while)
_PEER_ENDED = {
    "timeout": "did not end within trial.timeout_s",
    "interrupted": "was stopped by a signal",
    "stopped": "was stopped: the job's first task (rank 0) had ended",
}


def _slurm_rank(cfg: DictConfig) -> int:
    """This task's rank where SLURM runs the job as one task per node for ``consumer.rank_placement=nodes``; else 0."""
    if OmegaConf.select(cfg, "consumer.rank_placement", default="machine") != "nodes":
        return 0
    return int(os.environ.get("SLURM_PROCID") or 0) if int(os.environ.get("SLURM_NTASKS") or 1) > 1 else 0


def _run_peer(cfg: DictConfig, rank: int) -> JobOutcome:
    """Rank ``rank`` of each repeat the job's first task runs as rank 0, met at its store (harness.trial.peer).

    It writes nothing in the job's folder (task 0's) and returns an empty outcome, which Hydra drops:
    the job's row is rank 0's, with this rank's figures in it.
    """
    from harness.trial.peer import CONNECT_S, slurm_rendezvous
    from harness.trial.spawn import run_while

    host, port = slurm_rendezvous()
    first_task = _first_task_result()
    for repeat in range(int(cfg.trial.repeats)):
        command = [sys.executable, "-m", "harness.trial.worker", "--join", host, str(port), str(rank), "--repeat", str(repeat)]
        ended = run_while(command, lambda: first_task is None or not first_task.exists(), float(cfg.trial.timeout_s) + CONNECT_S)
        if ended != "exited":
            print(f"harness: rank {rank}: repeat {repeat} {_PEER_ENDED[ended]}", file=sys.stderr, flush=True)
        if ended in ("stopped", "interrupted"):  # rank 0 serves no more repeats, or the job is told to stop
            break
    return JobOutcome(-1, [], 0.0)


def _first_task_result() -> Path | None:
    """The file submitit writes when the job's first task (rank 0) has returned, in the folder every task shares."""
    if not os.environ.get("SUBMITIT_FOLDER"):
        return None
    import submitit
    from submitit.core.utils import JobPaths

    return JobPaths(os.environ["SUBMITIT_FOLDER"], job_id=submitit.JobEnvironment().job_id, task_id=0).result_pickle


def _tell_trials_the_cluster() -> None:
    """In a job Ray runs: its trials learn the cluster's address (``RAY_ADDRESS``), where ranks on other nodes start."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        os.environ.setdefault("RAY_ADDRESS", ray.get_runtime_context().gcs_address)


# The three phases the harness launcher calls; a plain function keeps them as attributes,
# so Hydra and any launcher see an ordinary task function (picklable by reference).
task.check = check_jobs  # type: ignore[attr-defined]
task.plan = plan  # type: ignore[attr-defined]
task.run = run_planned  # type: ignore[attr-defined]
task.outcomes = outcomes  # type: ignore[attr-defined]


# -- the callback that guards other launchers ----------------------------------------------------
START_S = 120.0  # a job's own start beside its trials (imports, the dataset check, the report's table): generous


def _check_launcher_limit(config: DictConfig, jobs: list) -> None:
    """Refuse a sweep whose jobs could outlive the launcher's time limit (submitit's ``timeout_min``).

    The launcher would kill such a job from outside, with no result and no reason recorded;
    the harness's own ``trial.timeout_s`` must end a stuck trial first, as a row that says so.
    """
    limit_min = OmegaConf.select(config, "hydra.launcher.timeout_min", default=None)
    if not isinstance(limit_min, (int, float)) or limit_min <= 0:
        return
    worst = max(jobs, key=lambda typed: typed.trial.timeout_s * typed.trial.repeats)
    need_s = worst.trial.timeout_s * worst.trial.repeats + START_S
    if need_s > limit_min * 60:
        raise ConfigError(
            f"hydra.launcher.timeout_min={limit_min:g}: a job runs up to trial.repeats={worst.trial.repeats} x "
            f"trial.timeout_s={worst.trial.timeout_s:g} s plus its start ({need_s / 60:.1f} min), so the launcher could kill it "
            f"unrecorded; raise hydra.launcher.timeout_min to {int(need_s // 60) + 1} or lower trial.timeout_s"
        )


class Preflight(Callback):
    """A Hydra callback: before a launcher other than the harness's starts, check every job and build the datasets.

    The harness launcher checks the jobs it is given itself. Another launcher (submitit,
    Ray) would run jobs in processes or machines of its own, where a bad value would fail
    only when its job starts and concurrent jobs would race to build the same dataset.
    Hydra logs and continues after an exception in a callback, so a refused sweep leaves
    through :class:`SystemExit`, the one-line reason printed as every harness error is.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        launcher = str(OmegaConf.select(config, "hydra.launcher._target_", default=""))
        if launcher == LAUNCHER_TARGET:
            return
        name = OmegaConf.select(config, "hydra.runtime.choices", default={}).get("hydra/launcher") or launcher.rsplit(".", 1)[-1]
        print(
            f"harness: WARNING: hydra/launcher={name} decides where and when each job runs; jobs that run at the same "
            "time on one machine disturb each other's numbers (hydra/launcher=harness runs one trial at a time)",
            file=sys.stderr,
            flush=True,
        )
        try:
            self._check_and_prepare(config)
        except HarnessError as exc:
            print(f"ERROR: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(1) from exc

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Stop a Ray cluster the launcher started here, so its jobs' forwarded lines print before the sweep's last lines."""
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            ray.shutdown()

    @staticmethod
    def _check_and_prepare(config: DictConfig) -> None:
        from harness.config.compose import compose, expand_sweep

        task_overrides = [str(o) for o in config.hydra.overrides.task]
        params = dict(OmegaConf.select(config, "hydra.sweeper.params", default=None) or {})
        typed_jobs = [check_job(compose(job, typed=False)) for job in expand_sweep(task_overrides, params=params)]
        _check_launcher_limit(config, typed_jobs)
        seen = set()
        for typed in typed_jobs:
            key = OmegaConf.to_yaml(OmegaConf.structured(typed.dataset))
            if key not in seen:
                seen.add(key)
                try:
                    _prepare_dataset(typed, bench=False)
                except HarnessError:
                    pass  # the job records the reason as its failure, as under the harness launcher
