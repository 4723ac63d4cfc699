"""The parent side of a trial: start a fresh process, enforce the timeout, record any failure.

Each trial runs in its own process and session, so thread pools, caches and memory of
one trial never bias the next, and a timeout or a signal to the sweep (SIGTERM, Ctrl-C:
see :mod:`harness.trial.stop`) kills the child together with every worker it started.
Whatever happens, the trial folder ends with a ``result.json`` and the parent's
``supervisor.json`` beside it; the parent never edits a result the child wrote
(:mod:`harness.trial.protocol`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.results.model import TrialResult, read_result
from harness.storage.mount import StorageError, mounted
from harness.trial import stop
from harness.trial.peer import job_node
from harness.trial.protocol import LOG_FILE, RESULT_FILE, SUPERVISOR_FILE, Channel, Request, Supervision

LOG_TAIL_LINES = 30
WORKER = "harness.trial.worker"  # the child's module, run as python -m WORKER TRIAL_DIR


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
        env: process settings for the child (augbench's one-thread pools), applied before any framework import.
        schedule: where the trial ran in the sweep (round, position), kept in its ``timing``.

    Returns:
        The result as every reader sees it: the child's (or, when it left none, the
        parent's) ``result.json`` with ``supervisor.json`` merged in.

    Raises:
        stop.Interrupted: a signal asked the sweep to stop before this trial started.
    """
    stop.check()  # start nothing new once a signal asked to stop
    monitor = config.get("monitor", {})
    request = Request(
        str(config_file),
        job,
        repeat,
        list(overrides),
        kind,
        dict(schedule or {}),
        sampled=kind == "trial" and bool(monitor.get("enabled", True)),
        env=dict(env or {}),
        cluster=job_node(),
    )
    _clear(trial_dir)
    # From the child's start until its result is on disk a signal only marks the stop, so
    # neither the kill of its process group nor the trial's files are cut short.
    with stop.trial_running():
        try:
            # storage=throttled: the dataset cache served through a FUSE mount, unmounted on the way out
            with mounted(config, _dataset_cache(config), trial_dir, _server_cores(config)) as mount:
                request.storage = mount["where"]
                facts, record = _run_child(request, trial_dir, config, timeout_s)
        except StorageError as exc:  # it could not mount: the trial fails with the reason, nothing stays mounted
            return _failed(request, config, trial_dir, str(exc))
        facts.storage = mount["facts"]
        facts.write(trial_dir)
        result = read_result(trial_dir / RESULT_FILE)
        if record is not None and monitor.get("trace", True):
            from harness.monitor.trace import write_trial_trace

            write_trial_trace(result, trial_dir)
    return result


def _dataset_cache(config: dict) -> Path:
    """The dataset cache a job's trials read (``dataset.cache_dir``, ``$HARNESS_CACHE`` or ``~/.cache/harness``)."""
    from types import SimpleNamespace

    from harness.data.build import cache_root

    return cache_root(SimpleNamespace(cache_dir=(config.get("dataset") or {}).get("cache_dir")))


def _server_cores(config: dict) -> list[int] | None:
    """Cores for a storage server when ``trial.cpus`` pins the trial (None: wherever the OS puts it).

    ``storage.server_cores=free`` (the default): the cores after the trial's, None when none are
    left, so the server's CPU is not taken from the pipeline. ``shared``: the trial's own cores,
    where a kernel client's work (NFS, Lustre) runs too. Off the trial's cores every request wakes
    another core; in a bare loop on this project's 2-core VM that wake-up sometimes waited for the
    next scheduler tick (a serial tf.data reader: 200 files/s, 5.0 ms a file, against 400 local and
    420 with the server on the reader's core), though trials measured no difference between the two.
    """
    cpus = (config.get("trial") or {}).get("cpus")
    if not cpus:
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if (config.get("storage") or {}).get("server_cores") == "shared":
        return allowed[:cpus]
    return allowed[cpus:] or None


def _failed(request: Request, config: dict, trial_dir: Path, error: str) -> TrialResult:
    """A trial that could not start, as its row: failed, with the one-line reason."""
    result = TrialResult("failed", config, request.overrides, request.job, request.repeat, kind=request.kind, timing=dict(request.schedule))
    result.error = error
    result.write(trial_dir)
    return result


def _clear(trial_dir: Path) -> None:
    """The trial folder, without an earlier attempt's result and the parent's facts about it."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    for name in (RESULT_FILE, SUPERVISOR_FILE):
        (trial_dir / name).unlink(missing_ok=True)


def _run_child(request: Request, trial_dir: Path, config: dict, timeout_s: float) -> tuple[Supervision, dict | None]:
    """Start the child, supervise it until its group is gone, make sure a result.json exists.

    Returns:
        (the parent's facts, the sampler's record or ``None``).
    """
    channel, child_end = Channel.pair()
    code = config.get("trial", {}).get("code")  # check --ab: the base revision's checkout
    try:
        # closed once the child has its copies: then the child sees the channel close if the parent dies
        with open(trial_dir / LOG_FILE, "wb") as log, child_end:
            request.channel_fd = child_end.fileno()  # pass_fds keeps the number in the child
            request.spawned_at = time.time()
            request.write(trial_dir)
            proc = subprocess.Popen(
                [sys.executable, "-m", WORKER, str(trial_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                pass_fds=(child_end.fileno(),),
                env=_child_env(code),
                cwd=code,
            )
        started = time.monotonic()
        sampler = start_sampler(proc.pid, config, channel) if request.kind == "trial" else None
        try:
            outcome = wait_for(proc, timeout_s)
        finally:
            record = sampler.stop() if sampler is not None else None
            killed = kill_group(proc)  # also reaps workers the child left behind
    finally:
        channel.close()
    elapsed_s = time.monotonic() - started
    result, by = _collect(proc, trial_dir, outcome, timeout_s, request, config, elapsed_s)
    monitor = monitor_record(result, record) if record is not None else {}
    return Supervision(outcome, proc.returncode, killed, round(elapsed_s, 3), by, monitor), record


NEWER_KEYS = "HARNESS_NEWER_KEYS"  # harness.config.compose reads it; spelled here so spawn needs no config import
POLL_S = 0.1  # how often the parent looks for a stop signal while a trial runs (Popen.wait polls too)


def _child_env(code: str | None = None) -> dict[str, str]:
    """The trial's environment: the sweep's own, unbuffered, without a library's update check at import.

    albumentations asks PyPI for a newer version whenever it is imported (a request of up to 2 s, in the
    trial's start, and a network access a measurement should not make); a user's own setting wins.
    With ``code`` (``trial.code``, a checkout of another revision) that folder comes first on the path,
    so the user's modules, and harness's own where the checkout is harness, are that revision's; that
    revision's harness then drops the config keys it does not know (:data:`~harness.config.compose.NEWER_KEYS`).
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    env.pop(NEWER_KEYS, None)
    if code:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(code), env.get("PYTHONPATH", "")) if p)
        env[NEWER_KEYS] = "drop"
    return env


def wait_for(proc: subprocess.Popen, timeout_s: float, keep_going: Callable[[], bool] | None = None) -> str:
    """``exited``, ``timeout`` (still running after ``timeout_s``), ``interrupted`` (a signal asked to stop) or
    ``stopped`` (``keep_going()`` turned false)."""
    deadline = time.monotonic() + timeout_s
    while stop.requested() is None:
        try:
            proc.wait(timeout=min(POLL_S, max(deadline - time.monotonic(), 0.0)))
            return "exited"
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                return "timeout"
            if keep_going is not None and not keep_going():
                return "stopped"
    return "interrupted"


def run_while(command: list[str], keep_going: Callable[[], bool], timeout_s: float) -> str:
    """Run ``command`` in a process group of its own until :func:`wait_for` says how it ended; a group still running
    then is stopped with :func:`kill_group` (SIGTERM, then SIGKILL 5 s later).

    A SLURM peer runs each repeat's rank this way: once the job's first task (rank 0) has ended, no store will ever be
    served, and waiting out the repeat's whole timeout would hold the nodes for nothing.
    """
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
    ended = wait_for(proc, timeout_s, keep_going)
    if ended != "exited":
        kill_group(proc, grace_s=5.0)
    return ended


def start_sampler(pid: int, config: dict, phases: Channel | None = None):
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
            phases=phases,
        ).start()
    except Exception:  # the child may already be gone; the trial's own result says why
        return None


def monitor_record(result: TrialResult, record: dict) -> dict:
    """The sampler's ``record`` with its summary over the measured phase of ``result``, for ``supervisor.json``."""
    from harness.monitor.summary import summarize

    start = result.timing.get("measure_start_clock")
    wall = result.summary.get("wall_s")
    end = start + wall if start is not None and wall is not None else None
    samples = sum(result.steps.get("samples", [])) or None
    measured = record["overhead"].get("measured_phase_cpu_s")
    overhead = {
        **record["overhead"],
        "measured_phase_cpu_pct_of_core": round(measured / wall * 100, 3) if measured is not None and wall else None,
    }
    return {**record, "overhead": overhead, "summary": summarize(record, start, end, samples)}


def _collect(
    proc, trial_dir: Path, outcome: str, timeout_s: float, request: Request, config: dict, elapsed_s: float
) -> tuple[TrialResult, str]:
    """(the child's result, ``child``), or (a failed / timeout / interrupted result the parent wrote, ``parent``).

    A child that wrote its result and was then killed (at the timeout, or by a signal
    just after) keeps its result: the measurement had ended. The parent never replaces a
    file the child wrote; ``supervisor.json`` says how the process ended.
    """
    if (trial_dir / RESULT_FILE).exists():
        return read_result(trial_dir / RESULT_FILE, supervised=False), "child"
    base = TrialResult("failed", config, request.overrides, request.job, request.repeat, kind=request.kind, timing=dict(request.schedule))
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
    return base, "parent"


def kill_group(proc: subprocess.Popen, grace_s: float = 3.0) -> str | None:
    """Stop the child's whole process group: SIGTERM, then SIGKILL after ``grace_s``.

    Returns:
        The last signal the group got (``SIGTERM``, ``SIGKILL``), ``None`` when nothing was left in it.
    """
    killed = None
    if _signal_group(proc.pid, signal.SIGTERM):
        killed = "SIGTERM"
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _signal_group(proc.pid, 0):
            proc.poll()  # reap the leader so an exited group reads as empty
            time.sleep(0.02)
        if _signal_group(proc.pid, signal.SIGKILL):
            killed = "SIGKILL"
    proc.wait()
    return killed


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
