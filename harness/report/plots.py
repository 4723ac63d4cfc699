"""The report's figures, drawn with matplotlib (Agg) and embedded as base64 PNG data URIs."""

from __future__ import annotations

import base64
import io
from typing import Any

from harness.results.sweep import BANDS, Sweep, Variant, band

CEILING_STYLES: dict[str, tuple[str, Any]] = {"accelerator": ("black", "--"), "CPU": ("#6a1b9a", "-."), "I/O": ("#1565c0", ":")}
SHARED = 1.02  # ceilings of one kind within this ratio of each other are drawn as one line
OFF_SCALE = 3.0  # a ceiling beyond this many times the fastest bar is named in the legend, not drawn
COLORS = {"not input-bound": "#2e7d32", "moderately input-bound": "#f9a825", "highly input-bound": "#c62828", "unknown": "#9e9e9e"}
PART_COLORS = {"wait": "#c62828", "h2d": "#f9a825", "compute": "#2e7d32"}


def new_figure(width: float, height: float):
    """A Figure outside pyplot's global state: nothing to close, safe to build in tests."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def figure_uri(fig) -> str | None:
    """The figure as a base64 PNG data URI (None for no figure)."""
    if fig is None:
        return None
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def wrapped(label: str, width: int = 38) -> str:
    """The whole label on lines of about ``width`` characters, broken at spaces (a long key=value at '.' or ',')."""
    import textwrap

    return "\n".join(textwrap.wrap(label, width, break_on_hyphens=False)) or label


def bar_labels(variants: list[Variant], width: int = 38, ranks: dict[int, int] | None = None) -> list[str]:
    """Each variant's full label, wrapped, after its number in the ranking (``ranks``: job -> place) where given."""
    return [wrapped(f"{ranks[v.job]}. {v.label}" if ranks and v.job in ranks else v.label, width) for v in variants]


def ranks_of(sweep: Sweep) -> dict[int, int]:
    """Job -> its place in the ranking table (1 is the fastest), so a chart's bar and the table's row share a number."""
    return {v.job: i for i, v in enumerate(sweep.ranked, 1)}


def _bar_axis(ax, variants: list[Variant], sweep: Sweep) -> None:
    # numeric positions: matplotlib draws equal category strings as one bar
    ax.set_yticks(range(len(variants)))
    ax.set_yticklabels(bar_labels(variants, ranks=ranks_of(sweep)), fontsize=8)


def _bars_height(variants: list[Variant], width: int = 38) -> float:
    """Inches for one bar per variant, each as tall as its wrapped label needs."""
    lines = sum(max(1, wrapped(v.label, width).count("\n") + 1) for v in variants)
    return 0.18 * lines + 0.25 * len(variants) + 1.4


def throughput_figure(sweep: Sweep):
    """Bars of median samples/s with the repeats' min-max, coloured by input-bound band, and the ceiling."""
    ranked = [v for v in sweep.ranked if v.ok][::-1]  # fastest at the top
    if not ranked:
        return None
    fig = new_figure(9, _bars_height(ranked))
    ax = fig.subplots()
    values = [v.metrics["samples_per_s"] for v in ranked]
    low = [v.samples_per_s - v.spread["min"] for v in ranked]
    high = [v.spread["max"] - v.samples_per_s for v in ranked]
    colors = [COLORS[band(v.metrics["stall_pct"])] for v in ranked]
    ax.barh(range(len(ranked)), values, xerr=[low, high], color=colors, capsize=3)
    _bar_axis(ax, ranked, sweep)
    roofs = _roofs(ax, ranked, sweep)
    ax.set_xlabel("samples/s (median of repeats; bars: min-max)")
    from matplotlib.patches import Rectangle

    handles = [Rectangle((0, 0), 1, 1, color=COLORS[name]) for _, name in BANDS]
    limits = ["< 5% wait", "5-20% wait", "> 20% wait"]
    labels = [f"{name} ({lim})" for (_, name), lim in zip(BANDS, limits)]
    # beside the axes, not below: under a chart of one or two bars it covered the axis label
    ax.legend(handles + [h for h, _ in roofs], labels + [text for _, text in roofs], fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def _roofs(ax, ranked: list[Variant], sweep: Sweep) -> list[tuple[Any, str]]:
    """Each kind of ceiling over the bars: one line where every variant shares it, else a tick on each bar.

    The axis reaches every variant's lowest ceiling, so the gap to it shows; a higher ceiling more
    than OFF_SCALE times beyond is named in the legend only.

    Returns:
        (legend handle, legend text) per kind drawn or named.
    """
    from matplotlib.lines import Line2D

    lowest = [v.bounds.lowest.samples_per_s for v in ranked if v.bounds is not None and v.bounds.lowest is not None]
    scale = max([v.spread.get("max", v.samples_per_s) for v in ranked] + lowest)
    found, right = [], scale
    for kind, (color, style) in CEILING_STYLES.items():
        points = [(i, c.samples_per_s) for i, v in enumerate(ranked) for c in (v.bounds.holding if v.bounds else []) if c.kind == kind]
        if not points and kind == "accelerator" and sweep.ceiling_samples_per_s:  # results without per-variant bounds
            points = [(i, sweep.ceiling_samples_per_s) for i in range(len(ranked))]
        if not points:
            continue
        values = sorted({round(x) for _, x in points})
        shown = [(i, x) for i, x in points if x <= OFF_SCALE * scale]
        text = f"{kind} ceiling" + (f" {values[0]:,}" if len(values) == 1 else f" {values[0]:,}-{values[-1]:,}")
        if len(shown) < len(points):
            text += " (off the scale)" if not shown else " (the highest off the scale)"
        xs = [x for _, x in shown]
        if len(shown) == len(ranked) and max(xs) <= SHARED * min(xs):  # one ceiling for all, give or take the copy time
            ax.axvline(sorted(xs)[len(xs) // 2], color=color, linestyle=style, linewidth=1.2)
        elif shown:
            ax.scatter([x for _, x in shown], [i for i, _ in shown], marker="|", s=400, color=color, linewidths=2, zorder=3)
        right = max([right] + [x for _, x in shown])
        found.append((Line2D([0], [0], color=color, linestyle=style), text))
    ax.set_xlim(0, right * 1.05)
    return found


def throughput(sweep: Sweep) -> str | None:
    return figure_uri(throughput_figure(sweep))


def breakdown_figure(sweep: Sweep):
    """Mean step time split into wait / h2d / compute, stacked per variant."""
    ranked = [v for v in sweep.ranked if v.ok and v.metrics.get("compute_ms") is not None][::-1]
    if not ranked:
        return None
    fig = new_figure(9, _bars_height(ranked))
    ax = fig.subplots()
    left = [0.0] * len(ranked)
    for part in ("compute", "h2d", "wait"):
        values = [v.metrics.get(f"{part}_ms") or 0.0 for v in ranked]
        ax.barh(range(len(ranked)), values, left=left, color=PART_COLORS[part], label=part)
        left = [a + b for a, b in zip(left, values)]
    _bar_axis(ax, ranked, sweep)
    ax.set_xlabel("mean ms per step")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def breakdown(sweep: Sweep) -> str | None:
    return figure_uri(breakdown_figure(sweep))


def numeric_axis(sweep: Sweep) -> str | None:
    return figure_uri(numeric_axis_figure(sweep))


def numeric_axis_figure(sweep: Sweep):
    """Throughput against the swept parameter when that parameter is numeric (num_workers, step_ms, ...)."""
    for key in sweep.swept:
        points: list[tuple[float, Variant]] = []
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
        series: dict[str, list] = {}
        for x, v in sorted(points, key=lambda p: p[0]):
            name = " ".join(f"{k.split('.')[-1]}={v.overrides.get(k)}" for k in others) or key
            series.setdefault(name, []).append((x, v.metrics["samples_per_s"]))
        fig = new_figure(7, 3.6)
        ax = fig.subplots()
        for name, xy in series.items():
            ax.plot([p[0] for p in xy], [p[1] for p in xy], marker="o", label=wrapped(name, 50))
        if sweep.ceiling_samples_per_s:
            ax.axhline(sweep.ceiling_samples_per_s, color="black", linestyle="--", linewidth=1, label="accelerator ceiling")
        ax.set_xlabel(key)
        ax.set_ylabel("samples/s")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
        return fig
    return None


def timelines(sweep: Sweep, gpu: bool = False) -> str | None:
    return figure_uri(timelines_figure(sweep, gpu))


def sampled(sweep: Sweep, gpu: bool = False) -> list[tuple[Variant, Any]]:
    """(variant, its first ok repeat) for each variant whose first ok repeat was sampled (with the GPU's series)."""
    chosen = [(v, v.ok[0]) for v in sweep.ranked if v.ok and v.ok[0].monitor.get("t")]
    if gpu:
        chosen = [(v, t) for v, t in chosen if t.monitor.get("gpu", {}).get("series", {}).get("gpu_util_pct")]
    return chosen


def timelines_figure(sweep: Sweep, gpu: bool = False):
    """CPU and memory (or GPU utilization and memory) of each variant's first ok repeat over its trial."""
    chosen = sampled(sweep, gpu)
    if not chosen:
        return None
    fig = new_figure(9, 5.2)
    top, bottom = fig.subplots(2, 1, sharex=True)
    chosen = chosen[:12]
    for (_, t), name in zip(chosen, bar_labels([v for v, _ in chosen], 40, ranks_of(sweep))):
        start = t.timing.get("measure_start_clock") or t.monitor["t"][0]
        xs = [x - start for x in t.monitor["t"]]
        if gpu:
            s = t.monitor["gpu"]["series"]
            a, b = s.get("gpu_util_pct", []), s.get("gpu_mem_used_mb", [])
        else:
            s = t.monitor.get("series", {})  # results from a sampler that lacked a series still draw the rest
            a, b = s.get("tree_cpu_pct", []), s.get("tree_rss_mb", [])
        top.plot(xs[: len(a)], [y if y is not None else float("nan") for y in a], label=name, linewidth=1)
        if b:
            bottom.plot(xs[: len(b)], [y if y is not None else float("nan") for y in b], linewidth=1)
    top.set_ylabel("GPU utilization %" if gpu else "CPU % of one core")
    bottom.set_ylabel("GPU memory MB" if gpu else "RSS MB (process tree)")
    bottom.set_xlabel("seconds from the start of the measured phase (negative: start-up and warm-up)")
    top.legend(fontsize=7, ncol=2)
    for ax in (top, bottom):
        ax.axvline(0, color="grey", linewidth=0.8)
    return fig
