"""Hydra's Ray launcher (``hydra/launcher=ray``, the ``ray`` extra) runs a harness sweep on a local Ray cluster.

The launcher's ``ray.init`` starts a cluster of its own for the sweep (``address=local``:
never one that RAY_ADDRESS or an earlier ``ray start`` points at), in a Ray folder of this
test's own, and shuts it down when the sweep's process exits. Each job is a Ray task in a
fresh worker (``max_calls=1``) that calls ``harness.engine.task``; its rows must be the
harness launcher's.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from harness.results.model import read_result
from harness.results.placement import overlaps
from harness.results.table import find_results
from tests.conftest import ROOT
from tests.integration.test_launcher import TINY, rows

pytest.importorskip("ray", reason="hydra/launcher=ray needs the ray extra: pip install -e '.[ray]'")
pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="hydra/launcher=ray needs the ray extra: pip install -e '.[ray]'")

SWEEP = ["loader=synthetic", "loader.produce_ms=1,2", "trial.seconds=1", "trial.warmup_steps=2", "trial.timeout_s=60", *TINY]
# init and remote are free-form dicts in the launcher's schema: a key it does not list needs "+"
RAY_JOB = ["hydra/launcher=ray", "+hydra.launcher.ray.remote.max_calls=1"]  # a fresh worker process per job, as under submitit
RAY = [
    *RAY_JOB,
    "hydra.launcher.ray.init.address=local",
    "+hydra.launcher.ray.init.num_cpus=2",
    "+hydra.launcher.ray.init.include_dashboard=false",
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@pytest.mark.slow
def test_on_a_running_cluster_each_job_asks_for_a_whole_node(cli, tmp_path, ray_dir, monkeypatch):
    """``ray start`` leaves a cluster running; a sweep given its address asks it for its nodes and takes one per job.

    Before, harness asked only a cluster it started itself for whole nodes: on this one the two
    jobs got Ray's default 1 CPU each and ran side by side on the 2-CPU node.
    """
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # Ray 2.60 joins a token cluster by address only with the token set up
    address = start_cluster(tmp_path, ray_dir)
    done = cli("sweep", *SWEEP, *RAY_JOB, f"hydra.launcher.ray.init.address={address}", "hydra.sweep.dir=ray", timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"each Ray job asks for 2 CPUs, all of the smallest of the 1 node(s) of the Ray cluster at {address}" in done.stderr
    columns, ray_rows = identity(tmp_path / "ray")
    assert len(ray_rows) == 2 and {r["status"] for r in ray_rows} == {"ok"}
    assert not overlaps([read_result(path) for path in find_results(tmp_path / "ray")])  # one job at a time on the one node


def start_cluster(tmp_path: Path, ray_dir: Path, *, private: Path | None = None) -> str:
    """``ray start --head`` with 2 CPUs; ``private``: a folder the cluster's processes see empty (a tmpfs of their own)."""
    start = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--num-cpus=2", f"--port={free_port()}"]
    start += [f"--temp-dir={ray_dir}", "--include-dashboard=false", "--disable-usage-stats"]
    if private is not None:  # a mount namespace: the node's processes and the sweep's see different folders at one path
        start = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount -t tmpfs tmpfs "$0" && exec "$@"',
            str(private),
            *start,
        ]
    env = dict(os.environ, PYTHONPATH=str(ROOT), HARNESS_CEILINGS="0")
    started = subprocess.run(start, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr[-2000:]
    return (ray_dir / "ray_current_cluster").read_text().strip()


@pytest.mark.slow
def test_a_node_that_does_not_see_the_sweep_folder_sends_the_results_back(cli, tmp_path, ray_dir, monkeypatch):
    """Cloud Ray clusters often share no file system: a job's files come back with its return value.

    Before, each job wrote its results on its node; the sweep found none and failed, though every trial ran.
    """
    sweeps = tmp_path / "sweeps"
    sweeps.mkdir()
    mount = ["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "tmpfs", str(sweeps)]
    if shutil.which("unshare") is None or subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("unshare --mount with a tmpfs is not allowed here (it needs root): no node with a folder of its own")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    address = start_cluster(tmp_path, ray_dir, private=sweeps)
    done = cli("sweep", *SWEEP, *RAY_JOB, f"hydra.launcher.ray.init.address={address}", f"hydra.sweep.dir={sweeps / 'ray'}", timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"files of the jobs came back with their results and were written under {sweeps / 'ray'}" in done.stderr
    columns, ray_rows = identity(sweeps / "ray")
    assert len(ray_rows) == 2 and {r["status"] for r in ray_rows} == {"ok"} and {r["loader.produce_ms"] for r in ray_rows} == {"1", "2"}
    assert (sweeps / "ray" / "report.html").exists() and list((sweeps / "ray").glob("*/.hydra/config.yaml"))
