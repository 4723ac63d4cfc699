"""The regression gate: baselines, a rank test, thresholds, and the formats CI dashboards read.

A change counts as a regression only when it is statistically significant (a two-sided
Mann-Whitney U test on per-window samples, p below ``alpha``), larger than the metric's
threshold in the bad direction (asv's rule), and larger than the smallest change the
samples can tell apart from noise: windows of one trial share that trial's luck (its
machine load, its AUTOTUNE choices), so the repeats, not the windows, say how far a rerun
of the same code can move. With one repeat on either side that bound is unknown and the
threshold alone stands.

Samples per repeat are 0.5 s windows of the measured phase (samples/s, wait %, AU %, CPU ms
per sample from the sampled process-tree CPU), pooled over repeats. In ratio mode the
per-sample rates of every variant are divided by the reference variant's median *from the
same round* (repeats run interleaved in rounds), which cancels the machine's speed and most
of its load.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from harness.errors import HarnessError

BASELINE_VERSION = 1
WINDOW_S = 0.5
# metric -> (direction, unit, default threshold, threshold kind: relative fraction or absolute points)
METRICS = {
    "samples_per_s": ("higher", "samples/s", 0.10, "relative"),
    "cpu_ms_per_sample": ("lower", "CPU ms/sample", 0.10, "relative"),
    "stall_pct": ("lower", "% of step time", 5.0, "points"),
    "au_pct": ("higher", "%", 5.0, "points"),
    "cpu_s_per_1000_samples": ("lower", "CPU s", 0.10, "relative"),
    "ttfb_s": ("lower", "s", 0.10, "relative"),
    "peak_rss_mb": ("lower", "MB", 0.10, "relative"),
}
DEFAULT_METRICS = ("samples_per_s", "cpu_ms_per_sample", "stall_pct")
RATIO_METRICS = ("samples_per_s", "cpu_ms_per_sample")  # per-sample rates: ratio mode divides them by the reference's
DETECT_Z = 2.326  # one-sided 99% normal quantile: the smallest detectable change is this many standard errors
FINGERPRINT_KEYS = ("cpu_model", "cores", "ram_gib", "gpus", "tensorflow", "torch", "torchvision", "keras", "albumentations")


class CheckError(HarnessError):
    """The check could not run (exit 2), as opposed to finding a regression (exit 1)."""


# -- samples --------------------------------------------------------------------------
def windows(steps: Dict[str, List], window_s: float = WINDOW_S, cpu: Optional[Callable[[float], Optional[float]]] = None,
            ) -> Dict[str, List[float]]:
    """Per-window samples/s, wait %, AU % and CPU ms per sample from a trial's per-step arrays.

    Args:
        cpu: cumulative CPU seconds of the trial's process tree at a time in seconds from the
            start of the measured phase (see :func:`cpu_clock`); without it, no CPU windows.
    """
    from harness.results.stats import windows as bounds

    out: Dict[str, List[float]] = {"samples_per_s": [], "stall_pct": [], "au_pct": [], "cpu_ms_per_sample": []}
    step = steps.get("step_ms", [])
    for first, last, span_ms in bounds(steps.get("t_ms", []), step, window_s):
        busy = sum(step[first : last + 1])
        if span_ms <= 0 or busy <= 0:
            continue
        samples = sum(steps["samples"][first : last + 1])
        out["samples_per_s"].append(samples / (span_ms / 1e3))
        out["stall_pct"].append(100 * sum(steps["wait_ms"][first : last + 1]) / busy)
        out["au_pct"].append(100 * sum(steps["compute_ms"][first : last + 1]) / busy)
        start = steps["t_ms"][first] / 1e3
        used = None if cpu is None else _difference(cpu(start + span_ms / 1e3), cpu(start))
        if used is not None and samples:
            out["cpu_ms_per_sample"].append(used * 1e3 / samples)
    return out


def _difference(b: Optional[float], a: Optional[float]) -> Optional[float]:
    return None if a is None or b is None else b - a


def cpu_clock(result) -> Optional[Callable[[float], Optional[float]]]:
    """The trial's process-tree CPU seconds as a function of measured-phase time (None without a sampler)."""
    from harness.monitor.summary import _at

    t, start = result.monitor.get("t"), result.timing.get("measure_start_clock")
    series = result.monitor.get("series", {}).get("tree_cpu_s")
    if not t or not series or start is None:
        return None
    return lambda when: _at(t, series, start + when)


def fingerprint(environment: Dict) -> Dict:
    packages = environment.get("packages", {})
    gpu = environment.get("gpu", {})
    return {
        "cpu_model": environment.get("cpu_model"),
        "cores": environment.get("cpu_affinity") or environment.get("cpu_logical"),
        "ram_gib": round((environment.get("ram_bytes") or 0) / 2**30),
        "gpus": [g.get("name") for g in gpu.get("gpus", [])],
        **{k: packages.get(k) for k in ("tensorflow", "torch", "torchvision", "keras", "albumentations")},
    }


def collect(root: Path) -> Dict:
    """A sweep's variants as baseline-shaped data: per repeat, window samples and summary."""
    from harness.report.data import METRICS as SUMMARY_METRICS
    from harness.report.data import load

    sweep = load(root)
    if not sweep.variants:
        raise CheckError(f"{root}: no trials found; pass a sweep folder")
    failed = [f"{v.label} repeat {t.repeat}: {t.error}" for v in sweep.variants for t in v.failed]
    variants = {}
    env = {}
    for v in sweep.variants:
        repeats = []
        for t in v.ok:
            env = env or t.environment
            w = windows(t.steps, cpu=cpu_clock(t))
            repeats.append({"round": t.timing.get("round", t.repeat),
                            "windows": {k: [round(x, 4) for x in vals] for k, vals in w.items()},
                            "summary": {k: t.summary.get(k) for k in SUMMARY_METRICS if t.summary.get(k) is not None}})
        variants[v.label] = {"overrides": v.overrides, "repeats": repeats}
    return {"variants": variants, "fingerprint": fingerprint(env), "failed": failed}


def save_baseline(root: Path, path: Path) -> Path:
    data = collect(root)
    if data["failed"]:
        raise CheckError(f"{root}: failed trials cannot be a baseline: {data['failed'][0]}")
    doc = {"harness_baseline": BASELINE_VERSION, "created": datetime.now().isoformat(timespec="seconds"),
           "sweep": str(root), "fingerprint": data["fingerprint"], "variants": data["variants"]}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return Path(path)


def load_baseline(path: Path) -> Dict:
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CheckError(f"--baseline {path}: no such file; make one with --save-baseline") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckError(f"--baseline {path}: not a readable JSON baseline ({exc})") from None
    if not isinstance(doc, dict) or doc.get("harness_baseline") != BASELINE_VERSION or not isinstance(doc.get("variants"), dict):
        raise CheckError(f"--baseline {path}: not a harness baseline (version {BASELINE_VERSION}); make one with --save-baseline")
    return doc


# -- statistics -------------------------------------------------------------------------
def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (scipy, normal approximation with tie correction)."""
    from scipy.stats import mannwhitneyu

    if not len(a) or not len(b) or len(set(a) | set(b)) == 1:
        return 1.0
    return float(mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue)


def detectable(a_repeats: Sequence[float], b_repeats: Sequence[float]) -> Optional[float]:
    """The smallest relative change these repeats can tell from run-to-run noise, or None with one repeat a side.

    The noise is the pooled standard deviation of the per-repeat medians relative to the
    baseline's; the bound is :data:`DETECT_Z` standard errors of the difference of means.
    """
    na, nb = len(a_repeats), len(b_repeats)
    if na < 2 or nb < 2:
        return None
    center = statistics.median(a_repeats)
    if not center:
        return None
    pooled = ((na - 1) * statistics.variance(a_repeats) + (nb - 1) * statistics.variance(b_repeats)) / (na + nb - 2)
    return DETECT_Z * math.sqrt(pooled) * math.sqrt(1 / na + 1 / nb) / abs(center)


@dataclass
class Verdict:
    variant: str
    metric: str
    baseline: Optional[float]
    current: Optional[float]
    change: Optional[float]  # relative (fraction) or absolute points, per the metric's threshold kind
    p: Optional[float]
    verdict: str  # ok | regressed | improved | no baseline | not enough samples
    threshold: float
    kind: str
    # the current run's samples (ratio-scaled in ratio mode): their spread, for the dashboards
    current_min: Optional[float] = None
    current_max: Optional[float] = None
    detectable: Optional[float] = None  # smallest relative change the repeats can tell from noise; None: unknown


def _samples(repeats: List[Dict], metric: str, scale: Optional[Dict[int, float]] = None) -> List[List[float]]:
    """Per repeat, the metric's window samples (or its summary value), divided by the round's scale in ratio mode."""
    out = []
    for r in repeats:
        values = r["windows"].get(metric) or ([r["summary"][metric]] if r["summary"].get(metric) is not None else [])
        if values and scale is not None:
            values = [x / _round_scale(scale, r) for x in values]
        if values:
            out.append(values)
    return out


def _round_scale(scale: Dict[int, float], repeat: Dict) -> float:
    """The reference's median in the repeat's round; the median over rounds when that round has none."""
    return scale.get(repeat.get("round", -1), scale["all"])


def _reference(doc: Dict, ratio_to: str, metric: str, side: str) -> Dict:
    ref = doc["variants"].get(ratio_to)
    if ref is None or not ref["repeats"]:
        names = ", ".join(doc["variants"])
        raise CheckError(f"--ratio-to {ratio_to}: no such variant with results in the {side}; choose one of: {names}")
    per_round = {r.get("round", i): values for i, r in enumerate(ref["repeats"])
                 for values in [_samples([r], metric)] if values}
    pooled = [x for values in per_round.values() for x in values[0]]
    if not pooled:
        return {}
    return {"all": statistics.median(pooled), **{k: statistics.median(v[0]) for k, v in per_round.items()}}


def compare(base: Dict, current: Dict, *, metrics: Sequence[str], thresholds: Dict[str, float], alpha: float,
            ratio_to: Optional[str]) -> List[Verdict]:
    """Per variant and metric: significance, threshold and the detectable change, in the metric's direction."""
    common = [k for k in current["variants"] if k in base["variants"]]
    if not common:
        raise CheckError(f"no variant of the sweep matches the baseline's ({', '.join(base['variants'])}); "
                         "compare the same experiment")
    verdicts = []
    for metric in metrics:
        scales = {"base": None, "current": None}
        if ratio_to is not None and metric in RATIO_METRICS:
            scales = {side: _reference(doc, ratio_to, metric, side) for side, doc in (("base", base), ("current", current))}
        for name in common:
            if ratio_to is not None and name == ratio_to:
                continue
            if scales["base"] == {} or scales["current"] == {}:  # never compare a ratio with an absolute figure
                verdicts.append(_verdict(name, metric, [], [], thresholds, alpha, f"no {metric} of {ratio_to} to divide by"))
                continue
            a = _samples(base["variants"][name]["repeats"], metric, scales["base"])
            b = _samples(current["variants"][name]["repeats"], metric, scales["current"])
            verdicts.append(_verdict(name, metric, a, b, thresholds, alpha))
    return sorted(verdicts, key=lambda v: common.index(v.variant))


def _verdict(name: str, metric: str, a_repeats: List[List[float]], b_repeats: List[List[float]], thresholds: Dict[str, float],
             alpha: float, missing: Optional[str] = None) -> Verdict:
    direction, _, default, kind = METRICS[metric]
    threshold = thresholds.get(metric, default)
    a, b = [x for r in a_repeats for x in r], [x for r in b_repeats for x in r]
    if not a or not b:
        why = missing or ("no baseline" if not a else "no samples")
        return Verdict(name, metric, None, None, None, None, why, threshold, kind)
    ma, mb = statistics.median(a), statistics.median(b)
    change = (mb - ma) / ma if kind == "relative" and ma else mb - ma
    mde = detectable([statistics.median(r) for r in a_repeats], [statistics.median(r) for r in b_repeats])
    if mde is not None and kind == "points":
        mde *= abs(ma)  # in points, like the change
    bar = max(threshold, mde or 0.0)
    worse = change < -bar if direction == "higher" else change > bar
    better = change > bar if direction == "higher" else change < -bar
    p = mann_whitney_p(a, b)
    if len(a) < 3 or len(b) < 3:
        verdict = "not enough samples"
    elif p < alpha and worse:
        verdict = "regressed"
    elif p < alpha and better:
        verdict = "improved"
    else:
        verdict = "ok"
    return Verdict(name, metric, ma, mb, change, p, verdict, threshold, kind, min(b), max(b), mde)


# -- output ------------------------------------------------------------------------------
def change_text(v: Verdict) -> str:
    if v.change is None:
        return "–"
    return f"{v.change:+.1%}" if v.kind == "relative" else f"{v.change:+.1f} pts"


def power_line(verdicts: List[Verdict]) -> str:
    """One line: the smallest change these samples can detect, per metric (the largest over variants)."""
    worst: Dict[str, Verdict] = {}
    for v in verdicts:
        if v.detectable is not None and (v.metric not in worst or v.detectable > worst[v.metric].detectable):
            worst[v.metric] = v
    if not worst:
        return "smallest detectable change: unknown with one repeat a side (trial.repeats >= 2 on both sides tells it)"
    parts = [f"{m} {detectable_text(v)} (threshold {v.threshold:.0%})" if v.kind == "relative" else
             f"{m} {detectable_text(v)} (threshold {v.threshold:g} pts)" for m, v in worst.items()]
    return "smallest change these repeats can tell from noise: " + ", ".join(parts)


def detectable_text(v: Verdict) -> str:
    """The smallest change the samples can detect, in the change's unit ('±4.1%', '±2.0 pts'); '–' when unknown."""
    if v.detectable is None:
        return "–"
    return f"±{v.detectable:.1%}" if v.kind == "relative" else f"±{v.detectable:.1f} pts"


def _formatter(as_ratio: bool):
    def fmt(x) -> str:
        return "–" if x is None else f"{x:.3f}" if as_ratio else f"{x:,.1f}"

    return fmt


def table(verdicts: List[Verdict], ratio: bool) -> List[str]:
    head = f"{'variant':<34} {'metric':<17} {'baseline':>10} {'current':>10} {'change':>9} {'detectable':>10} {'p':>8}  verdict"
    lines = [head, "-" * len(head)]
    for v in verdicts:
        fmt = _formatter(ratio and v.metric in RATIO_METRICS)
        p = "–" if v.p is None else f"{v.p:.1e}" if v.p < 0.001 else f"{v.p:.3f}"
        lines.append(f"{v.variant[:34]:<34} {v.metric:<17} {fmt(v.baseline):>10} {fmt(v.current):>10} {change_text(v):>9} "
                     f"{detectable_text(v):>10} {p:>8}  {v.verdict.upper() if v.verdict == 'regressed' else v.verdict}")
    return lines


def markdown(verdicts: List[Verdict], ratio: bool, alpha: float) -> str:
    bad = [v for v in verdicts if v.verdict == "regressed"]
    lines = ["## harness check: " + (f"{len(bad)} regression(s)" if bad else "no regression"), "",
             "| variant | metric | baseline | current | change | detectable | p | verdict |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for v in verdicts:
        fmt = _formatter(ratio and v.metric in RATIO_METRICS)
        p = "–" if v.p is None else f"{v.p:.2g}"
        mark = "**regressed**" if v.verdict == "regressed" else v.verdict
        lines.append(f"| {v.variant} | {v.metric} | {fmt(v.baseline)} | {fmt(v.current)} | {change_text(v)} | "
                     f"{detectable_text(v)} | {p} | {mark} |")
    lines += ["", f"A regression needs p < {alpha} (Mann-Whitney U on 0.5 s windows) and a change beyond both the threshold "
              "and the smallest change the repeats can tell from noise (detectable)."
              + (" Per-sample rates are relative to the reference variant in the same round (ratio mode)." if ratio else "")]
    return "\n".join(lines) + "\n"


def _measure(v: Verdict, ratio_to: Optional[str]) -> tuple:
    """(measure name, unit) of a verdict's value: a ratio is not samples/s, so it says what it is relative to."""
    if ratio_to is not None and v.metric in RATIO_METRICS:
        return f"{v.metric}_ratio", f"x {ratio_to}"
    return v.metric, METRICS[v.metric][1]


def github_benchmark(verdicts: List[Verdict], ratio_to: Optional[str] = None) -> Dict[str, List[Dict]]:
    """github-action-benchmark's customBiggerIsBetter / customSmallerIsBetter arrays.

    Args:
        verdicts: from :func:`compare`.
        ratio_to: the reference variant in ratio mode (``check --ratio-to``), else None.

    Returns:
        {"bigger": [...], "smaller": [...]}, entries {name, unit, value, range}; ``range`` is
        "± half the current samples' max - min", as the action shows it next to the value.
    """
    out = {"bigger": [], "smaller": []}
    for v in verdicts:
        if v.current is None:
            continue
        measure, unit = _measure(v, ratio_to)
        entry = {"name": f"{v.variant} {measure}", "unit": unit, "value": round(v.current, 4)}
        if v.current_min is not None and v.current_max is not None:
            entry["range"] = f"± {_short_number((v.current_max - v.current_min) / 2)}"
        out["bigger" if METRICS[v.metric][0] == "higher" else "smaller"].append(entry)
    return out


def bencher(verdicts: List[Verdict], ratio_to: Optional[str] = None) -> Dict:
    """Bencher Metric Format: {benchmark: {measure: {value, lower_value, upper_value}}}.

    The measure is the metric in kebab case (``samples-per-s``; ``samples-per-s-ratio`` in
    ratio mode); lower and upper values are the current samples' min and max.
    """
    out: Dict[str, Dict] = {}
    for v in verdicts:
        if v.current is None:
            continue
        metric = {"value": round(v.current, 4)}
        if v.current_min is not None and v.current_max is not None:
            metric.update(lower_value=round(v.current_min, 4), upper_value=round(v.current_max, 4))
        out.setdefault(v.variant, {})[_measure(v, ratio_to)[0].replace("_", "-")] = metric
    return out


def _short_number(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 10 else f"{x:,.1f}"
