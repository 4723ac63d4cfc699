"""A pytest guard for your own pipeline: it must keep up with harness's built-in DataLoader, measured in the same sweep.

Run it with ``pytest examples/test_my_pipeline.py``. Both variants run in the same sweep,
in interleaved rounds, so the machine's speed and load cancel out of the ratio; a
regression in ``make_torch`` (a lost worker, a slower decode) fails the test.
"""

from pathlib import Path

import pytest

import harness

EXPERIMENTS = Path(__file__).parent / "experiments"
KEEP = 0.5  # the share of the built-in loader's throughput that make_torch must keep


@pytest.mark.slow
def test_my_dataloader_keeps_up_with_the_builtin_one(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    table = harness.sweep(
        # a guard needs the two throughputs only: no ceilings measured after the trials (report.ceilings=false)
        ["loader=torch,my_torch", "trial.repeats=2", "dataset.count=96", "trial.steps=12", "report.ceilings=false"],
        config_dir=EXPERIMENTS,
        folder=tmp_path / "sweep",
    )
    assert set(table["status"]) == {"ok"}
    speed = table.groupby("loader")["samples_per_s"].median()
    assert speed["my_torch"] >= KEEP * speed["torch"], f"make_torch keeps {speed['my_torch'] / speed['torch']:.0%} of loader=torch"
