"""Utilization in a real DataLoader sweep: CPU per worker, memory per variant, traces."""

import json

from harness.results.model import read_result
from tests.conftest import sweep_dir
from tests.integration.test_cli import TINY, read_rows


def test_a_dataloader_sweep_shows_cpu_per_worker_memory_per_variant_and_writes_traces(cli, tmp_path):
    done = cli(
        "sweep", "loader=torch", *TINY, "+experiment/dataloader=workers_0,workers_2_persistent", "trial.seconds=2", "trial.warmup_steps=1"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    folder = sweep_dir(done, tmp_path)
    rows = {r["experiment/dataloader"]: r for r in read_rows(folder)}
    serial, workers = rows["workers_0"]["cpu_by_process"], rows["workers_2_persistent"]["cpu_by_process"]
    assert serial.startswith("main ") and "worker" not in serial
    # workers are numbered in the order the sampler first saw each child, a short-lived helper included
    assert workers.startswith("main ") and workers.count("worker-") >= 2, workers
    for row in rows.values():
        assert float(row["peak_rss_mb"]) > 50 and float(row["cpu_tree_mean_pct"]) > 0
        assert float(row["cpu_s_per_1000_samples"]) > 0
        assert row["gpu_util_mean_pct"] == ""  # no GPU here: absent, not 0
    # the sampler's record is the parent's, in supervisor.json beside the trial's own result; readers see both
    trial = folder / "1" / "repeat-0"
    assert json.loads((trial / "result.json").read_text())["monitor"] == {}
    result = read_result(trial / "result.json")
    monitor = result.monitor
    assert monitor["absent"]["gpu"]
    assert len(monitor["t"]) >= 10 and len(monitor["series"]["tree_cpu_pct"]) == len(monitor["t"])
    assert any(v is not None for v in monitor["series"]["tree_uss_mb"])  # read while the trial waited at its end
    assert result.overhead["sampler"]["where"].startswith("a thread of the parent")
    assert result.overhead["sampler_wait_s"] < 3.0  # the sampler answered; the trial did not wait out its bound
    trace = json.loads((folder / "1" / "repeat-0" / "trace.json").read_text())["traceEvents"]
    assert {"X", "C", "M"} <= {e["ph"] for e in trace}
    merged = json.loads((folder / "trace.json").read_text())["traceEvents"]
    names = {e["args"]["name"] for e in merged if e["ph"] == "M" and e["name"] == "process_name"}
    assert len(names) == 2 and all(n.startswith("job ") for n in names)
