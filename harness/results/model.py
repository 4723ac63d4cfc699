"""The trial result file, ``result.json``: one per trial, versioned.

Readers refuse files newer than they understand and say so; older files are migrated
here when the schema changes. The trial writes the file; the parent that supervised it
writes its own facts beside it (``supervisor.json``, see :mod:`harness.trial.protocol`),
and :func:`read_result` merges the two into the one result every reader sees.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.trial.protocol import RESULT_FILE as RESULT_FILE
from harness.trial.protocol import Supervision, read_supervision

SCHEMA_VERSION = 1
# too_short: it ran but measured too little to judge (the reason is in error);
# interrupted: SIGTERM / SIGINT stopped it; a sweep keeps every finished result beside it.
STATUSES = ("ok", "failed", "timeout", "too_short", "interrupted")


@dataclass
class TrialResult:
    status: str  # one of STATUSES
    config: dict[str, Any]  # the resolved config, as composed
    overrides: list[str]  # the job's overrides, as given to Hydra
    job: int  # Hydra job number within the sweep
    repeat: int  # repeat index within the job
    error: str | None = None  # one-line reason when status is not ok
    traceback: str | None = None  # full traceback or log tail, for bugs
    environment: dict[str, Any] = field(default_factory=dict)  # machine, versions, commit
    dataset: dict[str, Any] = field(default_factory=dict)  # what was read
    loader: dict[str, Any] = field(default_factory=dict)  # what the loader built
    consumer: dict[str, Any] = field(default_factory=dict)  # device and how it was emulated
    bound: dict[str, Any] = field(default_factory=dict)  # what ended the measured phase
    steps: dict[str, list] = field(default_factory=dict)  # per-step arrays of the measured phase
    epochs: dict[str, Any] = field(default_factory=dict)  # per-epoch delivery counts
    same_data: dict[str, Any] = field(default_factory=dict)  # did every epoch deliver the dataset, once?
    threads: dict[str, Any] = field(default_factory=dict)  # thread pools as asked and as in force
    summary: dict[str, Any] = field(default_factory=dict)  # headline metrics
    overhead: dict[str, Any] = field(default_factory=dict)  # the harness's own costs
    timing: dict[str, Any] = field(default_factory=dict)  # start, end, durations of phases
    kind: str = "trial"  # trial: a loader feeding the consumer | augbench: one-thread op timings
    augment: dict[str, Any] = field(default_factory=dict)  # the augment pipeline as run (and augbench figures)
    monitor: dict[str, Any] = field(default_factory=dict)  # sampled CPU / memory / I/O / GPU series and summary (supervisor.json's)
    ranks: dict[str, Any] = field(default_factory=dict)  # consumer.ranks > 1: per-rank figures, aggregate, straggler cost
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, folder: Path) -> Path:
        from harness.data.manifest import write_json_atomic

        path = Path(folder) / RESULT_FILE
        write_json_atomic(path, self.to_dict())
        return path


# the monitor's figures that join the trial's own in ``summary`` (and so results.csv)
MONITOR_SUMMARY = (
    "cpu_tree_mean_pct",
    "cpu_tree_max_pct",
    "cpu_s_per_1000_samples",
    "peak_rss_mb",
    "pss_mb",
    "disk_read_mb_s",
    "gpu_util_mean_pct",
    "gpu_idle_pct",
    "gpu_power_mean_w",
)


def read_result(path: Path, *, supervised: bool = True) -> TrialResult:
    """Load a ``result.json`` with the parent's ``supervisor.json`` beside it merged in.

    Raise :class:`HarnessError` naming the file if either is unreadable, malformed or too
    new. Malformed: not a JSON object, a field without a default missing, a field of another
    type than :class:`TrialResult` declares (``job`` a string, ``steps`` a list), or a
    status outside :data:`STATUSES`. Readers can then index the fields without a traceback.

    Args:
        supervised: merge ``supervisor.json``; ``False`` gives the trial's file alone.
    """
    result = _read_trial(path)
    facts = read_supervision(Path(path).parent) if supervised else None
    if facts is not None:
        merge_supervision(result, facts)
    return result


def merge_supervision(result: TrialResult, facts: Supervision) -> None:
    """Put the sampler's series, their summary and the sampler's cost, as the parent recorded them, into ``result``.

    A throttled storage's facts go under ``overhead["storage"]``; where its server died during the
    trial, the trial failed for that reason, whatever the loader made of the dead mount.
    """
    if facts.storage:
        result.overhead["storage"] = facts.storage
        if facts.storage.get("error"):
            result.status, result.error = "failed", facts.storage["error"]
    monitor = facts.monitor
    if not monitor:
        return
    result.monitor = monitor
    result.summary.update({k: monitor["summary"].get(k) for k in MONITOR_SUMMARY})
    result.overhead["sampler"] = monitor["overhead"]


def _read_trial(path: Path) -> TrialResult:
    import typing
    from dataclasses import MISSING, fields
    from types import UnionType

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or bad UTF-8
        raise HarnessError(f"{path}: not a readable result file ({exc})") from exc
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise HarnessError(f"{path}: no schema_version; not a harness result file")
    if version > SCHEMA_VERSION:
        raise HarnessError(f"{path}: result schema {version} is newer than this harness reads ({SCHEMA_VERSION}); upgrade harness")
    hints = typing.get_type_hints(TrialResult)
    problems = [f"no {f.name}" for f in fields(TrialResult) if f.name not in data and f.default is MISSING and f.default_factory is MISSING]
    for name, hint in hints.items():
        if name not in data:
            continue
        union = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, UnionType) else (hint,)
        types = tuple(typing.get_origin(t) or t for t in union)
        if not isinstance(data[name], types) or (isinstance(data[name], bool) and bool not in types):
            problems.append(f"{name} is {type(data[name]).__name__}")
    if not problems and data["status"] not in STATUSES:
        problems.append(f"status {data['status']!r} is none of {', '.join(STATUSES)}")
    if problems:
        raise HarnessError(f"{path}: malformed result file: {'; '.join(problems)}")
    return TrialResult(**{k: v for k, v in data.items() if k in hints})
