"""Pre-flight warnings: jobs that this machine's resources will distort or break.

Not errors (the sweep may be meant to show exactly that), so each is said once before the
first trial (:func:`tell`, from the engine's check phase) and kept in each trial's
``result.json`` (``environment.preflight``, from the trial's own process, which sees the
cores ``trial.cpus`` left it), from where the report shows it among its notes:

- DataLoader workers hand batches over in shared memory: ``/dev/shm`` too small for them
  makes the workers die with a bus error (Docker's default is 64 MiB).
- More workers (``num_workers``, ``workers``, ``num_parallel_calls``) than usable cores take
  turns on the cores: the sweep measures the scheduler, not the pipeline.
- An in-memory cache (``loader.cache=memory``) larger than the RAM available swaps or is killed.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable

from harness.config.schema import choice
from harness.trial import cores

SHM = "/dev/shm"
WORKER_KNOBS = ("num_workers", "workers", "num_parallel_calls")  # loader fields that start that many workers or threads
TORCH_PREFETCH_FACTOR = 2  # DataLoader's default batches in flight per worker


def warnings(cfg, manifest=None) -> list[str]:
    """The warnings for one typed job config, one line each; [] when it fits the machine.

    Args:
        cfg: a typed :class:`~harness.config.schema.Config`.
        manifest: the built dataset, where there is one (its real size); else sizes come from the config.
    """
    usable, asked = cores.usable(), cfg.trial.cpus
    limit = min(usable, asked or usable)
    ranks = cfg.consumer.ranks
    if ranks > 1:  # every rank starts its own workers: each has its share of the cores
        limit = cfg.trial.cpus_per_rank or max(usable // ranks, 1)
    found = [_ranks(ranks, usable, cfg.trial.cpus_per_rank), _workers(cfg.loader, limit, asked, ranks), _shared_memory(cfg)]
    return [line for line in found + [_memory_cache(cfg, manifest)] if line]


def _ranks(ranks: int, usable: int, per_rank: int | None) -> str | None:
    if ranks <= usable or per_rank is not None:  # a core budget per rank was checked against the cores already
        return None
    return (
        f"consumer.ranks={ranks} but only {usable} cores usable here ({cores.describe_available()}): the ranks' own "
        f"processes take turns on the cores, and every step waits for the last; keep consumer.ranks <= {usable}"
    )


def tell(configs: Iterable) -> list[str]:
    """Print each distinct warning of a sweep's jobs once, on stderr; return them.

    Args:
        configs: the jobs' composed configs (``DictConfig``) or typed ones.
    """
    from omegaconf import DictConfig

    from harness.config.compose import to_typed

    lines: list[str] = []
    for cfg in configs:
        typed = to_typed(cfg) if isinstance(cfg, DictConfig) else cfg
        if choice(typed.trial.kind) == "trial":
            lines += [line for line in warnings(typed) if line not in lines]
    for line in lines:
        print(f"harness: WARNING: {line}", file=sys.stderr, flush=True)
    return lines


def _workers(loader, limit: int, asked: int | None, ranks: int = 1) -> str | None:
    if getattr(loader, "busy", True) is False:  # loader=synthetic's producers sleep: they need no core
        return None
    for knob in WORKER_KNOBS:
        value = getattr(loader, knob, None)
        count = int(str(value)) if not isinstance(value, bool) and str(value).isdigit() else 0  # none, autotune: not a count
        if count > limit:
            s = "" if limit == 1 else "s"
            if ranks > 1:
                where = f"each of the consumer.ranks={ranks} ranks has {limit} core{s} (trial.cpus_per_rank, or the cores shared)"
            elif asked:
                where = f"trial.cpus={asked} gives the trial {limit} core{s}"
            else:
                where = f"only {limit} core{s} usable here ({cores.describe_available()})"
            return (
                f"loader.{knob}={count} but {where}: the extra workers only take turns on the cores, "
                f"so the trial measures the scheduler, not the pipeline; keep loader.{knob} <= {limit}"
            )
    return None


def batch_bytes(batch) -> int:
    """Bytes of one batch as ``batch.*`` fixes it."""
    itemsize = 4 if choice(batch.dtype) == "float32" else 1
    return batch.size * batch.height * batch.width * batch.channels * itemsize


def _shared_memory(cfg) -> str | None:
    workers = getattr(cfg.loader, "num_workers", 0)
    if not isinstance(workers, int) or workers <= 0:
        return None
    try:
        free = shutil.disk_usage(SHM).free
    except OSError:
        return None  # no /dev/shm (not Linux): torch uses its own shared-memory files
    prefetch = getattr(cfg.loader, "prefetch_factor", None) or TORCH_PREFETCH_FACTOR
    # each worker's batches in flight, twice: the worker's copy and the one being handed over
    need = batch_bytes(cfg.batch) * prefetch * workers * 2 * cfg.consumer.ranks  # every rank's workers
    if need <= free:
        return None
    return (
        f"{SHM} has {_mib(free)} free, but loader.num_workers={workers} with prefetch_factor {prefetch} may keep about "
        f"{_mib(need)} of batches there (DataLoader workers hand batches over in shared memory): workers may die with "
        f"a bus error; enlarge it (docker run --shm-size=1g) or lower loader.num_workers or loader.prefetch_factor"
    )


def _memory_cache(cfg, manifest) -> str | None:
    loader = cfg.loader
    if choice(getattr(loader, "cache", "none")) != "memory":
        return None
    need = _cache_bytes(cfg, manifest)
    if need is None:
        return None
    import psutil

    available = psutil.virtual_memory().available
    if need <= available:
        return None
    return (
        f"loader.cache=memory would hold about {_mib(need)} ({choice(getattr(loader, 'cache_place', 'after_resize'))}), "
        f"more than the {_mib(available)} of RAM available: the trial will swap or be killed; use loader.cache=file, "
        f"a cache after resize, or a smaller dataset"
    )


def _cache_bytes(cfg, manifest) -> int | None:
    """What an in-memory cache of the whole dataset holds; ``None`` where the size is not known yet (a folder not indexed)."""
    ds, batch, loader = cfg.dataset, cfg.batch, cfg.loader
    count = len(manifest.unsharded) if manifest is not None else getattr(ds, "count", None)  # all ranks' shares
    if not count:
        return None
    if choice(getattr(loader, "cache_place", "after_resize")) == "after_decode":
        width, height = getattr(ds, "width", None), getattr(ds, "height", None)
        if width is None or height is None:  # a user's folder: its encoded size is the least the decoded images take
            return manifest.total_bytes if manifest is not None else None
        return count * width * height * batch.channels * (4 if getattr(loader, "cast_float", False) else 1)
    rescaled = getattr(loader, "rescale", False) or getattr(loader, "cast_float", False)
    return count * batch_bytes(batch) // batch.size * (4 if rescaled and choice(batch.dtype) != "float32" else 1)


def _mib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
