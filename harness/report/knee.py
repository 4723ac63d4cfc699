"""Knee curves: throughput against the accelerator's step time, per loader variant, and where each stops keeping up.

When a sweep varies ``consumer.step_ms``, each loader variant (the other swept keys) has one
point per step time. A fast step asks for more samples/s than a loader can give, so below
some step time the accelerator waits: the *knee* is the step time at which the wait crosses
:data:`STALL_LIMIT` (TensorFlow's profiler calls more "highly input-bound"), found between
the two measured step times around it by linear interpolation of the wait. Measured only:
a loader that keeps up (or never does) at every step time measured says so, with the range.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.report import plots
from harness.results.sweep import Sweep, Variant

STEP_KEY = "consumer.step_ms"
STALL_LIMIT = 20.0  # % of step time waiting above which the loader is the bottleneck


@dataclass
class Curve:
    name: str  # the loader variant: its values of the other swept keys
    points: list[tuple[float, float, float]]  # (step ms, median samples/s, median stall %), by step time
    knee_ms: float | None  # the step time below which the wait exceeds STALL_LIMIT; None: not within the steps measured
    text: str  # the knee in plain words


def curves(sweep: Sweep) -> list[Curve] | None:
    """One curve per loader variant with two or more step times measured; None when step_ms is not swept."""
    if STEP_KEY not in sweep.swept:
        return None
    others = [k for k in sweep.swept if k != STEP_KEY]
    groups: dict[str, list[tuple[float, float, float]]] = {}
    for v in sweep.variants:
        step = _step(v)
        if v.ok and step is not None and v.metrics.get("stall_pct") is not None:
            loader = v.ok[0].config.get("loader", {}).get("name", "?")
            name = " ".join(f"{k.split('.')[-1]}={v.overrides.get(k, '(default)')}" for k in others) or f"loader={loader}"
            groups.setdefault(name, []).append((step, v.samples_per_s, float(v.metrics["stall_pct"] or 0.0)))
    out = [_curve(name, sorted(points)) for name, points in groups.items() if len({p[0] for p in points}) > 1]
    return out or None


def _step(v: Variant) -> float | None:
    try:
        return float(v.overrides.get(STEP_KEY, ""))
    except ValueError:
        return None


def knee(points: list[tuple[float, float, float]]) -> tuple[float | None, str]:
    """(the knee's step time or None, the sentence) for points sorted by step time.

    Scanning down from the slowest step, the knee lies between the last step time whose wait
    is within the limit and the first below it whose wait is not.
    """
    lo, hi = points[0], points[-1]
    if all(p[2] <= STALL_LIMIT for p in points):
        return None, f"keeps up at every step time measured, down to {lo[0]:g} ms (wait {lo[2]:.0f}%)"
    if hi[2] > STALL_LIMIT:
        return None, f"is the bottleneck at every step time measured, up to {hi[0]:g} ms (wait {hi[2]:.0f}%)"
    for below, above in zip(points[::-1][1:], points[::-1]):
        if below[2] > STALL_LIMIT:
            share = (below[2] - STALL_LIMIT) / (below[2] - above[2])
            ms = below[0] + share * (above[0] - below[0])
            return ms, (
                f"becomes the bottleneck below about {ms:.1f} ms per step (wait {below[2]:.0f}% at {below[0]:g} ms, "
                f"{above[2]:.0f}% at {above[0]:g} ms; the knee is where it crosses {STALL_LIMIT:.0f}%)"
            )
    return None, "no knee found"  # unreachable: the first point waits more than the limit and the last does not


def _curve(name: str, points: list[tuple[float, float, float]]) -> Curve:
    ms, text = knee(points)
    return Curve(name, points, ms, text)


def section(sweep: Sweep) -> dict | None:
    """The knee section: the figure and one sentence per loader variant."""
    found = curves(sweep)
    if not found:
        return None
    return {"uri": plots.figure_uri(figure(sweep, found)), "rows": [(c.name, c.text) for c in found], "limit": f"{STALL_LIMIT:.0f}%"}


def markdown(data: dict) -> list[str]:
    from harness.report.text import md

    return [f"Where each loader stops keeping up (wait above {data['limit']}):", ""] + [f"- {md(n)}: {md(t)}" for n, t in data["rows"]]


def figure(sweep: Sweep, found: list[Curve]):
    """samples/s against step time per loader variant, knees marked; the accelerator's ceiling as a curve."""
    fig = plots.new_figure(7.5, 4)
    ax = fig.subplots()
    steps = sorted({p[0] for c in found for p in c.points})
    for c in found:
        (line,) = ax.plot([p[0] for p in c.points], [p[1] for p in c.points], marker="o", label=plots.wrapped(c.name, 50))
        if c.knee_ms is not None:
            ax.axvline(c.knee_ms, color=line.get_color(), linestyle=":", linewidth=1)
    size = next((t.config.get("batch", {}).get("size") for v in sweep.variants for t in v.ok), None)
    if size and steps[0] > 0:
        grid = [steps[0] + (steps[-1] - steps[0]) * i / 50 for i in range(51)]
        ax.plot(grid, [size * 1000 / s for s in grid], color="black", linestyle="--", linewidth=1, label="accelerator ceiling")
    top = max(p[1] for c in found for p in c.points)
    if size:  # the accelerator's ceiling at the slowest step: the curve's lowest point
        top = max(top, size * 1000 / steps[-1])
    for kind in ("CPU", "I/O"):
        values = sorted({round(c.samples_per_s) for v in sweep.variants if v.bounds for c in v.bounds.ceilings if c.kind == kind})
        for value in values:
            color, style = plots.CEILING_STYLES[kind]
            ax.axhline(value, color=color, linestyle=style, linewidth=1.2, label=f"{kind} ceiling {value:,}")
        top = max([top, *map(float, values[:1])])  # the lowest of each kind in view; higher ones may leave it
    ax.set_ylim(0, top * 1.15)
    ax.set_xlabel(f"{STEP_KEY} (accelerator compute per batch)")
    ax.set_ylabel("samples/s (median of repeats)")
    ax.legend(fontsize=7)
    return fig
