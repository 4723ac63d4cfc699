"""The machine's side of the ceilings: usable cores and a dataset's read bandwidth.

Cores: the CPU affinity mask, lowered by a cgroup CPU quota where one is set, as a
container's limit lowers it (:mod:`harness.trial.cores` reads both).

Bandwidth: a sample of the dataset's files, spread over the whole manifest, read whole by
:data:`READ_THREADS` threads (a loader reads with several workers, and one reader would
understate what the device can give). Where :mod:`harness.data.pagecache` exists, the
sample's pages are evicted first, so the reads come from the disk ("evicted"); without
it they may come from the page cache, and the figure says the cache state is unknown.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from harness.results.ceilings import Disk

READ_THREADS = 4  # concurrent readers: a loader's workers read in parallel
READ_CHUNK = 1 << 20  # bytes per read() call
SAMPLE_BYTES = 64 << 20  # read at most this much of a dataset
SAMPLE_FILES = 2048  # and at most this many files


def usable_cores() -> tuple[float, str]:
    """(CPUs this process may use, where the number comes from): the affinity mask, lowered by a cgroup quota."""
    try:
        cores = importlib.import_module("harness.trial.cores")
    except ImportError:  # a harness without the cgroup reader: the mask alone
        count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return float(count), f"CPU affinity {count} (cgroup quota not read)"
    count, limit = len(cores.allowed()), cores.quota()
    if limit is not None and limit < count:
        return float(limit), f"cgroup CPU quota {limit:g} CPUs (affinity {count})"
    return float(count), f"CPU affinity {count}" + (", no cgroup quota" if limit is None else f" (cgroup quota {limit:g} CPUs)")


def pagecache():
    """:mod:`harness.data.pagecache` (``evict``, ``residency``), or None where this harness has none."""
    try:
        return importlib.import_module("harness.data.pagecache")
    except ImportError:
        return None


def spread(paths: Sequence[str], sizes: Sequence[int], max_bytes: int = SAMPLE_BYTES, max_files: int = SAMPLE_FILES) -> list[str]:
    """Files evenly spaced over the manifest, up to ``max_bytes`` and ``max_files`` (the whole dataset when it is small)."""
    mean = max(sum(sizes) / max(len(sizes), 1), 1)
    want = min(len(paths), max_files, max(1, int(max_bytes / mean)))
    step = len(paths) / want
    return [paths[int(i * step)] for i in range(want)]


def bandwidth(dataset: str, paths: Sequence[str], mean_bytes: float, budget_s: float) -> Disk:
    """Read ``paths`` (cold where the page cache can be emptied) for at most ``budget_s``; the dataset's :class:`Disk`."""
    cache = pagecache()
    resident = cache.residency(list(paths)) if cache is not None else None
    if cache is not None:
        cache.evict(list(paths))
    deadline = time.perf_counter() + budget_s
    started = time.perf_counter()
    with ThreadPoolExecutor(READ_THREADS) as pool:
        sizes = [n for n in pool.map(lambda p: _read(p, deadline), paths) if n is not None]
    seconds = max(time.perf_counter() - started, 1e-6)
    total = sum(sizes)
    mb_per_s = total / seconds / 1e6
    state = "evicted" if cache is not None else "unknown"
    how = f"{len(sizes)} of the dataset's files ({total / 1e6:.1f} MB, spread over it) read whole by {READ_THREADS} threads, " + (
        "after evicting them from the page cache (cold)" if cache is not None else "page cache state unknown (no harness.data.pagecache)"
    )
    io = mb_per_s * 1e6 / mean_bytes if mean_bytes else 0.0
    return Disk(dataset, mean_bytes, len(sizes), total, round(seconds, 4), round(mb_per_s, 2), round(io, 1), state, resident, how)


def _read(path: str, deadline: float) -> int | None:
    """The bytes of ``path`` read whole, or None when the time is up before it starts."""
    if time.perf_counter() > deadline:
        return None
    total = 0
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(READ_CHUNK):
            total += len(chunk)
    return total
