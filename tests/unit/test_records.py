"""A job's files travel back with its return value; the sweep's process writes what its folder lacks."""

from __future__ import annotations

import pickle

import pytest

from harness import engine
from harness.engine import JobOutcome, receiving
from harness.results import records


def job_folder(root):
    trial = root / "3" / "repeat-0"
    trial.mkdir(parents=True)
    (trial / "result.json").write_text('{"status": "ok"}')
    (trial / "trial.log").write_text("log")
    (root / "3" / ".hydra").mkdir()
    (root / "3" / ".hydra" / "config.yaml").write_text("a: 1")
    return root / "3"


def test_a_job_folder_packs_by_path_under_the_sweep_and_unpacks_into_another_folder(tmp_path):
    files, left = records.pack(job_folder(tmp_path / "node"), tmp_path / "node")
    assert sorted(files) == ["3/.hydra/config.yaml", "3/repeat-0/result.json", "3/repeat-0/trial.log"] and left == []
    written = records.unpack(files, tmp_path / "parent")
    assert written == sorted(files)
    assert (tmp_path / "parent" / "3" / "repeat-0" / "result.json").read_text() == '{"status": "ok"}'
    assert not list((tmp_path / "parent").rglob("*.part"))


def test_unpack_never_replaces_a_file_the_sweep_folder_has(tmp_path):
    (tmp_path / "3" / "repeat-0").mkdir(parents=True)
    (tmp_path / "3" / "repeat-0" / "result.json").write_text("the shared file system's own")
    written = records.unpack({"3/repeat-0/result.json": b"a copy", "3/repeat-0/trial.log": b"log"}, tmp_path)
    assert written == ["3/repeat-0/trial.log"]
    assert (tmp_path / "3" / "repeat-0" / "result.json").read_text() == "the shared file system's own"


@pytest.mark.parametrize("bad", ["../outside.json", "/etc/passwd", "3/../../outside.json", ""])
def test_unpack_refuses_a_path_that_leaves_the_sweep_folder(tmp_path, bad):
    with pytest.raises(ValueError, match="outside its sweep folder"):
        records.unpack({bad: b"x"}, tmp_path / "sweep")
    assert not (tmp_path / "outside.json").exists()


def test_files_over_the_limits_stay_behind_and_are_named(tmp_path, monkeypatch):
    folder = job_folder(tmp_path)
    (folder / "repeat-0" / "cache.data").write_bytes(b"x" * 100)
    monkeypatch.setattr(records, "FILE_LIMIT", 50)
    files, left = records.pack(folder, tmp_path)
    assert left == ["3/repeat-0/cache.data"] and "3/repeat-0/result.json" in files


def test_an_outcome_unpickled_while_receiving_reaches_the_box_and_only_then(tmp_path):
    sent = JobOutcome(3, ["ok"], 100.0, {"3/repeat-0/result.json": b"{}"}, [])
    wire = pickle.dumps(sent)  # as Ray or submitit carry it from the job's process
    assert pickle.loads(wire) == sent and engine._RECEIVED is None  # a job's own process keeps nothing
    with receiving() as box:
        back = pickle.loads(wire)
    assert box == [back] and back == sent and float(back) == 100.0
    assert engine._RECEIVED is None
