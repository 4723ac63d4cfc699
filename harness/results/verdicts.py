"""A regression check's verdict per variant and metric, as check.json stores it.

``check`` makes them and the report shows them, so they live below both.
"""

from __future__ import annotations

from dataclasses import dataclass

JUDGED = ("ok", "regressed", "improved")
CANNOT = "could not judge"  # a verdict whose reason says why: exit 2, never a silent ok


@dataclass
class Verdict:
    variant: str
    metric: str
    baseline: float | None
    current: float | None
    change: float | None  # relative (fraction) or absolute points, per the metric's threshold kind
    p: float | None
    verdict: str  # ok | regressed | improved | could not judge
    threshold: float
    kind: str
    # the current run's samples (ratio-scaled in ratio mode): their spread, for the dashboards
    current_min: float | None = None
    current_max: float | None = None
    detectable: float | None = None  # smallest relative change the repeats can tell from noise; None: unknown
    reason: str | None = None  # why the verdict could not be judged, in plain words


def change_text(v: Verdict) -> str:
    if v.change is None:
        return "–"
    return f"{v.change:+.1%}" if v.kind == "relative" else f"{v.change:+.1f} pts"
