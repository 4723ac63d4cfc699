"""The regression gate: baselines, a rank test and thresholds (the formats it writes: :mod:`harness.commands.check`).

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
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.results.metrics import GATE_METRICS
from harness.results.verdicts import CANNOT, Verdict

BASELINE_VERSION = 1
WINDOW_S = 0.5
# metric -> (better: higher or lower, unit, default threshold, threshold kind: relative fraction or absolute points)
METRICS = GATE_METRICS
DEFAULT_METRICS = ("samples_per_s", "cpu_ms_per_sample", "stall_pct")
RATIO_METRICS = ("samples_per_s", "cpu_ms_per_sample")  # per-sample rates: ratio mode divides them by the reference's
DETECT_Z = 2.326  # one-sided 99% normal quantile: the smallest detectable change is this many standard errors
# Ratio mode's divisors: the reference variant's median per round (int keys) and over all rounds ("all");
# {} when the reference's figures cannot divide (none, zero or NaN).
Scale = dict[int | str, float]
FINGERPRINT_KEYS = ("cpu_model", "cores", "ram_gib", "gpus", "tensorflow", "torch", "torchvision", "keras", "albumentations")


class CheckError(HarnessError):
    """The check could not run (exit 2), as opposed to finding a regression (exit 1)."""


# -- samples --------------------------------------------------------------------------
def windows(
    steps: dict[str, list],
    window_s: float = WINDOW_S,
    cpu: Callable[[float], float | None] | None = None,
) -> dict[str, list[float]]:
    """Per-window samples/s, wait %, AU % and CPU ms per sample from a trial's per-step arrays.

    Args:
        cpu: cumulative CPU seconds of the trial's process tree at a time in seconds from the
            start of the measured phase (see :func:`cpu_clock`); without it, no CPU windows.
    """
    from harness.results.stats import windows as bounds

    out: dict[str, list[float]] = {"samples_per_s": [], "stall_pct": [], "au_pct": [], "cpu_ms_per_sample": []}
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


def _difference(b: float | None, a: float | None) -> float | None:
    return None if a is None or b is None else b - a


def cpu_clock(result) -> Callable[[float], float | None] | None:
    """The trial's process-tree CPU seconds as a function of measured-phase time (None without a sampler)."""
    from harness.monitor.summary import _at

    t, start = result.monitor.get("t"), result.timing.get("measure_start_clock")
    series = result.monitor.get("series", {}).get("tree_cpu_s")
    if not t or not series or start is None:
        return None
    return lambda when: _at(t, series, start + when)


def fingerprint(environment: dict) -> dict:
    packages = environment.get("packages", {})
    gpu = environment.get("gpu", {})
    return {
        "cpu_model": environment.get("cpu_model"),
        "cores": environment.get("cpu_affinity") or environment.get("cpu_logical"),
        "ram_gib": round((environment.get("ram_bytes") or 0) / 2**30),
        "gpus": [g.get("name") for g in gpu.get("gpus", [])],
        **{k: packages.get(k) for k in ("tensorflow", "torch", "torchvision", "keras", "albumentations")},
    }


def collect(root: Path) -> dict:
    """A sweep's variants as baseline-shaped data: per repeat, window samples and summary.

    Each variant also lists its ``problems``: trials that did not finish ok and planned trials
    without a result; the check cannot judge such a variant. An unreadable result file stops it.
    With them: the machine's fingerprint and the project commit the trials ran (None where unknown).
    """
    from harness.results.sweep import load
    from harness.results.table import no_results

    sweep = load(root)
    if sweep.skipped:
        more = f" (and {len(sweep.skipped) - 1} more)" if len(sweep.skipped) > 1 else ""
        raise CheckError(f"{sweep.skipped[0]}{more}; fix or remove it, then check again")
    if not sweep.variants:
        raise CheckError(str(no_results(root, "check")))
    variants: dict[str, dict[str, Any]] = {}
    env: dict[str, Any] = {}
    for v in sweep.variants:
        env = env or next((t.environment for t in v.ok), {})
        variants[v.label] = {"overrides": v.overrides, "repeats": [_repeat(t) for t in v.ok], "problems": _problems(v, sweep)}
    return {"variants": variants, "fingerprint": fingerprint(env), "commit": (env.get("harness") or {}).get("commit")}


def _repeat(t) -> dict:
    from harness.results.sweep import METRICS as SUMMARY_METRICS

    w = windows(t.steps, cpu=cpu_clock(t))
    return {
        "round": t.timing.get("round", t.repeat),
        "windows": {k: [round(x, 4) for x in vals] for k, vals in w.items()},
        "summary": {k: t.summary.get(k) for k in SUMMARY_METRICS if t.summary.get(k) is not None},
    }


def _problems(v, sweep) -> list[str]:
    """Why a variant's repeats are not all there: trials not ok (too short, interrupted, failed) and missing ones."""
    from harness.results.table import status_word

    out = [f"repeat {t.repeat} {status_word(t.status)}: {t.error or 'no reason given'}" for t in v.failed]
    have = {t.repeat for t in v.trials}
    missing = sorted(r for job, r in (sweep.planned or ()) if job == v.job and r not in have)
    if missing:
        out.append(f"repeat {', '.join(map(str, missing))} planned but without a result (the sweep did not finish)")
    return out


def save_baseline(root: Path, path: Path) -> Path:
    data = collect(root)
    bad = [f"{name}: {v['problems'][0]}" for name, v in data["variants"].items() if v["problems"]]
    if bad:
        raise CheckError(f"{root}: a baseline needs every planned trial ok; {len(bad)} variant(s) are not ({bad[0]})")
    variants = {name: {"overrides": v["overrides"], "repeats": v["repeats"]} for name, v in data["variants"].items()}
    unusable = _non_finite(variants)
    if unusable:
        # every later check against it could only say "could not judge": refuse it now, when it can be re-run
        raise CheckError(f"{root}: a baseline needs finite numbers, and {unusable} is NaN or infinite; run the sweep again")
    doc = {
        "harness_baseline": BASELINE_VERSION,
        "created": datetime.now().isoformat(timespec="seconds"),
        "sweep": str(root),
        "fingerprint": data["fingerprint"],
        "variants": variants,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return Path(path)


def _non_finite(variants: dict) -> str | None:
    """The first variant and metric whose windows (or gated summary figure) hold a NaN or infinity, or None."""
    for name, variant in variants.items():
        for r in variant["repeats"]:
            summary = [(k, [x]) for k, x in r["summary"].items() if k in METRICS and x is not None]
            for metric, values in [*r["windows"].items(), *summary]:
                if any(isinstance(x, float) and not math.isfinite(x) for x in values):
                    return f"variant {name!r} {metric}"
    return None


def load_baseline(path: Path) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CheckError(f"--baseline {path}: no such file; make one with --save-baseline") from None
    except (OSError, ValueError) as exc:
        raise CheckError(f"--baseline {path}: not a readable JSON baseline ({exc})") from None
    if not isinstance(doc, dict) or doc.get("harness_baseline") != BASELINE_VERSION or not isinstance(doc.get("variants"), dict):
        raise CheckError(f"--baseline {path}: not a harness baseline (version {BASELINE_VERSION}); make one with --save-baseline")
    why = next((f"variant {name!r}: {w}" for name, v in doc["variants"].items() for w in [_malformed(v)] if w), None)
    if why or not isinstance(doc.setdefault("fingerprint", {}), dict):
        raise CheckError(
            f"--baseline {path}: malformed baseline ({why or 'fingerprint is not an object'}); make it again with --save-baseline"
        )
    return doc


def _malformed(variant) -> str | None:
    """What is wrong with one variant of a baseline file, or None: the statistics index it without checking."""
    repeats = variant.get("repeats") if isinstance(variant, dict) else None
    if not isinstance(repeats, list):
        return "no list of repeats"
    for r in repeats:
        if not isinstance(r, dict) or not isinstance(r.get("windows"), dict) or not isinstance(r.get("summary"), dict):
            return "a repeat without windows and summary"
        if not isinstance(r.get("round", 0), int):
            return "a repeat whose round is not a number"
        if not all(isinstance(w, list) and all(_is_number(x) for x in w) for w in r["windows"].values()):
            return "windows that are not lists of numbers"
        if not all(x is None or _is_number(x) for x in r["summary"].values()):
            return "a summary value that is not a number"
    return None


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# -- statistics -------------------------------------------------------------------------
def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (scipy, normal approximation with tie correction)."""
    from scipy.stats import mannwhitneyu

    if not len(a) or not len(b) or len(set(a) | set(b)) == 1:
        return 1.0
    return float(mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue)


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p :func:`mann_whitney_p` can give for samples of these sizes: every b above every a.

    The normal approximation with continuity correction, as scipy's asymptotic method computes it.
    """
    if not n_a or not n_b:
        return 1.0
    mean = n_a * n_b / 2
    z = max(mean - 0.5, 0.0) / math.sqrt(n_a * n_b * (n_a + n_b + 1) / 12)
    return math.erfc(z / math.sqrt(2))


def windows_needed(n_a: int, n_b: int, alpha: float) -> int | None:
    """How many windows each side needs (at least) before p < ``alpha`` is possible at all; None past a million."""
    return next((n for n in range(1, 1_000_001) if smallest_p(max(n, n_a), max(n, n_b)) < alpha), None)


def detectable(a_repeats: Sequence[float], b_repeats: Sequence[float]) -> float | None:
    """The smallest relative change these repeats can tell from run-to-run noise, or None with one repeat a side.

    The noise is the pooled standard deviation of the per-repeat figures relative to the
    baseline's median; the bound is :data:`DETECT_Z` standard errors of the difference of means.
    """
    sd = _pooled_sd(a_repeats, b_repeats)
    if sd is None or len(b_repeats) < 2:
        return None
    return DETECT_Z * sd * math.sqrt(1 / len(a_repeats) + 1 / len(b_repeats))


def _pooled_sd(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Both sides' pooled standard deviation relative to the baseline's median; None below two baseline repeats or at 0."""
    center = abs(statistics.median(a)) if a else 0.0
    if len(a) < 2 or not center:
        return None
    deviations = [x - statistics.fmean(a) for x in a] + [x - statistics.fmean(b) for x in b]
    return math.sqrt(sum(d * d for d in deviations) / max(len(a) + len(b) - 2, 1)) / center


def _samples(repeats: list[dict], metric: str, scale: Scale | None = None) -> list[list[float]]:
    """Per repeat, the metric's window samples (or its summary value), divided by the round's scale in ratio mode."""
    out = []
    for r in repeats:
        values = _repeat_values(r, metric)
        if values and scale is not None:
            values = [x / _round_scale(scale, r) for x in values]
        if values:
            out.append(values)
    return out


def _repeat_values(repeat: dict, metric: str) -> list[float]:
    """A repeat's window samples of ``metric``, or its summary value where it has no windows; [] where neither."""
    return repeat["windows"].get(metric) or ([repeat["summary"][metric]] if repeat["summary"].get(metric) is not None else [])


def _round_pairs(a_repeats: list[dict], b_repeats: list[dict], metric: str) -> list[tuple[float, float]] | None:
    """(base, current) figure of each round both sides ran in; None below two such rounds."""

    def figures(repeats: list[dict]) -> dict:
        found = {}
        for r in repeats:
            values = _repeat_values(r, metric)
            if values and r.get("round") is not None:
                found[r["round"]] = repeat_figure(values)
        return found

    a, b = figures(a_repeats), figures(b_repeats)
    common = sorted(set(a) & set(b), key=str)
    return [(a[k], b[k]) for k in common] if len(common) >= 2 else None


def paired_detectable(pairs: Sequence[tuple[float, float]], center: float) -> float | None:
    """The smallest relative change that rounds of paired figures can tell from noise.

    Each round ran both sides (shuffled, minutes apart at most), so its difference carries the
    trials' own luck but not the round's: :data:`DETECT_Z` standard errors of the mean per-round
    difference, relative to ``center`` (the baseline's median).
    """
    if len(pairs) < 2 or not center:
        return None
    diffs = [(b - a) / abs(center) for a, b in pairs]
    return DETECT_Z * statistics.stdev(diffs) / math.sqrt(len(diffs))


def repeat_figure(windows: Sequence[float]) -> float:
    """One repeat's figure: the mean of its windows, as its whole measured phase reads.

    Not their median: a window of 0.5 s holds a handful of steps, and the median of five such
    scattered two to three times as much from trial to trial as the mean did in the gate's pinned trials.
    """
    return statistics.fmean(windows)


def _round_scale(scale: Scale, repeat: dict) -> float:
    """The reference's median in the repeat's round; the median over rounds when that round has none."""
    return scale.get(repeat.get("round", -1), scale["all"])


def _usable_scale(x: float) -> bool:
    return math.isfinite(x) and x != 0  # dividing by zero or NaN would make every ratio meaningless


def _reference(doc: dict, ratio_to: str, metric: str, side: str) -> Scale:
    ref = doc["variants"].get(ratio_to)
    if ref is None or not ref["repeats"]:
        names = ", ".join(doc["variants"])
        raise CheckError(f"--ratio-to {ratio_to}: no such variant with results in the {side}; choose one of: {names}")
    per_round = {r.get("round", i): values for i, r in enumerate(ref["repeats"]) for values in [_samples([r], metric)] if values}
    pooled = [x for values in per_round.values() for x in values[0]]
    if not pooled or not _usable_scale(statistics.median(pooled)):
        return {}
    rounds = {k: repeat_figure(v[0]) for k, v in per_round.items()}
    return {"all": statistics.median(pooled), **{k: m for k, m in rounds.items() if _usable_scale(m)}}


def compare(
    base: dict,
    current: dict,
    *,
    metrics: Sequence[str],
    thresholds: dict[str, float],
    alpha: float,
    ratio_to: str | None,
    paired: bool = False,
) -> list[Verdict]:
    """Per variant and metric: significance, threshold and the detectable change, in the metric's direction.

    ``paired``: both sides ran in the same rounds (check --ab's two revisions), so the noise of their
    difference is that of the per-round differences (:func:`paired_detectable`): what moved a whole
    round (the machine's load for a minute) moved both sides and cancels.

    A variant of the baseline that the sweep lacks, or whose trials are not all there and ok
    (``problems``), gets a verdict of :data:`CANNOT` with the reason, as do samples that are
    missing, NaN, or too few for any p below ``alpha``.
    """
    common = [k for k in current["variants"] if k in base["variants"]]
    if not common:
        raise CheckError(f"no variant of the sweep matches the baseline's ({', '.join(base['variants'])}); compare the same experiment")
    gone = [k for k in base["variants"] if k not in current["variants"]]
    verdicts = []
    for metric in metrics:
        scales: dict[str, Scale | None] = {"base": None, "current": None}
        if ratio_to is not None and metric in RATIO_METRICS:
            scales = {side: _reference(doc, ratio_to, metric, side) for side, doc in (("base", base), ("current", current))}
        for name in (n for n in common if n != ratio_to):
            threshold = threshold_of(thresholds, name, metric)
            why = _blocked(base, current, name, metric, ratio_to, scales)
            if why:
                verdicts.append(_cannot(name, metric, threshold, why))
                continue
            a_repeats, b_repeats = base["variants"][name]["repeats"], current["variants"][name]["repeats"]
            a = _samples(a_repeats, metric, scales["base"])
            b = _samples(b_repeats, metric, scales["current"])
            pairs = _round_pairs(a_repeats, b_repeats, metric) if paired else None
            verdicts.append(_verdict(name, metric, a, b, threshold, alpha, pairs))
        verdicts += [
            _cannot(
                name,
                metric,
                threshold_of(thresholds, name, metric),
                "in the baseline but not in this sweep (it did not run, or the sweep changed: make a new baseline)",
            )
            for name in gone
        ]
    order = common + gone
    return sorted(verdicts, key=lambda v: order.index(v.variant))


def plan(base: dict, *, metrics: Sequence[str], thresholds: dict[str, float], ratio_to: str | None) -> list[dict]:
    """Per variant and metric of a baseline: its repeat-to-repeat noise (CV) and the rounds a gate run needs.

    The way pyperf sizes its runs from a measured spread: assuming a gate run's repeats scatter
    as the baseline's did, the rounds that bring the detectable change down to the threshold
    (None where the baseline's own rounds are too few for any number).
    """
    from harness.results.sweep import cv

    out = []
    for metric in metrics:
        scale = _reference(base, ratio_to, metric, "the baseline") if ratio_to is not None and metric in RATIO_METRICS else None
        for name, variant in base["variants"].items():
            if name == ratio_to or scale == {}:
                continue
            figures = [repeat_figure(r) for r in _samples(variant["repeats"], metric, scale)]
            threshold = threshold_of(thresholds, name, metric)
            center = statistics.median(figures) if figures else None
            rounds = rounds_needed(figures, figures, _relative(threshold, METRICS[metric][3], center))
            out.append(
                {"variant": name, "metric": metric, "threshold": threshold, "noise": cv(figures), "repeats": len(figures), "rounds": rounds}
            )
    return out


def _blocked(base: dict, current: dict, name: str, metric: str, ratio_to: str | None, scales: dict[str, Scale | None]) -> str | None:
    """Why a variant cannot be compared on a metric before looking at its samples, or None."""
    for side, doc in (("this sweep", current), ("the baseline", base)):
        problems = doc["variants"][name].get("problems")
        if problems:
            return f"{len(problems)} trial(s) in {side} not ok or missing: {problems[0]}"
    if scales["base"] == {} or scales["current"] == {}:  # never compare a ratio with an absolute figure
        return f"no {metric} of {ratio_to} to divide by"
    if scales["current"] is not None:
        problems = current["variants"][ratio_to].get("problems")
        if problems:
            return f"the reference {ratio_to} has {len(problems)} trial(s) not ok or missing: {problems[0]}"
    return None


def _cannot(name: str, metric: str, threshold: float, why: str) -> Verdict:
    return Verdict(name, metric, None, None, None, None, CANNOT, threshold, METRICS[metric][3], reason=why)


def _unfit(a: list[float], b: list[float], metric: str, alpha: float) -> str | None:
    """Why these samples cannot be judged at ``alpha``, in plain words, or None."""
    if not a or not b:
        side = "neither the baseline nor this sweep has" if not a and not b else "the baseline has no" if not a else "this sweep has no"
        return f"{side} {metric} samples" + (
            " (cpu_ms_per_sample needs the CPU sampler, monitor.enabled=true)" if metric == "cpu_ms_per_sample" else ""
        )
    if not all(math.isfinite(x) for x in a + b):
        side = "baseline" if not all(math.isfinite(x) for x in a) else "current"
        return f"the {side} {metric} samples include NaN or infinity (a window measured nothing): rerun it"
    if METRICS[metric][3] == "relative" and not statistics.median(a):
        return f"the baseline's median {metric} is 0, so a relative change is undefined"
    best = smallest_p(len(a), len(b))
    if best < alpha:
        return None
    need = windows_needed(len(a), len(b), alpha)
    ask = f"at least {need} windows a side ({need * WINDOW_S:g} s of measured time, over all repeats)" if need else "far more windows"
    return (
        f"too few samples: {len(a)} baseline and {len(b)} current {WINDOW_S:g} s windows can never reach p < {alpha:g} "
        f"(p >= {best:.2g} even if every window moved), so no change of any size could count; measure {ask}: "
        "raise trial.seconds or trial.repeats"
    )


def _verdict(
    name: str,
    metric: str,
    a_repeats: list[list[float]],
    b_repeats: list[list[float]],
    threshold: float,
    alpha: float,
    pairs: list[tuple[float, float]] | None = None,
) -> Verdict:
    direction, _, _, kind = METRICS[metric]
    a, b = [x for r in a_repeats for x in r], [x for r in b_repeats for x in r]
    why = _unfit(a, b, metric, alpha)
    if why:
        return _cannot(name, metric, threshold, why)
    ma, mb = statistics.median(a), statistics.median(b)
    change = (mb - ma) / ma if kind == "relative" else mb - ma
    a_means, b_means = [repeat_figure(r) for r in a_repeats], [repeat_figure(r) for r in b_repeats]
    mde = paired_detectable(pairs, ma) if pairs else detectable(a_means, b_means)
    if mde is not None and kind == "points":
        mde *= abs(ma)  # in points, like the change
    bar = max(threshold, mde or 0.0)
    worse = change < -bar if direction == "higher" else change > bar
    better = change > bar if direction == "higher" else change < -bar
    p = mann_whitney_p(a, b)
    verdict = "regressed" if p < alpha and worse else "improved" if p < alpha and better else "ok"
    found = Verdict(name, metric, ma, mb, change, p, verdict, threshold, kind, min(b), max(b), mde)
    if verdict == "ok" and mde is not None and mde > threshold:
        # a change beyond the noise would have counted, but "no change of the threshold's size" is not a claim
        # these repeats can make: refuse it (exit 2) and say how many rounds would
        found.verdict, found.reason = CANNOT, _underpowered(found, a_means, b_means, pairs)
    return found


def _underpowered(v: Verdict, a_figures: list[float], b_figures: list[float], pairs: list | None = None) -> str:
    relative = _relative(v.threshold, v.kind, v.baseline)
    if pairs and v.detectable is not None and v.threshold > 0:  # paired rounds: n rounds bring it to z * sd / sqrt(n)
        rounds = max(2, math.ceil(len(pairs) * (v.detectable / v.threshold) ** 2))  # both in the metric's own unit
        ask = f"run {rounds} rounds (trial.repeats={rounds})" if rounds <= MAX_ROUNDS else "steady the trials first (trial.cpus=1)"
        return (
            f"these repeats can only tell changes of {detectable_text(v)} from noise, more than the "
            f"{threshold_text(v.threshold, v.kind)} threshold: {ask}, or raise the threshold"
        )
    need = rounds_needed(a_figures, b_figures, relative)
    both = rounds_a_side(a_figures, b_figures, relative)
    if need and need <= MAX_ROUNDS:
        ask = f"run {need} rounds (trial.repeats={need})"
    elif need is None:
        ask = f"make the baseline with more rounds too (at {len(a_figures)} no number of rounds here suffices"
        ask += f"; {both} a side would: with check --ab, trial.repeats={both})" if both else ")"
    else:
        ask = "steady the trials first (trial.cpus=1 pins them; longer trial.seconds)"
    return (
        f"these repeats can only tell changes of {detectable_text(v)} from noise, more than the "
        f"{threshold_text(v.threshold, v.kind)} threshold: {ask}, or raise the threshold"
    )


MAX_ROUNDS = 200  # past this, more rounds is not the advice: the trials themselves are too noisy


def _relative(threshold: float, kind: str, center: float | None) -> float:
    """A threshold as a fraction of the baseline: points over the baseline's figure for a points metric."""
    return threshold if kind == "relative" else threshold / abs(center or 1.0)


def rounds_needed(a_figures: Sequence[float], b_figures: Sequence[float], threshold: float) -> int | None:
    """Rounds this side needs so that :func:`detectable` falls to ``threshold`` (relative), the baseline's rounds fixed.

    The noise is the pooled standard deviation of both sides' per-repeat figures, as in
    :func:`detectable`; with ``na`` baseline rounds it needs ``z*s*sqrt(1/na + 1/nb) <= threshold*center``.

    Returns:
        The rounds (at least 2), or None when the baseline's own rounds are too few for any number here.
    """
    sd = _pooled_sd(a_figures, b_figures)
    if sd is None or threshold <= 0:
        return None
    if sd == 0:
        return 2
    room = (threshold / (DETECT_Z * sd)) ** 2 - 1 / len(a_figures)  # what 1/nb may be
    return None if room <= 0 else max(2, math.ceil(1 / room))


def rounds_a_side(a_figures: Sequence[float], b_figures: Sequence[float], threshold: float) -> int | None:
    """Rounds on both sides (a new baseline and a run, or the two revisions of check --ab) that bring the
    detectable change down to ``threshold``: ``z*s*sqrt(2/n) <= threshold*center``."""
    sd = _pooled_sd(a_figures, b_figures)
    if sd is None or threshold <= 0:
        return None
    return max(2, math.ceil(2 * (DETECT_Z * sd / threshold) ** 2))


def threshold_text(threshold: float, kind: str) -> str:
    """A threshold in its metric's unit: '5%' or '3 pts'."""
    return f"{threshold:.0%}" if kind == "relative" else f"{threshold:g} pts"


UNDERPOWERED = "these repeats can only tell changes of"  # how an underpowered verdict's reason begins


def underpowered(v: Verdict) -> bool:
    """The verdict could not be judged only because the repeats were too few for its threshold (more rounds would do)."""
    return v.verdict == CANNOT and (v.reason or "").startswith(UNDERPOWERED)


def threshold_of(thresholds: dict[str, float], variant: str, metric: str) -> float:
    """A variant's own threshold (``VARIANT:METRIC``), else the metric's (``METRIC``), else its default."""
    return thresholds.get(f"{variant}:{metric}", thresholds.get(metric, METRICS[metric][2]))


# -- output ------------------------------------------------------------------------------
def power_line(verdicts: list[Verdict]) -> str:
    """One line: the smallest change these samples can detect, per metric (the largest over variants)."""
    worst: dict[str, Verdict] = {}
    for v in verdicts:
        if v.detectable is None:
            continue
        held = worst.get(v.metric)  # only verdicts with a detectable change are held
        if held is None or held.detectable is None or v.detectable > held.detectable:
            worst[v.metric] = v
    if not worst:
        return "smallest detectable change: unknown with one repeat a side (trial.repeats >= 2 on both sides tells it)"
    parts = [f"{m} {detectable_text(v)} (threshold {threshold_text(v.threshold, v.kind)})" for m, v in worst.items()]
    return "smallest change these repeats can tell from noise: " + ", ".join(parts)


def detectable_text(v: Verdict) -> str:
    """The smallest change the samples can detect, in the change's unit ('±4.1%', '±2.0 pts'); '–' when unknown."""
    if v.detectable is None:
        return "–"
    return f"±{v.detectable:.1%}" if v.kind == "relative" else f"±{v.detectable:.1f} pts"
