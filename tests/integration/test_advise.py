"""Advice that was run and measured: predictions with known answers, verified in interleaved rounds.

The synthetic loader's throughput follows from its sleeps: one producer thread at 30 ms a batch of
32 feeds 1,067 samples/s against a 10 ms step (3,200 samples/s), so a second producer should
double it, to 2,133. The advice predicts that from the measured variant, runs it against the
best in interleaved rounds and must confirm it; a second verification of the same sweep is
refused unless asked to replace the first.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import sweep_dir

SLEEPS = [
    "loader=synthetic",
    "loader.produce_ms=30",
    "loader.workers=1",
    "loader.prefetch=2",
    "loader.batches_per_epoch=30",
    "consumer.step_ms=10",
    "trial.seconds=1.5",
    "trial.warmup_steps=3",
]


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the parallelism lever adds a producer per usable core: needs 2")
def test_a_second_producer_is_predicted_verified_and_becomes_the_next_step(cli, tmp_path):
    done = cli("sweep", *SLEEPS, "trial.repeats=2", "report.verify=1", "--quiet", timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    root = sweep_dir(done, tmp_path)
    advice = json.loads((root / "advice.json").read_text())
    (change,) = advice["checked"]
    assert change["shown"] == ["loader.workers=2"] and change["lever"] == "parallelism"
    assert change["predicted"] == pytest.approx(2133, rel=0.1)  # the measured steady state x 2 producers / 1
    assert advice["conditions"] == ["trial.warmup_steps=30", "trial.epochs=4", "trial.seconds=null", "trial.steps=null"]
    gain = sorted(change["ratios"])[len(change["ratios"]) // 2] - 1
    assert gain == pytest.approx(change["gain_predicted"], abs=0.10) and change["verdict"] == "confirmed"
    assert len(change["measured"]) == 3 and len(advice["best"]["measured"]) == 3  # three interleaved rounds
    html = (root / "report.html").read_text()
    assert "<h2>Advice, checked</h2>" in html and "Verified in 3 interleaved rounds against the best" in html
    summary = (root / "summary.md").read_text()
    assert "next: loader.workers=2 (workers=2)" in summary and "confirmed" in summary

    again = cli("advise", str(root), timeout=120)
    assert again.returncode == 1 and "holds an earlier verification; add --overwrite" in again.stderr


def test_advise_refuses_what_is_not_one_sweep_folder_and_bad_counts(cli, tmp_path):
    for args, words in (
        (["advise"], "advise takes one sweep folder"),
        (["advise", str(tmp_path / "none")], "advise takes one sweep folder"),
        (["advise", str(tmp_path), "--verify", "two"], "--verify two: give a whole number"),
        (["advise", str(tmp_path), "--repeats", "1"], "of at least 2 rounds"),
        (["sweep", "loader=synthetic", "report.verify=x"], "report.verify=x: give how many recommended changes"),
    ):
        done = cli(*args, timeout=120)
        assert done.returncode == 1 and words in done.stderr, (args, done.stderr[-500:])
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
