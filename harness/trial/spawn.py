"""The parent side of a trial: start a fresh process, enforce the timeout, record any failure.

Each trial runs in its own process and session, so thread pools, caches and memory of
one trial never bias the next, and a timeout or a signal to the sweep (SIGTERM, Ctrl-C:
see :mod:`harness.trial.stop`) kills the child together with every worker it started.
Whatever happens, the trial folder ends with a ``result.json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness.monitor.sampler import MARKERS
from harness.results.model import RESULT_FILE, TrialResult, read_result
from harness.trial import stop
from harness.trial.worker import SAMPLER_ENV, SPAWNED_AT_ENV

LOG_FILE = "trial.log"
LOG_TAIL_LINES = 30


def run_trial(
    config_file: Path,
    trial_dir: Path,
    *,
    job: int,
    repeat: int,
    overrides: Sequence[str],
    config: dict,
    timeout_s: float,
    kind: str = "trial",
    env: dict[str, str] | None = None,
    schedule: dict[str, int] | None = None,
) -> TrialResult:
    """Run one trial in a child process and return its result (also on disk).

    Args:
        kind: ``trial`` (a loader feeding the consumer) or ``augbench``.
        env: extra environment variables for the child (augbench's one-thread settings).
        schedule: where the trial ran in the sweep (round, position), kept in its ``timing``.

    Raises:
        stop.Interrupted: a signal asked the sweep to stop before this trial started.
    """
    stop.check()  # start nothing new once a signal asked to stop
    _prepare(
        trial_dir,
        {"config": str(config_file), "job": job, "repeat": repeat, "overrides": list(overrides), "kind": kind, "schedule": schedule or {}},
    )
    base = TrialResult(
        status="failed", config=config, overrides=list(overrides), job=job, repeat=repeat, kind=kind, timing=dict(schedule or {})
    )
    # From the child's start until its result is on disk a signal only marks the stop, so
    # neither the kill of its process group nor its result.json is cut short.
    with stop.trial_running(), open(trial_dir / LOG_FILE, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.trial.worker", str(trial_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=_child_env(config, kind, env),
        )
        started = time.monotonic()
        outcome, record = _supervise(proc, config, kind, trial_dir, timeout_s)
        result = _collect(proc, trial_dir, outcome, timeout_s, base, time.monotonic() - started)
        if record is not None:
            _attach_and_trace(result, record, config, trial_dir)
    return result


POLL_S = 0.1  # how often the parent looks for a stop signal while a trial runs (Popen.wait polls too)


def _prepare(trial_dir: Path, spec: dict) -> None:
    """The trial folder with the child's ``trial.json``, cleared of an earlier attempt's result and markers."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / "trial.json").write_text(json.dumps(spec, indent=1) + "\n")
    (trial_dir / RESULT_FILE).unlink(missing_ok=True)
    for name in MARKERS.values():
        (trial_dir / name).unlink(missing_ok=True)


def _child_env(config: dict, kind: str, extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(extra or {}))
    env[SPAWNED_AT_ENV] = repr(time.time())
    if kind == "trial" and config.get("monitor", {}).get("enabled", True):
        env[SAMPLER_ENV] = "1"  # the trial waits for the sampler's end-of-phase reading
    return env


def _supervise(proc: subprocess.Popen, config: dict, kind: str, trial_dir: Path, timeout_s: float):
    """Sample the child until it ends, times out or a signal asks to stop; then make sure its whole group is gone.

    Returns:
        (``exited`` | ``timeout`` | ``interrupted``, the sampler's record or ``None``).
    """
    sampler = start_sampler(proc.pid, config, trial_dir) if kind == "trial" else None
    try:
        outcome = wait_for(proc, timeout_s)
    finally:
        record = sampler.stop() if sampler is not None else None
        kill_group(proc)  # also reaps workers the child left behind
        for name in MARKERS.values():
            (trial_dir / name).unlink(missing_ok=True)
    return outcome, record


def wait_for(proc: subprocess.Popen, timeout_s: float) -> str:
    """``exited``, ``timeout`` (still running after ``timeout_s``) or ``interrupted`` (a signal asked to stop)."""
    deadline = time.monotonic() + timeout_s
    while stop.requested() is None:
        try:
            proc.wait(timeout=min(POLL_S, max(deadline - time.monotonic(), 0.0)))
            return "exited"
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                return "timeout"
    return "interrupted"


def _attach_and_trace(result: TrialResult, record: dict, config: dict, trial_dir: Path) -> None:
    attach_monitor(result, record)
    result.write(trial_dir)
    if config.get("monitor", {}).get("trace", True):
        from harness.monitor.trace import write_trial_trace

        write_trial_trace(result, trial_dir)


def start_sampler(pid: int, config: dict, folder: Path | None = None):
    """The utilization sampler for the child ``pid``, or ``None`` when ``monitor.enabled=false``."""
    monitor = config.get("monitor", {})
    if not monitor.get("enabled", True):
        return None
    from harness.monitor.sampler import Sampler

    try:
        return Sampler(
            pid,
            monitor.get("interval_ms", 100),
            gpu_index=config.get("consumer", {}).get("gpu_index", 0),
            gpu=monitor.get("gpu", True),
            uss_interval_ms=monitor.get("uss_interval_ms", 0),
            folder=None if folder is None else str(folder),
        ).start()
    except Exception:  # the child may already be gone; the trial's own result says why
        return None


def attach_monitor(result: TrialResult, record: dict) -> None:
    """Put the sampled series, their summary over the measured phase and the sampler's cost into ``result``."""
    from harness.monitor.summary import summarize

    start = result.timing.get("measure_start_clock")
    wall = result.summary.get("wall_s")
    end = start + wall if start is not None and wall is not None else None
    samples = sum(result.steps.get("samples", [])) or None
    summary = summarize(record, start, end, samples)
    result.monitor = {**record, "summary": summary}
    result.summary.update({k: summary[k] for k in MONITOR_SUMMARY})
    result.overhead["sampler"] = record["overhead"]
    measured = record["overhead"].get("measured_phase_cpu_s")
    result.overhead["sampler"]["measured_phase_cpu_pct_of_core"] = (
        round(measured / wall * 100, 3) if measured is not None and wall else None
    )


MONITOR_SUMMARY = (
    "cpu_tree_mean_pct",
    "cpu_tree_max_pct",
    "cpu_s_per_1000_samples",
    "peak_rss_mb",
    "pss_mb",
    "disk_read_mb_s",
    "gpu_util_mean_pct",
    "gpu_idle_pct",
    "gpu_power_mean_w",
)


def _collect(proc, trial_dir: Path, outcome: str, timeout_s: float, base: TrialResult, elapsed_s: float) -> TrialResult:
    """The child's result.json, or a failed / timeout / interrupted result that says why there is none."""
    if outcome != "timeout" and (trial_dir / RESULT_FILE).exists():  # finished, even if a signal came just after
        return read_result(trial_dir / RESULT_FILE)
    if outcome == "timeout":
        base.status = "timeout"
        base.error = f"still running after trial.timeout_s={timeout_s:g} s; killed with its workers"
    elif outcome == "interrupted":
        signum = stop.requested()
        assert signum is not None  # wait_for says "interrupted" only once a signal asked to stop, and the ask stays
        base.status = "interrupted"
        base.error = f"stopped by {signal.Signals(signum).name} after {elapsed_s:.1f} s; killed with its workers"
    else:
        base.error = crash_reason(proc.returncode, trial_dir)
    base.traceback = log_tail(trial_dir)
    base.write(trial_dir)
    return base


def kill_group(proc: subprocess.Popen, grace_s: float = 3.0) -> None:
    """Stop the child's whole process group: SIGTERM, then SIGKILL after ``grace_s``."""
    if _signal_group(proc.pid, signal.SIGTERM):
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _signal_group(proc.pid, 0):
            proc.poll()  # reap the leader so an exited group reads as empty
            time.sleep(0.02)
        _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the group; ``False`` when no process is left in it."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def crash_reason(returncode: int, trial_dir: Path) -> str:
    """A one-line reason for a child that died without writing its result."""
    if returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"trial process killed by {name}{hint}"
    lines: list[str] = [line for line in log_tail(trial_dir).splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "no output"
    return f"trial process exited with code {returncode} without a result: {last}"


def log_tail(trial_dir: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = (trial_dir / LOG_FILE).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
