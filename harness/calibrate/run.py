"""The parent's side of a calibration: what to measure, the child process that times decoding, the chains run alone.

After a sweep, the works come from the trials' own records (each ok trial's loader as its
family described it, its dataset, batch and augment pipeline: :func:`harness.results.ceilings.work_of`)
and the usable cores from their environment. Two measurements follow:

* the CPU ceilings, as the pipelines run (:mod:`harness.calibrate.alone`): each work's fastest
  chain run alone, in trials of its own on the sweep's engine;
* one core's decode cost per library, and each dataset's read bandwidth: one child process
  (:mod:`harness.calibrate.child`) with every thread pool at one thread does that timing, under a
  timeout; a timeout, a crash or a signal kills its whole process group, as a trial's. Beside
  each decoding work the two fastest jobs do, the other decoders their family could use are
  timed on the same files, for the advice's decoder lever.

For ``python -m harness calibrate`` with overrides no trial has run, so the child builds each
job's loader (without iterating it) to read the same description, and no chain runs alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from harness.errors import HarnessError
from harness.results.ceilings import CEILINGS_FILE, Ceilings, Work, read, usable_cores, work_of

BUDGET_S = 10.0  # seconds of timing the child spreads over the datasets' reads and the works
TIMEOUT_S = 120.0  # the child is killed after this: framework imports on a busy machine take their time
MAX_WORKS = 12  # distinct works timed at most (the sweep's, then other decoders'); the others are named in the notes
ALTERNATIVES_OF = 2  # the fastest jobs whose decoding work is timed with every other decoder of their family
CHILD = "harness.calibrate.child"


@dataclass
class Plan:
    """What one calibration measures."""

    works: list[dict] = field(default_factory=list)  # {"work": Work as a dict, or None: the child resolves it, "config": trial.yaml}
    datasets: list[str] = field(default_factory=list)  # dataset roots whose read bandwidth to measure
    cores: tuple[float, str] | None = None  # (usable CPUs, how known) from the trials; None: the child probes
    notes: list[str] = field(default_factory=list)


def plan_sweep(root: Path, *, alternatives: bool = True) -> Plan:
    """The works of a finished sweep's ok trials, each once, the other decoders of the fastest, and the datasets they read.

    Args:
        alternatives: time the other decoders of the fastest jobs' families too (the advice's decoder lever).
    """
    from harness.results.table import scan

    plan, seen = Plan(), set[Work]()
    trials = [t for _, t in scan(Path(root)).results if t.kind == "trial" and t.status == "ok"]
    for t in trials:
        if plan.cores is None:
            cores, how = usable_cores(t.environment)
            plan.cores = (cores, how) if cores else None
        dataset = t.dataset.get("root")
        if dataset and t.dataset.get("count") and dataset not in plan.datasets:
            plan.datasets.append(str(dataset))
        _add(plan, seen, work_of(t.config, t.loader, t.dataset, t.augment), Path(root) / str(t.job) / "trial.yaml")
    for t in _fastest(trials, ALTERNATIVES_OF if alternatives else 0):
        work = work_of(t.config, t.loader, t.dataset, t.augment)
        for name in (t.loader.get("family_knobs") or {}).get("decoders") or []:
            if work is not None and name != work.decoder:
                _add(plan, seen, replace(work, decoder=name), Path(root) / str(t.job) / "trial.yaml")
    return _capped(plan)


def _add(plan: Plan, seen: set, work: Work | None, config: Path) -> None:
    if work is not None and work not in seen:
        seen.add(work)
        plan.works.append({"work": asdict(work), "config": str(config) if config.exists() else None})


def _fastest(trials: list, n: int) -> list:
    """The first ok repeat of the ``n`` jobs with the highest median samples/s whose family has a decoder knob."""
    import statistics

    jobs: dict[int, list] = {}
    for t in trials:
        if (t.loader.get("family_knobs") or {}).get("decoder"):
            jobs.setdefault(t.job, []).append(t)
    ranked = sorted(jobs.values(), key=lambda ts: -statistics.median(x.summary.get("samples_per_s") or 0.0 for x in ts))
    return [ts[0] for ts in ranked[:n]]


def plan_configs(configs: list[Path], datasets: list[str]) -> Plan:
    """Each job's trial.yaml, for the child to describe its loader; ``datasets``: the roots they read."""
    plan = Plan(works=[{"work": None, "config": str(c)} for c in configs], datasets=list(dict.fromkeys(datasets)))
    return _capped(plan)


def _capped(plan: Plan) -> Plan:
    if len(plan.works) > MAX_WORKS:
        left = plan.works[MAX_WORKS:]
        plan.works = plan.works[:MAX_WORKS]
        plan.notes.append(f"{len(left)} more decode paths were not timed (at most {MAX_WORKS} per calibration)")
    return plan


def measure(plan: Plan, out: Path, *, budget_s: float = BUDGET_S, timeout_s: float = TIMEOUT_S) -> Ceilings:
    """Time ``plan`` in child processes and write ``out`` (ceilings.json); return what it holds.

    TensorFlow's works and the others (torchvision's decoder imports torch) are timed in a child each:
    the two frameworks in one process can crash it. The first child also reads the disks.

    Raises:
        HarnessError: a child failed or ran past ``timeout_s`` (the last lines of its output named).
    """
    tf = [w for w in plan.works if _tensorflow(w)]
    rest = [w for w in plan.works if not _tensorflow(w)]
    if not tf or not rest:
        return _child(plan, out, budget_s, timeout_s)
    first = _child(replace(plan, works=tf), out, budget_s * len(tf) / len(plan.works), timeout_s)
    second = _child(replace(plan, works=rest, datasets=[], notes=[]), out, budget_s * len(rest) / len(plan.works), timeout_s)
    first.costs += second.costs
    first.notes += second.notes
    first.seconds = round(first.seconds + second.seconds, 2)
    first.open_ms = first.open_ms if first.open_ms is not None else second.open_ms
    first.write(out)
    return first


def _tensorflow(item: dict) -> bool:
    """Whether timing a planned work imports TensorFlow: tf.image's decode, or an augment pipeline in tf.image or Keras."""
    work = item.get("work") or {}
    return work.get("decoder") == "tf_image" or str(work.get("augment", "")).startswith(("tf_image:", "keras_idg:"))


def _child(plan: Plan, out: Path, budget_s: float, timeout_s: float) -> Ceilings:
    """Run the child for ``plan``, which writes ``out``; return what it wrote."""
    from harness.augment.bench import ONE_THREAD_ENV
    from harness.trial import stop
    from harness.trial.spawn import kill_group

    stop.check()  # start nothing once a signal asked the sweep to stop
    with tempfile.TemporaryDirectory(prefix="harness-calibrate-") as scratch:
        request = Path(scratch) / "request.json"
        body = {"out": str(out), "budget_s": budget_s, "cores": plan.cores, "works": plan.works, "datasets": plan.datasets}
        request.write_text(json.dumps({**body, "notes": plan.notes}))
        env = {**os.environ, **ONE_THREAD_ENV, "TF_CPP_MIN_LOG_LEVEL": "2"}
        proc = subprocess.Popen(
            [sys.executable, "-m", CHILD, str(request)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # its own process group: a kill reaches every thread pool and helper it starts
        )
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise HarnessError(f"calibration took longer than {timeout_s:.0f} s and was stopped") from None
        except BaseException:  # Ctrl-C, SIGTERM (stop.Interrupted): no child outlives the sweep
            kill_group(proc)
            raise
    if proc.returncode != 0 or not Path(out).exists():
        tail = " | ".join(line for line in (output or "").strip().splitlines()[-3:])
        raise HarnessError(f"calibration failed (exit {proc.returncode}): {tail or 'no output'}")
    return read(out)


def for_sweep(
    root: Path, *, seconds: float | None = None, repeats: int | None = None, alternatives: bool = True, decode: bool = True, **kw
) -> Ceilings | None:
    """Measure the ceilings of a finished sweep into ``root/ceilings.json``; None where it has nothing to measure.

    The CPU ceilings come from the chains the sweep's rounds ran alone (``root/ceilings/``), or, where
    another launcher ran the sweep, from running them now; then the child times decoding and reads
    the disks, and the file is written once both are in.

    Args:
        seconds, repeats: of each run alone after the trials (:data:`harness.trial.alone.SECONDS`, 2 by default).
        alternatives: time the other decoders of the fastest jobs' families (:func:`plan_sweep`).
        decode: time one core's decode per library (False: the chains and the disks only, with no child that
            imports a framework; the advice then has no decoder lever).
    """
    from harness.calibrate import alone

    plan = plan_sweep(root, alternatives=alternatives)
    if not plan.datasets and not plan.works:
        return None
    if not decode and plan.works:
        plan.works = []
        plan.notes.append("one core's decode per library was not timed (report.ceilings=quick): no decoder advice")
    cores = plan.cores[0] if plan.cores else alone_cores()
    pipelines = alone.pipelines(Path(root), cores)
    if not pipelines:
        pipelines, notes = alone.run_after(Path(root), cores, seconds=seconds or alone.SECONDS, repeats=repeats or 2)
        plan.notes += notes
    out = Path(root) / CEILINGS_FILE
    found = measure(plan, out, **kw)
    found.pipelines = pipelines
    found.write(out)
    return found


def alone_cores() -> float:
    from harness.calibrate.probes import usable_cores as probe

    return probe()[0]
