"""``check SWEEP_DIR``: save a baseline, or gate a sweep against one (exit 0 / 1 / 2)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List

CANNOT_RUN_EXIT = 2
CHECK_FILE = "check.json"  # the last check's verdicts, shown by report.html
REGRESSED_EXIT = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2: the check could not run
        from harness.check import CheckError

        raise CheckError(f"check: {message} (python -m harness check --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m harness check", add_help=False)
    p.add_argument("sweep")
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


def _thresholds(items: List[str]) -> dict:
    from harness.check import METRICS, CheckError

    out = {}
    for item in items:
        metric, sep, value = item.partition("=")
        if not sep or metric not in METRICS:
            raise CheckError(f"--threshold {item}: expected METRIC=VALUE with METRIC one of {', '.join(METRICS)}")
        kind = METRICS[metric][3]
        text = value.strip().lower().removesuffix("pts").removesuffix("%").strip()
        try:
            number = float(text)
        except ValueError:
            raise CheckError(f"--threshold {item}: {value!r} is not a number (e.g. 5% or 3pts)") from None
        out[metric] = number / 100 if kind == "relative" and (value.strip().endswith("%") or number >= 1) else number
    return out


def check(args: List[str]) -> int:
    from harness import check as gate

    try:
        return _check(args, gate)
    except gate.CheckError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return CANNOT_RUN_EXIT


def _check(args: List[str], gate) -> int:
    opts = _parser().parse_args(args)
    root = Path(opts.sweep)
    if not root.is_dir():
        raise gate.CheckError(f"{root}: no such sweep folder")
    if opts.save_baseline:
        path = gate.save_baseline(root, Path(opts.save_baseline))
        print(f"baseline of {root} saved: {path}")
        return 0
    if not opts.baseline:
        raise gate.CheckError("check needs --baseline FILE (or --save-baseline FILE to make one)")
    metrics = opts.metrics or list(gate.DEFAULT_METRICS)
    unknown = [m for m in metrics if m not in gate.METRICS]
    if unknown:
        raise gate.CheckError(f"--metric {unknown[0]}: choose from {', '.join(gate.METRICS)}")
    base = gate.load_baseline(Path(opts.baseline))
    current = gate.collect(root)
    if current["failed"]:
        raise gate.CheckError(f"{len(current['failed'])} trial(s) of {root} failed, so nothing can be judged: {current['failed'][0]}")
    if opts.ratio_to is None and not opts.allow_env_change:
        diffs = [f"{k}: {base['fingerprint'].get(k)} vs {current['fingerprint'].get(k)}"
                 for k in gate.FINGERPRINT_KEYS if base["fingerprint"].get(k) != current["fingerprint"].get(k)]
        if diffs:
            raise gate.CheckError("this machine or its versions differ from the baseline's (" + "; ".join(diffs) + "); absolute "
                                  "throughput is not comparable: use --ratio-to VARIANT, or --allow-env-change to compare anyway")
    verdicts = gate.compare(base, current, metrics=metrics, thresholds=_thresholds(opts.threshold), alpha=opts.alpha,
                            ratio_to=opts.ratio_to)
    ratio = opts.ratio_to is not None
    for line in gate.table(verdicts, ratio):
        print(line)
    bad = [v for v in verdicts if v.verdict == "regressed"]
    print(f"{len(bad)} regression(s) in {len(verdicts)} comparison(s)"
          + (f" ({', '.join(gate.RATIO_METRICS)} relative to {opts.ratio_to} in the same round)" if ratio else ""))
    print(gate.power_line(verdicts))
    if opts.markdown:
        Path(opts.markdown).write_text(gate.markdown(verdicts, ratio, opts.alpha))
    if opts.github_json:
        for side, items in gate.github_benchmark(verdicts, opts.ratio_to).items():
            Path(f"{opts.github_json}-{side}.json").write_text(json.dumps(items, indent=1) + "\n")
    if opts.bencher_json:
        Path(opts.bencher_json).write_text(json.dumps(gate.bencher(verdicts, opts.ratio_to), indent=1) + "\n")
    from dataclasses import asdict

    record = {"baseline": str(opts.baseline), "ratio_to": opts.ratio_to, "alpha": opts.alpha, "regressions": len(bad),
              "verdicts": [asdict(v) for v in verdicts]}
    (root / CHECK_FILE).write_text(json.dumps(record, indent=1) + "\n")
    from harness.report.render import write_report

    write_report(root)  # the report now shows the verdicts
    return REGRESSED_EXIT if bad else 0
