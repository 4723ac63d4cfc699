"""One trial per node: what harness asks a cluster launcher for, unless the command line decides.

Trials that share a node measure each other, so a sweep's jobs get whole nodes by default:

- ``submitit_slurm``: ``sbatch --exclusive``; a user who sets any
  ``hydra.launcher.additional_parameters`` (``={}`` for none) decides for themselves.
- ``ray``: each job asks Ray for as many CPUs as a node has (``ray.remote.num_cpus``), so Ray
  places one job per node. On a cluster the launcher starts here (``ray.init.address=local``)
  that is ``ray.init.num_cpus`` or this machine's usable cores. On an existing cluster (an
  address, ``auto``, or none: Ray then joins ``RAY_ADDRESS`` or a cluster ``ray start`` left
  running, and starts one only where it finds none) harness asks the cluster for its nodes first,
  in a short-lived process of its own: a guess above a node's CPUs would leave every job waiting
  for ever, one below lets jobs share nodes. Where every node has one unit of the custom resource
  ``harness_node`` (``ray start --resources '{"harness_node": 1}'``), each job asks for one instead:
  one job per node even where the nodes' sizes differ. Joining also needs
  ``ray.init.object_store_memory=null``: hydra-ray-launcher 1.2.2 passes a default that Ray refuses
  for a cluster it joins ("object_store_memory must not be provided").
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Sequence

from harness.trial.peer import NODE_RESOURCE  # ray start --resources '{"harness_node": 1}' on every node (ci/cluster/start)

EXCLUSIVE = "++hydra.launcher.additional_parameters.exclusive=true"
JOIN = "++hydra.launcher.ray.init.object_store_memory=null"
PROBE_TIMEOUT_S = 45.0  # ray.init retries an unreachable or refusing GCS for 20 s and more before it gives up

# Run with the address as argv[1]; prints {"cpus": [one per live node], "marked": [its harness_node resource]}, or
# {"none": reason} when "auto" finds no cluster.
_PROBE = """
import json, logging, sys
import ray
try:
    ray.init(address=sys.argv[1], logging_level=logging.ERROR, log_to_driver=False)
except ConnectionError as exc:
    print(json.dumps({"none": str(exc).splitlines()[0]})); sys.exit(0)
live = [n["Resources"] for n in ray.nodes() if n["Alive"]]
print(json.dumps({"cpus": [r.get("CPU", 0) for r in live], "marked": [r.get("harness_node", 0) for r in live]}))
ray.shutdown()
"""


def override_value(overrides: Sequence[str], key: str, default: str | None = None) -> str | None:
    """The value the command line gives ``key`` (``+key=`` and ``++key=`` too), or ``default``."""
    return next((o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith(key + "=")), default)


def exclusive_nodes(overrides: list[str]) -> list[str]:
    """``overrides`` with what keeps one trial per node under the launcher they name (see the module's text)."""
    if "hydra/launcher=submitit_slurm" in overrides:
        overrides = [*overrides, *_rank_tasks(overrides)]
    if "hydra/launcher=submitit_slurm" in overrides and not any("hydra.launcher.additional_parameters" in o for o in overrides):
        say(
            "SLURM jobs ask for whole nodes (sbatch --exclusive): one trial per node; "
            "hydra.launcher.additional_parameters={} lets them share"
        )
        return [*overrides, EXCLUSIVE]
    if "hydra/launcher=ray" in overrides and importlib.util.find_spec("ray") is not None:  # without it, Hydra says what is missing
        return [*overrides, *_ray(overrides)]
    return overrides


def _rank_tasks(overrides: Sequence[str]) -> list[str]:
    """``consumer.rank_placement=nodes`` under SLURM: each job as one task per node, one per rank (the job's first task
    runs the trial as rank 0, the others join it), unless the command line says how many nodes."""
    ranks = _ranks_on_nodes(overrides)
    if ranks < 2 or override_value(overrides, "hydra.launcher.nodes"):
        return []  # one rank, or a sweep over consumer.ranks (the trial says what is wrong), or the user's own count
    say(f"each SLURM job runs on {ranks} nodes, one task each: rank 0 runs the trial, the others join it over TCP")
    return [f"hydra.launcher.nodes={ranks}", "hydra.launcher.tasks_per_node=1"]


def _ray(overrides: Sequence[str]) -> list[str]:
    """What a Ray sweep adds: each job's CPUs (a node's), and what lets the launcher join a running cluster."""
    address = override_value(overrides, "hydra.launcher.ray.init.address") or "null"
    unset = address in ("null", "None", "")  # Ray joins a running cluster where it finds one, else starts one
    chosen = any("ray.remote.num_cpus" in o for o in overrides)
    # ray.init refuses num_cpus for a cluster it joins: with it, the sweep means a cluster of its own
    own = address == "local" or (unset and override_value(overrides, "hydra.launcher.ray.init.num_cpus") is not None)
    answer = {} if own else probe("auto" if unset else address)
    if own or (unset and "none" in answer):  # no cluster running: Ray starts one here
        return [] if chosen else [_local_node(overrides)]
    # hydra-ray-launcher 1.2.2 always passes ray.init an object_store_memory, which Ray refuses when it joins a cluster
    added = [] if any("ray.init.object_store_memory" in o for o in overrides) else [JOIN]
    if chosen:
        return added
    where = "a running Ray cluster" if unset else f"the Ray cluster at {address}"
    if answer.get("cpus") and all(m == 1 for m in answer.get("marked") or [0]):
        return [*added, *_marked_nodes(answer, where, _ranks_on_nodes(overrides))]
    cpus = _cluster_node(answer, where)
    return [*added, *([f"++hydra.launcher.ray.remote.num_cpus={cpus}"] if cpus is not None else [])]


def _marked_nodes(answer: dict, where: str, ranks: int = 1) -> list[str]:
    """Every node has one unit of the custom resource ``harness_node``: each job asks for one, so one job runs per node
    whatever the nodes' sizes (by CPUs alone a node twice the smallest runs two), with the smallest node's CPUs.

    A job of ``ranks`` ranks on nodes asks for the CPUs only: its trial reserves its own node and ``ranks - 1`` others
    at once (harness.trial.peer). A job that held its node while it waited for others would wait for ever on a job
    that held the other node and waited for its.
    """
    smallest = int(min(answer["cpus"]))
    nodes = f"each of the {len(answer['cpus'])} node(s) of {where} has one"
    if ranks > 1:
        say(
            f"each Ray job asks for {smallest} CPUs, and its trial for {ranks} {NODE_RESOURCE}s on as many nodes at once, "
            f"its own among them ({nodes}): one trial per node"
        )
        return [f"++hydra.launcher.ray.remote.num_cpus={smallest}"]
    say(
        f"each Ray job asks for one {NODE_RESOURCE} ({nodes}) and "
        f"{smallest} CPUs: one trial per node; +hydra.launcher.ray.remote.num_cpus=1 lets them share"
    )
    return [f"++hydra.launcher.ray.remote.num_cpus={smallest}", f"++hydra.launcher.ray.remote.resources={{{NODE_RESOURCE}:1}}"]


def _ranks_on_nodes(overrides: Sequence[str]) -> int:
    """The ranks of each job where the command line places one per node (``consumer.rank_placement=nodes``), else 1."""
    ranks = override_value(overrides, "consumer.ranks", "1") or "1"
    if override_value(overrides, "consumer.rank_placement") != "nodes" or not ranks.isdigit():
        return 1  # a sweep over consumer.ranks: its jobs hold their nodes, and their trials reserve the others
    return int(ranks)


def _local_node(overrides: Sequence[str]) -> str:
    """A cluster the launcher starts here: each job asks for every CPU of this machine's node."""
    from harness.trial.cores import usable

    cpus = int(override_value(overrides, "hydra.launcher.ray.init.num_cpus") or usable())
    say(
        f"each Ray job asks for all {cpus} CPUs of this machine's Ray node: one trial at a time; "
        "+hydra.launcher.ray.remote.num_cpus=1 lets them share"
    )
    return f"++hydra.launcher.ray.remote.num_cpus={cpus}"


def _cluster_node(answer: dict, where: str) -> int | None:
    """The CPUs of the running cluster's smallest node, from the probe's ``answer``; ``None``, said why, when unknown."""
    if not answer.get("cpus"):
        say(
            f"could not ask {where} for its nodes ({answer.get('error') or answer.get('none') or 'no live node'}): each job asks "
            "Ray for 1 CPU, so several may share a node; +hydra.launcher.ray.remote.num_cpus=<cores per node> gives each its own"
        )
        return None
    sizes = sorted(int(c) for c in answer["cpus"])
    smallest, largest = sizes[0], sizes[-1]
    line = f"each Ray job asks for {smallest} CPUs, all of the smallest of the {len(sizes)} node(s) of {where}: one trial per node"
    if largest >= 2 * smallest:
        line += f"; a node of {largest} CPUs can run {largest // smallest} at once (the report names trials that overlapped)"
    say(f"{line}; +hydra.launcher.ray.remote.num_cpus=1 lets them share")
    return smallest


def probe(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> dict:
    """Ask the Ray cluster at ``address`` (or ``auto``) for its live nodes' CPUs.

    Returns:
        ``{"cpus": [...]}``, ``{"none": why}`` (``auto`` found no cluster) or ``{"error": why}``.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, address], capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {timeout_s:g} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        errors = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return {"error": errors[-1] if errors else f"exit status {done.returncode}"}
    return json.loads(lines[-1])


def say(line: str) -> None:
    """A line of harness's own on stderr, beside Hydra's and the launcher's."""
    print(f"harness: {line}", file=sys.stderr, flush=True)
