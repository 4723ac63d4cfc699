"""Summary metrics from a trial's sampled series, over its measured phase.

Every figure is ``None`` when its source was absent (no GPU, no NVML, a counter the
platform lacks), never 0: a missing GPU is not an idle one.
"""

from __future__ import annotations

import statistics


def _window(t: list[float], start: float | None, end: float | None) -> list[int]:
    """Indices of ticks inside [start, end]; all ticks when the window is unknown or holds none."""
    if start is None or end is None:
        return list(range(len(t)))
    inside = [i for i, x in enumerate(t) if start <= x <= end]
    return inside or list(range(len(t)))


def _values(series: list, idx: list[int]) -> list[float]:
    return [series[i] for i in idx if i < len(series) and series[i] is not None]


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 2) if values else None


def _at(t: list[float], series: list, when: float) -> float | None:
    """The cumulative series at time ``when``, linearly interpolated between ticks."""
    points = [(x, y) for x, y in zip(t, series) if y is not None]
    if not points:
        return None
    if when <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= when <= x1:
            return y0 + (y1 - y0) * ((when - x0) / (x1 - x0) if x1 > x0 else 0.0)
    return points[-1][1]


def summarize(record: dict, start: float | None, end: float | None, samples: int | None) -> dict:
    """Headline utilization figures for results.csv; ``start``/``end`` on the sampler's clock."""
    t, s = record["t"], record["series"]
    idx = _window(t, start, end)
    out: dict = {
        "cpu_tree_mean_pct": _mean(_values(s["tree_cpu_pct"], idx)),
        "cpu_tree_max_pct": max(_values(s["tree_cpu_pct"], idx), default=None),
        "cpu_machine_mean_pct": _mean(_values(s["machine_cpu_pct"], idx)),
        "peak_rss_mb": max(_values(s["tree_rss_mb"], list(range(len(t)))), default=None),
        "peak_uss_mb": max(_values(s["tree_uss_mb"], list(range(len(t)))), default=None),
        "pss_mb": max(_values(s.get("tree_pss_mb", []), list(range(len(t)))), default=None),
        "disk_read_mb_s": _mean(_values(s["disk_read_mb_s"], idx)),
        "tree_read_mb_s": _mean(_values(s.get("tree_read_mb_s", []), idx)),
        "ctx_switches_per_s": _mean(_values(s["tree_ctx_switches_per_s"], idx)),
        "processes": len(record["processes"]),
    }
    rss = _values(s["tree_rss_mb"], idx)
    out["rss_growth_mb"] = round(rss[-1] - rss[0], 2) if len(rss) > 1 else None
    cpu_seconds = None
    if start is not None and end is not None and len(t) > 1:
        a, b = _at(t, s["tree_cpu_s"], start), _at(t, s["tree_cpu_s"], end)
        cpu_seconds = None if a is None or b is None else b - a
    out["cpu_s"] = round(cpu_seconds, 3) if cpu_seconds is not None else None
    out["cpu_s_per_1000_samples"] = round(cpu_seconds / samples * 1000, 3) if cpu_seconds is not None and samples else None
    out["cpu_by_process"] = {label: _mean(_values(p["cpu_pct"], idx)) for label, p in record["processes"].items()}
    gpu = record["gpu"]["series"]
    util = _values(gpu.get("gpu_util_pct", []), idx)
    out["gpu_util_mean_pct"] = _mean(util)
    # NVML's utilization is itself the share of the last period a kernel ran, so idle is its complement
    out["gpu_idle_pct"] = round(100 - statistics.fmean(util), 2) if util else None
    out["gpu_power_mean_w"] = _mean(_values(gpu.get("gpu_power_w", []), idx))
    out["gpu_mem_used_max_mb"] = max(_values(gpu.get("gpu_mem_used_mb", []), idx), default=None)
    return out


LISTED = 6  # processes named one by one in the table; more (workers restarted every epoch) are summarized


def process_text(cpu_by_process: dict[str, float | None]) -> str:
    """'main 45%, worker-1 98%, worker-2 97%' for the table: mean CPU of each process while it lived.

    With more than ``LISTED`` processes (DataLoader workers started anew every epoch),
    the workers are summarized: how many were seen and their mean while alive.
    """
    known = {k: v for k, v in cpu_by_process.items() if v is not None}
    if len(known) <= LISTED:
        return ", ".join(f"{k} {v:.0f}%" for k, v in known.items())
    workers = [v for k, v in known.items() if k != "main"]
    head = f"main {known['main']:.0f}%, " if "main" in known else ""
    return head + f"{len(cpu_by_process) - ('main' in cpu_by_process)} workers seen, {statistics.fmean(workers):.0f}% each while alive"
