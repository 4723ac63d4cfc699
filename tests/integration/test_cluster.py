"""The quick start's sweep across two test hosts (ci/cluster/start: network and UTS namespaces on one machine), with
Hydra's Ray launcher and with submitit_slurm.

Node 1 has one core and node 2 two. Under Ray each job asks for one ``harness_node`` (every node
has one), under SLURM for a whole node (``sbatch --exclusive``), so one trial runs per node at a
time whatever the node's size; the rows name both hosts and the report says that they ran on two
machines. Data-parallel ranks then run one per node (``consumer.rank_placement=nodes``) and meet
over TCP; under Ray node 2 reads the dataset from a cache of its own and sees no sweep folder of node 1's (its
jobs' results come back through Ray). ``ci/cluster/stop`` then leaves no namespace, link, process, mount or folder
behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
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


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "ci/cluster/start needs root (network namespaces, veth pairs)"
    if not all(shutil.which(tool) for tool in ("ip", "unshare", "nsenter", "taskset")):
        return "ci/cluster/start needs ip (iproute2), unshare, nsenter and taskset (util-linux)"
    if len(os.sched_getaffinity(0)) < 2:
        return "two nodes of one and two cores need two cores"
    try:
        import ray  # noqa: F401
    except ImportError:
        return "the Ray cluster needs the ray extra: pip install -e '.[ray]'"
    if subprocess.run(["ip", "link", "show", "harness-br0"], capture_output=True).returncode == 0:
        return "a cluster of ci/cluster/start is already up on this machine (ci/cluster/stop)"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))]
CLUSTER = ROOT / "ci" / "cluster"
# the quick start's four tf.data variants, one short repeat each: four jobs for two nodes
SWEEP = ["experiment=quickstart", *TINY, "trial.repeats=1", "trial.seconds=1", "trial.warmup_steps=2", "trial.timeout_s=90"]


@pytest.fixture
def one_cluster_at_a_time():
    """The machine holds one ci/cluster at a time (one bridge, one set of node names): the Ray and SLURM cases, which
    xdist may start on both workers at once, take turns."""
    with open(Path(tempfile.gettempdir()) / "harness-cluster-test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture
def cluster(request, tmp_path, one_cluster_at_a_time):
    """Two nodes (node 1: core 0; node 2: cores 0 and 1) with the service ``request.param`` (ray or slurm); stopped, and
    checked gone, after the test."""
    state = Path(tempfile.mkdtemp(prefix="harness-cl-"))  # short: Ray's socket paths must fit in 107 bytes
    env = dict(os.environ, HARNESS_CLUSTER_DIR=str(state), NODE_CPUS="0 0,1", PYTHON=sys.executable, PYTHONPATH=str(ROOT))
    env["NODE_CACHE"] = "own"  # Ray's node 2 keeps datasets in a cache node 1 does not see
    if request.param == "ray":  # and sees the test's folder (the sweep folders) empty: its jobs' results come back by Ray
        env["NODE_PRIVATE"] = str(tmp_path)  # (submitit needs a folder every node shares)
    started = subprocess.run([CLUSTER / "start", "2", request.param], env=env, capture_output=True, text=True, timeout=300)
    try:
        if request.param == "slurm" and "ci/slurm/start (packages, munge, slurmdbd) failed" in started.stderr:
            pytest.skip(f"no SLURM here: {started.stderr.strip().splitlines()[0]} (make slurm)")
        assert started.returncode == 0, started.stdout + started.stderr
        yield env
    finally:
        stopped = subprocess.run([CLUSTER / "stop"], env=env, capture_output=True, text=True, timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        assert _left(state) == [], _left(state)


def _left(state: Path) -> list[str]:
    """What a stopped cluster must not leave: its namespaces, links, processes, mounts (NODE_PRIVATE's, in any process's
    view) and folder."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    left = [n for n in netns if n.startswith("harness-node")]
    left += [name for name in ("harness-br0", "hn1@", "hn2@") if name in links]
    left += [" ".join(p.info["cmdline"]) for p in psutil.process_iter(["cmdline"]) if str(state) in " ".join(p.info["cmdline"] or [])]
    left += [f"a harness-private mount seen by pid {pid}" for pid in psutil.pids() if "harness-private" in _mounts(pid)]
    return left + ([str(state)] if state.exists() else [])


def _mounts(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/mounts").read_text()
    except OSError:  # gone meanwhile
        return ""


@pytest.mark.parametrize("cluster", ["ray", "slurm"], indirect=True)
def test_a_sweep_runs_one_trial_per_node_on_two_hosts_of_different_sizes(cluster, request, tmp_path):
    service, out = request.node.callspec.params["cluster"], tmp_path / "sweep"
    harness = [sys.executable, "-m", "harness", "sweep", *SWEEP, f"hydra.sweep.dir={out}"]
    env = dict(cluster, HARNESS_CEILINGS="0")
    if service == "ray":  # Ray's driver needs a raylet: the sweep runs on node 1
        argv = [CLUSTER / "run", "1", *harness, "hydra/launcher=ray", "+hydra.launcher.ray.remote.max_calls=1"]
        address = (Path(cluster["HARNESS_CLUSTER_DIR"]) / "ray-address").read_text().strip()  # what start wrote
        argv += [f"hydra.launcher.ray.init.address={address}"]
        said = "each Ray job asks for one harness_node (each of the 2 node(s)"
    else:  # sbatch on the host, to the nodes' own slurmctld
        argv = [*harness, "hydra/launcher=submitit_slurm", "hydra.launcher.name=harness_test_cluster"]
        env["SLURM_CONF"] = str(Path(cluster["HARNESS_CLUSTER_DIR"]) / "slurm" / "slurm.conf")
        said = "SLURM jobs ask for whole nodes (sbatch --exclusive)"
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert said in done.stderr
    assert service != "ray" or "files of the jobs came back with their results" in done.stderr  # node 2's, by Ray
    table = [r for r in rows(out) if r["kind"] == "trial"]
    assert len(table) == 4 and {r["status"] for r in table} == {"ok"}
    assert {r["host"] for r in table} == {"harness-node1", "harness-node2"}
    assert not overlaps([read_result(path) for path in find_results(out)])  # one trial per node at a time
    assert "ran on 2 machines: harness-node1" in (out / "summary.md").read_text()
    launcher = argv[argv.index(f"hydra/launcher={'ray' if service == 'ray' else 'submitit_slurm'}") :]
    _ranks_on_two_nodes(argv[: argv.index("sweep") + 1], launcher, env, tmp_path, own_cache=service == "ray")


def _ranks_on_two_nodes(harness: list, launcher: list, env: dict, tmp_path: Path, own_cache: bool) -> None:
    """consumer.ranks=2 with a rank on each node (Ray: a placement group; SLURM: a job of one task per node), two jobs
    that both want both nodes: each in turn (under Ray two jobs that each held a node and waited for the other's
    deadlocked), with both ranks' figures and hosts, an all-reduce over TCP, and under Ray node 2's dataset built in
    its own cache (node 1 sees only the one the sweep built)."""
    out = tmp_path / "ranks"
    job = ["loader=yardstick", "consumer.ranks=2", "consumer.rank_placement=nodes", "trial.seconds=1", "trial.warmup_steps=2"]
    argv = [*harness, *job, *TINY, "trial.seed=1,2", "trial.timeout_s=90", f"hydra.sweep.dir={out}", *launcher]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results = [json.loads(path.read_text()) for path in find_results(out)]
    assert len(results) == 2 and not overlaps([read_result(path) for path in find_results(out)])
    for result in results:
        assert result["status"] == "ok", result.get("error")
        ranks = result["ranks"]
        assert ranks["backend"] == "gloo" and sorted(ranks["hosts"]) == ["harness-node1", "harness-node2"], ranks
        assert [line["rank"] for line in ranks["per_rank"]] == [0, 1] and all(line["samples_per_s"] > 0 for line in ranks["per_rank"])
        assert result["summary"]["allreduce_pct"] > 0 and ranks["allreduce_ms_total"] > 0
    own = Path(env["HARNESS_CLUSTER_DIR"]) / "node2" / "cache"
    assert not own_cache or list(own.glob("datasets/*/dataset.json")), f"node 2 built no dataset in {own}"


@pytest.mark.parametrize("cluster", ["slurm"], indirect=True)
def test_a_restarted_slurm_cluster_numbers_its_jobs_after_the_last_start(cluster):
    """stop removes the controller's state, so a new start would number jobs from 1 again while slurmdbd still holds
    the earlier start's: sacct -j then answered for the earlier job, and submitit took a running job for one that had
    ended without a result (CI, 2026-12-06). Ids now start above every recorded one."""
    env = dict(cluster, SLURM_CONF=str(Path(cluster["HARNESS_CLUSTER_DIR"]) / "slurm" / "slurm.conf"))

    def submit() -> int:  # a job, once the accounting holds it
        done = subprocess.run(
            ["sbatch", "--parsable", "--output=/dev/null", "--wrap", "true"], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        job, deadline = done.stdout.strip().split(";")[0], time.monotonic() + 30
        sacct = ["sacct", "-n", "-X", "-o", "JobIDRaw", "-j", job]
        while not subprocess.run(sacct, env=env, capture_output=True, text=True).stdout.strip():
            assert time.monotonic() < deadline, f"job {job} never reached the accounting"
            time.sleep(0.2)
        return int(job)

    first = submit()
    for argv in ([CLUSTER / "stop"], [CLUSTER / "start", "2", "slurm"]):
        done = subprocess.run(argv, env=cluster, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert submit() > first
