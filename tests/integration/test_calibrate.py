"""``calibrate`` and the per-sweep calibration, through the CLI in a subprocess.

The ceilings are measured on whatever machine runs the tests, so the checks are of
consistency, with a generous tolerance: no loader beats the CPU ceiling of its decode
library by more than the noise of a shared machine, and the calibration stays short.
"""

import json
import os

import pytest

from harness.calibrate.alone import CPU_RESOLUTION
from harness.results.ceilings import CEILINGS_FILE, read, work_of
from harness.results.model import read_result
from tests.conftest import sweep_dir

TINY = ["dataset.count=16", "dataset.width=64", "dataset.height=48", "batch.height=32", "batch.width=32", "batch.size=4"]
CALIBRATION_S = 20.0  # the brief: seconds at most on a small dataset
NOISE = 1.5  # a trial may run this much faster than the calibration's figure on a busy shared machine, no more


def test_calibrate_prints_the_ceilings_and_writes_ceilings_json(cli, tmp_path):
    done = cli("calibrate", "loader=generator", *TINY, "consumer.step_ms=5")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    lines = lines[next(i for i, line in enumerate(lines) if line.startswith("ceilings of ")) :]  # after the chain's runs alone
    assert "usable CPUs" in lines[0]
    assert any(line.startswith("  decode  PIL decode+resize to 32x32: ") and "ms per sample on one core" in line for line in lines)
    assert any(line.startswith("  CPU  PIL decode+resize to 32x32: the chain alone (job 0) ") and "-> ceiling" in line for line in lines)
    assert any(line.startswith("  I/O  ") and "MB/s" in line for line in lines)
    assert "  accelerator  batch 4 every consumer.step_ms=5: at most 800 samples/s (before the copy to the device)" in lines
    path = tmp_path / lines[-1]
    assert path.name == CEILINGS_FILE and path.parent.name.endswith("_calibrate")
    ceilings = read(path)
    assert ceilings.seconds < CALIBRATION_S and ceilings.cores >= 1
    (cost,) = ceilings.costs
    assert cost.work.decoder == "pil" and cost.min_ms <= cost.ms_per_sample <= cost.max_ms
    assert cost.cpu_samples_per_s == pytest.approx(ceilings.cores * 1000 / cost.min_ms, rel=1e-3)
    (alone,) = ceilings.pipelines  # the generator's chain run alone: the CPU ceiling as it runs
    assert alone.work == cost.work and len(alone.repeats) == 2 and alone.samples_per_s == max(alone.repeats)
    by_cpu = ceilings.cores * 1000 / alone.core_ms_per_sample * (1 + CPU_RESOLUTION)
    assert alone.cpu_samples_per_s == pytest.approx(max(alone.samples_per_s, by_cpu), rel=1e-3)
    assert json.loads(path.read_text())["units"]["ms_per_sample"] == "ms of one core per sample"


def test_calibrate_refuses_a_folder_that_is_not_a_sweep_in_one_line(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    done = cli("calibrate", "empty")
    assert done.returncode == 1 and done.stderr.startswith("ERROR: empty: no ok trial that read a dataset")


def test_a_bad_report_ceilings_value_is_one_line(cli, tmp_path):
    bad = cli("sweep", "loader=generator", *TINY, "report.ceilings=maybe")
    assert bad.returncode == 1 and "ERROR: report.ceilings=maybe: true, false or quick" in bad.stderr


@pytest.mark.slow
def test_a_sweep_measures_its_ceilings_and_no_loader_beats_its_cpu_ceiling(cli, tmp_path):
    """A DataLoader decoding with PIL in the training process and in 2 workers: as fast as the cores allow at most."""
    args = ["dataset.count=96", "trial.seconds=2", "trial.warmup_steps=2", "consumer.step_ms=1"]
    done = cli("sweep", "loader=torch", "loader.num_workers=0,2", *args, "report.ceilings=true", timeout=600)  # the suite turns it off
    assert done.returncode == 0, done.stdout + done.stderr
    folder = sweep_dir(done, tmp_path)
    assert "calibrating this machine's ceilings" in done.stdout
    ceilings = read(folder / CEILINGS_FILE)
    assert ceilings.seconds < CALIBRATION_S
    assert "chain(s) alone for the CPU ceilings" in done.stdout and (folder / "ceilings" / "results.csv").is_file()  # in the rounds
    for result_file in folder.glob("*/repeat-*/result.json"):
        t = read_result(result_file)
        cpu = ceilings.cpu(work_of(t.config, t.loader, t.dataset, t.augment))
        assert cpu is not None, t.loader
        assert t.summary["steady_samples_per_s"] <= NOISE * cpu[0], (t.overrides, t.summary["steady_samples_per_s"], cpu)
    html = (folder / "report.html").read_text()
    assert "<h2>Recommendation</h2>" in html and "of lowest ceiling" in html and "CPU ceiling" in html


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="affinity is Linux's")
def test_report_ceilings_false_skips_the_calibration_which_calibrate_then_runs_on_the_finished_folder(cli, tmp_path):
    done = cli(
        "sweep", "loader=generator", *TINY, "trial.steps=5", "trial.warmup_steps=1", "report.ceilings=false", "loader.shuffle=false,true"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    folder = sweep_dir(done, tmp_path)
    assert "calibrating" not in done.stdout and not (folder / CEILINGS_FILE).exists()
    again = cli("calibrate", str(folder))
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.strip().splitlines()[-1] == str(folder / CEILINGS_FILE)
    assert "the trials' CPU affinity" in again.stdout or "the trials' cgroup CPU quota" in again.stdout
    assert read(folder / CEILINGS_FILE).costs[0].work.height == 32


def test_a_trial_without_a_cpu_figure_bounds_no_core_time():
    """A sweep trial run with monitor.enabled=false has no CPU per sample: it is left out, not a failed calibration."""
    from types import SimpleNamespace

    from harness.calibrate.alone import _core_ms

    restarting = SimpleNamespace(summary={"cpu_s_per_1000_samples": 2.0, "restart_pct": 50.0})
    steady = SimpleNamespace(summary={"cpu_s_per_1000_samples": 1.0, "restart_pct": 5.0})
    unmonitored = SimpleNamespace(summary={"samples_per_s": 900.0})
    assert _core_ms([unmonitored, SimpleNamespace(summary={"cpu_s_per_1000_samples": None})]) == []
    assert _core_ms([unmonitored, steady, restarting]) == [pytest.approx(0.95)]  # steady trials first
    assert _core_ms([unmonitored, restarting]) == [pytest.approx(1.0)]  # only restarting ones: they count
