"""``report`` through the CLI on hostile folders: several sweeps, the whole filesystem, malformed and unfinished trials."""

import time

from tests.unit.test_hostile_report import trial, two_variants, write_sweep


def test_a_folder_of_several_sweeps_is_refused_in_one_line_and_nothing_is_written(cli, tmp_path):
    two_variants(tmp_path / "all" / "first")
    two_variants(tmp_path / "all" / "second")
    done = cli("report", str(tmp_path / "all"))
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stdout + done.stderr
    assert "holds 2 sweeps, not one (first, second)" in done.stderr
    assert f"python -m harness report {tmp_path / 'all' / 'first'}" in done.stderr
    assert not (tmp_path / "all" / "results.csv").exists() and not (tmp_path / "all" / "report.html").exists()


def test_report_of_the_filesystem_root_ends_quickly_with_one_line(cli):
    started = time.monotonic()
    done = cli("report", "/", timeout=60)
    assert done.returncode == 1 and done.stderr.startswith("ERROR: no harness results under /"), done.stderr
    assert done.stderr.count("\n") == 1 and time.monotonic() - started < 30


def test_a_malformed_result_is_skipped_visibly_and_the_rest_is_reported(cli, tmp_path):
    folder = two_variants(tmp_path / "s")
    broken = folder / "1" / "repeat-0" / "result.json"
    broken.write_text('{"schema_version": 1, "status": "ok", "job": 1}')
    done = cli("report", str(folder))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"WARNING: skipped {broken}: malformed result file: no config; no overrides; no repeat" in done.stderr
    assert "job 1 repeat 0 unreadable" in done.stdout and "job 1 repeat 1 ok" in done.stdout
    assert "INCOMPLETE: 3 of 4 planned trials finished" in done.stderr
    assert str(broken) in (folder / "report.html").read_text() and "unreadable" in (folder / "results.csv").read_text()


def test_statuses_are_named_with_their_reasons_and_an_interrupted_sweep_is_incomplete(cli, tmp_path):
    trials = [
        trial(0, 0),
        trial(0, 1, status="too_short", error="measured 3 steps in 0.2 s"),
        trial(1, 0, status="interrupted", error="SIGTERM"),
    ]
    folder = write_sweep(tmp_path / "s", trials, [[0, 1], [1, 0]])
    done = cli("report", str(folder))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "job 0 repeat 1 too short" in done.stdout and "measured 3 steps in 0.2 s" in done.stdout
    assert "job 1 repeat 0 interrupted" in done.stdout
    assert "WARNING: INCOMPLETE: 2 of 4 planned trials finished (the sweep was interrupted)" in done.stderr
    assert "INCOMPLETE" in (folder / "report.html").read_text() and "INCOMPLETE" in (folder / "summary.md").read_text()
