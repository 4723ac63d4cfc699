"""The cores a trial may use, and ``trial.cpus``: confining the trial to fewer.

``os.cpu_count()`` counts the machine's cores, not the ones this process may run on: a
CPU affinity mask (``taskset``, a SLURM allocation) or a cgroup CPU quota (a container's
``--cpus``) leaves fewer. A thread pool sized to the machine then oversubscribes them, and
a result that says "16 cores" ran on 2. :func:`usable` counts what the process really has.

:func:`confine` pins the calling process to the first N of its allowed cores. The trial's
own process calls it first thing, before any framework is imported, so TensorFlow's and
OpenMP's pools size themselves to the N cores, and every worker it starts (DataLoader
processes, tf.data threads) inherits the mask.

It imports nothing of harness but its errors, so the config checks can count cores too.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from harness.errors import ConfigError

CGROUP_ROOT = Path("/sys/fs/cgroup")


def allowed() -> list[int]:
    """The cores this process may run on (its affinity mask); every core where there is no mask."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def quota(root: Path = CGROUP_ROOT, self_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The cgroup CPU quota in cores (``1.5``: 150 ms of CPU per 100 ms), or ``None`` where there is none.

    cgroup v2 states it in ``cpu.max`` (``max 100000``: none; ``150000 100000``: 1.5 cores),
    v1 in ``cpu.cfs_quota_us`` (-1: none) over ``cpu.cfs_period_us``. The tightest quota of
    the process's own cgroup and its ancestors applies.
    """
    limits = [q for folder in _cgroup_folders(root, self_cgroup) if (q := _read_quota(folder)) is not None]
    return min(limits) if limits else None


def usable(root: Path = CGROUP_ROOT, self_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """Cores this process can keep busy at once: its affinity mask, capped by the cgroup quota (rounded up)."""
    count = len(allowed())
    limit = quota(root, self_cgroup)
    return count if limit is None else max(1, min(count, math.ceil(limit)))


def confine(cpus: int | None) -> dict:
    """Pin this process (and so every process and thread it starts later) to the first ``cpus`` allowed cores.

    Args:
        cpus: how many cores; ``None`` leaves the mask as it is.

    Returns:
        ``{"asked", "allowed", "used", "quota"}``: the cores before and after, for result.json.

    Raises:
        ConfigError: ``cpus`` is more than the cores available, naming both.
    """
    before = allowed()
    record = {"asked": cpus, "allowed": before, "used": before, "quota": quota()}
    if cpus is None:
        return record
    check(cpus)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, before[:cpus])
        record["used"] = allowed()
    return record


def check(cpus: int | None) -> None:
    """Refuse ``trial.cpus`` below 1 or above the cores this process may use, in one line naming both."""
    if cpus is None:
        return
    if cpus < 1:
        raise ConfigError(f"trial.cpus={cpus}: must be a positive number of cores (or null: all {usable()} available)")
    available = usable()
    if cpus > available:
        raise ConfigError(
            f"trial.cpus={cpus}: only {available} cores are available to this process ({describe_available()}); "
            f"use trial.cpus=1..{available} or null"
        )


def rank_cores(per_rank: int, rank: int) -> list[int]:
    """Rank ``rank``'s cores: the ``per_rank`` allowed cores after those of ranks 0..rank-1 (disjoint sets)."""
    return allowed()[rank * per_rank : (rank + 1) * per_rank]


_rank_confined = False  # this process is a rank already pinned to its share: the budget was checked before


def confine_rank(per_rank: int | None, rank: int) -> dict:
    """Pin this rank's process (and its workers) to its own cores, as :func:`confine` does for a whole trial."""
    global _rank_confined
    _rank_confined = True
    before = allowed()
    record = {"asked": per_rank, "allowed": before, "used": before, "quota": quota(), "rank": rank}
    if per_rank is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, rank_cores(per_rank, rank))
        record["used"] = allowed()
    return record


def check_per_rank(per_rank: int | None, ranks: int) -> None:
    """Refuse ``trial.cpus_per_rank`` x ``consumer.ranks`` above the cores available, in one line naming both."""
    if per_rank is None or _rank_confined:
        return
    available = len(allowed())
    if per_rank * ranks > available:
        raise ConfigError(
            f"trial.cpus_per_rank={per_rank} x consumer.ranks={ranks} needs {per_rank * ranks} cores, but this process may use "
            f"{available} ({describe_available()}); use trial.cpus_per_rank={max(available // ranks, 1)} or fewer ranks"
            if available >= ranks
            else f"consumer.ranks={ranks} with trial.cpus_per_rank: only {available} cores ({describe_available()}) for {ranks} ranks; "
            "use fewer ranks or trial.cpus_per_rank=null (ranks share the cores)"
        )


def describe_available() -> str:
    """``affinity 0-1 (2 cores), cgroup quota 1.5 cores``: what limits the cores, for messages."""
    cores = allowed()
    text = f"affinity {_ranges(cores)} ({len(cores)} cores)"
    limit = quota()
    return text if limit is None else f"{text}, cgroup quota {limit:g} cores"


def _ranges(cores: list[int]) -> str:
    """``0-3,6``: a core list as taskset writes it."""
    runs: list[list[int]] = []
    for core in cores:
        if runs and core == runs[-1][-1] + 1:
            runs[-1].append(core)
        else:
            runs.append([core])
    return ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def _cgroup_folders(root: Path, self_cgroup: Path) -> list[Path]:
    """The folders that may hold this process's CPU quota: its cgroup (v2 and v1 ``cpu``) and their ancestors."""
    try:
        lines = self_cgroup.read_text().splitlines()
    except OSError:
        return []
    folders: list[Path] = []
    for line in lines:
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hierarchy == "0" and not controllers:  # v2: mounted at the root, or under unified/ beside v1
            bases = [root, root / "unified"]
        elif "cpu" in controllers.split(","):
            bases = [root / controllers, root / "cpu"]
        else:
            continue
        for base in bases:
            # Inside a container the path is the host's while the mount shows only the container's
            # own subtree; the walk up to the mount point then still reaches the container's quota.
            own = base / path.lstrip("/")
            folders += [f for f in (own, *own.parents) if f.is_relative_to(base) and f not in folders]
    return folders


def _read_quota(folder: Path) -> float | None:
    try:
        if (folder / "cpu.max").exists():
            limit, _, period = (folder / "cpu.max").read_text().strip().partition(" ")
            return None if limit == "max" else int(limit) / int(period or 100000)
        if (folder / "cpu.cfs_quota_us").exists():
            limit_us = int((folder / "cpu.cfs_quota_us").read_text())
            period_us = int((folder / "cpu.cfs_period_us").read_text())
            return None if limit_us <= 0 else limit_us / period_us
    except (OSError, ValueError):
        return None
    return None
