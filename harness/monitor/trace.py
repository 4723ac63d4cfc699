"""Chrome / Perfetto traces (``trace.json``): step spans and sampled counters on one timeline.

Open a file at https://ui.perfetto.dev (or chrome://tracing). Per trial: a track
"consumer steps" with each measured step split into wait, h2d and compute spans, and
counter tracks for CPU (tree, machine, each process), memory, I/O and GPU. Time 0 is
the start of the measured phase; warm-up samples have negative times and are left out.
A sweep's ``trace.json`` merges its trials, one process row each, so they line up from 0.
"""

from __future__ import annotations

import json
from pathlib import Path

TRACE_FILE = "trace.json"
COUNTERS = {  # track name -> (series keys shown on it)
    "CPU % (trial's processes)": ("tree_cpu_pct",),
    "CPU % (machine)": ("machine_cpu_pct",),
    "memory MB": ("tree_rss_mb", "tree_uss_mb", "tree_pss_mb"),
    "read MB/s": ("tree_read_mb_s", "disk_read_mb_s"),
}
GPU_COUNTERS = {
    "GPU %": ("gpu_util_pct", "gpu_mem_util_pct"),
    "GPU memory MB": ("gpu_mem_used_mb",),
    "GPU power W": ("gpu_power_w",),
    "PCIe MB/s": ("pcie_rx_mb_s", "pcie_tx_mb_s"),
}


def trial_events(result, pid: int, name: str) -> list[dict]:
    """Trace events of one trial (a :class:`~harness.results.model.TrialResult`)."""
    events: list[dict] = [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}},
        {"ph": "M", "name": "thread_name", "pid": pid, "tid": 1, "args": {"name": "consumer steps"}},
    ]
    steps = result.steps or {}
    for i, start in enumerate(steps.get("t_ms", [])):
        at = start * 1e3  # µs
        for part, color in (("wait", "terrible"), ("h2d", "yellow"), ("compute", "good")):
            dur = steps[f"{part}_ms"][i] * 1e3
            if dur > 0:
                events.append(
                    {
                        "ph": "X",
                        "name": part,
                        "cat": "step",
                        "pid": pid,
                        "tid": 1,
                        "ts": round(at, 1),
                        "dur": round(dur, 1),
                        "cname": color,
                        "args": {"step": i, "epoch": steps["epoch"][i]},
                    }
                )
            at += dur
    monitor = result.monitor or {}
    start = result.timing.get("measure_start_clock")
    if not monitor.get("t") or start is None:
        return events
    t = [(x - start) * 1e6 for x in monitor["t"]]
    tracks = [(track, monitor["series"], keys) for track, keys in COUNTERS.items()]
    tracks += [(track, monitor["gpu"]["series"], keys) for track, keys in GPU_COUNTERS.items()]
    for track, series, keys in tracks:
        present = [k for k in keys if k in series]
        if present:
            events += _counter(pid, track, t, {k: series[k] for k in present})
    for label, proc in monitor.get("processes", {}).items():
        events += _counter(pid, f"CPU % {label}", t, {"cpu_pct": proc["cpu_pct"]})
    return events


def _counter(pid: int, track: str, t: list[float], series: dict[str, list]) -> list[dict]:
    events = []
    for i, ts in enumerate(t):
        if ts < 0:
            continue
        args = {k: v[i] for k, v in series.items() if i < len(v) and v[i] is not None}
        if args:
            events.append({"ph": "C", "name": track, "pid": pid, "ts": round(ts, 1), "args": args})
    return events


def _write(path: Path, events: list[dict]) -> Path:
    from harness.data.manifest import write_text_atomic

    return write_text_atomic(path, json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}))


def label(result) -> str:
    keys = [o.lstrip("+") for o in result.overrides if not o.startswith("hydra.")]
    return f"job {result.job} repeat {result.repeat}: " + (" ".join(keys) or "defaults")


def write_trial_trace(result, folder: Path) -> Path:
    return _write(Path(folder) / TRACE_FILE, trial_events(result, 1, label(result)))


def write_sweep_trace(root: Path) -> Path:
    """Merge every trial of a sweep into ``root/trace.json``, one process row per trial."""
    from harness.results.model import read_result
    from harness.results.table import find_results

    events: list[dict] = []
    for n, path in enumerate(find_results(root), start=1):
        result = read_result(path)
        if result.kind == "trial" and result.steps:
            events += trial_events(result, n, label(result))
    return _write(Path(root) / TRACE_FILE, events)
