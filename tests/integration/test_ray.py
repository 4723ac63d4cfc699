"""Hydra's Ray launcher (``hydra/launcher=ray``, the ``ray`` extra) runs a harness sweep on a local Ray cluster.

The launcher's ``ray.init`` starts a cluster of its own for the sweep (``address=local``:
never one that RAY_ADDRESS or an earlier ``ray start`` points at), in a Ray folder of this
test's own, and shuts it down when the sweep's process exits. Each job is a Ray task in a
fresh worker (``max_calls=1``) that calls ``harness.engine.task``; its rows must be the
harness launcher's.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from harness.results.model import read_result
from harness.results.placement import overlaps
from harness.results.table import find_results
from tests.integration.test_launcher import TINY, rows

pytest.importorskip("ray", reason="hydra/launcher=ray needs the ray extra: pip install -e '.[ray]'")
pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="hydra/launcher=ray needs the ray extra: pip install -e '.[ray]'")

SWEEP = ["loader=synthetic", "loader.produce_ms=1,2", "trial.seconds=1", "trial.warmup_steps=2", "trial.timeout_s=60", *TINY]
# init and remote are free-form dicts in the launcher's schema: a key it does not list needs "+"
RAY = [
    "hydra/launcher=ray",
    "hydra.launcher.ray.init.address=local",
    "+hydra.launcher.ray.init.num_cpus=2",
    "+hydra.launcher.ray.init.include_dashboard=false",
    "+hydra.launcher.ray.remote.max_calls=1",  # a fresh worker process per job, as under submitit
]
ROW_ORDER = ("round", "position")  # where a job ran in the harness launcher's shuffled rounds; Ray has none


def identity(folder: Path) -> tuple[list[str], list[dict]]:
    """results.csv's columns, and each trial row up to its measurements (job, repeat, status, kind, one column per override)."""
    table = rows(folder)
    columns = list(table[0]) if table else []
    keep = columns[: columns.index("samples_per_s")] if "samples_per_s" in columns else columns
    return columns, sorted(({k: r[k] for k in keep if k not in ROW_ORDER} for r in table if r["kind"] == "trial"), key=str)


def processes_of(cwd: Path, ray_dir: Path) -> list[psutil.Process]:
    """Processes a sweep started in ``cwd`` (trial workers, Ray's workers and agents) or that name ``ray_dir``."""
    found = []
    for p in psutil.process_iter(["cwd", "cmdline"]):
        where = Path(p.info["cwd"] or "/")
        if where == cwd or cwd in where.parents or str(ray_dir) in " ".join(p.info["cmdline"] or []):
            found.append(p)
    return found


@pytest.fixture
def ray_dir(tmp_path):
    """A Ray folder of the test's own, short (Ray's socket paths must fit in 107 bytes); no process of the sweep outlives the test."""
    folder = Path(tempfile.mkdtemp(prefix="harness-ray-"))
    yield folder
    # a sweep killed by the cli timeout leaves Ray's agents running (they ignore SIGTERM)
    left = processes_of(tmp_path, folder)
    for p in left:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(left, timeout=10)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_ray_runs_the_same_trials_and_rows_as_the_harness_launcher(cli, tmp_path, ray_dir):
    harness = cli("sweep", *SWEEP, "hydra.sweep.dir=harness", timeout=120)
    assert harness.returncode == 0, harness.stderr[-2000:]
    done = cli("sweep", *SWEEP, *RAY, f"+hydra.launcher.ray.init._temp_dir={ray_dir}", "hydra.sweep.dir=ray", timeout=150)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Ray Launcher is launching 2 jobs" in done.stdout and list(ray_dir.glob("session_*")), done.stdout[-2000:]
    assert "hydra/launcher=ray decides where and when each job runs" in done.stderr  # Preflight checked the jobs first
    columns, ray_rows = identity(tmp_path / "ray")
    assert (columns, ray_rows) == identity(tmp_path / "harness")
    assert len(ray_rows) == 2 and {r["status"] for r in ray_rows} == {"ok"} and {r["loader.produce_ms"] for r in ray_rows} == {"1", "2"}
    assert (tmp_path / "ray" / "report.html").exists()
    assert done.stdout.strip().splitlines()[-1] == "ray"  # the jobs' forwarded lines came before it
    assert [line for line in done.stdout.splitlines() if " repeat 0: ok" in line][-1] in done.stdout.split("trial(s):")[0]
    # each job asked Ray for every CPU of the local node, so Ray ran them one at a time: no trial shared the machine
    assert "each Ray job asks for all 2 CPUs of this machine's Ray node: one trial at a time" in done.stderr
    assert not overlaps([read_result(path) for path in find_results(tmp_path / "ray")])
    shared = "trials ran at the same time as another on the same machine"
    assert shared not in done.stderr and shared not in (tmp_path / "ray" / "report.html").read_text()
    deadline = time.monotonic() + 15  # ray.shutdown at the sweep's exit ends the cluster; give its agents a moment
    while processes_of(tmp_path, ray_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not processes_of(tmp_path, ray_dir), "Ray processes outlived the sweep"
