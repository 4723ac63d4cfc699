"""``diagnose``: DS-Analyzer's stall split, checked on a loader whose costs follow from its settings."""

from __future__ import annotations

import json

import pytest

from harness.commands.diagnose import stalls
from tests.conftest import sweep_dir


def test_the_stall_split_adds_up_and_never_goes_negative():
    found = stalls({"ingest": 1000.0, "warm": 500.0, "cold": 250.0})  # 1, 2 and 4 ms per sample
    assert (found["data_stall"], found["prep_stall"], found["fetch_stall"]) == (0.75, 0.25, 0.5)
    noisy = stalls({"ingest": 1000.0, "warm": 240.0, "cold": 250.0})  # warm measured a little slower than cold
    assert noisy["fetch_stall"] == 0.0 and noisy["prep_stall"] == noisy["data_stall"] == 0.75
    assert "error" in stalls({"ingest": 1000.0, "warm": None, "cold": 250.0})


@pytest.mark.slow
def test_a_serial_producer_shows_the_prep_stall_its_sleeps_predict(cli, tmp_path):
    # produce 20 ms in the consumer's thread, compute 10 ms: 30 ms a step against 10 ms fed from memory,
    # so the data stall is 2/3 of the step, all of it prep (the synthetic loader reads no files: no fetch)
    args = ["loader=synthetic", "loader.produce_ms=20", "loader.workers=0", "consumer.step_ms=10", "trial.steps=15", "trial.repeats=1"]
    done = cli("diagnose", *args, "-q", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads((sweep_dir(done, tmp_path) / "diagnosis.json").read_text())
    assert found["data_stall"] == pytest.approx(2 / 3, abs=0.08)
    assert found["prep_stall"] + found["fetch_stall"] == pytest.approx(found["data_stall"], abs=1e-3)
    assert found["fetch_stall"] < 0.08 and "Data stall:" in done.stdout and "reads no files" in done.stdout
    modes = [
        json.loads(p.read_text())["config"]["dataset"]["page_cache"]
        for p in sorted(sweep_dir(done, tmp_path).glob("[12]/repeat-0/result.json"))
    ]
    assert modes == ["warm", "cold"]
