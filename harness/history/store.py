"""The history store: one JSON line per gate run, appended, never rewritten.

JSON lines because a team keeps the store in its repository or a CI cache: two branches that
each append a run merge as two added lines, and a reader needs nothing but ``json``. Each line
carries its schema version, the commit, the date, the machine's fingerprint and, per variant and
metric, the median of the run's repeats with their range.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

SCHEMA = 1  # "harness_history" in each line; a reader refuses a newer one
METRICS = ("samples_per_s", "cpu_ms_per_sample", "stall_pct")  # what a gate run records per variant


@dataclass
class Record:
    """One gate run: where and when it ran, and per variant and metric its median and range over repeats."""

    commit: str  # the project's commit the run measured
    date: str  # when it ran, ISO 8601 with its time zone
    machine: dict[str, Any]  # the fingerprint (harness.check.fingerprint): runs on other machines are other series
    variants: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # label -> metric -> median, low, high, n

    def line(self) -> str:
        return json.dumps({"harness_history": SCHEMA, **asdict(self)}, sort_keys=True)


def summarize(repeats: Sequence[float]) -> dict[str, float]:
    """A metric's figures over a run's repeats: the median and the range."""
    return {"median": statistics.median(repeats), "low": min(repeats), "high": max(repeats), "n": len(repeats)}


def record_of(root: Path, *, commit: str | None = None, date: str | None = None) -> Record:
    """The record of a finished sweep: its variants' medians, the commit its trials ran (or ``commit``)."""
    from harness.check import collect

    return record_from(collect(root), commit=commit, date=date)


def record_from(data: dict, *, commit: str | None = None, date: str | None = None) -> Record:
    """The record of a collected sweep (:func:`harness.check.collect`, or one side of an A/B sweep)."""
    variants: dict[str, dict[str, dict[str, float]]] = {}
    for label, v in data["variants"].items():
        figures = {m: [x for r in v["repeats"] for x in [_figure(r["summary"], m)] if x is not None] for m in METRICS}
        variants[label] = {m: summarize(values) for m, values in figures.items() if values}
    return Record(
        commit=commit or data["commit"] or "unknown",
        date=date or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        machine=data["fingerprint"],
        variants=variants,
    )


def _figure(summary: dict, metric: str) -> float | None:
    """A repeat's figure of a gate metric; CPU ms per sample is the summary's CPU s per 1,000 samples (the same number)."""
    return summary.get("cpu_s_per_1000_samples") if metric == "cpu_ms_per_sample" else summary.get(metric)


def append(store: Path, record: Record) -> None:
    """Add one line to ``store`` (created with its folder where missing); what it held stays as it was."""
    store.parent.mkdir(parents=True, exist_ok=True)
    with open(store, "a", encoding="utf-8") as handle:
        handle.write(record.line() + "\n")


def read(store: Path) -> list[Record]:
    """Every record in ``store``, oldest first as appended; a line it cannot read is named in one line."""
    if not store.is_file():
        raise HarnessError(f"{store}: no history store there; python -m harness history --store {store} --add SWEEP_DIR starts one")
    records = []
    for number, text in enumerate(store.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HarnessError(f"{store}:{number}: not a JSON line ({exc.msg}); remove or repair that line") from None
        version = doc.pop("harness_history", None) if isinstance(doc, dict) else None
        if not isinstance(version, int) or version > SCHEMA:
            raise HarnessError(f"{store}:{number}: history schema {version!r}, this harness reads {SCHEMA}; upgrade harness")
        try:
            records.append(Record(**doc))
        except TypeError as exc:
            raise HarnessError(f"{store}:{number}: not a history record ({exc})") from None
    return records


def series(records: Sequence[Record], variant: str, metric: str, machine: dict | None = None) -> list[tuple[Record, dict]]:
    """The runs of one variant's metric, oldest first, on one machine (the newest record's where none is given)."""
    if not records:
        return []
    machine = machine if machine is not None else records[-1].machine
    return [(r, r.variants[variant][metric]) for r in records if r.machine == machine and metric in r.variants.get(variant, {})]
