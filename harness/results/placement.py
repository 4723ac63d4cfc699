"""Where each trial ran, and which trials shared a machine at the same time.

A launcher other than the harness's own (SLURM, Ray, submitit_local) decides where and when
each job runs. Rows from different machines must not be compared as if from one, and two
trials that ran at the same time on one machine took cores, memory bandwidth and disk from
each other: both facts are read back from the results themselves (host, CPU, cores,
accelerator; each trial's start and end), whatever launcher ran them.
"""

from __future__ import annotations

from dataclasses import dataclass


def where(result) -> dict[str, str]:
    """The row's machine: host, CPU model, usable cores, accelerator and ``CUDA_VISIBLE_DEVICES``."""
    env = result.environment or {}
    consumer = result.consumer or {}
    accelerator = consumer.get("gpu") or consumer.get("device") or ""
    return {
        "host": str(env.get("hostname") or ""),
        "cpu_model": str(env.get("cpu_model") or ""),
        "cores": "" if env.get("cpu_usable") is None else str(env.get("cpu_usable")),
        "accelerator": str(accelerator),
        "cuda_visible_devices": str(env.get("cuda_visible_devices") or ""),
    }


def machines(results) -> dict[str, str]:
    """Host -> CPU model of every trial that recorded its machine, in the order first seen."""
    out: dict[str, str] = {}
    for result in results:
        w = where(result)
        if w["host"]:
            out.setdefault(w["host"], w["cpu_model"])
    return out


@dataclass(frozen=True)
class Overlap:
    host: str
    first: tuple[int, int]  # (job, repeat)
    second: tuple[int, int]
    seconds: float  # how long both ran at once


def overlaps(results) -> list[Overlap]:
    """Pairs of trials that ran on the same host at the same time (their start-to-end spans intersect)."""
    spans = []
    for r in results:
        start, end, host = r.timing.get("started_at"), r.timing.get("finished_at"), where(r)["host"]
        if isinstance(start, (int, float)) and isinstance(end, (int, float)) and host and r.kind == "trial":
            spans.append((start, end, host, (r.job, r.repeat)))
    spans.sort()
    found = []
    for i, (_start, end, host, key) in enumerate(spans):
        for other_start, other_end, other_host, other in spans[i + 1 :]:
            if other_start >= end:
                break
            if other_host == host:
                found.append(Overlap(host, key, other, round(min(end, other_end) - other_start, 3)))
    return found


def concurrency_warning(results) -> str | None:
    """The one loud line for trials that shared a machine at the same time, or ``None``."""
    found = overlaps(results)
    if not found:
        return None
    involved = sorted({k for o in found for k in (o.first, o.second)})
    hosts = sorted({o.host for o in found})
    pairs = ", ".join(f"job {a[0]} repeat {a[1]} with job {b[0]} repeat {b[1]}" for a, b in ((o.first, o.second) for o in found[:3]))
    more = f" and {len(found) - 3} more pairs" if len(found) > 3 else ""
    return (
        f"{len(involved)} trials ran at the same time as another on the same machine ({', '.join(hosts)}: {pairs}{more}); "
        "they took cores, memory bandwidth and disk from each other, so their numbers are not each variant's own. "
        "Run one trial per machine: hydra/launcher=harness, submitit_slurm on whole nodes (harness asks for them unless "
        "hydra.launcher.additional_parameters says otherwise), or Ray with +hydra.launcher.ray.remote.num_cpus=<cores per node>"
    )


def machines_warning(results) -> str | None:
    """The line for a sweep whose trials ran on more than one machine, or ``None``."""
    seen = machines(results)
    if len(seen) < 2:
        return None
    listed = ", ".join(f"{host} ({cpu})" for host, cpu in list(seen.items())[:4]) + (" ..." if len(seen) > 4 else "")
    return (
        f"Trials ran on {len(seen)} machines: {listed}. Absolute throughput is a machine's as much as a variant's; "
        "compare variants within one host (the results table's host column), or pin every job to one node"
    )
