"""``advice.json``: each verified change's prediction beside what it measured, and the verdict.

A verification runs the sweep's best and the top changes in interleaved rounds, under the same
conditions (:meth:`harness.advice.plan.Plan.conditions`). Round ``r`` runs repeat ``r`` of every
job, so each change's gain is measured per round against the best of that round (drift in the
machine's speed cancels) and the median of those ratios is its measured gain. The verdict sets it
against the predicted gain:

* **slower**: more than :data:`NOISE` below the best; never shown as advice;
* **no gain**: within :data:`NOISE` of the best;
* **confirmed**: within :data:`TOLERANCE` (fraction points) of the predicted gain;
* **smaller than predicted** / **larger than predicted**: a gain, more than :data:`TOLERANCE` off;
* **failed**: its trials did not finish ok (the reason kept).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from harness.errors import HarnessError

ADVICE_FILE = "advice.json"  # in the sweep's folder, beside ceilings.json
ADVICE_DIR = "advice"  # <sweep>/advice/: the verification's trials (a sweep folder of its own)
SCHEMA_VERSION = 1
NOISE = 0.03  # a measured change within this share of the best is no gain: interleaved rounds on a busy machine move that much
TOLERANCE = 0.10  # predicted and measured gains this close (fraction points) confirm the model
GAINS = ("confirmed", "smaller than predicted", "larger than predicted")  # verdicts of a change that measured faster


@dataclass
class Checked:
    """One change, predicted and measured."""

    lever: str
    what: str
    shown: list[str]  # what differs from the best's overrides, key=value
    run: list[str]  # the overrides its verification job ran (conditions included)
    job: int  # the sweep's variant it was applied to
    label: str  # that variant's label
    predicted: float  # per-epoch samples/s predicted
    gain_predicted: float  # over the best's predicted per-epoch rate, minus 1
    model: str
    code: str
    measured: list[float] = field(default_factory=list)  # its samples/s per round (ok rounds)
    ratios: list[float] = field(default_factory=list)  # over the best's samples/s in the same round
    verdict: str = ""
    error: str = ""  # why its trials did not finish ok

    @property
    def gain(self) -> float | None:
        """The measured gain: the median over rounds of (change / best) - 1."""
        return statistics.median(self.ratios) - 1 if self.ratios else None

    @property
    def sped_up(self) -> bool:
        return self.verdict in GAINS


@dataclass
class Advice:
    """The whole file."""

    measured_at: str  # ISO 8601, local time
    best: dict  # {"job", "label", "overrides", "predicted", "model", "measured": samples/s per round}
    conditions: list[str]  # overrides every verification job ran with
    repeats: int  # interleaved rounds
    checked: list[Checked] = field(default_factory=list)
    untried: list[dict] = field(default_factory=list)  # the ranked changes not verified: lever, what, shown, predicted, gain
    notes: list[str] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def write(self, path: Path) -> Path:
        from harness.data.manifest import write_text_atomic

        return write_text_atomic(Path(path), json.dumps(asdict(self), indent=1) + "\n")

    @property
    def winner(self) -> Checked | None:
        """The change that measured the largest gain, among those that measured faster; None where none did."""
        return max((c for c in self.checked if c.sped_up), key=lambda c: c.gain or 0.0, default=None)


def verdict(gain_predicted: float, ratios: list[float]) -> str:
    """The verdict of a change measured at ``ratios`` (change / best per round) against its predicted gain."""
    if not ratios:
        return "failed"
    gain = statistics.median(ratios) - 1
    if gain < -NOISE:
        return "slower"
    if gain <= NOISE:
        return "no gain"
    if gain < gain_predicted - TOLERANCE:
        return "smaller than predicted"
    if gain > gain_predicted + TOLERANCE:
        return "larger than predicted"
    return "confirmed"


def read(path: Path) -> Advice:
    """Read ``advice.json``; a newer schema or a malformed file is a :class:`HarnessError` naming it."""
    from harness.data.manifest import read_versioned

    path = Path(path)
    try:
        data = read_versioned(path, "advice", SCHEMA_VERSION)
        known = {f.name for f in fields(Advice)}
        checked = [Checked(**{k: v for k, v in c.items() if k in {f.name for f in fields(Checked)}}) for c in data.get("checked", [])]
        return Advice(**{**{k: v for k, v in data.items() if k in known}, "checked": checked})
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise HarnessError(f"{path}: not a readable advice file ({type(exc).__name__}: {exc})") from exc
