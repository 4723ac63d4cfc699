"""Parent-side process handling with real processes."""

import os
import signal
import subprocess
import time

from harness.trial.spawn import crash_reason, kill_group


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
