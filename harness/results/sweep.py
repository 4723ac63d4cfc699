"""A sweep's results as variants: repeats aggregated, ranked, bounded by their ceilings.

A *variant* is one job of the sweep (one combination of overrides); its repeats are
summarized by the median, with min, max and the coefficient of variation as the spread,
and a flag when the repeats fall into two speeds. Everything here is plain Python over
the trials' ``result.json`` files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.results import bounds as roofline
from harness.results.ceilings import CEILINGS_FILE, Ceilings
from harness.results.metrics import REPORT_METRICS
from harness.results.table import override_columns, scan, status_word

UNSTABLE_CV = 0.10  # sample std / mean of the repeats' samples/s above this flags a variant unstable
BIMODAL_MIN_REPEATS = 4  # two clusters of at least two repeats each
BIMODAL_GAP_RATIO = 3.0  # the gap between the clusters against the wider cluster's own range
BIMODAL_GAP_MEDIAN = 0.10  # and against the median: smaller gaps are noise, not two modes
# TensorFlow profiler's input-bound bands: share of step time spent waiting for input
BANDS = ((5.0, "not input-bound"), (20.0, "moderately input-bound"), (math.inf, "highly input-bound"))


def band(stall_pct: float | None) -> str:
    if stall_pct is None or (isinstance(stall_pct, float) and math.isnan(stall_pct)):
        return "unknown"
    return next(name for limit, name in BANDS if stall_pct < limit)


@dataclass
class Variant:
    job: int
    label: str  # the overrides that tell it apart from the other jobs
    overrides: dict[str, str]
    trials: list = field(default_factory=list)  # TrialResult, ok or not
    metrics: dict[str, float | None] = field(default_factory=dict)  # medians over ok repeats
    spread: dict[str, float] = field(default_factory=dict)  # samples/s min, max, repeats
    cv: float | None = None  # samples/s sample std / mean over ok repeats, a fraction; None below 2 repeats
    unstable: bool = False  # cv above UNSTABLE_CV
    modes: tuple[float, float] | None = None  # median samples/s of the slow and fast cluster, when bimodal
    speedup: float | None = None
    bounds: roofline.Bounds | None = None  # its ceilings and how close it comes to the lowest (ok variants only)
    same_data_verdict: str = ""  # the ok repeats' same-data verdicts, "/"-joined ("complete", "complete/differs")

    @property
    def ok(self) -> list:
        return [t for t in self.trials if t.status == "ok"]

    @property
    def samples_per_s(self) -> float:
        """The median samples/s of the ok repeats; ask only a variant with ok repeats (scan drops ok results without it)."""
        rate = self.metrics["samples_per_s"]
        assert rate is not None, f"job {self.job} has no ok repeat with samples/s"
        return rate

    @property
    def failed(self) -> list:
        """Every trial that did not finish ok: failed, timed out, too short or interrupted."""
        return [t for t in self.trials if t.status != "ok"]

    def status_text(self) -> str:
        """'2/3 ok, 1 too short': the repeats by status, so a stopped or too short trial is not called failed."""
        counts: dict[str, int] = {}
        for t in self.failed:
            counts[t.status] = counts.get(t.status, 0) + 1
        return ", ".join([f"{len(self.ok)}/{len(self.trials)} ok"] + [f"{n} {status_word(s)}" for s, n in counts.items()])

    @property
    def bimodal(self) -> bool:
        return self.modes is not None


@dataclass
class Sweep:
    root: Path
    variants: list[Variant]
    bench: list = field(default_factory=list)  # augbench results
    swept: list[str] = field(default_factory=list)  # override keys that differ between jobs
    baseline: Variant | None = None
    best: Variant | None = None
    ceiling_samples_per_s: float | None = None
    baseline_given: bool = False  # chosen with report.baseline rather than the sweep's first variant
    skipped: list[str] = field(default_factory=list)  # one line per result file that could not be read, naming it
    planned: set | None = None  # (job, repeat) of every trial schedule.json lists; None without a schedule
    incomplete: str | None = None  # why the sweep is incomplete, in words; None when it is complete
    check: dict | None = None  # the last check's verdicts as the report shows them (report.details.read_check)
    ceilings: Ceilings | None = None  # ceilings.json: the CPU and I/O ceilings measured after the trials; None without one
    ceilings_error: str | None = None  # why ceilings.json could not be read, where it could not
    mismeasured: list[str] = field(default_factory=list)  # ceilings a measured steady state beat, one line each

    @property
    def ranked(self) -> list[Variant]:
        ok = sorted((v for v in self.variants if v.ok), key=lambda v: -v.samples_per_s)
        return ok + [v for v in self.variants if not v.ok]

    def trials(self) -> list:
        return [t for v in self.variants for t in v.trials]


def _median(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v)))
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


METRICS = REPORT_METRICS  # aggregated per variant (harness.results.metrics)


def cv(values: Sequence[float]) -> float | None:
    """Coefficient of variation: sample standard deviation / mean, or None below two values or a mean <= 0."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    if mean <= 0:
        return None
    var = sum((x - mean) ** 2 for x in values) / (len(values) - 1)
    return math.sqrt(var) / mean


def two_modes(values: Sequence[float]) -> tuple[list[float], list[float]] | None:
    """The repeats split into a slow and a fast cluster, or None when they are one cluster.

    Rule: sort the values and cut at the largest gap between neighbours. They are two
    clusters when there are at least ``BIMODAL_MIN_REPEATS`` values, each side has at
    least two, the gap exceeds ``BIMODAL_GAP_RATIO`` times the wider side's own range
    (max - min), and the gap exceeds ``BIMODAL_GAP_MEDIAN`` of the median. So
    [900, 910, 1500, 1520] is bimodal; [990, 1000, 1005, 1010] is not.

    Args:
        values: one number per repeat (samples/s).

    Returns:
        (slow cluster, fast cluster), each sorted, or None.
    """
    ordered = sorted(values)
    if len(ordered) < BIMODAL_MIN_REPEATS:
        return None
    gaps = [b - a for a, b in zip(ordered, ordered[1:])]
    cut = max(range(len(gaps)), key=gaps.__getitem__) + 1
    low, high = ordered[:cut], ordered[cut:]
    if min(len(low), len(high)) < 2:
        return None
    gap = gaps[cut - 1]
    wider = max(low[-1] - low[0], high[-1] - high[0])
    if gap > BIMODAL_GAP_RATIO * wider:
        median = _median(ordered)
        assert median is not None  # at least BIMODAL_MIN_REPEATS values, not all NaN: the gap is a number
        if gap > BIMODAL_GAP_MEDIAN * median:
            return low, high
    return None


def load(root: Path, baseline: str | None = None, *, ceilings: Ceilings | None = None) -> Sweep:
    """Read every result under ``root`` and build the ranked variants with their ceilings.

    ``ceilings``: another folder's (a verification's trials share their sweep's); by default ``root/ceilings.json``.

    Unreadable result files are left out and named in ``Sweep.skipped``; the sweep is marked
    incomplete when schedule.json plans trials that have no result, or a trial was interrupted.
    """
    root = Path(root)
    found = scan(root)
    by_job: dict[int, Variant] = {}
    bench = []
    for _, result in found.results:
        if result.kind == "augbench":
            bench.append(result)
            continue
        variant = by_job.get(result.job)
        if variant is None:
            variant = by_job[result.job] = Variant(result.job, "", override_columns(result.overrides))
        variant.trials.append(result)
    variants = [by_job[k] for k in sorted(by_job)]
    swept = _swept_keys(variants)
    for v in variants:
        v.label = _label(v, swept)
        _aggregate(v)
    sweep = Sweep(root, variants, bench, swept, baseline_given=baseline is not None, skipped=found.skipped_lines())
    sweep.planned = _planned(root, sweep.skipped)
    sweep.incomplete = incomplete(sweep)
    sweep.ceiling_samples_per_s = _ceiling(variants)
    if ceilings is None:
        _ceilings(sweep)
    else:
        sweep.ceilings = ceilings
    _rank(sweep, baseline)
    for v in variants:
        if v.ok:
            v.bounds = roofline.of_variant(v.ok, v.samples_per_s, v.metrics.get("h2d_ms"), sweep.ceilings)
    sweep.mismeasured = roofline.refute(variants)
    return sweep


SCHEDULE_FILE = "schedule.json"  # launch.SCHEDULE_FILE: {"seed": ..., "rounds": [[job, ...], ...]}, round r = repeat r


def _planned(root: Path, skipped: list[str]) -> set | None:
    """(job, repeat) of every trial the sweep's schedule.json lists; None without one (augbench, older sweeps)."""
    import json

    path = root / SCHEDULE_FILE
    if not path.is_file():
        return None
    try:
        rounds = json.loads(path.read_text())["rounds"]
        return {(int(job), r) for r, jobs in enumerate(rounds) for job in jobs if not isinstance(job, bool)}
    except (OSError, ValueError, KeyError, TypeError) as exc:  # a schedule is advice: the results still report
        skipped.append(f"skipped {path}: not a readable schedule ({type(exc).__name__}: {exc}); completeness unknown")
        return None


def _ceilings(sweep: Sweep) -> None:
    """Put the sweep's ceilings.json on ``sweep.ceilings``; an unreadable one is named in ``ceilings_error``.

    Not in ``skipped``: the ceilings are advice, and ``check`` refuses to judge a sweep with skipped files.
    """
    from harness.errors import HarnessError
    from harness.results.ceilings import read

    path = Path(sweep.root) / CEILINGS_FILE
    if path.is_file():
        try:
            sweep.ceilings = read(path)
        except HarnessError as exc:
            sweep.ceilings_error = str(exc)


def incomplete(sweep: Sweep) -> str | None:
    """'3 of 8 planned trials finished (the sweep was interrupted)', or None for a complete sweep."""
    trials = sweep.trials()
    interrupted = sum(t.status == "interrupted" for t in trials)
    if sweep.planned is None:
        return f"{interrupted} trial(s) were interrupted (the sweep was stopped)" if interrupted else None
    finished = len(sweep.planned & {(t.job, t.repeat) for t in trials if t.status != "interrupted"})
    if finished == len(sweep.planned) and not interrupted:
        return None
    why = (
        "the sweep was interrupted"
        if interrupted
        else "some result files are unreadable"
        if sweep.skipped
        else "the sweep was stopped, crashed, or is still running"
    )
    return f"{finished} of {len(sweep.planned)} planned trials finished ({why})"


def _swept_keys(variants: list[Variant]) -> list[str]:
    keys: list[str] = []
    for v in variants:
        keys.extend(k for k in v.overrides if k not in keys)
    return [k for k in keys if len({v.overrides.get(k) for v in variants}) > 1]


def _label(v: Variant, swept: list[str]) -> str:
    parts = []
    for key in swept:
        value = v.overrides.get(key, "(default)")
        parts.append(value if key.startswith("experiment/") else f"{key.split('.')[-1]}={value}")
    return " ".join(parts) or f"job {v.job}"


def _aggregate(v: Variant) -> None:
    ok = v.ok
    for metric in METRICS:
        v.metrics[metric] = _median([t.summary.get(metric) for t in ok]) if ok else None
    if ok:
        rates = [t.summary["samples_per_s"] for t in ok]
        v.spread = {"min": min(rates), "max": max(rates), "repeats": len(rates)}
        v.cv = cv(rates)
        v.unstable = v.cv is not None and v.cv > UNSTABLE_CV
        modes = two_modes(rates)
        if modes:
            slow, fast = _median(modes[0]), _median(modes[1])
            assert slow is not None and fast is not None  # two_modes' clusters hold two or more values each
            v.modes = (slow, fast)
        else:
            v.modes = None
        steps = [t.steps for t in ok if t.steps.get("step_ms")]
        for part in ("wait", "h2d", "compute"):
            per_trial = [sum(s[f"{part}_ms"]) / len(s[f"{part}_ms"]) for s in steps if s.get(f"{part}_ms")]
            v.metrics[f"{part}_ms"] = _median(per_trial)
        verdicts = sorted({t.same_data.get("verdict", "") for t in ok})
        v.same_data_verdict = "/".join(verdicts)


def _ceiling(variants: list[Variant]) -> float | None:
    """What the consumer alone could take: batch size / (step + copy) time, from the trials' own figures."""
    rates = []
    for v in variants:
        for t in v.ok:
            size = t.config.get("batch", {}).get("size")
            step = t.config.get("consumer", {}).get("step_ms")
            if size and step:
                h2d = v.metrics.get("h2d_ms") or 0.0
                rates.append(size / ((step + h2d) / 1000.0))
    return _median(rates)


def _rank(sweep: Sweep, baseline: str | None) -> None:
    ok = [v for v in sweep.variants if v.ok]
    if not ok:
        return
    sweep.best = max(ok, key=lambda v: v.samples_per_s)
    # the lowest job number: a sweep lists the pipeline as it stands first, the changes after it
    sweep.baseline = _chosen(ok, baseline) if baseline is not None else ok[0]
    base = sweep.baseline.metrics["samples_per_s"]
    for v in ok:
        v.speedup = v.samples_per_s / base if base else None


def _chosen(ok: list[Variant], baseline: str) -> Variant:
    """The variant ``report.baseline`` names: by job number, else label, else an override value only it has."""
    wanted = str(baseline)
    # job numbers first: "1" is also the value of overrides every variant shares (trial.seconds=1)
    for matches in (lambda v: str(v.job) == wanted, lambda v: v.label == wanted, lambda v: wanted in v.overrides.values()):
        found = [v for v in ok if matches(v)]
        if len(found) == 1:
            return found[0]
    from harness.errors import HarnessError

    labels = ", ".join(f"{v.job} ({v.label})" for v in ok)
    raise HarnessError(
        f"report.baseline={baseline}: no single ok variant by that job number, label or override value; choose one of: {labels}"
    )


def baseline_text(sweep: Sweep) -> str:
    """Which variant the speed-ups are against, and why: "speed-up vs job 0 (...), the sweep's first variant; ..."."""
    base = sweep.baseline
    if base is None:
        return "no speed-up: no variant finished"
    text = f"speed-up vs job {base.job} ({base.label})"
    if sweep.baseline_given:
        return text + ", chosen with report.baseline"
    return text + ", the sweep's first variant; choose another with report.baseline=JOB or a label"


def cores_of(v: Variant) -> int | None:
    """The cores the variant's trials recorded (their affinity, else the machine's logical CPUs)."""
    for t in v.ok:
        cores = t.environment.get("cpu_affinity") or t.environment.get("cpu_logical")
        if cores:
            return int(cores)
    return None
