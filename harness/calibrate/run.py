"""The parent's side of a calibration: what to measure, and the child process that measures it.

After a sweep, the works come from the trials' own records (each ok trial's loader as its
family described it, its dataset, batch and augment pipeline: :func:`harness.results.ceilings.work_of`)
and the usable cores from their environment. For ``python -m harness calibrate`` with
overrides no trial has run, so the child builds each job's loader (without iterating it) to
read the same description. Either way, one child process (:mod:`harness.calibrate.child`)
with every thread pool at one thread does all the timing, under a timeout; a timeout, a
crash or a signal kills its whole process group, as a trial's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.results.ceilings import CEILINGS_FILE, Ceilings, read, usable_cores, work_of

BUDGET_S = 10.0  # seconds of timing the child spreads over the datasets' reads and the works
TIMEOUT_S = 120.0  # the child is killed after this: framework imports on a busy machine take their time
MAX_WORKS = 8  # distinct works timed at most; the others are named in the notes
CHILD = "harness.calibrate.child"


@dataclass
class Plan:
    """What one calibration measures."""

    works: list[dict] = field(default_factory=list)  # {"work": Work as a dict, or None: the child resolves it, "config": trial.yaml}
    datasets: list[str] = field(default_factory=list)  # dataset roots whose read bandwidth to measure
    cores: tuple[float, str] | None = None  # (usable CPUs, how known) from the trials; None: the child probes
    notes: list[str] = field(default_factory=list)


def plan_sweep(root: Path) -> Plan:
    """The works of a finished sweep's ok trials, each once, and the datasets they read."""
    from harness.results.table import scan

    plan, seen = Plan(), set()
    for _, t in scan(Path(root)).results:
        if t.kind != "trial" or t.status != "ok":
            continue
        if plan.cores is None:
            cores, how = usable_cores(t.environment)
            plan.cores = (cores, how) if cores else None
        dataset = t.dataset.get("root")
        if dataset and t.dataset.get("count") and dataset not in plan.datasets:
            plan.datasets.append(str(dataset))
        work = work_of(t.config, t.loader, t.dataset, t.augment)
        if work is not None and work not in seen:
            seen.add(work)
            config = Path(root) / str(t.job) / "trial.yaml"
            plan.works.append({"work": asdict(work), "config": str(config) if config.exists() else None})
    return _capped(plan)


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
    """Run the child for ``plan``, which writes ``out`` (ceilings.json); return what it wrote.

    Raises:
        HarnessError: the child failed or ran past ``timeout_s`` (the last lines of its output named).
    """
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


def for_sweep(root: Path, **kw) -> Ceilings | None:
    """Measure the ceilings of a finished sweep into ``root/ceilings.json``; None where it has nothing to measure."""
    plan = plan_sweep(root)
    if not plan.datasets and not plan.works:
        return None
    return measure(plan, Path(root) / CEILINGS_FILE, **kw)
