"""``results.csv``: one row per trial of a sweep, rebuilt from the trials' result files.

The table is rewritten after every trial, so an interrupted sweep still has a table of
what it finished. Columns: job, repeat, status, one column per override key, the
summary metrics, the error text and the result file's path.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Dict, List

from harness.errors import HarnessError
from harness.results.model import RESULT_FILE, read_result

TABLE_FILE = "results.csv"
METRICS = (
    "samples_per_s", "steady_samples_per_s", "batches_per_s", "stall_pct", "au_pct", "h2d_pct", "ttfb_s",
    "step_ms_p50", "step_ms_p95", "wait_ms_p50", "wait_ms_p95", "steps", "wall_s", "bookkeeping_pct",
    "epoch_restarts", "epoch_restart_ms_p50", "restart_pct",
    "cpu_tree_mean_pct", "cpu_tree_max_pct", "cpu_s_per_1000_samples", "peak_rss_mb", "pss_mb", "disk_read_mb_s",
    "gpu_util_mean_pct", "gpu_idle_pct", "gpu_power_mean_w",
)


def find_results(root: Path) -> List[Path]:
    """Every result file under ``root``: job folders in numeric order, then the rest (augbench/)."""
    def key(path: Path):
        return [(0, int(x), "") if x.isdigit() else (1, 0, x) for x in path.relative_to(root).parts]

    return sorted(Path(root).rglob(RESULT_FILE), key=key)


def override_columns(overrides: List[str]) -> Dict[str, str]:
    """``["loader.workers=2", "hydra.x=1"]`` -> ``{"loader.workers": "2"}`` (hydra.* left out)."""
    columns = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.lstrip("+~")
        if sep and not key.startswith("hydra."):
            columns[key] = value
    return columns


def rows(root: Path) -> List[Dict]:
    results = [(path, read_result(path)) for path in find_results(root)]
    bench = {(r.augment.get("library"), r.augment.get("signature")): r.summary.get("samples_per_s")
             for _, r in results if r.kind == "augbench" and r.status == "ok" and r.augment}
    signatures = {r.augment.get("signature", "none") if r.augment else "none" for _, r in results if r.kind == "trial" and r.status == "ok"}
    table = []
    for path, result in results:
        row = {"job": result.job, "repeat": result.repeat, "round": result.timing.get("round", ""),
               "position": result.timing.get("position", ""), "status": result.status, "kind": result.kind}
        row.update(override_columns(result.overrides))
        for metric in METRICS:
            row[metric] = _fmt(result.summary.get(metric))
        aug = result.augment or {}
        row["augment"] = f"{aug['library']}: {aug['order']}" if aug else ""
        row["augbench_samples_per_s"] = _fmt(bench.get((aug.get("library"), aug.get("signature")))) if result.kind == "trial" else ""
        row["output"] = _output(result.same_data.get("output"))
        row["cpu_by_process"] = _processes(result.monitor)
        row["same_data"] = result.same_data.get("verdict", "")
        row["pixels"] = (result.same_data.get("reference", {}).get("sha1") or "")[:10]
        notes = list(result.same_data.get("problems", []))
        restart = restart_note(result.summary)
        if restart:
            notes.append(restart)
        if result.kind == "trial" and len(signatures) > 1 and result.status == "ok":
            order = aug.get("order", "no augmentation")
            notes.append(f"different output ({order}): rows with other augment ops or orders differ in pixels, not only speed")
        if result.kind == "augbench":
            notes.append("augbench: one thread, decoded images in memory, no loader; samples_per_s = whole pipeline images/s")
        row["notes"] = "; ".join(notes)
        row["error"] = result.error or ""
        row["result"] = str(path.relative_to(root))
        table.append(row)
    return table


RESTART_NOTE_PCT = 5.0  # epoch restarts above this share of a trial's time are called out


def restart_note(summary: Dict) -> str:
    """Plain words when starting each epoch's iterator cost more than 5% of the measured time."""
    pct = summary.get("restart_pct")
    if pct is None or pct <= RESTART_NOTE_PCT:
        return ""
    return (f"epoch restarts cost {pct:.0f}% of the time ({summary['epoch_restarts']} restarts, "
            f"{summary['epoch_restart_ms_p50']:.0f} ms to each new epoch's first batch); steady state "
            f"{summary['steady_samples_per_s']:.0f} samples/s: use a larger dataset or trial.epoch_mode=continuous "
            "to measure the steady state")


def _processes(monitor) -> str:
    """'main 45%, worker-1 98%, worker-2 97%': mean CPU of each process over the measured phase."""
    from harness.monitor.summary import process_text

    return process_text((monitor or {}).get("summary", {}).get("cpu_by_process", {}))


def _output(stats) -> str:
    """'512x512x3 uint8 mean 111.3 sd 65.5' from the trial's output statistics."""
    if not stats or not stats.get("batches"):
        return ""
    shape = "x".join(str(d) for d in stats["sample_shape"])
    return f"{shape} {stats['dtype']} mean {stats['mean']:.4g} sd {stats['std']:.4g}"


def _fmt(value):
    if isinstance(value, float):
        return "" if math.isnan(value) else round(value, 4)
    return "" if value is None else value


def write_table(root: Path) -> Path:
    """Rewrite ``root/results.csv`` from every ``result.json`` under ``root``."""
    table = rows(root)
    if not table:
        raise HarnessError(f"{root}: no {RESULT_FILE} found; is this a sweep folder?")
    fields: List[str] = []
    for row in table:
        fields.extend(k for k in row if k not in fields)
    # overrides after job/repeat/status, metrics and paths last
    head = ["job", "repeat", "round", "position", "status", "kind"]
    tail = list(METRICS) + ["cpu_by_process", "augment", "augbench_samples_per_s", "output", "same_data", "pixels", "notes", "error", "result"]
    order = head + [f for f in fields if f not in head and f not in tail] + tail
    path = Path(root) / TABLE_FILE
    tmp = path.with_name(f".{TABLE_FILE}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=order, restval="")
        writer.writeheader()
        writer.writerows(table)
    os.replace(tmp, path)
    return path
