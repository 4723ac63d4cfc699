"""``tune``: Hydra's Optuna sweeper through the harness launcher, then a confirmation in one interleaved run."""

from __future__ import annotations

import json

import pytest

from tests.conftest import sweep_dir

TINY = ["dataset.count=48", "dataset.width=96", "dataset.height=72", "batch.size=8", "batch.height=32", "batch.width=32"]


@pytest.mark.slow
def test_tune_searches_the_space_then_confirms_the_best_against_autotune(cli, tmp_path):
    done = cli(
        "tune", "loader=tf_data", *TINY, "trial.steps=6", "trial.warmup_steps=1", "trial.repeats=1", "--trials", "3", "-q", timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    root = sweep_dir(done, tmp_path)
    record = json.loads((root / "tune.json").read_text())
    assert record["family"] == "tf_data" and {b.split("=")[0] for b in record["best"]} == {
        "loader.num_parallel_calls",
        "loader.prefetch",
        "loader.cache",
        "loader.map_parallelization",
        "loader.inject_prefetch",
    }
    assert set(record["confirmed"]) == {"best found", "AUTOTUNE", "defaults"}
    autotune = record["confirmed"]["AUTOTUNE"]["overrides"]
    assert "loader.num_parallel_calls=autotune" in autotune and "loader.prefetch=autotune" in autotune
    assert all(c["samples_per_s"] > 0 for c in record["confirmed"].values())
    assert len(list((root / "search").glob("*/repeat-0/result.json"))) == 3  # one trial per proposal
    schedule = json.loads((root / "search" / "schedule.json").read_text())
    assert sorted(job for round_ in schedule["rounds"] for job in round_) == [0, 1, 2]  # batches add up, none overwritten
    assert (root / "confirm" / "report.html").exists() and "| AUTOTUNE |" in done.stdout


def test_tune_refuses_a_family_without_a_space_and_a_knob_it_searches(cli):
    done = cli("tune", "loader=synthetic")
    assert done.returncode == 1 and "ERROR: tune: loader=synthetic has no search space" in done.stderr
    done = cli("tune", "loader=tf_data", "loader.prefetch=2")
    assert done.returncode == 1 and "tune searches loader.prefetch itself" in done.stderr
    done = cli("tune", "loader=tf_data", "--trials", "x")
    assert done.returncode == 1 and "--trials x: give a whole number" in done.stderr
