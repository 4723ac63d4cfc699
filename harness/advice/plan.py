"""Every lever over every variant of a sweep, ranked against the sweep's best, and how to verify the top ones.

A candidate is one lever's change applied to one variant (the best, or another whose own measured
figures predict more once changed: tf.data with AUTOTUNE and one repeating iterator, against a
serial best). Its prediction is set against the best's own per-epoch rate by the same model, so
the predicted gain is a ratio of two predictions; a verification measures the same ratio in
interleaved rounds (:mod:`harness.commands.advise`). A change the sweep already measured is no
advice: its figure is in the ranking.

Verification conditions: a full epoch of warm-up, then whole measured epochs, each with its
opening restart (``trial.epochs=4``: three measured), so a trial measures the per-epoch rate the
models predict. Three, because one restart of tf.data with AUTOTUNE costs anything from 0.05 to 2 s:
with one measured epoch the quickstart's best measured 795-1,097 samples/s from round to round.
Fewer where the trial would last longer than :data:`MAX_TRIAL_S`; where even two epochs would, the
sweep's own bounds.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from harness.advice.levers import LEVERS, Change, Context, restart_key
from harness.advice.subject import Subject, per_epoch, subject
from harness.config.compose import merge_overrides, override_key

MIN_GAIN = 0.05  # a change predicted to gain less than this over the best is not advice: the trials' noise is about that size
MAX_TRIAL_S = 40.0  # a verification trial runs whole epochs where they take at most this long
MEASURED_EPOCHS = 3  # after the warm-up epoch, where they fit in MAX_TRIAL_S: their restarts' costs average out
REPEATS = 3  # interleaved rounds of a verification
SAME = ("augment", "dataset", "batch", "consumer")  # config groups a variant must share with a change's to have measured it


@dataclass
class Candidate:
    """A change applied to a variant, set against the sweep's best."""

    change: Change
    base: Subject  # the variant it is applied to
    run: list[str]  # the overrides a verification job runs: the variant's, with the change's applied
    shown: list[str]  # what differs from the best's overrides, key=value
    gain: float  # predicted over the best's predicted per-epoch rate, minus 1

    @property
    def text(self) -> str:
        return " ".join(self.shown)


@dataclass
class Plan:
    best: Subject
    best_rate: float  # the best's own per-epoch rate, by the same model as the candidates'
    best_model: str  # where that rate comes from
    candidates: list[Candidate] = field(default_factory=list)  # ranked, the largest predicted gain first
    measured: list[str] = field(default_factory=list)  # changes the sweep measured already, with where

    def top(self, n: int) -> list[Candidate]:
        return self.candidates[:n]

    def conditions(self, chosen: list[Candidate]) -> list[str]:
        """Overrides every verification job gets: a warm-up epoch and up to three measured epochs, as many as fit in time."""
        n, size = self.best.samples_per_epoch, self.best.batch
        slowest = min([self.best_rate] + [c.base.rate for c in chosen if c.base.rate > 0])
        if n // size < 2 or not slowest or 2 * n / slowest > MAX_TRIAL_S:
            return []
        epochs = min(1 + MEASURED_EPOCHS, int(MAX_TRIAL_S * slowest / n))  # the warm-up epoch and the measured ones
        return [f"trial.warmup_steps={n // size}", f"trial.epochs={epochs}", "trial.seconds=null", "trial.steps=null"]


def context(sweep, subjects: list[Subject]) -> Context:
    """The sweep-wide facts the levers read: its ceilings, each family's restart cost, the machine's memory."""
    costs: dict[str, list[float]] = {}
    for s in subjects:
        if s.restart_s is not None:
            costs.setdefault(restart_key(s), []).append(s.restart_s)
    ram = next((t.environment.get("ram_bytes") for v in sweep.variants for t in v.ok if t.environment.get("ram_bytes")), None)
    return Context(sweep.ceilings, {k: statistics.median(v) for k, v in costs.items()}, ram)


def plan(sweep, job: int | None = None) -> Plan | None:
    """The ranked candidates of a loaded sweep (:class:`harness.results.sweep.Sweep`), or None without an ok variant.

    Args:
        job: plan for this variant alone, against its own rate (the diagnosis's next step for it);
            None: every variant's changes against the sweep's best.
    """
    from harness.results.sweep import cores_of

    target = sweep.best if job is None else next((v for v in sweep.variants if v.job == job and v.ok), None)
    if target is None:
        return None
    subjects = [s for v in sweep.variants for s in [subject(v, cores_of(v))] if s is not None]
    ctx = context(sweep, subjects)
    best = next(s for s in subjects if s.job == target.job)
    cost, where = ctx.restart_of(best)
    best_rate = per_epoch(best.capped(best.steady), cost, best.samples_per_epoch)
    model = f"its steady state {best.steady:,.0f} samples/s with {cost:.2f} s per epoch restart ({where})"
    out = Plan(best, best_rate, model)
    found: dict[str, Candidate] = {}
    here = _environment(best.overrides)
    for s in [s for s in subjects if _environment(s.overrides) == here] if job is None else [best]:
        for lever in LEVERS.values():
            for change in lever(s, ctx):
                _consider(out, found, s, change, sweep)
    out.candidates = sorted((c for c in found.values() if c.gain >= MIN_GAIN), key=lambda c: -c.change.predicted)
    return out


ENVIRONMENT = ("storage",)  # where the data lives is the user's situation, not a knob: advice never moves it


def _environment(overrides: list[str]) -> dict[str, str]:
    """The overrides of a variant that set its environment (``storage=...``, ``storage.open_ms=...``)."""
    return {override_key(o): o.split("=", 1)[-1] for o in overrides if override_key(o).split(".")[0] in ENVIRONMENT}


def _consider(out: Plan, found: dict[str, Candidate], s: Subject, change: Change, sweep) -> None:
    """Keep the change where no variant measured it and it predicts more than the same change on another variant."""
    twin = _measured(s, change, sweep)
    if twin is not None:
        out.measured.append(f"{change.what} on {s.label}: measured as {twin.label} ({twin.samples_per_s:,.0f} samples/s)")
        return
    run = merge_overrides(s.overrides, change.changes)
    shown = _difference(out.best.overrides, run)
    gain = change.predicted / out.best_rate - 1 if out.best_rate > 0 else 0.0
    known = found.get(change.what)
    if known is None or change.predicted > known.change.predicted:
        found[change.what] = Candidate(change, s, run, shown, gain)


def _difference(best: list[str], run: list[str]) -> list[str]:
    """The overrides of ``run`` that the best's do not have as they are (new keys, other values)."""
    have = {override_key(o): o.split("=", 1)[-1] for o in best}
    return [o for o in run if have.get(override_key(o)) != o.split("=", 1)[-1]]


def _norm(value) -> str:
    text = "none" if value is None else str(value).lower()
    return "none" if text == "null" else text


def _measured(s: Subject, change: Change, sweep):
    """The variant of the sweep whose config is the changed one (loader, augment, epoch mode), or None."""
    wanted = {k: _norm(v) for k, v in (o.split("=", 1) for o in change.changes)}
    for v in sweep.variants:
        if not v.ok:
            continue
        config = v.ok[0].config
        same = all(_norm(_get(config, k)) == value for k, value in wanted.items())
        rest = {k: config.get(k) for k in SAME} == {k: s.config.get(k) for k in SAME}
        others = _without(config.get("loader", {}), wanted) == _without(s.loader, wanted)
        if (
            same
            and rest
            and others
            and _norm(_get(config, "trial.epoch_mode")) == _norm(wanted.get("trial.epoch_mode", _get(s.config, "trial.epoch_mode")))
        ):
            return v
    return None


def _get(config: dict, key: str):
    node: Any = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _without(loader: dict, wanted: dict) -> dict:
    """A loader node without the keys a change sets: the rest must match for a variant to have measured it."""
    return {k: _norm(v) for k, v in loader.items() if f"loader.{k}" not in wanted}
