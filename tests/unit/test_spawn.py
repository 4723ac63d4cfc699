"""Parent-side process handling with real processes."""

import hashlib
import json
import os
import signal
import subprocess
import time

from harness.results.model import MONITOR_SUMMARY, read_result
from harness.trial import spawn
from harness.trial.protocol import read_supervision
from harness.trial.spawn import crash_reason, kill_group
from tests.conftest import ROOT


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers; treat it as dead
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split()[2] != "Z"


def test_kill_group_takes_the_childs_workers_too(tmp_path):
    pidfile = tmp_path / "worker.pid"
    proc = subprocess.Popen(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], start_new_session=True)
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.02)
    worker = int(pidfile.read_text())
    kill_group(proc, grace_s=2)
    time.sleep(0.1)
    assert proc.returncode is not None
    assert not _alive(worker)


def test_kill_group_escalates_to_sigkill(tmp_path):
    proc = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 60"], start_new_session=True)
    time.sleep(0.2)
    start = time.monotonic()
    kill_group(proc, grace_s=0.5)
    assert proc.returncode is not None
    assert time.monotonic() - start < 5


def test_crash_reasons(tmp_path):
    assert "SIGKILL" in crash_reason(-signal.SIGKILL, tmp_path) and "out of memory" in crash_reason(-9, tmp_path)
    (tmp_path / "trial.log").write_text("Traceback...\nSegmentation fault\n")
    assert "code 139" in crash_reason(139, tmp_path) and "Segmentation fault" in crash_reason(139, tmp_path)


# --- run_trial with a fake child that speaks the protocol (tests/fakes/fake_worker.py) -----

SAMPLED = {"monitor": {"enabled": True, "interval_ms": 50, "gpu": False}}


def _run(tmp_path, monkeypatch, mode: str, config=SAMPLED, timeout_s: float = 60):
    monkeypatch.setattr(spawn, "WORKER", "tests.fakes.fake_worker")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the child finds tests/ wherever pytest runs
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"mode": mode, "measure_s": 0.5}))
    trial_dir = tmp_path / "trial"
    result = spawn.run_trial(
        plan, trial_dir, job=4, repeat=1, overrides=["loader=fake"], config=config, timeout_s=timeout_s, schedule={"round": 1}
    )
    return result, trial_dir


def test_the_parent_never_rewrites_the_childs_result_and_writes_its_facts_beside_it(tmp_path, monkeypatch):
    result, trial_dir = _run(tmp_path, monkeypatch, "ok")
    written, path = json.loads((trial_dir / "written.json").read_text()), trial_dir / "result.json"
    stat = path.stat()  # an atomic rewrite would change the inode even with the same bytes
    assert (stat.st_ino, stat.st_mtime_ns, hashlib.sha1(path.read_bytes()).hexdigest()) == (
        written["ino"],
        written["mtime_ns"],
        written["sha1"],
    )
    raw = json.loads(path.read_text())
    assert raw["monitor"] == {} and "sampler" not in raw["overhead"] and "cpu_tree_mean_pct" not in raw["summary"]
    assert raw["overhead"]["acked"] is True  # the sampler answered over the channel
    assert raw["overhead"]["harness_env"] == sorted(k for k in os.environ if k.startswith("HARNESS_"))  # the parent added none
    facts = read_supervision(trial_dir)
    assert facts is not None
    assert (facts.outcome, facts.exit_code, facts.killed, facts.result_by) == ("exited", 0, None, "child")
    assert facts.monitor["t"] and facts.monitor["summary"]["processes"] == 1
    assert any(v is not None for v in facts.monitor["series"]["tree_uss_mb"])  # read at the end of the measured phase
    merged = read_result(path)
    assert merged.monitor == facts.monitor and merged.overhead["sampler"] is merged.monitor["overhead"]
    assert merged.overhead["sampler"]["where"].startswith("a thread of the parent")
    assert merged.summary["cpu_tree_mean_pct"] == facts.monitor["summary"]["cpu_tree_mean_pct"]
    assert set(MONITOR_SUMMARY) <= set(merged.summary) and merged.summary["wall_s"] == raw["summary"]["wall_s"]
    assert result.to_dict() == merged.to_dict()  # run_trial returns what every reader reads
    assert sorted(os.listdir(trial_dir)) == ["result.json", "supervisor.json", "trace.json", "trial.json", "trial.log", "written.json"]
    trace = json.loads((trial_dir / "trace.json").read_text())["traceEvents"]
    assert any(e["ph"] == "C" for e in trace)  # the per-trial trace got the sampled counters


def test_a_child_that_crashes_gets_the_parents_result_with_the_sampled_series_merged(tmp_path, monkeypatch):
    result, trial_dir = _run(tmp_path, monkeypatch, "crash")
    assert result.status == "failed" and "code 3" in result.error and "crashing on purpose" in result.error
    assert (result.job, result.repeat, result.timing["round"]) == (4, 1, 1)
    facts = read_supervision(trial_dir)
    assert facts is not None and (facts.outcome, facts.exit_code, facts.result_by) == ("exited", 3, "parent")
    assert json.loads((trial_dir / "result.json").read_text())["monitor"] == {}
    assert result.monitor == facts.monitor and result.monitor["t"]


def test_a_child_that_hangs_after_writing_its_result_keeps_it_and_the_parent_records_the_kill(tmp_path, monkeypatch):
    result, trial_dir = _run(tmp_path, monkeypatch, "linger", timeout_s=6.0)  # time to start and write on a loaded machine
    written, path = json.loads((trial_dir / "written.json").read_text()), trial_dir / "result.json"
    assert result.status == "ok" and hashlib.sha1(path.read_bytes()).hexdigest() == written["sha1"]
    facts = read_supervision(trial_dir)
    assert facts is not None and (facts.outcome, facts.result_by) == ("timeout", "child") and facts.killed is not None


def test_a_child_past_its_timeout_is_killed_and_the_parent_says_so(tmp_path, monkeypatch):
    result, trial_dir = _run(tmp_path, monkeypatch, "hang", timeout_s=1.0)
    assert result.status == "timeout" and "trial.timeout_s=1" in result.error
    facts = read_supervision(trial_dir)
    assert facts is not None and (facts.outcome, facts.killed, facts.exit_code, facts.result_by) == ("timeout", "SIGTERM", -15, "parent")
    assert facts.elapsed_s >= 1.0


def test_without_the_sampler_the_child_does_not_wait_and_nothing_is_merged(tmp_path, monkeypatch):
    result, trial_dir = _run(tmp_path, monkeypatch, "ok", config={"monitor": {"enabled": False}})
    assert result.status == "ok" and result.overhead["acked"] is False and result.monitor == {}
    assert "sampler" not in result.overhead and "cpu_tree_mean_pct" not in result.summary
    facts = read_supervision(trial_dir)
    assert facts is not None and facts.monitor == {} and facts.outcome == "exited"
    assert not (trial_dir / "trace.json").exists()


def test_a_storage_server_runs_off_the_pinned_trials_cores_unless_told_to_share_them(monkeypatch):
    from harness.trial.spawn import _server_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    pinned = {"trial": {"cpus": 1}, "storage": {"kind": "throttled"}}
    assert _server_cores(pinned) == [1, 2, 3]  # the default: the cores the trial leaves free
    assert _server_cores({**pinned, "storage": {"server_cores": "shared"}}) == [0]
    assert _server_cores({"trial": {"cpus": 4}, "storage": {}}) is None  # none left: wherever the OS puts it
    assert _server_cores({"trial": {"cpus": None}, "storage": {"server_cores": "shared"}}) is None
