"""Ranks on other nodes (``consumer.rank_placement=nodes``): rank 0's side in Ray, and the peer's own process.

Rank 0 (:class:`RemotePeers`) reserves its own node and N-1 others at once, as a Ray placement
group of one ``harness_node`` each with the ``STRICT_SPREAD`` strategy, the first bundle pinned to
its own node (Ray's ``node:<address>`` resource). A group is granted whole or not at all, so two
trials never each hold half of what the other needs; for that the job asks Ray for CPUs only
(harness.commands.nodes). Where the job does hold its node's ``harness_node`` (a sweep over
``consumer.ranks``), the group is the N-1 others. It then starts one Ray task per node,
which runs ``python -m harness.trial.worker --join ADDRESS PORT RANK`` (:func:`fetch`, :func:`report`).

A peer shares no folder with rank 0. It reads the trial's request and config from rank 0's store
(``MASTER_ADDR``:``MASTER_PORT``), runs the trial's worker as rank K in a scratch folder of its own
node (the dataset from that node's cache, built there if it is missing), and puts its result (or
its one-line error) back in the store, where rank 0 collects it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

NODE_RESOURCE = "harness_node"  # one unit on every Ray node: a job or a peer asking for one has the node to itself
CONNECT_S = 120.0  # how long a peer waits for rank 0's store (rank 0 serves it before it starts any peer)
SLURM_PORT_BASE, SLURM_PORTS = 15000, 20000  # a SLURM job's store port: 15000 + job id % 20000
POLL_S = 0.05
TAIL = 5  # lines of a failed peer's output kept for its error


# -- rank 0's side ------------------------------------------------------------------------------
def job_node() -> dict[str, Any]:
    """In a job Ray runs (the trial's parent): its node's address and whether the job holds the node's
    ``harness_node``; ``{}`` elsewhere. The trial gets it in its request (``cluster``)."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return {}
    try:
        held = ray.get_runtime_context().get_assigned_resources().get(NODE_RESOURCE, 0) >= 1
    except AssertionError:  # Ray's driver, not a job Ray runs
        return {}
    return {"address": ray.util.get_node_ip_address(), "holds_node": held}


def reserve(count: int, timeout_s: float, cluster: dict[str, Any] | None = None):
    """Rank 0's peers on ``count`` other nodes: SLURM's tasks where the job has one per rank, else Ray's nodes
    (``cluster``: the job's node, :func:`job_node`)."""
    if "SLURM_JOB_ID" in os.environ:
        tasks = int(os.environ.get("SLURM_NTASKS") or 1)
        if tasks != count + 1:
            raise HarnessError(
                f"consumer.rank_placement=nodes: the SLURM job has {tasks} tasks for {count + 1} ranks; "
                f"ask for hydra.launcher.nodes={count + 1} hydra.launcher.tasks_per_node=1 (harness does unless told otherwise)"
            )
        return SlurmPeers(count, *slurm_rendezvous())
    return RemotePeers.reserve(count, timeout_s, cluster or {})


def slurm_rendezvous() -> tuple[str, int]:
    """Where rank 0 of a SLURM job serves its store: the address of the job's first node (SLURM's NodeAddr, which
    need not be in DNS) and a port from the job's id (each rank computes the same, as torchrun under srun does)."""
    first = _scontrol("show", "hostnames", os.environ["SLURM_JOB_NODELIST"]).split()[0]
    fields = dict(f.split("=", 1) for f in _scontrol("show", "node", first, "-o").split() if "=" in f)
    return fields.get("NodeAddr") or first, SLURM_PORT_BASE + int(os.environ["SLURM_JOB_ID"]) % SLURM_PORTS


def _scontrol(*args: str) -> str:
    done = subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise HarnessError(f"consumer.rank_placement=nodes: scontrol {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


class StorePeers:
    """What rank 0 reads of its peers in the store, whoever started them: subclasses say whether peer ``k`` has ended
    (``ended``) and why it failed (``error``), and hold ``count`` and ``store``."""

    count: int
    store: Any

    def ended(self, k: int) -> bool:
        raise NotImplementedError

    def error(self, k: int) -> str:
        raise NotImplementedError

    def failed(self, wait_s: float) -> int | None:
        """The first peer that failed, waiting up to ``wait_s`` for one to (a broken collective means one did)."""
        deadline = time.monotonic() + wait_s
        while True:
            for k in range(1, self.count + 1):
                if self.store.check([f"error-{k}"]) or (self.ended(k) and not self.store.check([f"result-{k}"])):
                    return k
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_S)

    def results(self) -> list[dict]:
        """Every peer's result from the store; a peer without a good one is named with its :meth:`error`."""
        found = []
        for k in range(1, self.count + 1):
            data = json.loads(self.store.get(f"result-{k}")) if self.store.check([f"result-{k}"]) else None
            if data is None or data.get("status") not in ("ok", "too_short"):
                raise HarnessError(f"rank {k} of {self.count + 1} did not finish: {self.error(k)}")
            found.append(data)
        return found


@dataclass
class SlurmPeers(StorePeers):
    """Rank 0's peers as the other tasks of its SLURM job (one per node): SLURM started them; they find rank 0's store
    at :func:`slurm_rendezvous` and say there whether they finished."""

    count: int
    address: str
    port: int
    store: Any = None

    def start(self, store, trial_dir: Path, environs: dict[int, dict[str, str]]) -> None:
        self.store = store
        publish(store, trial_dir, environs)

    def ended(self, k: int) -> bool:
        return bool(self.store.check([f"result-{k}"]) or self.store.check([f"error-{k}"]))

    def error(self, k: int) -> str:
        if self.store.check([f"error-{k}"]):
            return self.store.get(f"error-{k}").decode()
        return "no result (its SLURM task did not join or did not finish; see the job's log)"

    def collect(self, wait_s: float) -> list[dict]:
        deadline = time.monotonic() + wait_s
        while not all(self.ended(k) for k in range(1, self.count + 1)) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        return self.results()

    def stop(self) -> None:
        pass  # SLURM ends its tasks with the job; a peer stops waiting once the job's first task (rank 0) has ended


def publish(store, trial_dir: Path, environs: dict[int, dict[str, str]]) -> None:
    """The trial's request (with its repeat, which a SLURM peer checks), config and each peer's variables, in the store."""
    request = json.loads((Path(trial_dir) / "trial.json").read_text())
    store.set("request", json.dumps(request))
    store.set("config", Path(request["config_file"]).read_text())
    for k, environ in environs.items():
        store.set(f"environ-{k}", json.dumps(environ))
    store.set("repeat", str(request.get("repeat", 0)))  # last: a peer that sees it finds the rest


@dataclass
class RemotePeers(StorePeers):
    """Rank 0's peers on other Ray nodes: the placement group that holds their nodes and one Ray task per peer."""

    count: int
    address: str  # rank 0's node address, where it serves the store
    group: Any
    first: int = 0  # the group's bundle of peer 1: 1 where bundle 0 holds rank 0's own node
    refs: list = field(default_factory=list)
    store: Any = None
    port: int = 0  # any free port: the peers are told it

    @classmethod
    def reserve(cls, count: int, timeout_s: float, cluster: dict[str, Any]) -> RemotePeers:
        """Join the Ray cluster this trial's job runs in and hold ``count`` other nodes, or say in one line why not."""
        ray = _join(cluster.get("address"))
        from ray.util.placement_group import placement_group, remove_placement_group

        marked = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get(NODE_RESOURCE, 0) >= 1]
        if len(marked) < count + 1:
            raise HarnessError(
                f"consumer.rank_placement=nodes: {count + 1} ranks need {count + 1} nodes with one {NODE_RESOURCE} each, and "
                f"the Ray cluster has {len(marked)} (ray start --resources '{{\"{NODE_RESOURCE}\": 1}}' on each node)"
            )
        # the address of the node whose raylet the trial joined (_join): the one Ray registered, as in its node:<address>
        address = ray.util.get_node_ip_address()
        # this node too, unless the trial's job holds it: a job that held its node while it waited for others would
        # deadlock with a job on another node waiting for this one (two jobs of two ranks on two nodes did)
        own = [] if cluster.get("holds_node") else [{NODE_RESOURCE: 1, f"node:{address}": 0.001}]
        group = placement_group([*own, *[{NODE_RESOURCE: 1}] * count], strategy="STRICT_SPREAD")
        ready, _ = ray.wait([group.ready()], timeout=timeout_s)
        if not ready:
            remove_placement_group(group)
            raise HarnessError(
                f"consumer.rank_placement=nodes: {count + len(own)} nodes (this one and {count} others) were not free within "
                f"{timeout_s:g} s: other jobs held them"
            )
        return cls(count, address, group, first=len(own))

    def start(self, store, trial_dir: Path, environs: dict[int, dict[str, str]]) -> None:
        """Put the trial's request, config and each peer's variables in the store, then start each peer on its node."""
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        publish(store, trial_dir, environs)
        self.store = store
        task = ray.remote(run_peer)
        self.refs = []
        for k, environ in environs.items():
            where = PlacementGroupSchedulingStrategy(self.group, placement_group_bundle_index=self.first + k - 1)
            options = task.options(num_cpus=0, resources={NODE_RESOURCE: 1}, max_retries=0, scheduling_strategy=where)
            self.refs.append(options.remote(environ["MASTER_ADDR"], int(environ["MASTER_PORT"]), k))

    def ended(self, k: int) -> bool:
        import ray

        ready, _ = ray.wait([self.refs[k - 1]], timeout=0)
        return bool(ready)

    def error(self, k: int) -> str:
        """Peer ``k``'s one-line reason: the error it put in the store, else how its process ended."""
        import ray

        if self.store is not None and self.store.check([f"error-{k}"]):
            return self.store.get(f"error-{k}").decode()
        if not self.ended(k):
            return "still running"
        try:
            code, tail = ray.get(self.refs[k - 1])
        except Exception as exc:  # the Ray task itself failed (its node died, it was cancelled)
            return f"its Ray task failed: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        return f"exited with code {code}" + (f": {tail[-1]}" if tail else "")

    def collect(self, wait_s: float) -> list[dict]:
        """Every peer's result from the store, once each has ended; a peer without a good one is named."""
        import ray

        ray.wait(self.refs, num_returns=len(self.refs), timeout=wait_s)
        return self.results()

    def stop(self) -> None:
        """No peer outlives the trial: cancel the tasks still running (their process goes with them), free the nodes."""
        import ray
        from ray.util.placement_group import remove_placement_group

        for ref in self.refs:
            if not ray.wait([ref], timeout=0)[0]:
                ray.cancel(ref, force=True)
        if self.refs:
            ray.wait(self.refs, num_returns=len(self.refs), timeout=10)
        remove_placement_group(self.group)


def _join(node: str | None = None):
    """Ray, joined to the cluster of the trial's job (``RAY_ADDRESS``, which the job sets, else ``auto``) through the
    raylet of ``node``, the job's node address."""
    import logging

    try:
        import ray
    except ImportError as exc:
        raise HarnessError("consumer.rank_placement=nodes starts ranks through Ray, not installed here; pip install -e '.[ray]'") from exc
    if not ray.is_initialized():
        # the job's node, named: a driver joins the raylet it finds in the process list, and where one host shows
        # several (ci/cluster's nodes share one PID namespace) Ray picks the head's, not the one the job runs on
        try:
            ray.init(
                address=os.environ.get("RAY_ADDRESS") or "auto", logging_level=logging.ERROR, log_to_driver=False, _node_ip_address=node
            )
        except ConnectionError as exc:
            raise HarnessError(
                "consumer.rank_placement=nodes: ranks 1.. start on other nodes of a Ray cluster, and this trial runs outside one "
                "(use hydra/launcher=ray with hydra.launcher.ray.init.address=<the cluster's>)"
            ) from exc
    return ray


def run_peer(host: str, port: int, rank: int) -> tuple[int, list[str]]:
    """The Ray task on a peer's node: the peer's process, which dies with the task (a cancelled task leaves nothing)."""
    command = [sys.executable, "-m", "harness.trial.worker", "--join", host, str(port), str(rank)]
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return done.returncode, lines[-TAIL:]


def _die_with_parent() -> None:
    """In the peer's process before it runs: SIGKILL it when its parent (the Ray task's worker) dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# -- the peer's own process -------------------------------------------------------------------------
def fetch(host: str, port: int, rank: int, scratch: Path, repeat: int | None = None, wait_s: float = CONNECT_S):
    """The peer's side, first: join rank 0's store and write the trial's request and config into ``scratch``.

    Returns the store, where :func:`report` puts the peer's result. The request is rewritten for
    this node: the config beside it, no channel to rank 0's parent, the dataset read locally. A
    SLURM peer names the ``repeat`` it runs: a store still up from the repeat before is left alone.
    """
    import torch.distributed as dist

    deadline = time.monotonic() + wait_s
    while True:
        left = max(deadline - time.monotonic(), 1.0)
        store = dist.TCPStore(host, port, is_master=False, timeout=timedelta(seconds=left))
        store.wait(["repeat"])
        served = int(store.get("repeat"))
        if repeat is None or served == repeat:
            break
        if served > repeat:  # rank 0 failed this repeat before serving it, and went on: nothing will come for it
            raise HarnessError(f"rank {rank}: rank 0 serves repeat {served}, so repeat {repeat} ended without this rank")
        del store  # rank 0's store of an earlier repeat, not gone yet
        if time.monotonic() >= deadline:
            raise HarnessError(f"rank {rank}: no rank 0 served repeat {repeat} at {host}:{port} within {wait_s:g} s")
        time.sleep(0.5)
    request = json.loads(store.get("request"))
    (scratch / "trial.yaml").write_text(store.get("config").decode())
    request.update(config_file=str(scratch / "trial.yaml"), channel_fd=None, sampled=False, storage={})
    (scratch / "trial.json").write_text(json.dumps(request))
    os.environ.update(json.loads(store.get(f"environ-{rank}")))  # RANK, WORLD_SIZE, MASTER_ADDR... as torchrun sets them
    return store


def report(store, rank: int, result: Path | None, error: str | None = None) -> None:
    """The peer's side, last: its ``rank-K.json`` into the store, or its one-line error."""
    if result is not None and result.exists():
        store.set(f"result-{rank}", result.read_text())
    else:
        store.set(f"error-{rank}", error or f"rank {rank} wrote no result")
