"""How often does the CI gate cry wolf, and how often does it catch a 10% slowdown or a lost parallel map?

Two designs (``--design``):

- ``ab`` (the default; what ``make gate`` and ``check --ab`` run): no stored baseline. Each of
  ``--runs`` sweeps runs the gate's two tiers (``b_tf_data`` pinned to one core, ``c_parallel`` on
  every core), an unchanged twin of each (``b_twin``, ``c_twin``: the base revision of an A/B run)
  and two changed ones, ``x_slowed`` (the cost tier with extra CPU work sized to cost ``--slowdown``
  more per sample, measured first) and ``y_serial_map`` (``num_parallel_calls`` AUTOTUNE -> 1), all
  in the same shuffled rounds. Each sweep is checked three times with ``ci/gate-ab.args``, the twins
  as the base: unchanged (any regression is a false alarm), slowed (caught when b_tf_data regresses),
  serial map (caught when c_parallel regresses).
- ``stored``: a baseline as CI once kept one (``--baseline-repeats`` rounds), then sweeps of the
  gate's three variants (with ``a_yardstick``) and the two changed ones, checked against it in ratio
  mode with ``ci/gate.args``.

A "could not judge" (exit 2: the run's noise left the threshold undetectable) is counted apart:
it fails a CI job too, so it is printed beside the false alarms.

    python benchmarks/gate_power.py --runs 20                       # about 80 minutes on 2 cores
    python benchmarks/gate_power.py --evaluate reports/gate-power-ab                   # re-read the sweeps only
    python benchmarks/gate_power.py --design stored --runs 20 --out reports/gate-power

Numbers, not pass/fail: nothing here asserts. Run it on an otherwise idle machine, from a checkout
nothing edits meanwhile (each trial imports the harness it finds there when it starts).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GATE = ["a_yardstick", "b_tf_data", "c_parallel"]
CHANGED = {"slowed": ("x_slowed", "b_tf_data"), "serial map": ("y_serial_map", "c_parallel")}
# the A/B design (check --ab): the base side and the changed or unchanged twin in the same rounds
AB_BASE = ["b_tf_data", "c_parallel"]
AB_CASES = {
    "unchanged": {"b_tf_data": "b_twin", "c_parallel": "c_twin"},
    "slowed": {"b_tf_data": "x_slowed", "c_parallel": "c_twin"},
    "serial map": {"b_tf_data": "b_twin", "c_parallel": "y_serial_map"},
}
AB_TARGET = {"unchanged": None, "slowed": "b_tf_data", "serial map": "c_parallel"}
PROBE = 40  # units of extra work in the calibration sweep


def sweep(folder: Path, variants: list[str], extra: list[str], env: dict | None = None) -> float:
    t = time.perf_counter()
    argv = [sys.executable, "-m", "harness", "sweep", "--overwrite", "experiment=ci_gate", "report.ceilings=false"]
    argv += [f"+experiment/ci_gate={','.join(variants)}", f"hydra.sweep.dir={folder}", *extra]
    done = subprocess.run(argv, cwd=ROOT, env=dict(os.environ, **(env or {})), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"sweep into {folder} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - t


def unit_cost(out: Path, extra: list[str]) -> float:
    """CPU ms per sample that one unit of loader.extra_work adds to the cost tier's pipeline, measured."""
    from harness.results.table import rows

    folder = out / "calibration"
    sweep(folder, ["b_tf_data"], [*extra, f"loader.extra_work=0,{PROBE}", "trial.repeats=2"])
    cpu: dict[int, list[float]] = {0: [], PROBE: []}
    for row in rows(folder):
        cpu[int(row["loader.extra_work"])].append(float(row["cpu_s_per_1000_samples"]))
    return (statistics.median(cpu[PROBE]) - statistics.median(cpu[0])) / PROBE


def gate_options(args_file: str = "gate.args") -> dict:
    """ci/gate.args (or ci/gate-ab.args) as check's own parser reads it: metrics, thresholds, reference."""
    from harness.commands.check import _parser, _thresholds

    opts = _parser().parse_args(shlex.split((ROOT / "ci" / args_file).read_text()))
    return {"metrics": opts.metrics, "thresholds": _thresholds(opts.threshold), "ratio_to": opts.ratio_to, "alpha": opts.alpha}


def as_gate(data: dict, swap: tuple[str, str] | None) -> dict:
    """The sweep's variants as a gate run sees them: the gate's three, one of them replaced by its changed twin."""
    variants = {name: data["variants"][name] for name in GATE}
    if swap:
        changed, place = swap
        variants[place] = data["variants"][changed]
    return {**data, "variants": variants}


class Tally:
    """One case's count over the runs: regressions, could-not-judge without one, the tier's samples/s changes."""

    def __init__(self, tier: str | None):
        self.tier, self.what = tier or "b_tf_data", "false alarms" if tier is None else "caught"
        self.regressed = self.unjudged = 0
        self.changes: list[float] = []

    def add(self, judged: list, verdicts: list) -> None:
        """``judged``: the verdicts that count for the case; ``verdicts``: all of the run's (for the tier's change)."""
        found = any(v.verdict == "regressed" for v in judged)
        self.regressed += found
        self.unjudged += not found and any(v.verdict == "could not judge" for v in judged)
        self.changes += [v.change for v in verdicts if v.variant == self.tier and v.metric == "samples_per_s" and v.change is not None]

    def counts(self, runs: int) -> str:
        return f"{self.regressed:>4} / {runs:<3} {self.unjudged:>10} / {runs:<3}"

    def spread(self) -> str:
        c = self.changes
        return f"{min(c):+.1%} / {statistics.median(c):+.1%} / {max(c):+.1%}" if c else "–"


def evaluate(out: Path) -> None:
    from harness.check import collect, compare, load_baseline

    base = load_baseline(out / "baseline.json")
    runs = json.loads((out / "runs.json").read_text())
    options = gate_options()
    args = (ROOT / "ci" / "gate.args").read_text().strip()
    print(f"{len(runs)} gate-sized sweeps against {out / 'baseline.json'}; check options: {args}")
    print(f"{'case':<12} {'regressed':>10} {'could not judge':>16}   change of the tier's samples/s ratio (min / median / max)")
    for case, swap in [("unchanged", None), *CHANGED.items()]:
        tally = Tally(swap[1] if swap else None)
        for run in runs:
            verdicts = compare(base, as_gate(collect(out / run["folder"]), swap), **options)
            tally.add([v for v in verdicts if swap is None or v.variant == swap[1]], verdicts)
        print(f"{case:<12} {tally.counts(len(runs))}   {tally.spread()}   ({tally.what})")
    took = statistics.median(r["seconds"] for r in runs)
    print(f"gate-sized sweep time: median {took:.0f} s (the gate's three variants and the two changed ones, in the gate's rounds)")


def evaluate_ab(out: Path) -> None:
    """The A/B design as check --ab judges it: each run's base variants against their twins, paired by round.

    Where the first rounds cannot judge (too few for the threshold), check --ab runs as many rounds
    again of those variants; here that second sweep is the next run's rounds of the same variants
    (minutes later on the same machine, as the check's own second sweep would be).
    """
    from harness.check import collect, compare, underpowered
    from harness.commands.ab import pool

    runs = json.loads((out / "runs.json").read_text())
    options = {**gate_options("gate-ab.args"), "paired": True}
    docs = [collect(out / run["folder"]) for run in runs]
    print(
        f"{len(runs)} A/B sweeps (the base and its twin in the same rounds, paired by round); check options: "
        f"{(ROOT / 'ci' / 'gate-ab.args').read_text().strip()}"
    )
    print(f"{'case':<12} {'regressed':>10} {'could not judge':>16} {'extended':>9}   change of the tier's samples/s (min / median / max)")
    for case, twins in AB_CASES.items():
        target = AB_TARGET[case]
        tally, extended = Tally(target), 0
        for i, data in enumerate(docs):
            base, current = _sides(data, twins)
            verdicts = compare(base, current, **options)
            if any(underpowered(v) for v in verdicts if target in (None, v.variant)):
                extended += 1
                more_base, more_current = _sides(docs[(i + 1) % len(docs)], twins)
                verdicts = compare(pool(base, more_base), pool(current, more_current), **options)
            tally.add([v for v in verdicts if target in (None, v.variant)], verdicts)
        print(f"{case:<12} {tally.counts(len(runs))} {extended:>6}   {tally.spread()}   ({tally.what})")
    took = statistics.median(r["seconds"] for r in runs)
    print(f"A/B sweep time: median {took:.0f} s (the base variants, their twins and the two changed ones, in the gate's rounds)")


def _sides(data: dict, twins: dict) -> tuple[dict, dict]:
    base = {**data, "variants": {name: data["variants"][name] for name in AB_BASE}}
    return base, {**data, "variants": {name: data["variants"][twin] for name, twin in twins.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="gate-sized sweeps, each checked unchanged, slowed and with a serial map")
    parser.add_argument("--slowdown", type=float, default=0.10, help="extra CPU per sample of the slowed variant")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "gate-power-ab")
    parser.add_argument("--evaluate", type=Path, help="only re-evaluate the sweeps of an earlier run in this folder")
    parser.add_argument(
        "--design",
        choices=["ab", "stored"],
        default="ab",
        help="ab: check --ab's design (twins in the same rounds, ci/gate-ab.args); "
        "stored: a stored baseline and ratios to a yardstick (ci/gate.args)",
    )
    parser.add_argument("--baseline-repeats", type=int, default=10, help="rounds of the baseline sweep (CI keeps one such)")
    parser.add_argument("extra", nargs="*", help="more overrides for every sweep (e.g. trial.seconds=4)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.evaluate:
        (evaluate_ab if args.design == "ab" else evaluate)(args.evaluate)
        return
    from harness.check import load_baseline, save_baseline

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    per_unit = unit_cost(out, args.extra)
    if args.design == "ab":
        run_ab(out, args, per_unit)
        return
    took = sweep(out / "baseline", GATE, [*args.extra, f"trial.repeats={args.baseline_repeats}"])
    save_baseline(out / "baseline", out / "baseline.json")
    cpu = [r["summary"]["cpu_s_per_1000_samples"] for r in load_baseline(out / "baseline.json")["variants"]["b_tf_data"]["repeats"]]
    work = max(1, round(args.slowdown * statistics.median(cpu) / per_unit))
    print(
        f"baseline sweep {took:.0f} s; one unit of extra work costs {per_unit * 1e3:.1f} us of CPU per sample; "
        f"a {args.slowdown:.0%} costlier map: loader.extra_work={work}",
        flush=True,
    )
    runs = []
    for i in range(args.runs):
        folder = f"run-{i:02d}"
        took = sweep(out / folder, [*GATE, "x_slowed", "y_serial_map"], args.extra, {"HARNESS_GATE_SLOWED_WORK": str(work)})
        runs.append({"folder": folder, "extra_work": work, "seconds": round(took, 1)})
        (out / "runs.json").write_text(json.dumps(runs, indent=1) + "\n")
        print(f"  {folder}: {took:.0f} s", flush=True)
    evaluate(out)


def run_ab(out: Path, args, per_unit: float) -> None:
    from harness.results.table import rows

    cpu = [float(r["cpu_s_per_1000_samples"]) for r in rows(out / "calibration") if int(r["loader.extra_work"]) == 0]
    work = max(1, round(args.slowdown * statistics.median(cpu) / per_unit))
    cost = f"one unit of extra work costs {per_unit * 1e3:.1f} us of CPU per sample"
    print(f"{cost}; a {args.slowdown:.0%} costlier map: loader.extra_work={work}", flush=True)
    variants = sorted({*AB_BASE, *(t for twins in AB_CASES.values() for t in twins.values())})
    runs = []
    for i in range(args.runs):
        folder = f"run-{i:02d}"
        took = sweep(out / folder, variants, args.extra, {"HARNESS_GATE_SLOWED_WORK": str(work)})
        runs.append({"folder": folder, "extra_work": work, "seconds": round(took, 1)})
        (out / "runs.json").write_text(json.dumps(runs, indent=1) + "\n")
        print(f"  {folder}: {took:.0f} s", flush=True)
    evaluate_ab(out)


if __name__ == "__main__":
    main()
