"""``loader=custom``: a user's own pipeline measured beside the built-in families, through the CLI and the Python API."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT, sweep_dir

TINY = ["dataset.count=48", "dataset.width=96", "dataset.height=72", "batch.size=8", "batch.height=32", "batch.width=32"]
SHORT = ["trial.steps=6", "trial.warmup_steps=1", "consumer.step_ms=2"]

MINE = '''
import numpy as np

def batches(data, batch, scale=1):
    """A generator of NHWC uint8 batches with the dataset's ids: what a user writes first."""
    for start in range(0, len(data.paths), batch.size):
        ids = data.ids[start:start + batch.size]
        yield np.full((len(ids), batch.height, batch.width, batch.channels), scale, np.uint8), np.zeros(len(ids)), ids

def exits_on_sigterm(data, batch):
    """Waits (as a pipeline waiting on a cluster does) in a process where SIGTERM raises SystemExit, as in Ray's driver."""
    import signal, sys, time
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    time.sleep(600)

def chw_floats(data, batch):
    """ToTensor-style batches: float32, channels first."""
    return [np.zeros((batch.size, 3, batch.height, batch.width), np.float32)] * 4

def broken(data, batch):
    import not_installed_anywhere  # the user's own import error: their traceback, in the trial's error
'''


def rows(folder):
    with open(folder / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def mine(tmp_path):
    folder = tmp_path / "userland"
    folder.mkdir()
    (folder / "mine.py").write_text(textwrap.dedent(MINE))
    return folder


@pytest.mark.slow
def test_a_users_tf_data_and_dataloader_are_swept_and_reported_like_builtin_variants(cli, tmp_path):
    targets = "examples.my_pipeline:make_tf,examples.my_pipeline:make_torch"
    done = cli("sweep", "loader=custom", f"loader.target={targets}", "loader.kwargs.prefetch=true", *TINY, *SHORT, timeout=600)
    assert done.returncode == 3, done.stderr[-2000:]  # make_torch takes no 'prefetch': that job fails in one line
    folder = sweep_dir(done, tmp_path)
    table = {r["loader.target"]: r for r in rows(folder)}
    assert table["examples.my_pipeline:make_tf"]["status"] == "ok" and float(table["examples.my_pipeline:make_tf"]["samples_per_s"]) > 0
    assert "unexpected keyword argument 'prefetch'" in table["examples.my_pipeline:make_torch"]["error"]
    result = json.loads((folder / "0" / "repeat-0" / "result.json").read_text())
    assert result["loader"]["returned"] == "tf.data.Dataset" and result["same_data"]["verdict"] in ("complete", "partial")
    assert "make_tf" in (folder / "report.html").read_text()


@pytest.mark.slow
def test_a_users_generator_is_checked_like_a_builtin_loader(cli, tmp_path, mine):
    done = cli("run", "loader=custom", "loader.target=mine:batches", f"loader.path={mine}", "loader.kwargs.scale=7", *TINY, *SHORT)
    assert done.returncode == 0, done.stderr[-2000:]
    folder = sweep_dir(done, tmp_path)
    result = json.loads((folder / "repeat-0" / "result.json").read_text())
    assert result["loader"]["returned"] == "generator" and result["loader"]["kwargs"] == {"scale": 7}
    assert result["same_data"]["verdict"] != "unchecked"  # the ids it yields are checked against the dataset
    assert result["same_data"]["output"]["mean"] == 7.0 and result["summary"]["steps"] == 6


@pytest.mark.slow
def test_a_broken_batch_contract_and_a_missing_module_say_what_to_do_in_one_line(cli, tmp_path, mine):
    done = cli("run", "loader=custom", "loader.target=mine:chw_floats", f"loader.path={mine}", *TINY, *SHORT)
    assert done.returncode == 3
    error = rows(sweep_dir(done, tmp_path))[0]["error"]
    assert "(8, 3, 32, 32) float32" in error and error.endswith("batch.dtype=float32, batch.layout=nchw")
    runs = set((tmp_path / "reports" / "runs").iterdir())
    done = cli("run", "loader=custom", *TINY)
    assert done.returncode == 1 and done.stderr.startswith("ERROR: loader=custom needs loader.target=module:function")
    done = cli("run", "loader=custom", "loader.target=nowhere.pipelines:make", *TINY)
    assert done.returncode == 1 and done.stderr.startswith("ERROR: loader.target=nowhere.pipelines:make: no module nowhere")
    assert set((tmp_path / "reports" / "runs").iterdir()) == runs  # refused before any trial: no folder
    done = cli("run", "loader=custom", "loader.target=mine:broken", f"loader.path={mine}", *TINY, *SHORT)
    assert done.returncode == 3 and "No module named 'not_installed_anywhere'" in rows(sweep_dir(done, tmp_path))[0]["error"]


def test_a_trial_that_turns_sigterm_into_an_exit_is_still_recorded_as_a_timeout(cli, tmp_path, mine):
    """The parent ends a trial past trial.timeout_s with SIGTERM; where the trial turns that into SystemExit (a Ray
    driver does) it wrote a "failed" result with no error, and the timeout went unsaid (rank-on-nodes trials did)."""
    done = cli("run", "loader=custom", "loader.target=mine:exits_on_sigterm", f"loader.path={mine}", *TINY, *SHORT, "trial.timeout_s=3")
    assert done.returncode == 3, done.stderr[-2000:]
    (row,) = rows(sweep_dir(done, tmp_path))
    assert row["status"] == "timeout" and row["error"].startswith("still running after trial.timeout_s=3 s"), row


API = """
import harness

def notebook_pipeline(data, batch):  # defined in __main__, as in a notebook: pickled for the trial
    import numpy as np
    return [(np.zeros(batch.shape, np.uint8), np.zeros(batch.size))] * 3

result = harness.measure(notebook_pipeline, {overrides}, steps=6, step_ms=2)
print("STATUS", result.status, result.loader["returned"], round(float(result.row["samples_per_s"])) > 0)
named = harness.measure("examples.my_pipeline:make_torch", {overrides}, steps=6, step_ms=2, kwargs={{"workers": 0}})
print("NAMED", named.status, named.loader["knobs"]["num_workers"], named.folder.is_dir())
table = harness.sweep(["loader=synthetic", "loader.produce_ms=1,2", "trial.steps=5", "trial.warmup_steps=1"])
print("SWEEP", len(table), sorted(table["status"]), table.attrs["folder"].name.endswith("default"))
"""


@pytest.mark.slow
def test_the_python_api_measures_a_notebook_function_and_an_import_path_and_sweeps(cache_dir, tmp_path):
    script = API.format(overrides=", ".join(repr(o) for o in TINY))
    env = dict(os.environ, HARNESS_CACHE=str(cache_dir), PYTHONPATH=str(ROOT), HARNESS_CEILINGS="0")  # as the cli fixture
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith(("STATUS", "NAMED", "SWEEP"))]
    assert lines == ["STATUS ok iterable True", "NAMED ok 0 True", "SWEEP 2 ['ok', 'ok'] True"]


@pytest.mark.slow
def test_the_example_experiment_sweeps_the_users_pipelines_beside_the_builtin_loaders(cli, tmp_path):
    examples = ROOT / "examples" / "experiments"
    listing = cli("list", "--config-dir", str(examples))
    assert "my_tf, my_torch" in listing.stdout and "mine_vs_builtin" in listing.stdout
    done = cli("sweep", "--config-dir", str(examples), "experiment=mine_vs_builtin", *TINY, *SHORT, "--quiet", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    table = {r["loader"]: r for r in rows(sweep_dir(done, tmp_path))}
    assert sorted(table) == ["my_tf", "my_torch", "tf_data", "torch"] and {r["status"] for r in table.values()} == {"ok"}
    report = (sweep_dir(done, tmp_path) / "report.html").read_text()
    assert "examples.my_pipeline:make_torch" in report and "num_workers" in report  # the user's DataLoader as built
