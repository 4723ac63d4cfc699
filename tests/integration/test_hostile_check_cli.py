"""``check`` through the CLI on hand-built sweeps: exit 0 ok, 1 regression, 2 could not judge, each 2 with one line.

The sweeps are synthetic result.json files (tests.unit.test_hostile_report.trial): no trial runs.
"""

import json
import math

import pytest

from tests.unit.test_hostile_report import trial, write_sweep

METRICS = ["--metric", "samples_per_s", "--metric", "stall_pct"]


def sweep(root, rate=1000.0, seconds=3.0, repeats=2, **kw):
    trials = [trial(j, r, rate=rate * (1 + j), seconds=seconds, **kw) for j in (0, 1) for r in range(repeats)]
    return write_sweep(root, trials, [[0, 1]] * repeats)


def baseline(cli, tmp_path, **kw):
    path = tmp_path / "baseline.json"
    done = cli("check", str(sweep(tmp_path / "base", **kw)), "--save-baseline", str(path))
    assert done.returncode == 0, done.stderr
    return path


def one_error_line(done) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("ERROR: "), (done.returncode, done.stderr)
    return lines[0]


def test_unchanged_passes_and_a_slowdown_regresses(cli, tmp_path):
    base = baseline(cli, tmp_path)
    same = cli("check", str(sweep(tmp_path / "same")), "--baseline", str(base))
    assert same.returncode == 0, same.stdout + same.stderr
    slow = cli("check", str(sweep(tmp_path / "slow", rate=570.0)), "--baseline", str(base))
    assert slow.returncode == 1, slow.stdout + slow.stderr
    assert "could not judge" not in slow.stdout


@pytest.mark.parametrize(
    "damage", ["{not json", json.dumps({"schema_version": 1, "status": "ok", "config": {}, "overrides": [], "job": "zero", "repeat": 0})]
)
def test_a_malformed_result_file_exits_2_naming_it(cli, tmp_path, damage):
    base = baseline(cli, tmp_path)
    folder = sweep(tmp_path / "now")
    broken = folder / "1" / "repeat-0" / "result.json"
    broken.write_text(damage)
    line = one_error_line(cli("check", str(folder), "--baseline", str(base)))  # before: exit 1, "a regression"
    assert str(broken) in line
    assert str(broken) in one_error_line(cli("check", str(folder), "--save-baseline", str(tmp_path / "b2.json")))


@pytest.mark.parametrize(
    "option",
    [
        ["--alpha", "nan"],
        ["--alpha", "0"],
        ["--alpha", "1.5"],
        ["--alpha", "inf"],
        ["--threshold", "samples_per_s=nan"],
        ["--threshold", "samples_per_s=-5%"],
        ["--threshold", "stall_pct=inf"],
    ],
)
def test_a_significance_or_threshold_that_cannot_mean_anything_exits_2(cli, tmp_path, option):
    folder = sweep(tmp_path / "now")
    (tmp_path / "b.json").write_text(json.dumps({"harness_baseline": 1, "fingerprint": {}, "variants": {}}))
    line = one_error_line(cli("check", str(folder), "--baseline", str(tmp_path / "b.json"), *option))
    assert option[0] in line and ("between 0 and 1" in line or "finite number of at least 0" in line)


def test_too_few_windows_for_the_significance_exit_2_and_say_how_much_to_measure(cli, tmp_path):
    """2-second trials, one repeat a side: a 43% slowdown was reported ok."""
    base = baseline(cli, tmp_path, seconds=2.0, repeats=1)
    done = cli("check", str(sweep(tmp_path / "slow", rate=570.0, seconds=2.0, repeats=1)), "--baseline", str(base), *METRICS)
    assert done.returncode == 2, done.stdout + done.stderr
    unjudged = [line for line in done.stdout.splitlines() if line.startswith("could not judge")]
    assert len(unjudged) == 1, done.stdout  # one line for the one reason, naming both variants and metrics
    assert "produce_ms=0, produce_ms=1 (samples_per_s, stall_pct)" in unjudged[0]
    assert "can never reach p < 0.01" in unjudged[0] and "at least 6 windows a side (3 s of measured time" in unjudged[0]


def test_nan_in_the_data_exits_2(cli, tmp_path):
    base = baseline(cli, tmp_path)
    folder = sweep(tmp_path / "now")
    path = folder / "0" / "repeat-1" / "result.json"
    data = json.loads(path.read_text())
    data["steps"]["wait_ms"][5] = math.nan
    path.write_text(json.dumps(data))
    done = cli("check", str(folder), "--baseline", str(base), *METRICS)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "could not judge produce_ms=0 (stall_pct): the current stall_pct samples include NaN" in done.stdout


def test_too_short_or_interrupted_trials_make_their_variant_unjudged(cli, tmp_path):
    base = baseline(cli, tmp_path)
    folder = sweep(tmp_path / "now")
    trial(1, 1, status="too_short", error="measured 3 steps", overrides=["loader.produce_ms=1"]).write(folder / "1" / "repeat-1")
    trial(0, 1, status="interrupted", error="SIGTERM").write(folder / "0" / "repeat-1")
    done = cli("check", str(folder), "--baseline", str(base), *METRICS)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        "could not judge produce_ms=1 (samples_per_s, stall_pct): 1 trial(s) in this sweep not ok or missing: "
        "repeat 1 too short: measured 3 steps" in done.stdout
    )
    assert "repeat 1 interrupted: SIGTERM" in done.stdout
    refused = one_error_line(cli("check", str(folder), "--save-baseline", str(tmp_path / "b2.json")))
    assert "a baseline needs every planned trial ok" in refused


def test_a_folder_of_several_sweeps_exits_2_listing_them(cli, tmp_path):
    sweep(tmp_path / "all" / "a")
    sweep(tmp_path / "all" / "b")
    line = one_error_line(cli("check", str(tmp_path / "all"), "--save-baseline", str(tmp_path / "x.json")))
    assert "holds 2 sweeps, not one (a, b)" in line and "check one at a time" in line
