"""Builders of the report's detail sections: the check's verdicts, diagnoses, pipelines, figures,
augment orders, augbench timings and sample grids.

Each takes the loaded :class:`~harness.results.sweep.Sweep` and returns the section's data, or
None where the section does not apply; :mod:`harness.report.sections` registers them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from harness.report import plots
from harness.report.text import fmt
from harness.results.sweep import Sweep

CHECK_FILE = "check.json"  # check's verdicts against a baseline (commands.check.CHECK_FILE)


def read_check(sweep: Sweep) -> None:
    """Put the last ``check``'s verdicts (check.json) on ``sweep.check``, formatted as the page shows them.

    Run before any section is built, so an unreadable file is named in ``sweep.skipped`` in time
    for the warnings at the top of the page and the command's own; :func:`~harness.results.sweep.load`
    does not read it, because ``check`` loads the sweep too and must not stop at its own old file.
    """
    import json

    from harness.results.verdicts import JUDGED, Verdict, change_text

    path = Path(sweep.root) / CHECK_FILE
    if not path.exists():
        return
    try:
        record = json.loads(path.read_text())
        verdicts = [Verdict(**item) for item in record.get("verdicts", [])]
        rows = [
            [
                v.variant,
                v.metric,
                fmt(v.baseline, 3),
                fmt(v.current, 3),
                change_text(v),
                "–" if v.p is None else f"{v.p:.2g}",
                v.verdict + (f": {v.reason}" if v.reason else ""),
            ]
            for v in verdicts
        ]
    except (OSError, ValueError, TypeError, AttributeError) as exc:  # written by hand or by another version
        line = f"skipped {path}: not a readable check record ({type(exc).__name__}: {exc})"
        if line not in sweep.skipped:  # read once per report; a second call adds nothing
            sweep.skipped.append(line)
        return
    sweep.check = {
        "baseline": record.get("baseline"),
        "ratio_to": record.get("ratio_to"),
        "regressions": record.get("regressions", 0),
        "unjudged": sum(v.verdict not in JUDGED for v in verdicts),
        "rows": rows,
    }


def check(sweep: Sweep) -> dict | None:
    return sweep.check


def diagnoses(sweep: Sweep) -> list[tuple[str, object]] | None:
    """(variant label, its :class:`~harness.report.diagnosis.Diagnosis`), fastest first."""
    from harness.report.diagnosis import diagnose

    return [(v.label, diagnose(v, sweep)) for v in sweep.ranked] or None


def pipelines(sweep: Sweep) -> list[tuple[str, str]] | None:
    """(variant label, its chain as the loader built it, step by step) from the first ok trial's result."""
    out = []
    for v in sweep.variants:
        ops = next((t.loader.get("ops") for t in v.ok if t.loader.get("ops")), None)
        if ops:
            out.append((v.label, " → ".join(str(op) for op in ops)))
    return out or None


def figure(title: str, draw: Callable[[Sweep], str | None], caption: str) -> Callable[[Sweep], dict | None]:
    """A builder of one figure's section: its data URI, caption and alt text; None where ``draw`` draws nothing."""

    def build(sweep: Sweep) -> dict | None:
        uri = draw(sweep)
        return {"uri": uri, "caption": caption, "alt": title} if uri else None

    return build


def unsampled(sweep: Sweep) -> str | None:
    """Why there are no timelines, where trials finished but none was sampled."""
    if plots.sampled(sweep) or not any(t.status == "ok" for t in sweep.trials()):
        return None
    return "No utilization timelines: these trials were not sampled (monitor.enabled=false, or results from an older harness)."


def orders(sweep: Sweep) -> str | None:
    from harness.report.orders import order_summary

    return "\n".join(order_summary(Path(sweep.root))) or None


def augbench(sweep: Sweep) -> list[tuple] | None:
    """(library, order, op, input, images/s, cv) per op and per whole pipeline of each augbench result."""
    rows = []
    for result in sweep.bench:
        if result.status != "ok":
            continue
        a = result.augment
        for op in a["bench"]["ops"]:
            rows.append((a["library"], a["order"], op["name"], "x".join(map(str, op["input_shape"][:2])), *_speed(op)))
        rows.append((a["library"], a["order"], "= whole pipeline", "", *_speed(a["bench"]["pipeline"])))
    return rows or None


def _speed(timing: dict) -> tuple[str, str]:
    return f"{timing['images_per_s']:,.1f}", f"{timing['cv']:.1%}" + (" unstable" if timing["unstable"] else "")


def grids(sweep: Sweep) -> list[dict] | None:
    """Each variant's grid of augmented samples (samples.png in its job folder), as data URIs."""
    out = []
    for v in sweep.variants:
        path = Path(sweep.root) / str(v.job) / "samples.png"
        if path.exists():
            out.append({"label": v.label, "uri": "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()})
    return out or None


def storage(sweep: Sweep) -> dict | None:
    """Per variant read through throttled storage: its profile and what the emulation itself cost (median repeat).

    The FUSE server runs beside the trial, on a core of its own where ``trial.cpus`` leaves one: its
    CPU per request and its share of one core over the trial are the emulation's own cost, stated so
    a reader can tell it from the pipeline's.
    """
    rows = []
    for v in sweep.variants:
        facts = [t.overhead["storage"] for t in v.ok if isinstance(t.overhead.get("storage"), dict)]
        if not facts:
            continue
        f = sorted(facts, key=lambda x: x.get("cpu_us_per_request") or 0.0)[len(facts) // 2]
        wall = [t.timing.get("duration_s") for t in v.ok if t.timing.get("duration_s")]
        rows.append(
            {
                "label": v.label,
                "profile": f.get("profile"),
                "latency": f"{fmt(f.get('open_ms') or 0, 2)} ms / open, {fmt(f.get('read_ms') or 0, 2)} ms / read",
                "bandwidth": f"{fmt(f['mb_per_s'], 0)} MB/s" if f.get("mb_per_s") else "no cap",
                "jitter": f"±{fmt(f.get('jitter_pct') or 0, 0)}%",
                "requests": f"{f.get('opens', 0):,} opens, {f.get('reads', 0):,} reads",
                "cpu_us": fmt(f.get("cpu_us_per_request"), 1),
                "core_pct": fmt(100 * f["serving_cpu_s"] / wall[0], 1) if f.get("serving_cpu_s") is not None and wall else "–",
            }
        )
    if not rows:
        return None
    sources = {str(t.config.get("storage", {}).get("source")) for v in sweep.variants for t in v.ok if t.overhead.get("storage")}
    return {"rows": rows, "sources": sorted(sources)}


def ranks(sweep: Sweep) -> list[dict] | None:
    """Per variant with data-parallel ranks: each rank's figures (its median repeat's) and who held the others."""
    out = []
    for v in sweep.variants:
        with_ranks = [t for t in v.ok if t.ranks]
        if not with_ranks:
            continue
        ordered = sorted(with_ranks, key=lambda t: t.summary.get("samples_per_s") or 0.0)
        t = ordered[len(ordered) // 2]
        r, s = t.ranks, t.summary
        out.append(
            {
                "label": v.label,
                "ranks": r["ranks"],
                "backend": r.get("backend"),
                "sharding": r.get("sharding") or "",
                "straggler_pct": s.get("straggler_pct"),
                "allreduce_pct": s.get("allreduce_pct"),
                "slowest": r.get("slowest"),
                "lines": r.get("per_rank", []),
            }
        )
    return out or None
