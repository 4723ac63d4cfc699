"""The regression gate: baselines, a rank test, thresholds, and the formats CI dashboards read.

A change counts as a regression only when it is both statistically significant (a
two-sided Mann-Whitney U test on per-window samples, p below ``alpha``) and larger than
the metric's threshold in the bad direction: asv's rule, which keeps noisy CI machines
from raising false alarms.

Samples per repeat are 0.5 s windows of the measured phase (samples/s and wait % per
window), pooled over repeats. In ratio mode every variant's windows are divided by the
median of a reference variant measured in the same run, which cancels the machine's speed.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from harness.errors import HarnessError

BASELINE_VERSION = 1
WINDOW_S = 0.5
# metric -> (direction, unit, default threshold, threshold kind: relative fraction or absolute points)
METRICS = {
    "samples_per_s": ("higher", "samples/s", 0.10, "relative"),
    "stall_pct": ("lower", "% of step time", 5.0, "points"),
    "au_pct": ("higher", "%", 5.0, "points"),
    "cpu_s_per_1000_samples": ("lower", "CPU s", 0.10, "relative"),
    "ttfb_s": ("lower", "s", 0.10, "relative"),
    "peak_rss_mb": ("lower", "MB", 0.10, "relative"),
}
DEFAULT_METRICS = ("samples_per_s", "stall_pct")
RATIO_METRIC = "samples_per_s"  # the one metric that ratio mode divides by the reference variant's median
FINGERPRINT_KEYS = ("cpu_model", "cores", "ram_gib", "gpus", "tensorflow", "torch", "torchvision", "keras", "albumentations")


class CheckError(HarnessError):
    """The check could not run (exit 2), as opposed to finding a regression (exit 1)."""


# -- samples --------------------------------------------------------------------------
def windows(steps: Dict[str, List], window_s: float = WINDOW_S) -> Dict[str, List[float]]:
    """Per-window samples/s, wait % and AU % from a trial's per-step arrays (0.5 s windows)."""
    from harness.results.stats import windows as bounds

    out: Dict[str, List[float]] = {"samples_per_s": [], "stall_pct": [], "au_pct": []}
    step = steps.get("step_ms", [])
    for first, last, span_ms in bounds(steps.get("t_ms", []), step, window_s):
        busy = sum(step[first : last + 1])
        if span_ms <= 0 or busy <= 0:
            continue
        out["samples_per_s"].append(sum(steps["samples"][first : last + 1]) / (span_ms / 1e3))
        out["stall_pct"].append(100 * sum(steps["wait_ms"][first : last + 1]) / busy)
        out["au_pct"].append(100 * sum(steps["compute_ms"][first : last + 1]) / busy)
    return out


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
            w = windows(t.steps)
            repeats.append({"windows": {k: [round(x, 4) for x in vals] for k, vals in w.items()},
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
    """Two-sided p-value of the Mann-Whitney U test, normal approximation with tie correction."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return 1.0
    ranked = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    ranks = [0.0] * len(ranked)
    i, ties = 0, 0.0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        size = j - i + 1
        ties += size**3 - size
        i = j + 1
    r1 = sum(r for r, (_, g) in zip(ranks, ranked) if g == 0)
    u = r1 - n1 * (n1 + 1) / 2
    n = n1 + n2
    var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return 1.0
    z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(var)
    return max(0.0, min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2))))


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


def _samples(repeats: List[Dict], metric: str) -> List[float]:
    values = []
    for r in repeats:
        if metric in r["windows"]:
            values += r["windows"][metric]
        elif r["summary"].get(metric) is not None:
            values.append(r["summary"][metric])
    return values


def compare(base: Dict, current: Dict, *, metrics: Sequence[str], thresholds: Dict[str, float], alpha: float,
            ratio_to: Optional[str]) -> List[Verdict]:
    """Per variant and metric: significance and threshold, in the metric's direction."""
    common = [k for k in current["variants"] if k in base["variants"]]
    if not common:
        raise CheckError(f"no variant of the sweep matches the baseline's ({', '.join(base['variants'])}); "
                         "compare the same experiment")
    scale = {}
    if ratio_to is not None:
        for side, doc in (("base", base), ("current", current)):
            ref = doc["variants"].get(ratio_to)
            if ref is None or not ref["repeats"]:
                names = ", ".join(doc["variants"])
                raise CheckError(f"--ratio-to {ratio_to}: no such variant with results in the {side}; choose one of: {names}")
            scale[side] = statistics.median(_samples(ref["repeats"], "samples_per_s"))
    verdicts = []
    for name in common:
        if ratio_to is not None and name == ratio_to:
            continue
        for metric in metrics:
            direction, _, default, kind = METRICS[metric]
            threshold = thresholds.get(metric, default)
            a, b = _samples(base["variants"][name]["repeats"], metric), _samples(current["variants"][name]["repeats"], metric)
            if ratio_to is not None and metric == "samples_per_s":
                a, b = [x / scale["base"] for x in a], [x / scale["current"] for x in b]
            if not a or not b:
                verdicts.append(Verdict(name, metric, None, None, None, None, "no baseline" if not a else "no samples", threshold, kind))
                continue
            ma, mb = statistics.median(a), statistics.median(b)
            change = (mb - ma) / ma if kind == "relative" and ma else mb - ma
            worse = change < -threshold if direction == "higher" else change > threshold
            better = change > threshold if direction == "higher" else change < -threshold
            p = mann_whitney_p(a, b)
            if len(a) < 3 or len(b) < 3:
                verdict = "not enough samples"
            elif p < alpha and worse:
                verdict = "regressed"
            elif p < alpha and better:
                verdict = "improved"
            else:
                verdict = "ok"
            verdicts.append(Verdict(name, metric, ma, mb, change, p, verdict, threshold, kind, min(b), max(b)))
    return verdicts


# -- output ------------------------------------------------------------------------------
def change_text(v: Verdict) -> str:
    if v.change is None:
        return "–"
    return f"{v.change:+.1%}" if v.kind == "relative" else f"{v.change:+.1f} pts"


def _formatter(as_ratio: bool):
    def fmt(x) -> str:
        return "–" if x is None else f"{x:.3f}" if as_ratio else f"{x:,.1f}"

    return fmt


def table(verdicts: List[Verdict], ratio: bool) -> List[str]:
    head = f"{'variant':<34} {'metric':<15} {'baseline':>10} {'current':>10} {'change':>9} {'p':>8}  verdict"
    lines = [head, "-" * len(head)]
    for v in verdicts:
        fmt = _formatter(ratio and v.metric == RATIO_METRIC)
        p = "–" if v.p is None else f"{v.p:.1e}" if v.p < 0.001 else f"{v.p:.3f}"
        lines.append(f"{v.variant[:34]:<34} {v.metric:<15} {fmt(v.baseline):>10} {fmt(v.current):>10} {change_text(v):>9} {p:>8}  {v.verdict.upper() if v.verdict == 'regressed' else v.verdict}")
    return lines


def markdown(verdicts: List[Verdict], ratio: bool, alpha: float) -> str:
    bad = [v for v in verdicts if v.verdict == "regressed"]
    lines = ["## harness check: " + (f"{len(bad)} regression(s)" if bad else "no regression"), "",
             "| variant | metric | baseline | current | change | p | verdict |", "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for v in verdicts:
        fmt = _formatter(ratio and v.metric == RATIO_METRIC)
        p = "–" if v.p is None else f"{v.p:.2g}"
        mark = "**regressed**" if v.verdict == "regressed" else v.verdict
        lines.append(f"| {v.variant} | {v.metric} | {fmt(v.baseline)} | {fmt(v.current)} | {change_text(v)} | {p} | {mark} |")
    lines += ["", f"A regression needs p < {alpha} (Mann-Whitney U on 0.5 s windows) and a change beyond the threshold."
              + (" samples_per_s is relative to the reference variant (ratio mode)." if ratio else "")]
    return "\n".join(lines) + "\n"


def _measure(v: Verdict, ratio_to: Optional[str]) -> tuple:
    """(measure name, unit) of a verdict's value: a ratio is not samples/s, so it says what it is relative to."""
    if ratio_to is not None and v.metric == RATIO_METRIC:
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
