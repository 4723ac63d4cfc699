"""Data-parallel ranks: ``consumer.ranks=N`` runs N copies of the trial's loop, one process each, in lockstep.

As data-parallel training does (torch DistributedDataParallel), each rank has its own loader
over its own share of the data (the family's own way: ``DistributedSampler``, ``Dataset.shard``,
a slice of the file list) and its own accelerator (GPU ``gpu_index + rank``, or the emulated
one), and each step ends in an all-reduce that returns only when every rank has reached it.
A rank whose loader or step is slower holds the others there: what they wait, per step, is
``sync_ms``, and its share of their time is the straggler cost.

The trial's own process is rank 0: it talks to the parent and writes ``result.json``. It
starts ranks 1..N-1 as ``python -m harness.trial.worker TRIAL_DIR --rank K`` before it builds
its own loader; they meet over TCP, as torchrun's ranks do: rank 0 serves a torch.distributed
``TCPStore`` on a port the OS picks and gives the others its address (``MASTER_ADDR``,
``MASTER_PORT``), and each writes ``rank-K.json`` (its own
:class:`~harness.results.model.TrialResult`). Rank 0 then merges them: per-rank figures, the
aggregate, and the straggler cost. The peers are in the trial's process group, so a timeout
kills them with it.

With ``consumer.rank_placement=nodes`` ranks 1..N-1 run each on a node of its own: the other
tasks of a SLURM job with one task per node, or Ray tasks on N-1 other nodes that rank 0 reserves
at once (:mod:`harness.trial.peer`). Rank 0 serves the store on its node's address; such a peer
(``python -m harness.trial.worker --join``) shares no folder with rank 0: it takes the trial's
request and config from the store, reads the dataset from its own node's cache (building it there
if missing) and puts its result back in the store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

POLL_S = 0.05
HOST = "127.0.0.1"  # rank_placement=machine: every rank of a trial runs on this machine (rank 0 starts them)


def rank_file(trial_dir: Path, rank: int) -> Path:
    return Path(trial_dir) / f"rank-{rank}.json"


@dataclass
class Rank:
    """This process's place among the trial's ranks, and its link to the others once joined."""

    index: int
    ranks: int
    trial_dir: Path
    timeout_s: float
    cuda: bool = False  # NCCL on the rank's GPU; gloo on the CPU otherwise
    gpu: int | None = None  # the rank's CUDA device index, where cuda
    peers: list[subprocess.Popen] = field(default_factory=list)  # rank 0 only
    placement: str = "machine"  # consumer.rank_placement: machine | nodes (peers on other nodes, SLURM's or Ray's)
    host: str = HOST  # the address rank 0's store is served on
    cluster: dict = field(default_factory=dict)  # rank 0 in a job Ray runs: the job's node (the request's cluster)
    _flag: object = None
    _store: Any = None  # rank 0: the torch.distributed TCPStore it serves, from start_peers (torch imported lazily)
    _remote: Any = None  # rank 0, placement nodes: its peers on other nodes (harness.trial.peer: SLURM's tasks or Ray's)

    @property
    def backend(self) -> str:
        return "nccl" if self.cuda else "gloo"

    @property
    def timeout(self) -> timedelta:
        """How long the rendezvous and each collective may wait: the trial's own timeout."""
        return timedelta(seconds=self.timeout_s)

    def environ(self, rank: int, port: int) -> dict[str, str]:
        """The variables torchrun sets, so that a user's pipeline (``loader=custom``) can find its rank as it would in
        training, and the ranks their rendezvous (``MASTER_ADDR``, ``MASTER_PORT``: rank 0's store)."""
        n = str(self.ranks)
        rendezvous = {"MASTER_ADDR": self.host, "MASTER_PORT": str(port)}
        if self.placement == "nodes":  # one rank per node: each is the only one, and the first, of its node
            return {"RANK": str(rank), "LOCAL_RANK": "0", "WORLD_SIZE": n, "LOCAL_WORLD_SIZE": "1", **rendezvous}
        return {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": n, "LOCAL_WORLD_SIZE": n, **rendezvous}

    def start_peers(self) -> None:
        """Rank 0: serve the rendezvous, then start ranks 1..N-1 (each logs to ``rank-K.log``), before building its own loader."""
        import torch.distributed as dist

        port = 0  # the OS picks a free one, so trials (or sweeps) side by side never meet each other's ranks
        if self.placement == "nodes":
            from harness.trial import peer

            self._remote = peer.reserve(self.ranks - 1, self.timeout_s, self.cluster)  # before the store: nothing to serve yet if none
            self.host, port = self._remote.address, self._remote.port  # SLURM's peers compute the port: a fixed one
        # not waiting for the workers here: they start below, and rank 0 waits for them in join (naming one that died)
        self._store = dist.TCPStore(self.host, port, self.ranks, is_master=True, timeout=self.timeout, wait_for_workers=False)
        port = self._store.port
        os.environ.update(self.environ(0, port))
        if self._remote is not None:
            self._remote.start(self._store, self.trial_dir, {k: self.environ(k, port) for k in range(1, self.ranks)})
            return
        for k in range(1, self.ranks):
            with open(self.trial_dir / f"rank-{k}.log", "wb") as log:
                command = [sys.executable, "-m", "harness.trial.worker", str(self.trial_dir), "--rank", str(k)]
                env = {**os.environ, **self.environ(k, port)}
                self.peers.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env))

    def join(self) -> None:
        """Meet the other ranks: rank 0 first waits until every peer has built its loader (or names the one that failed).

        The ranks share rank 0's torch.distributed ``TCPStore`` (``MASTER_ADDR``:``MASTER_PORT``); a peer
        says it is ready there, and rank 0 polls it beside its peers' exit codes, so a peer that died
        while building is reported at once instead of after the process group's timeout.
        """
        import torch
        import torch.distributed as dist

        os.environ.setdefault("GLOO_SOCKET_IFNAME", interface(self.host))  # the link its ranks meet on (lo on one machine)
        if self.cuda:
            torch.cuda.set_device(self.gpu)  # NCCL binds each rank to the device current when it joins
        if self.index == 0:
            store = self._store
            self._wait_ready(store)
        else:
            addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
            store = dist.TCPStore(addr, port, self.ranks, is_master=False, timeout=self.timeout)
            store.set(f"ready-{self.index}", "1")
        dist.init_process_group(self.backend, store=store, rank=self.index, world_size=self.ranks, timeout=self.timeout)
        device = torch.device("cuda", self.gpu or 0) if self.cuda else torch.device("cpu")
        self._flag = torch.zeros(1, device=device)

    def agree(self, stop: bool) -> bool:
        """The step's all-reduce (MAX of every rank's wish to stop): returns when all ranks have reached it."""
        import torch.distributed as dist

        flag = self._flag
        flag.fill_(1.0 if stop else 0.0)  # type: ignore[attr-defined]
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())  # type: ignore[attr-defined]

    def leave(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

    def _wait_ready(self, store) -> None:
        deadline = time.monotonic() + self.timeout_s
        waiting = set(range(1, self.ranks))
        while waiting and time.monotonic() < deadline:
            for k in sorted(waiting):
                if store.check([f"ready-{k}"]):
                    waiting.discard(k)
                elif self._ended(k):
                    raise HarnessError(f"rank {k} of {self.ranks} failed before the ranks met: {self._error(k)}")
            time.sleep(POLL_S)
        if waiting:
            raise HarnessError(f"ranks {sorted(waiting)} of {self.ranks} not ready after {self.timeout_s:g} s (see rank-K.log)")

    def _ended(self, k: int) -> bool:
        """Whether peer ``k`` has ended (its process here, or its task on its node)."""
        return self._remote.ended(k) if self._remote is not None else self.peers[k - 1].poll() is not None

    def _error(self, k: int) -> str:
        return self._remote.error(k) if self._remote is not None else peer_error(self.trial_dir, k)

    def collect(self, wait_s: float = 60.0) -> list[dict]:
        """Rank 0, after its own loop: every peer's result (``rank-K.json``); a peer that failed is named."""
        if self._remote is not None:
            return self._remote.collect(wait_s)
        deadline = time.monotonic() + wait_s
        for peer in self.peers:
            try:
                peer.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
        found = []
        for k in range(1, self.ranks):
            path = rank_file(self.trial_dir, k)
            data = json.loads(path.read_text()) if path.exists() else None
            if data is None or data.get("status") not in ("ok", "too_short"):  # too short: rank 0 judges itself alike
                raise HarnessError(f"rank {k} of {self.ranks} did not finish: {peer_error(self.trial_dir, k)}")
            found.append(data)
        return found

    def blame(self, exc: BaseException, wait_s: float = 10.0) -> None:
        """Rank 0, when its loop broke (a collective whose peer is gone): name the peer that failed first, if one did."""
        if self._remote is not None:
            failed = self._remote.failed(wait_s)
            if failed is not None:
                raise HarnessError(f"rank {failed} of {self.ranks} failed: {self._remote.error(failed)}") from exc
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not any(p.poll() not in (None, 0) for p in self.peers):
            time.sleep(POLL_S)
        for k, peer in enumerate(self.peers, start=1):
            if peer.poll() not in (None, 0):
                raise HarnessError(f"rank {k} of {self.ranks} failed: {peer_error(self.trial_dir, k)}") from exc

    def stop_peers(self) -> None:
        """Rank 0, whatever happened: no peer outlives the trial's own process."""
        if self._remote is not None:
            self._remote.stop()
        for peer in self.peers:
            if peer.poll() is None:
                peer.kill()
                peer.wait(timeout=5)


def interface(address: str) -> str:
    """The network interface this machine reaches ``address`` through (gloo's ``GLOO_SOCKET_IFNAME``); ``lo`` for 127.0.0.1.

    gloo otherwise picks the address its host name resolves to, which a test host or a cluster
    node without DNS for its own name may not have.
    """
    if address.startswith("127."):
        return "lo"
    import socket

    import psutil

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # sends nothing: asks the kernel's route to address
        probe.connect((address, 9))
        local = probe.getsockname()[0]
    for name, addresses in psutil.net_if_addrs().items():
        if any(a.address == local for a in addresses):
            return name
    return "lo"


def write_peer(trial_dir: Path, rank: int, result, cpus: dict) -> None:
    """A peer's whole :class:`~harness.results.model.TrialResult`, with its rank, cores and host, as ``rank-K.json``."""
    import socket

    from harness.data.manifest import write_json_atomic

    write_json_atomic(rank_file(trial_dir, rank), {**result.to_dict(), "rank": rank, "cpus": cpus, "host": socket.gethostname()})


def peer_error(trial_dir: Path, rank: int) -> str:
    """A peer's one-line reason: its result's error, else its log's last line."""
    path = rank_file(trial_dir, rank)
    try:
        error = json.loads(path.read_text()).get("error")
        if error:
            return str(error)
    except (OSError, ValueError):
        pass
    log = Path(trial_dir) / f"rank-{rank}.log"
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()] if log.exists() else []
    return lines[-1].strip() if lines else f"no result and no log (see {log})"


# -- the merged result ---------------------------------------------------------------------------
PER_RANK = ("samples_per_s", "stall_pct", "au_pct", "h2d_pct", "wait_ms_p50", "step_ms_p50")


def rank_figures(index: int, summary: dict, steps: dict, cpus: dict | None, same_data: dict | None = None, host: str | None = None) -> dict:
    """One rank's line: its host, throughput, loader wait, AU, time at the all-reduce (``sync_pct``), and its data check."""
    from harness.results.stats import percentile

    wall_ms = max(summary.get("wall_s", 0.0) * 1e3, 1e-9)
    sync = sum(steps.get("sync_ms", []))
    return {
        "rank": index,
        "host": host,
        **{k: summary.get(k) for k in PER_RANK},
        "steps": summary.get("steps"),
        "samples": summary.get("samples"),
        "wall_s": summary.get("wall_s"),
        "sync_pct": 100.0 * sync / wall_ms,
        "sync_ms_p50": percentile(steps["sync_ms"], 50) if steps.get("sync_ms") else None,
        "cores": (cpus or {}).get("used"),
        "same_data": (same_data or {}).get("verdict"),
        "epoch0_checksum": ((same_data or {}).get("epochs") or {}).get("0", {}).get("checksum"),
    }


def merge(result, peers: list[dict], backend: str) -> None:
    """Fold the peers' results into rank 0's ``result``: ``result.ranks``, and the aggregate in ``result.summary``.

    The headline throughput is every rank's samples over the longest rank's measured time;
    wait, AU and copy shares are the ranks' means. At each step's all-reduce the last rank
    to arrive waits only for the collective itself; every other rank also waits for it. So
    per step the least any rank spent there is the all-reduce's cost (``allreduce_pct``), and
    what a rank spent beyond that is its wait for a slower rank: ``straggler_pct`` is the
    ranks' mean share of time lost so. The step arrays become the trial's, as its row is: per
    step (ranks step in lockstep), ``samples`` over all ranks and ``wait_ms``, ``h2d_ms`` and
    ``compute_ms`` the ranks' means, so that windows of them (``check``, the report's timelines)
    say what the row says; ``t_ms``, ``step_ms`` and ``sync_ms`` stay rank 0's.
    """
    import socket

    from harness.trial import cores

    lines = [rank_figures(0, result.summary, result.steps, {"used": cores.allowed()}, result.same_data, socket.gethostname())]
    lines += [rank_figures(p["rank"], p["summary"], p["steps"], p.get("cpus"), p.get("same_data"), p.get("host")) for p in peers]
    all_steps = [result.steps] + [p["steps"] for p in peers]
    cost, behind = split_sync([s.get("sync_ms", []) for s in all_steps])
    for line, lost in zip(lines, behind):
        line["straggler_pct"] = 100.0 * lost / max((line["wall_s"] or 0.0) * 1e3, 1e-9)
    wall = max(line["wall_s"] or 0.0 for line in lines)
    samples = sum(line["samples"] or 0 for line in lines)
    mean = {k: sum(line[k] or 0.0 for line in lines) / len(lines) for k in ("stall_pct", "au_pct", "h2d_pct", "straggler_pct")}
    slowest = min(lines, key=lambda line: line["straggler_pct"])  # the rank the others waited for lost least itself
    if len({len(s.get("samples", [])) for s in all_steps}) == 1:
        result.steps["samples"] = [sum(values) for values in zip(*(s["samples"] for s in all_steps))]
        for key in ("wait_ms", "h2d_ms", "compute_ms"):
            if all(key in s for s in all_steps):
                result.steps[key] = [sum(values) / len(values) for values in zip(*(s[key] for s in all_steps))]
    result.summary.update(
        {
            "samples": samples,
            "samples_per_s": samples / wall if wall > 0 else 0.0,
            "batches_per_s": sum(line["steps"] or 0 for line in lines) / wall if wall > 0 else 0.0,
            "stall_pct": mean["stall_pct"],
            "au_pct": mean["au_pct"],
            "h2d_pct": mean["h2d_pct"],
            "straggler_pct": mean["straggler_pct"],
            "allreduce_pct": 100.0 * cost / max(wall * 1e3, 1e-9),
            "ranks": len(lines),
            "slowest_rank_samples_per_s": slowest["samples_per_s"],
        }
    )
    result.ranks = {
        "ranks": len(lines),
        "backend": backend,
        "per_rank": lines,
        "slowest": slowest["rank"],
        "hosts": sorted({line["host"] for line in lines if line["host"]}),
        "straggler_s": round(sum(behind) / 1e3, 4),
        "allreduce_ms_total": round(cost, 3),
        "sharding": result.loader.get("rank_sharding"),
        "note": "samples_per_s, batches_per_s: all ranks; stall/AU/h2d/straggler: the ranks' mean; step arrays: samples "
        "all ranks', wait/h2d/compute the ranks' mean, t/step/sync rank 0's",
    }


def split_sync(per_rank: list[list[float]]) -> tuple[float, list[float]]:
    """Per-rank ``sync_ms`` arrays -> (the all-reduce's own cost, each rank's time waiting for slower ranks), ms.

    Ranks run the same steps, so step ``i`` of every rank is the same all-reduce; the least
    any rank waited in it is what the collective itself took.
    """
    steps = min((len(a) for a in per_rank), default=0)
    cost, behind = 0.0, [0.0] * len(per_rank)
    for i in range(steps):
        least = min(a[i] for a in per_rank)
        cost += least
        for k, a in enumerate(per_rank):
            behind[k] += a[i] - least
    return cost, behind
