"""``check SWEEP_DIR``: save a baseline, or gate a sweep against one (exit 0 / 1 / 2), and the formats it writes."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import harness.check as gate  # the statistics; this module is its command line and output formats
from harness.check import METRICS, RATIO_METRICS, detectable_text
from harness.results.verdicts import JUDGED, Verdict, change_text

CANNOT_RUN_EXIT = 2
CHECK_FILE = "check.json"  # the last check's verdicts, shown by report.html
REGRESSED_EXIT = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2: the check could not run
        from harness.check import CheckError

        raise CheckError(f"check: {message} (python -m harness check --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m harness check", add_help=False)
    p.add_argument("args", nargs="*")  # the sweep folder; with --ab, the sweep's overrides
    p.add_argument("--plan", action="store_true")
    p.add_argument("--ab", metavar="REF")
    p.add_argument("--history", metavar="STORE")
    p.add_argument("--commit")
    p.add_argument("--save-baseline", metavar="FILE")
    p.add_argument("--baseline", metavar="FILE")
    p.add_argument("--metric", action="append", dest="metrics")
    p.add_argument("--threshold", action="append", default=[], metavar="METRIC=VALUE")
    p.add_argument("--alpha", type=float, default=0.01)
    p.add_argument("--ratio-to", metavar="VARIANT")
    p.add_argument("--allow-env-change", action="store_true")
    p.add_argument("--markdown", metavar="FILE")
    p.add_argument("--github-json", metavar="PREFIX")
    p.add_argument("--bencher-json", metavar="FILE")
    return p


def _thresholds(items: list[str]) -> dict:
    """``METRIC=VALUE`` (every variant) or ``VARIANT:METRIC=VALUE`` (one variant: a tier of its own noise)."""
    from harness.check import METRICS, CheckError

    out = {}
    for item in items:
        key, sep, value = item.rpartition("=")  # a variant's label may hold '=', a value never does
        variant, _, metric = key.rpartition(":")
        if not sep or metric not in METRICS:
            raise CheckError(f"--threshold {item}: expected [VARIANT:]METRIC=VALUE with METRIC one of {', '.join(METRICS)}")
        kind = METRICS[metric][3]
        text = value.strip().lower().removesuffix("pts").removesuffix("%").strip()
        try:
            number = float(text)
        except ValueError:
            raise CheckError(f"--threshold {item}: {value!r} is not a number (e.g. 5% or 3pts)") from None
        if not math.isfinite(number) or number < 0:  # NaN compares false with every change: nothing would ever regress
            raise CheckError(f"--threshold {item}: needs a finite number of at least 0 (e.g. 5% or 3pts)")
        out[key] = number / 100 if kind == "relative" and (value.strip().endswith("%") or number >= 1) else number
    return out


def _alpha(alpha: float) -> float:
    from harness.check import CheckError

    if not 0 < alpha < 1:  # also NaN: p < NaN is never true, so nothing would ever regress
        raise CheckError(f"--alpha {alpha:g}: the significance level must lie between 0 and 1 (e.g. 0.01)")
    return alpha


def check(args: list[str]) -> int:
    from harness.errors import HarnessError

    try:
        return _check(args)
    except HarnessError as exc:  # bad options, baseline or sweep (an unreadable result file too): nothing judged
        print(f"ERROR: {exc}", file=sys.stderr)
        return CANNOT_RUN_EXIT


def _check(args: list[str]) -> int:
    opts = _parser().parse_args(args)
    if opts.plan:
        return _plan(opts)
    if opts.ab:
        return _ab(opts)
    if len(opts.args) != 1:
        raise gate.CheckError("check needs one sweep folder: python -m harness check SWEEP_DIR --baseline FILE")
    metrics, alpha, thresholds = _metrics(opts), _alpha(opts.alpha), _thresholds(opts.threshold)  # before anything is read
    root = Path(opts.args[0])
    if not root.is_dir():
        raise gate.CheckError(f"{root}: no such sweep folder")
    if opts.save_baseline:
        path = gate.save_baseline(root, Path(opts.save_baseline))
        print(f"baseline of {root} saved: {path}; the rounds a gate run needs: python -m harness check --plan --baseline {path}")
        return 0
    if not opts.baseline:
        raise gate.CheckError("check needs --baseline FILE (or --save-baseline FILE to make one)")
    base = gate.load_baseline(Path(opts.baseline))
    current = gate.collect(root)
    _known_variants(thresholds, base)
    if opts.ratio_to is None and not opts.allow_env_change:
        _same_machine(base, current)
    verdicts = gate.compare(base, current, metrics=metrics, thresholds=thresholds, alpha=alpha, ratio_to=opts.ratio_to)
    return _conclude(verdicts, opts, root, current, thresholds)


def _conclude(verdicts: list, opts, root: Path, current: dict, thresholds: dict) -> int:
    _print(verdicts, opts.ratio_to)
    _write(verdicts, opts, root)
    stepped = _history(opts, current, verdicts, thresholds) if opts.history else []
    if stepped or any(v.verdict == "regressed" for v in verdicts):
        return REGRESSED_EXIT  # a regression found outranks a comparison that could not be judged
    return CANNOT_RUN_EXIT if any(v.verdict not in JUDGED for v in verdicts) else 0


def _more_rounds(opts, base: dict, head: dict, unsure: list[str], checkout: Path, top: Path, root: Path) -> tuple[dict, dict]:
    """Both sides with as many rounds again of the variants in ``unsure`` (a second A/B sweep into ROOT-more)."""
    from harness.commands import ab

    rounds = max(len(head["variants"][name]["repeats"]) for name in unsure)
    print(f"A/B: too few rounds to judge {', '.join(unsure)} at the threshold: {rounds} more rounds of them", flush=True)
    more = ab.sweep(ab.more_rounds(opts.args, head, unsure, rounds), checkout, top, root=Path(f"{root}-more"))
    base_more, head_more = ab.split(gate.collect(more), checkout)
    return ab.pool(base, base_more), ab.pool(head, head_more)


def _ab(opts) -> int:
    """``check --ab REF [OVERRIDES]``: both revisions interleaved in one sweep, REF's side as the baseline.

    Both sides ran in the same rounds, so they are compared round by round (paired). Where a
    comparison could not be judged only because its rounds were too few for the threshold, the
    variants concerned run once more, as many rounds again, and are judged on all of them
    (sequential, like a calibration that adds runs until the figure is steady; one extension, so
    a gate's time stays bounded).
    """
    from harness.commands import ab

    if opts.baseline or opts.save_baseline:
        raise gate.CheckError("--ab compares two revisions in one sweep; it takes no --baseline or --save-baseline")
    metrics, alpha, thresholds = _metrics(opts), _alpha(opts.alpha), _thresholds(opts.threshold)
    ab.refuse_code_override(opts.args)
    top, commit = ab.resolve(opts.ab, Path.cwd())
    judge = {"metrics": metrics, "thresholds": thresholds, "alpha": alpha, "ratio_to": opts.ratio_to, "paired": True}
    with ab.worktree(top, commit) as checkout:
        root = ab.sweep(opts.args, checkout, top)
        base, head = ab.split(gate.collect(root), checkout)
        _known_variants(thresholds, base)
        verdicts = gate.compare(base, head, **judge)
        unsure = sorted({v.variant for v in verdicts if gate.underpowered(v)})
        if unsure:
            base, head = _more_rounds(opts, base, head, unsure, checkout, top, root)
            verdicts = gate.compare(base, head, **judge)
    opts.baseline = f"{opts.ab} ({commit[:12]}), in the same sweep"
    print(f"A/B: {opts.ab} ({commit[:12]}) as the baseline, the working tree as current, {len(head['variants'])} variant(s)")
    return _conclude(verdicts, opts, root, head, thresholds)


def _history(opts, current: dict, verdicts: list, thresholds: dict) -> list[str]:
    """Append this run to the history store and name each change for the worse that it makes visible.

    A change counts when the change-point search puts one at this run (a step of several noise
    deviations) or one has just become visible ``MIN_SEGMENT`` runs after the commit that started it,
    and it is larger than the metric's threshold in the bad direction.
    """
    from harness.history.changes import newest
    from harness.history.store import append, read, record_from, series

    store = Path(opts.history)
    record = record_from(current, commit=opts.commit)
    append(store, record)
    metrics, records = list(dict.fromkeys(v.metric for v in verdicts)), read(store)
    lines = []
    for variant in (n for n in record.variants if n != opts.ratio_to):
        for metric in metrics:
            runs = series(records, variant, metric, record.machine)
            change = newest([figures["median"] for _, figures in runs])
            if change is None:
                continue
            threshold = gate.threshold_of(thresholds, variant, metric)
            if worse_step(change, metric) > threshold:
                kind = METRICS[metric][3]
                size = f"{change.step:+.1%}" if kind == "relative" else f"{change.after - change.before:+.1f} pts"
                at = runs[change.index][0].commit[:12]
                lines.append(f"history: {variant} {metric} stepped {size} at {at} (threshold {gate.threshold_text(threshold, kind)})")
    for line in lines or [f"history: {record.commit[:12]} added to {store}; no change for the worse beyond the thresholds"]:
        print(line)
    return lines


def worse_step(change, metric: str) -> float:
    """How much worse a history's step made ``metric``, in its threshold's unit (a fraction, or points); < 0: better."""
    direction, _, _, kind = METRICS[metric]
    delta = change.step if kind == "relative" else change.after - change.before
    return -delta if direction == "higher" else delta


def _metrics(opts) -> list[str]:
    metrics = opts.metrics or list(gate.DEFAULT_METRICS)
    unknown = [m for m in metrics if m not in gate.METRICS]
    if unknown:
        raise gate.CheckError(f"--metric {unknown[0]}: choose from {', '.join(gate.METRICS)}")
    return metrics


def _known_variants(thresholds: dict, base: dict) -> None:
    """A threshold for a variant the baseline lacks would silently never apply: refuse it."""
    for key in thresholds:
        variant = key.rpartition(":")[0]
        if variant and variant not in base["variants"]:
            names = ", ".join(base["variants"])
            raise gate.CheckError(f"--threshold {key}=...: no variant {variant!r} in the baseline; choose one of: {names}")


def _plan(opts) -> int:
    """``check --plan --baseline FILE``: the baseline's noise per variant and metric, and the rounds a gate run needs."""
    if not opts.baseline:
        raise gate.CheckError("check --plan needs --baseline FILE: the noise that sizes the rounds is the baseline's")
    metrics, thresholds = _metrics(opts), _thresholds(opts.threshold)
    base = gate.load_baseline(Path(opts.baseline))
    _known_variants(thresholds, base)
    rows = gate.plan(base, metrics=metrics, thresholds=thresholds, ratio_to=opts.ratio_to)
    print(f"{'variant':<34} {'metric':<17} {'noise (CV)':>10} {'threshold':>9} {'rounds':>7}")
    for r in rows:
        cv = "–" if r["noise"] is None else f"{r['noise']:.1%}"
        rounds = r["rounds"] if r["rounds"] is not None else f"> {r['repeats']}?"
        unit = gate.threshold_text(r["threshold"], gate.METRICS[r["metric"]][3])
        print(f"{r['variant'][:34]:<34} {r['metric']:<17} {cv:>10} {unit:>9} {rounds!s:>7}")
    needed = [r["rounds"] for r in rows]
    if not needed or None in needed:
        print("rounds: unknown; the baseline's own rounds are too few (save a baseline of more trial.repeats)")
        return CANNOT_RUN_EXIT
    print(f"rounds: {max(needed)} (trial.repeats={max(needed)} detects each threshold at this noise)")
    return 0


def _same_machine(base: dict, current: dict) -> None:
    diffs = [
        f"{k}: {base['fingerprint'].get(k)} vs {current['fingerprint'].get(k)}"
        for k in gate.FINGERPRINT_KEYS
        if base["fingerprint"].get(k) != current["fingerprint"].get(k)
    ]
    if diffs:
        raise gate.CheckError(
            "this machine or its versions differ from the baseline's (" + "; ".join(diffs) + "); absolute "
            "throughput is not comparable: use --ratio-to VARIANT, or --allow-env-change to compare anyway"
        )


def _print(verdicts: list, ratio_to) -> None:
    for line in table(verdicts, ratio_to is not None):
        print(line)
    bad = [v for v in verdicts if v.verdict == "regressed"]
    print(
        f"{len(bad)} regression(s) in {len(verdicts)} comparison(s)"
        + (f" ({', '.join(gate.RATIO_METRICS)} relative to {ratio_to} in the same round)" if ratio_to else "")
    )
    for line in unjudged_lines(verdicts):
        print(line)
    print(gate.power_line(verdicts))


def _write(verdicts: list, opts, root: Path) -> None:
    """The dashboards' files, check.json, and the sweep's report with the verdicts in it."""
    from dataclasses import asdict

    ratio = opts.ratio_to is not None
    if opts.markdown:
        Path(opts.markdown).write_text(markdown(verdicts, ratio, opts.alpha))
    if opts.github_json:
        for side, items in github_benchmark(verdicts, opts.ratio_to).items():
            Path(f"{opts.github_json}-{side}.json").write_text(json.dumps(items, indent=1) + "\n")
    if opts.bencher_json:
        Path(opts.bencher_json).write_text(json.dumps(bencher(verdicts, opts.ratio_to), indent=1) + "\n")
    record = {
        "baseline": str(opts.baseline),
        "ratio_to": opts.ratio_to,
        "alpha": opts.alpha,
        "regressions": sum(v.verdict == "regressed" for v in verdicts),
        "verdicts": [asdict(v) for v in verdicts],
    }
    (root / CHECK_FILE).write_text(json.dumps(record, indent=1) + "\n")
    from harness.report.render import write_report

    write_report(root)  # the report now shows the verdicts


# -- the formats check writes -------------------------------------------------------------
def _formatter(as_ratio: bool):
    def fmt(x) -> str:
        return "–" if x is None else f"{x:.3f}" if as_ratio else f"{x:,.1f}"

    return fmt


def table(verdicts: list[Verdict], ratio: bool) -> list[str]:
    head = f"{'variant':<34} {'metric':<17} {'baseline':>10} {'current':>10} {'change':>9} {'detectable':>10} {'p':>8}  verdict"
    lines = [head, "-" * len(head)]
    for v in verdicts:
        fmt = _formatter(ratio and v.metric in RATIO_METRICS)
        p = "–" if v.p is None else f"{v.p:.1e}" if v.p < 0.001 else f"{v.p:.3f}"
        lines.append(
            f"{v.variant[:34]:<34} {v.metric:<17} {fmt(v.baseline):>10} {fmt(v.current):>10} {change_text(v):>9} "
            f"{detectable_text(v):>10} {p:>8}  {v.verdict.upper() if v.verdict == 'regressed' else v.verdict}"
        )
    return lines


def unjudged_lines(verdicts: list[Verdict]) -> list[str]:
    """One line per distinct reason a comparison could not be judged, naming the variants and metrics it holds for."""
    by_reason: dict[str, list[Verdict]] = {}
    for v in verdicts:
        if v.verdict not in JUDGED:
            by_reason.setdefault(v.reason or v.verdict, []).append(v)
    return [
        f"could not judge {', '.join(dict.fromkeys(v.variant for v in vs))} ({', '.join(dict.fromkeys(v.metric for v in vs))}): {reason}"
        for reason, vs in by_reason.items()
    ]


def markdown(verdicts: list[Verdict], ratio: bool, alpha: float) -> str:
    """The verdicts as a Markdown table for a pull request; variant names and reasons escaped so they cannot render."""
    from harness.report.render import md

    bad = [v for v in verdicts if v.verdict == "regressed"]
    unjudged = [v for v in verdicts if v.verdict not in JUDGED]
    head = f"{len(bad)} regression(s)" if bad else f"could not judge {len(unjudged)} comparison(s)" if unjudged else "no regression"
    lines = [
        "## harness check: " + head + (f", could not judge {len(unjudged)}" if bad and unjudged else ""),
        "",
        "| variant | metric | baseline | current | change | detectable | p | verdict |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for v in verdicts:
        fmt = _formatter(ratio and v.metric in RATIO_METRICS)
        p = "–" if v.p is None else f"{v.p:.2g}"
        mark = "**regressed**" if v.verdict == "regressed" else md(v.verdict + (f": {v.reason}" if v.reason else ""))
        lines.append(
            f"| {md(v.variant)} | {v.metric} | {fmt(v.baseline)} | {fmt(v.current)} | {change_text(v)} | "
            f"{detectable_text(v)} | {p} | {mark} |"
        )
    lines += [
        "",
        f"A regression needs p < {alpha:g} (Mann-Whitney U on 0.5 s windows) and a change beyond both the threshold "
        "and the smallest change the repeats can tell from noise (detectable)."
        + (" Per-sample rates are relative to the reference variant in the same round (ratio mode)." if ratio else ""),
    ]
    return "\n".join(lines) + "\n"


def _measure(v: Verdict, ratio_to: str | None) -> tuple:
    """(measure name, unit) of a verdict's value: a ratio is not samples/s, so it says what it is relative to."""
    if ratio_to is not None and v.metric in RATIO_METRICS:
        return f"{v.metric}_ratio", f"x {ratio_to}"
    return v.metric, METRICS[v.metric][1]


def github_benchmark(verdicts: list[Verdict], ratio_to: str | None = None) -> dict[str, list[dict]]:
    """github-action-benchmark's customBiggerIsBetter / customSmallerIsBetter arrays.

    Args:
        verdicts: from :func:`compare`.
        ratio_to: the reference variant in ratio mode (``check --ratio-to``), else None.

    Returns:
        {"bigger": [...], "smaller": [...]}, entries {name, unit, value, range}; ``range`` is
        "± half the current samples' max - min", as the action shows it next to the value.
    """
    out: dict[str, list[dict]] = {"bigger": [], "smaller": []}
    for v in verdicts:
        if v.current is None:
            continue
        measure, unit = _measure(v, ratio_to)
        entry = {"name": f"{v.variant} {measure}", "unit": unit, "value": round(v.current, 4)}
        if v.current_min is not None and v.current_max is not None:
            entry["range"] = f"± {_short_number((v.current_max - v.current_min) / 2)}"
        out["bigger" if METRICS[v.metric][0] == "higher" else "smaller"].append(entry)
    return out


def bencher(verdicts: list[Verdict], ratio_to: str | None = None) -> dict:
    """Bencher Metric Format: {benchmark: {measure: {value, lower_value, upper_value}}}.

    The measure is the metric in kebab case (``samples-per-s``; ``samples-per-s-ratio`` in
    ratio mode); lower and upper values are the current samples' min and max.
    """
    out: dict[str, dict] = {}
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
