"""A sweep's results as variants: repeats aggregated, ranked, diagnosed.

A *variant* is one job of the sweep (one combination of overrides); its repeats are
summarized by the median, with min and max as the spread. Everything here is plain
pandas over ``results.csv`` rows and the trials' ``result.json`` files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from harness.results.model import read_result
from harness.results.table import find_results, override_columns

UNSTABLE_SPREAD = 0.15  # (max - min) / median of repeats above this flags a variant unstable
# TensorFlow profiler's input-bound bands: share of step time spent waiting for input
BANDS = ((5.0, "not input-bound"), (20.0, "moderately input-bound"), (math.inf, "highly input-bound"))


def band(stall_pct: Optional[float]) -> str:
    if stall_pct is None or (isinstance(stall_pct, float) and math.isnan(stall_pct)):
        return "unknown"
    return next(name for limit, name in BANDS if stall_pct < limit)


@dataclass
class Variant:
    job: int
    label: str  # the overrides that tell it apart from the other jobs
    overrides: Dict[str, str]
    trials: List = field(default_factory=list)  # TrialResult, ok or not
    metrics: Dict[str, Optional[float]] = field(default_factory=dict)  # medians over ok repeats
    spread: Dict[str, float] = field(default_factory=dict)  # samples/s min, max
    unstable: bool = False
    speedup: Optional[float] = None
    diagnosis: str = ""

    @property
    def ok(self) -> List:
        return [t for t in self.trials if t.status == "ok"]

    @property
    def failed(self) -> List:
        return [t for t in self.trials if t.status != "ok"]


@dataclass
class Sweep:
    root: Path
    variants: List[Variant]
    bench: List = field(default_factory=list)  # augbench results
    swept: List[str] = field(default_factory=list)  # override keys that differ between jobs
    baseline: Optional[Variant] = None
    best: Optional[Variant] = None
    ceiling_samples_per_s: Optional[float] = None
    baseline_given: bool = False  # chosen with report.baseline rather than the slowest variant

    @property
    def ranked(self) -> List[Variant]:
        ok = sorted((v for v in self.variants if v.ok), key=lambda v: -v.metrics["samples_per_s"])
        return ok + [v for v in self.variants if not v.ok]

    def trials(self) -> List:
        return [t for v in self.variants for t in v.trials]


def _median(values: List[float]) -> Optional[float]:
    values = sorted(v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v)))
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


METRICS = ("samples_per_s", "stall_pct", "au_pct", "h2d_pct", "ttfb_s", "cpu_tree_mean_pct", "cpu_s_per_1000_samples",
           "peak_rss_mb", "gpu_util_mean_pct", "gpu_power_mean_w")


def load(root: Path, baseline: Optional[str] = None) -> Sweep:
    """Read every result under ``root`` and build the ranked, diagnosed variants."""
    root = Path(root)
    by_job: Dict[int, Variant] = {}
    bench = []
    for path in find_results(root):
        result = read_result(path)
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
    sweep = Sweep(root, variants, bench, swept, baseline_given=baseline is not None)
    sweep.ceiling_samples_per_s = _ceiling(variants)
    _rank(sweep, baseline)
    for v in variants:
        v.diagnosis = diagnose(v, sweep)
    return sweep


def _swept_keys(variants: List[Variant]) -> List[str]:
    keys: List[str] = []
    for v in variants:
        keys.extend(k for k in v.overrides if k not in keys)
    return [k for k in keys if len({v.overrides.get(k) for v in variants}) > 1]


def _label(v: Variant, swept: List[str]) -> str:
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
        median = v.metrics["samples_per_s"]
        v.unstable = len(rates) > 1 and median > 0 and (max(rates) - min(rates)) / median > UNSTABLE_SPREAD
        steps = [t.steps for t in ok if t.steps.get("step_ms")]
        for part in ("wait", "h2d", "compute"):
            per_trial = [sum(s[f"{part}_ms"]) / len(s[f"{part}_ms"]) for s in steps if s.get(f"{part}_ms")]
            v.metrics[f"{part}_ms"] = _median(per_trial)
        verdicts = sorted({t.same_data.get("verdict", "") for t in ok})
        v.metrics["same_data"] = "/".join(verdicts)


def _ceiling(variants: List[Variant]) -> Optional[float]:
    """What the consumer alone could take: batch size / (step + copy) time, from the trials' own figures."""
    rates = []
    for v in variants:
        for t in v.ok:
            size = t.config.get("batch", {}).get("size")
            step = t.config.get("consumer", {}).get("step_ms")
            if size and step:
                h2d = (v.metrics.get("h2d_ms") or 0.0)
                rates.append(size / ((step + h2d) / 1000.0))
    return _median(rates)


def _rank(sweep: Sweep, baseline: Optional[str]) -> None:
    ok = [v for v in sweep.variants if v.ok]
    if not ok:
        return
    sweep.best = max(ok, key=lambda v: v.metrics["samples_per_s"])
    chosen = None
    if baseline is not None:
        wanted = str(baseline)
        chosen = next((v for v in ok if wanted in (str(v.job), v.label) or wanted in v.overrides.values()), None)
        if chosen is None:
            from harness.errors import HarnessError

            labels = ", ".join(f"{v.job} ({v.label})" for v in ok)
            raise HarnessError(f"report.baseline={baseline}: no ok variant by that job number or label; choose one of: {labels}")
    sweep.baseline = chosen or min(ok, key=lambda v: v.metrics["samples_per_s"])
    base = sweep.baseline.metrics["samples_per_s"]
    for v in ok:
        v.speedup = v.metrics["samples_per_s"] / base if base else None


def diagnose(v: Variant, sweep: Sweep) -> str:
    """Plain words: how input-bound the variant is (TF profiler's bands) and what holds it back."""
    if not v.ok:
        return f"no repeat finished: {v.failed[0].error}"
    m = v.metrics
    stall = m["stall_pct"]
    words = [f"{band(stall).capitalize()}: the accelerator waited for input {stall:.0f}% of the time"]
    cores = _cores(v)
    cpu = m.get("cpu_tree_mean_pct")
    if stall is not None and stall >= 5:
        if cpu is not None and cores:
            busy = cpu / (cores * 100)
            if busy > 0.85:
                words.append(f"its processes kept all {cores} cores busy ({cpu:.0f}% of one core), so it is CPU-bound: "
                             "cheaper decoding, smaller images or a cache help; more workers do not")
            elif busy < 0.6:
                words.append(f"its processes used only {cpu:.0f}% of {cores * 100}% of CPU, so something serial limits it "
                             "(one thread doing the work, no prefetch, or I/O); its trace.json shows where the wait falls")
            else:
                words.append(f"its processes used {cpu:.0f}% of {cores * 100}% of CPU")
        if m.get("ttfb_s") and m["ttfb_s"] > 2:
            words.append(f"the first batch took {m['ttfb_s']:.1f} s")
    else:
        words.append("a faster loader would not speed training up; the accelerator is the limit")
    if sweep.baseline is not None and v is not sweep.baseline and v.speedup:
        words.append(f"{v.speedup:.2f}x the baseline")
    if v.unstable:
        words.append(f"unstable: repeats ranged {v.spread['min']:.0f}-{v.spread['max']:.0f} samples/s")
    problems = sorted({p for t in v.ok for p in t.same_data.get("problems", [])})
    if problems:
        words.append("same-data check: " + "; ".join(problems))
    return "; ".join(words) + "."


def _cores(v: Variant) -> Optional[int]:
    for t in v.ok:
        cores = t.environment.get("cpu_affinity") or t.environment.get("cpu_logical")
        if cores:
            return int(cores)
    return None
