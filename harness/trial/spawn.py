"""The parent side of a trial: start a fresh process, enforce the timeout, record any failure.

Each trial runs in its own process and session, so thread pools, caches and memory of
one trial never bias the next, and a timeout or Ctrl-C kills the child together with
every worker it started. Whatever happens, the trial folder ends with a ``result.json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from harness.monitor.sampler import MARKERS
from harness.results.model import RESULT_FILE, TrialResult, read_result
from harness.trial.worker import SAMPLER_ENV, SPAWNED_AT_ENV

LOG_FILE = "trial.log"
LOG_TAIL_LINES = 30


def run_trial(config_file: Path, trial_dir: Path, *, job: int, repeat: int, overrides: Sequence[str], config: dict,
              timeout_s: float, kind: str = "trial", env: Optional[Dict[str, str]] = None,
              schedule: Optional[Dict[str, int]] = None) -> TrialResult:
    """Run one trial in a child process and return its result (also on disk).

    Args:
        kind: ``trial`` (a loader feeding the consumer) or ``augbench``.
        env: extra environment variables for the child (augbench's one-thread settings).
        schedule: where the trial ran in the sweep (round, position), kept in its ``timing``.
    """
    trial_dir.mkdir(parents=True, exist_ok=True)
    spec = {"config": str(config_file), "job": job, "repeat": repeat, "overrides": list(overrides), "kind": kind,
            "schedule": schedule or {}}
    (trial_dir / "trial.json").write_text(json.dumps(spec, indent=1) + "\n")
    (trial_dir / RESULT_FILE).unlink(missing_ok=True)
    for name in MARKERS.values():
        (trial_dir / name).unlink(missing_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    env[SPAWNED_AT_ENV] = repr(time.time())
    if kind == "trial" and config.get("monitor", {}).get("enabled", True):
        env[SAMPLER_ENV] = "1"  # the trial waits for the sampler's end-of-phase reading
    with open(trial_dir / LOG_FILE, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.trial.worker", str(trial_dir)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env,
        )
        sampler = start_sampler(proc.pid, config, trial_dir) if kind == "trial" else None
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            record = sampler.stop() if sampler is not None else None
            kill_group(proc)  # also reaps workers the child left behind
            for name in MARKERS.values():
                (trial_dir / name).unlink(missing_ok=True)
    result = _collect(proc, trial_dir, timed_out, timeout_s, TrialResult(
        status="failed", config=config, overrides=list(overrides), job=job, repeat=repeat, kind=kind, timing=dict(schedule or {})))
    if record is not None:
        attach_monitor(result, record)
        result.write(trial_dir)
        if config.get("monitor", {}).get("trace", True):
            from harness.monitor.trace import write_trial_trace

            write_trial_trace(result, trial_dir)
    return result


def start_sampler(pid: int, config: dict, folder: Path = None):
    """The utilization sampler for the child ``pid``, or ``None`` when ``monitor.enabled=false``."""
    monitor = config.get("monitor", {})
    if not monitor.get("enabled", True):
        return None
    from harness.monitor.sampler import Sampler

    try:
        return Sampler(pid, monitor.get("interval_ms", 100), gpu_index=config.get("consumer", {}).get("gpu_index", 0),
                       gpu=monitor.get("gpu", True), uss_interval_ms=monitor.get("uss_interval_ms", 0),
                       folder=None if folder is None else str(folder)).start()
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
    result.overhead["sampler"]["measured_phase_cpu_pct_of_core"] = round(measured / wall * 100, 3) if measured is not None and wall else None


MONITOR_SUMMARY = ("cpu_tree_mean_pct", "cpu_tree_max_pct", "cpu_s_per_1000_samples", "peak_rss_mb", "pss_mb", "disk_read_mb_s",
                   "gpu_util_mean_pct", "gpu_idle_pct", "gpu_power_mean_w")


def _collect(proc, trial_dir: Path, timed_out: bool, timeout_s: float, base: TrialResult) -> TrialResult:
    """The child's result.json, or a failed / timeout result that says why there is none."""
    if timed_out:
        base.status = "timeout"
        base.error = f"still running after trial.timeout_s={timeout_s:g} s; killed with its workers"
        base.traceback = log_tail(trial_dir)
        base.write(trial_dir)
        return base
    if (trial_dir / RESULT_FILE).exists():
        return read_result(trial_dir / RESULT_FILE)
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
    lines: List[str] = [line for line in log_tail(trial_dir).splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "no output"
    return f"trial process exited with code {returncode} without a result: {last}"


def log_tail(trial_dir: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = (trial_dir / LOG_FILE).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
