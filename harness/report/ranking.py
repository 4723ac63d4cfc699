"""The ranking table: one row per variant, fastest first.

Its metric columns take their header and number format from the metric registry
(:mod:`harness.results.metrics`), looked up when the table is built; the columns that are
no metric (rank, variant, spread, speed-up, status, flags) are declared here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from harness.report.text import fmt, md, sentence
from harness.results import metrics
from harness.results.sweep import UNSTABLE_CV, Sweep, Variant, band, baseline_text


class Row(NamedTuple):
    rank: int
    variant: Variant
    flags: list[str]


@dataclass(frozen=True)
class Column:
    key: str  # a metric's name, or the report's own name for a column that is no metric
    cell: Callable[[Row], Any]  # the row's cell, as shown
    header: Callable[[], str]  # asked when a table is built, so a changed registry shows at once
    markdown: bool = True  # a column of summary.md's table too; the widest stay out of a PR comment
    left: bool = False  # text, aligned left


def metric_column(name: str, *, markdown: bool = True) -> Column:
    """A column of the variants' median ``name``, headed and formatted as the registry says."""
    return Column(
        name,
        lambda row: metrics.REGISTRY[name].text(row.variant.metrics.get(name)),
        lambda: metrics.REGISTRY[name].header,
        markdown,
    )


def _fixed(header: str) -> Callable[[], str]:
    return lambda: header


def _range_cell(row: Row) -> str:
    v = row.variant
    if not v.ok:
        return "–"
    if v.spread["repeats"] == 1:
        return "1 repeat"
    return f"{v.spread['min']:,.0f}–{v.spread['max']:,.0f} (n={v.spread['repeats']})"


def _restart_header() -> str:
    ms, pct = metrics.REGISTRY["epoch_restart_ms_p50"], metrics.REGISTRY["restart_pct"]
    return f"{ms.label or ms.name} ({ms.short_unit}, {pct.short_unit})"


def _restart_cell(row: Row) -> str:
    """Two metrics in one cell: the median restart wait and its share of the measured time."""
    m = row.variant.metrics
    ms, pct = m.get("epoch_restart_ms_p50"), m.get("restart_pct")
    if ms is None and pct is None:
        return "–"  # results from before the harness split epoch boundaries out
    if ms is None or ms != ms:  # NaN: no epoch began inside the measured phase
        return "no restart measured"
    ms_metric, pct_metric = metrics.REGISTRY["epoch_restart_ms_p50"], metrics.REGISTRY["restart_pct"]
    return f"{ms_metric.text(ms)} {ms_metric.short_unit} ({fmt(pct, pct_metric.digits, '%')})"


def _ceiling_cell(row: Row) -> str:
    """``93% CPU``: the variant's samples/s as a share of its lowest ceiling, and which ceiling that is."""
    b = row.variant.bounds
    f = None if b is None else b.fraction
    if b is None or f is None or b.lowest is None:
        return "–"
    return f"{f:.0%} {b.lowest.kind}"


COLUMNS: list[Column] = [
    Column("rank", lambda row: row.rank if row.variant.ok else "–", _fixed("#"), left=True),
    Column("variant", lambda row: row.variant.label, _fixed("variant"), left=True),
    metric_column("samples_per_s"),
    Column("range", _range_cell, _fixed("min–max"), markdown=False),
    Column("cv", lambda row: fmt(None if row.variant.cv is None else 100 * row.variant.cv, 1, "%"), _fixed("CV")),
    Column("speedup", lambda row: fmt(row.variant.speedup, 2, "x"), _fixed("speed-up")),
    Column("ceiling", _ceiling_cell, _fixed("of lowest ceiling")),
    metric_column("steady_samples_per_s"),
    Column("epoch_restart", _restart_cell, _restart_header),
    metric_column("stall_pct"),
    metric_column("au_pct"),
    metric_column("ttfb_s"),
    metric_column("cpu_s_per_1000_samples"),
    metric_column("peak_rss_mb"),
    metric_column("gpu_util_mean_pct", markdown=False),
    Column("status", lambda row: row.variant.status_text(), _fixed("status")),
    Column("same_data", lambda row: row.variant.same_data_verdict or "–", _fixed("same data")),
    Column("flags", lambda row: ", ".join(row.flags), _fixed("flags")),
]


def headers() -> list[str]:
    return [c.header() for c in COLUMNS]


def ranked_frame(sweep: Sweep):
    """The ranked table as a pandas DataFrame of display strings (one row per variant), headed as :func:`headers`."""
    import pandas as pd

    names = headers()
    records = []
    for row in _rows(sweep):
        record = dict(zip(names, _cells(row)))
        record["_band"] = band(row.variant.metrics["stall_pct"]) if row.variant.ok else "failed"
        records.append(record)
    return pd.DataFrame.from_records(records, columns=names + ["_band"])


def _cells(row: Row) -> list:
    return [c.cell(row) for c in COLUMNS]


def _rows(sweep: Sweep) -> list[Row]:
    signatures = {(t.augment or {}).get("signature", "none") for v in sweep.variants for t in v.ok}
    return [Row(rank, v, _flags(v, sweep, signatures)) for rank, v in enumerate(sweep.ranked, start=1)]


def _flags(v: Variant, sweep: Sweep, signatures: set) -> list[str]:
    flags = [
        name
        for name, on in (
            ("unstable", v.unstable),
            ("bimodal", v.bimodal),
            ("baseline", v is sweep.baseline),
            ("best", v is sweep.best and len(sweep.variants) > 1),
        )
        if on
    ]
    if len(signatures) > 1 and v.ok:  # other variants run other augment ops or orders
        flags.append("different output")
    if any(t.same_data.get("problems") for t in v.ok):
        flags.append("same-data problems")
    return flags


@dataclass
class Ranking:
    """The ranking section's data: the table as display strings, for the page and for summary.md."""

    headers: list[str]
    left: list[bool]  # per column: text, aligned left
    in_markdown: list[bool]  # per column: also in summary.md
    rows: list[dict]  # {"cells": [...], "css": row class}
    baseline_text: str  # which variant the speed-ups are against, as a sentence
    unstable_cv: str  # the CV above which a variant is flagged unstable, "10%"


def build(sweep: Sweep) -> Ranking:
    """The ranking section, for every sweep: without variants (augbench alone) it has no rows."""
    return Ranking(
        headers(),
        [c.left for c in COLUMNS],
        [c.markdown for c in COLUMNS],
        [{"cells": _cells(row), "css": _row_css(row)} for row in _rows(sweep)],
        sentence(baseline_text(sweep)),
        f"{UNSTABLE_CV:.0%}",
    )


def _row_css(row: Row) -> str:
    if not row.variant.ok:
        return "failed"
    return "best" if "best" in row.flags else ""


def markdown(ranking: Ranking) -> list[str]:
    """The table without its widest columns, and what the speed-ups and bands mean."""
    keep = [i for i, on in enumerate(ranking.in_markdown) if on]
    lines = ["| " + " | ".join(ranking.headers[i] for i in keep) + " |"]
    lines.append("|" + "|".join(" --- " if ranking.left[i] else " ---: " for i in keep) + "|")
    lines += ["| " + " | ".join(md(row["cells"][i]) for i in keep) + " |" for row in ranking.rows]
    return lines + [
        "",
        md(ranking.baseline_text) + " Wait % bands (TensorFlow profiler): below 5% not input-bound, 5-20% moderately, above 20% highly.",
    ]
