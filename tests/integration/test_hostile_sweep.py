"""Issue 13 through the CLI: no hang, no silent wrong answer, nothing lost.

A sweep stopped by SIGTERM or SIGINT (SLURM, CI runners, ``timeout``, Ctrl-C) leaves no
process behind, keeps what finished, records the running trial as interrupted and writes
its report; a trial that measured nothing is too_short, not ok; a reused sweep folder is
refused before any trial runs.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, sweep_dir

# three synthetic jobs of about 3 s each: a signal after the first lands in the second
THREE_JOBS = [
    "loader=synthetic",
    "loader.produce_ms=5",
    "loader.workers=1,2,3",
    "consumer.step_ms=5",
    "trial.seconds=3",
    "trial.warmup_steps=1",
    "monitor.uss_interval_ms=0",
]
EXIT_WITHIN_S = 20  # the kill's grace is 3 s; the rest is writing the report on a loaded machine


def read_rows(folder):
    with open(folder / "results.csv") as handle:
        return list(csv.DictReader(handle))


def start_sweep(cache_dir, tmp_path, *args):
    """``python -m harness sweep`` in a session of its own, as a batch system starts it."""
    env = dict(os.environ, HARNESS_CACHE=str(cache_dir), PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "sweep", *args, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_until(condition, what, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def first_result(tmp_path):
    return list((tmp_path / "sweep").glob("*/repeat-*/result.json"))


def trial_process(sweep: subprocess.Popen):
    """A trial process (python -m harness.trial.worker TRIAL_DIR) of the sweep that has not written its result yet."""
    for child in psutil.Process(sweep.pid).children():
        try:
            cmd = child.cmdline()
            if "harness.trial.worker" in cmd and not (Path(cmd[-1]) / "result.json").exists():
                return child
        except psutil.NoSuchProcess:
            pass
    return None


def survivors(tmp_path, tree):
    """Live processes of the sweep's tree as it was, or any naming this test's folder (orphans reparented to init)."""
    found = {p.pid: p for p in tree}
    for p in psutil.process_iter(["cmdline"]):
        if any(str(tmp_path) in part for part in (p.info["cmdline"] or [])):
            found[p.pid] = p
    alive = []
    for p in found.values():
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def stop_after_first_trial(sweep, tmp_path, signals, *, workers=0, first=True):
    """Send ``signals`` once the first trial finished and the next one runs (with ``workers`` child processes)."""
    if first:
        wait_until(lambda: first_result(tmp_path), "the first result.json")
    trial = wait_until(lambda: trial_process(sweep), "a running trial")
    if workers:
        wait_until(lambda: len(trial.children()) >= workers, f"{workers} DataLoader workers")
    tree = [psutil.Process(sweep.pid)] + psutil.Process(sweep.pid).children(recursive=True)
    for send in signals:
        send()
    start = time.monotonic()
    out, err = sweep.communicate(timeout=EXIT_WITHIN_S)
    return out, err, time.monotonic() - start, tree


def assert_kept_and_reported(tmp_path, out):
    folder = tmp_path / "sweep"
    statuses = [json.loads(p.read_text())["status"] for p in sorted(folder.glob("*/repeat-*/result.json"))]
    assert "ok" in statuses and statuses.count("interrupted") == 1, statuses
    assert {r["status"] for r in read_rows(folder)} == set(statuses)
    assert (folder / "report.html").exists() and (folder / "summary.md").exists()
    assert "interrupted" in out


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_trial_keeps_what_finished_and_writes_the_report(cache_dir, tmp_path, sig, status):
    sweep = start_sweep(cache_dir, tmp_path, *THREE_JOBS)
    out, err, took, tree = stop_after_first_trial(sweep, tmp_path, [lambda: os.kill(sweep.pid, sig)])
    assert sweep.returncode == status, out + err
    assert not survivors(tmp_path, tree)
    assert_kept_and_reported(tmp_path, out)


def test_ctrl_c_twice_at_the_terminal_leaves_no_process_behind(cache_dir, tmp_path):
    sweep = start_sweep(cache_dir, tmp_path, *THREE_JOBS)
    twice = [lambda: os.killpg(sweep.pid, signal.SIGINT), lambda: time.sleep(0.05), lambda: os.killpg(sweep.pid, signal.SIGINT)]
    out, err, took, tree = stop_after_first_trial(sweep, tmp_path, twice)
    assert sweep.returncode == 130, out + err
    assert not survivors(tmp_path, tree)
    statuses = [json.loads(p.read_text())["status"] for p in (tmp_path / "sweep").glob("*/repeat-*/result.json")]
    assert "ok" in statuses and "interrupted" in statuses
    # the second signal either came while the trial was being killed (ignored) or cut the report short, saying so
    assert (tmp_path / "sweep" / "report.html").exists() or "python -m harness report" in err


def test_timeout_leaves_no_process_behind(cache_dir, tmp_path):
    # One trial far longer than timeout's limit, so the signal lands in it whatever the machine's load: with three
    # short trials it could land between two (after one's result, before the next started), which rightly records
    # no interrupted trial, and the test failed on a loaded CI machine.
    env = dict(os.environ, HARNESS_CACHE=str(cache_dir), PYTHONPATH=str(ROOT))
    long_trial = [*THREE_JOBS[:2], "consumer.step_ms=5", "trial.seconds=120", "trial.warmup_steps=1", "monitor.uss_interval_ms=0"]
    limit_s = 15  # start-up (imports, composing the job) well inside it, even on a loaded 2-core machine
    done = subprocess.run(
        [
            "timeout",
            "-s",
            "TERM",
            str(limit_s),
            sys.executable,
            "-m",
            "harness",
            "sweep",
            *long_trial,
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=limit_s + EXIT_WITHIN_S,
    )
    assert done.returncode == 124, done.stdout + done.stderr  # timeout's own status: it had to send the signal
    assert not survivors(tmp_path, [])
    assert [r["status"] for r in read_rows(tmp_path / "sweep")] == ["interrupted"]


def test_sigterm_takes_the_dataloader_workers_too(cache_dir, tmp_path):
    pytest.importorskip("torch")
    tiny = ["dataset.count=48", "dataset.width=64", "dataset.height=48", "batch.size=8", "batch.height=32", "batch.width=32"]
    sweep = start_sweep(
        cache_dir,
        tmp_path,
        "loader=torch",
        "loader.num_workers=2",
        "loader.persistent_workers=true",
        "trial.seconds=60",
        "trial.warmup_steps=1",
        "monitor.uss_interval_ms=0",
        *tiny,
    )
    out, err, took, tree = stop_after_first_trial(sweep, tmp_path, [lambda: os.kill(sweep.pid, signal.SIGTERM)], workers=2, first=False)
    assert sweep.returncode == 143, out + err
    assert len(tree) >= 4  # the sweep, its trial and the trial's two workers, all gone now
    assert not survivors(tmp_path, tree)
    assert json.loads(next((tmp_path / "sweep").glob("0/repeat-0/result.json")).read_text())["status"] == "interrupted"


def test_a_trial_that_measured_nothing_is_too_short(cli, tmp_path):
    done = cli(
        "sweep",
        "loader=synthetic",
        "loader.batches_per_epoch=2,40",
        "trial.epochs=1",
        "consumer.step_ms=1",
        "loader.produce_ms=1",
        "monitor.enabled=false",
    )
    assert done.returncode == 3, done.stdout + done.stderr
    rows = {r["loader.batches_per_epoch"]: r for r in read_rows(sweep_dir(done, tmp_path))}
    assert rows["40"]["status"] == "ok"
    assert rows["2"]["status"] == "too_short" and "measured 0 steps" in rows["2"]["error"]
    assert "too_short trial.epochs=1 delivered 2 batches" in done.stdout


def test_a_folder_holding_a_sweep_is_refused_before_any_trial_then_overwritten(cli, tmp_path):
    quick = [
        "loader=synthetic",
        "loader.produce_ms=1",
        "consumer.step_ms=1",
        "trial.steps=5",
        "trial.warmup_steps=1",
        "monitor.enabled=false",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    assert cli("sweep", "loader.workers=0,1,2", *quick).returncode == 0
    earlier = {p: p.stat().st_mtime_ns for p in (tmp_path / "sweep").glob("*/repeat-0/result.json")}
    done = cli("sweep", "loader.workers=0", *quick)
    assert done.returncode == 1 and "job" not in done.stdout
    assert done.stderr.strip() == (
        f"ERROR: hydra.sweep.dir={tmp_path / 'sweep'} already holds a sweep (3 results); choose "
        "another folder, or add --overwrite to delete them first (python -m harness sweep --overwrite ...)"
    )
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "sweep").glob("*/repeat-0/result.json")} == earlier
    done = cli("sweep", "--overwrite", "loader.workers=0", *quick)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [r["job"] for r in read_rows(tmp_path / "sweep")] == ["0"] and not (tmp_path / "sweep" / "2").exists()
