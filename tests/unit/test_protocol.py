"""The parent/child trial protocol: one request file, one channel, the parent's facts in their own file.

The channel is tested against real child processes that hold its other end, as a trial
does; waits are bounded generously, so a loaded 2-core machine passes too.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.trial import worker
from harness.trial.protocol import (
    MEASURED,
    MEASURING,
    REQUEST_FILE,
    SAMPLED,
    SUPERVISOR_FILE,
    Channel,
    Request,
    Supervision,
    read_supervision,
)
from tests.conftest import ROOT

# --- files ----------------------------------------------------------------------------------


def test_a_request_round_trips_through_its_one_file(tmp_path):
    request = Request(
        "/x/trial.yaml",
        3,
        1,
        ["loader=torch"],
        "augbench",
        {"round": 1, "position": 0},
        spawned_at=12.5,
        sampled=True,
        env={"OMP_NUM_THREADS": "1"},
        channel_fd=5,
    )
    request.write(tmp_path)
    assert Request.read(tmp_path) == request
    assert sorted(os.listdir(tmp_path)) == [REQUEST_FILE]


def test_files_of_a_newer_protocol_or_missing_fields_are_refused_naming_the_file(tmp_path):
    (tmp_path / REQUEST_FILE).write_text(json.dumps({"config_file": "x", "job": 0, "repeat": 0, "overrides": [], "schema_version": 99}))
    with pytest.raises(HarnessError, match=r"trial\.json: schema 99 .* upgrade harness"):
        Request.read(tmp_path)
    (tmp_path / SUPERVISOR_FILE).write_text(json.dumps({"outcome": "exited", "schema_version": 1}))
    with pytest.raises(HarnessError, match=r"supervisor\.json: malformed .*exit_code"):
        read_supervision(tmp_path)


def test_supervision_round_trips_and_is_none_where_no_parent_wrote_one(tmp_path):
    assert read_supervision(tmp_path) is None
    facts = Supervision("timeout", -15, "SIGTERM", 1.25, "parent", {"t": [1.0], "summary": {}, "overhead": {}})
    facts.write(tmp_path)
    assert read_supervision(tmp_path) == facts
    Supervision("exited", 0, None, 1.0, "child", {"t": [1.0]}).write(tmp_path)
    with pytest.raises(HarnessError, match="no summary or overhead"):
        read_supervision(tmp_path)


# --- the channel ----------------------------------------------------------------------------

CHILD = """
import sys
from harness.trial.protocol import Channel, Request

channel = Channel.for_child(Request("x", 0, 0, [], sampled=True, channel_fd=int(sys.argv[1])))
channel.begin()
channel.wait_for("go", 60)  # the test looks at the parent's side between the two events
sys.exit(0 if channel.end() else 1)
"""


def _child(code: str) -> tuple[Channel, subprocess.Popen]:
    channel, child_end = Channel.pair()
    with child_end:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(child_end.fileno())],
            pass_fds=(child_end.fileno(),),
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
    return channel, proc


def _until(predicate, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_phase_events_reach_the_parent_and_its_answer_releases_the_child():
    channel, proc = _child(CHILD)
    try:
        assert _until(channel.begun)
        assert not channel.ended()
        channel.send("go")
        assert _until(channel.ended)
        assert proc.poll() is None  # waiting for the answer
        channel.acknowledge()
        assert proc.wait(timeout=30) == 0  # end() said the answer came
        assert channel.seen == {MEASURING, MEASURED}
    finally:
        proc.kill()
        proc.wait()
        channel.close()


def test_a_child_that_dies_leaves_the_parents_side_answering_at_once():
    channel, proc = _child("import os; os._exit(0)")
    proc.wait(timeout=30)
    started = time.monotonic()
    assert not channel.begun() and not channel.ended()
    channel.acknowledge()  # to nobody: no error, no wait
    assert channel.closed and time.monotonic() - started < 2
    channel.close()


def test_without_an_answer_the_child_waits_only_its_bound():
    mine, theirs = socket.socketpair()
    child = Channel(mine, ack_wait_s=0.3)
    started = time.monotonic()
    assert child.end() is False  # the other end is open but never answers
    assert 0.3 <= time.monotonic() - started < 5
    assert theirs.recv(100) == (MEASURED + "\n").encode()
    theirs.close()
    started = time.monotonic()
    assert Channel(mine, ack_wait_s=60).end() is False  # a closed channel ends the wait at once
    assert time.monotonic() - started < 5
    mine.close()


def test_a_child_not_sampled_does_not_wait_and_a_stale_descriptor_is_no_channel(tmp_path):
    mine, theirs = socket.socketpair()
    child = Channel.for_child(Request("x", 0, 0, [], sampled=False, channel_fd=os.dup(mine.fileno())))
    assert child is not None
    started = time.monotonic()
    assert child.end() is False  # no sampler: the open, silent channel is not waited on
    assert time.monotonic() - started < 2
    for sock in (child, mine, theirs):
        sock.close()
    with open(tmp_path / "f", "w") as handle:  # the worker rerun by hand: the number names a file, not a socket
        assert Channel.for_child(Request("x", 0, 0, [], channel_fd=handle.fileno())) is None
    assert Channel.for_child(Request("x", 0, 0, [])) is None


# --- no other channel remains ---------------------------------------------------------------


def test_no_marker_file_or_harness_environment_variable_carries_the_protocol():
    sources = {p: p.read_text() for p in (ROOT / "harness").rglob("*.py")}
    for path, text in sources.items():
        # user settings (the dataset cache, progress bars, per-sweep calibration, where storage mounts go), none of them
        # the protocol; HARNESS_NEWER_KEYS tells a trial of *another revision* (check --ab's base) to drop config keys its
        # schemas lack: a contract between revisions, which must hold whatever either side's trial.json looks like
        allowed = {"HARNESS_CACHE", "HARNESS_PROGRESS", "HARNESS_CEILINGS", "HARNESS_STORAGE_DIR", "HARNESS_NEWER_KEYS"}
        assert set(re.findall(r"HARNESS_[A-Z_]+", text)) <= allowed, path
    for event in (MEASURED, SAMPLED):  # "measuring" is also the sampler's name for its phase
        # only the protocol names its events among the modules that run or watch a trial (a report may say "measured")
        users = [p.name for p, text in sources.items() if p.parent.name in ("trial", "monitor") and f'"{event}"' in text]
        assert users == ["protocol.py"], (event, users)
    for package in ("trial", "monitor"):
        touched = [p.name for p, text in sources.items() if p.parent.name == package and ".touch(" in text]
        assert touched == [], touched
    assert "MARKERS" not in sources[ROOT / "harness" / "monitor" / "sampler.py"]


def test_the_worker_imports_no_framework_before_it_applies_the_requests_settings():
    code = "import sys, harness.trial.worker; print(sorted(m for m in ('numpy', 'torch', 'tensorflow', 'cv2') if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_worker_applies_the_requests_settings_and_writes_its_own_result(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # restored after the test
    Request(str(tmp_path / "missing.yaml"), 2, 1, ["a=b"], env={"OMP_NUM_THREADS": "1"}, spawned_at=time.time()).write(tmp_path)
    assert worker.main([str(tmp_path)]) == 1
    assert os.environ["OMP_NUM_THREADS"] == "1"
    result = json.loads(Path(tmp_path / "result.json").read_text())
    assert (result["status"], result["job"], result["repeat"], result["overrides"]) == ("failed", 2, 1, ["a=b"])
    assert result["error"] and result["overhead"]["process_start_s"] >= 0
