"""The report's figures, drawn with matplotlib (Agg) and embedded as base64 PNG data URIs."""

from __future__ import annotations

import base64
import io
from typing import Dict, List, Optional

from harness.report.data import BANDS, Sweep, band

COLORS = {"not input-bound": "#2e7d32", "moderately input-bound": "#f9a825", "highly input-bound": "#c62828", "unknown": "#9e9e9e"}
PART_COLORS = {"wait": "#c62828", "h2d": "#f9a825", "compute": "#2e7d32"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _uri(fig) -> str:
    plt = _plt()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _short(label: str, width: int = 38) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def throughput(sweep: Sweep) -> Optional[str]:
    """Bars of median samples/s with the repeats' min-max, coloured by input-bound band, and the ceiling."""
    ranked = [v for v in sweep.ranked if v.ok]
    if not ranked:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(ranked) + 1.4))
    labels = [_short(v.label) for v in ranked][::-1]
    values = [v.metrics["samples_per_s"] for v in ranked][::-1]
    low = [v.metrics["samples_per_s"] - v.spread["min"] for v in ranked][::-1]
    high = [v.spread["max"] - v.metrics["samples_per_s"] for v in ranked][::-1]
    colors = [COLORS[band(v.metrics["stall_pct"])] for v in ranked][::-1]
    ax.barh(labels, values, xerr=[low, high], color=colors, capsize=3)
    if sweep.ceiling_samples_per_s:
        ax.axvline(sweep.ceiling_samples_per_s, color="black", linestyle="--", linewidth=1)
        ax.text(sweep.ceiling_samples_per_s, len(ranked) - 0.4, " accelerator ceiling", fontsize=8, va="top")
    ax.set_xlabel("samples/s (median of repeats; bars: min-max)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS[name]) for _, name in BANDS]
    limits = ["< 5% wait", "5-20% wait", "> 20% wait"]
    ax.legend(handles, [f"{name} ({lim})" for (_, name), lim in zip(BANDS, limits)], fontsize=7, loc="lower right")
    return _uri(fig)


def breakdown(sweep: Sweep) -> Optional[str]:
    """Mean step time split into wait / h2d / compute, stacked per variant."""
    ranked = [v for v in sweep.ranked if v.ok and v.metrics.get("compute_ms") is not None]
    if not ranked:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(ranked) + 1.4))
    labels = [_short(v.label) for v in ranked][::-1]
    left = [0.0] * len(ranked)
    for part in ("compute", "h2d", "wait"):
        values = [v.metrics.get(f"{part}_ms") or 0.0 for v in ranked][::-1]
        ax.barh(labels, values, left=left, color=PART_COLORS[part], label=part)
        left = [a + b for a, b in zip(left, values)]
    ax.set_xlabel("mean ms per step")
    ax.legend(fontsize=8, loc="lower right")
    return _uri(fig)


def numeric_axis(sweep: Sweep) -> Optional[str]:
    """Throughput against the swept parameter when that parameter is numeric (num_workers, step_ms, ...)."""
    for key in sweep.swept:
        points = []
        for v in sweep.variants:
            try:
                x = float(v.overrides.get(key, ""))
            except ValueError:
                points = []
                break
            if v.ok:
                points.append((x, v))
        if len({x for x, _ in points}) < 2:
            continue
        others = [k for k in sweep.swept if k != key]
        series: Dict[str, List] = {}
        for x, v in sorted(points, key=lambda p: p[0]):
            name = " ".join(f"{k.split('.')[-1]}={v.overrides.get(k)}" for k in others) or key
            series.setdefault(name, []).append((x, v.metrics["samples_per_s"]))
        plt = _plt()
        fig, ax = plt.subplots(figsize=(7, 3.6))
        for name, xy in series.items():
            ax.plot([p[0] for p in xy], [p[1] for p in xy], marker="o", label=_short(name, 50))
        if sweep.ceiling_samples_per_s:
            ax.axhline(sweep.ceiling_samples_per_s, color="black", linestyle="--", linewidth=1, label="accelerator ceiling")
        ax.set_xlabel(key)
        ax.set_ylabel("samples/s")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
        return _uri(fig)
    return None


def timelines(sweep: Sweep, gpu: bool = False) -> Optional[str]:
    """CPU and memory (or GPU utilization and memory) of each variant's first ok repeat over its trial."""
    chosen = [(v, v.ok[0]) for v in sweep.ranked if v.ok and v.ok[0].monitor.get("t")]
    if gpu:
        chosen = [(v, t) for v, t in chosen if t.monitor.get("gpu", {}).get("series", {}).get("gpu_util_pct")]
    if not chosen:
        return None
    plt = _plt()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.2), sharex=True)
    for v, t in chosen[:12]:
        start = t.timing.get("measure_start_clock") or t.monitor["t"][0]
        xs = [x - start for x in t.monitor["t"]]
        if gpu:
            s = t.monitor["gpu"]["series"]
            a, b = s.get("gpu_util_pct", []), s.get("gpu_mem_used_mb", [])
        else:
            a, b = t.monitor["series"]["tree_cpu_pct"], t.monitor["series"]["tree_rss_mb"]
        top.plot(xs[: len(a)], [y if y is not None else float("nan") for y in a], label=_short(v.label, 40), linewidth=1)
        if b:
            bottom.plot(xs[: len(b)], [y if y is not None else float("nan") for y in b], linewidth=1)
    top.set_ylabel("GPU utilization %" if gpu else "CPU % of one core")
    bottom.set_ylabel("GPU memory MB" if gpu else "RSS MB (process tree)")
    bottom.set_xlabel("seconds from the start of the measured phase (negative: start-up and warm-up)")
    top.legend(fontsize=7, ncol=2)
    for ax in (top, bottom):
        ax.axvline(0, color="grey", linewidth=0.8)
    return _uri(fig)
