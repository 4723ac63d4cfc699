"""``history.html``: per metric and variant, the trend over commits with its spread and the change points."""

from __future__ import annotations

import html
from collections.abc import Sequence

from harness.history.changes import Change, change_points
from harness.history.store import METRICS, Record, series

UNITS = {"samples_per_s": "samples/s", "cpu_ms_per_sample": "CPU ms per sample", "stall_pct": "% of the step waiting"}


def trends(records: Sequence[Record]) -> list[tuple[str, str, list[tuple[Record, dict]], list[Change]]]:
    """(variant, metric, its runs on the newest record's machine, its change points) for each pair the newest run has."""
    if not records:
        return []
    out = []
    for variant, metrics in records[-1].variants.items():
        for metric in METRICS:
            if metric in metrics:
                runs = series(records, variant, metric)
                out.append((variant, metric, runs, change_points([f["median"] for _, f in runs])))
    return out


def figure(variant: str, metric: str, runs: list[tuple[Record, dict]], changes: list[Change]):
    """The medians over commits with the range of each run's repeats as a band, a dashed line at each change."""
    from harness.report.plots import new_figure

    fig = new_figure(9, 2.6)
    ax = fig.add_subplot()
    xs = list(range(len(runs)))
    ax.fill_between(xs, [f["low"] for _, f in runs], [f["high"] for _, f in runs], color="#90caf9", alpha=0.5, label="range of repeats")
    ax.plot(xs, [f["median"] for _, f in runs], color="#1565c0", marker=".", label="median")
    for c in changes:
        ax.axvline(c.index - 0.5, color="#c62828", linestyle="--")
        ax.annotate(
            f"{c.step:+.1%}", (c.index - 0.5, 0.95), xycoords=("data", "axes fraction"), color="#c62828", ha="left", va="top", fontsize=8
        )
    ticks = xs if len(xs) <= 12 else xs[:: max(1, len(xs) // 12)]
    ax.set_xticks(ticks, [runs[i][0].commit[:8] for i in ticks], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(UNITS.get(metric, metric), fontsize=8)
    ax.set_title(f"{variant}: {metric}", fontsize=9, loc="left")
    ax.legend(fontsize=7, loc="lower left")
    return fig


def render(records: Sequence[Record], source: str) -> str:
    """The whole page: a table of change points first, then one figure per variant and metric."""
    from harness.report.plots import figure_uri

    found = trends(records)
    rows = [
        f"<tr><td>{html.escape(v)}</td><td>{m}</td><td><code>{html.escape(runs[c.index][0].commit[:12])}</code></td>"
        f"<td>{runs[c.index][0].date[:10]}</td><td>{c.before:,.4g} &rarr; {c.after:,.4g}</td><td>{c.step:+.1%}</td></tr>"
        for v, m, runs, changes in found
        for c in changes
    ]
    table = (
        "<table><tr><th>variant</th><th>metric</th><th>first commit of the new level</th><th>date</th><th>median</th><th>step</th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else "<p>No change point: every series holds one level within its noise.</p>"
    )
    figures = "".join(
        f'<figure><img alt="{html.escape(v)} {m}" src="{figure_uri(figure(v, m, runs, ch))}"></figure>' for v, m, runs, ch in found
    )
    machine = html.escape(", ".join(f"{k} {v}" for k, v in (records[-1].machine if records else {}).items()))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>harness history</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:1em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}img{{max-width:100%}}</style></head>
<body><h1>Speed across commits</h1>
<p>{len(records)} runs in <code>{html.escape(source)}</code>; the series below are the runs on this machine: {machine}.
A change point is where a series' level steps by more than its own run-to-run noise allows (ruptures' PELT).</p>
<h2>Change points</h2>{table}<h2>Trends</h2>{figures}
<script>addEventListener("load", () => {{  // what a headless browser test reads back from the DOM
  const images = [...document.images], body = document.body.dataset;
  body.images = images.length; body.brokenImages = images.filter(i => !i.complete || i.naturalWidth === 0).length;
  body.changeRows = Math.max(0, document.querySelectorAll("table tr").length - 1);
}});</script></body></html>
"""
