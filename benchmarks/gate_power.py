"""How often does the CI gate cry wolf, and how often does it catch a real 10% slowdown?

Runs the project's gate sweep (``experiment=ci_gate``) as CI does: once as the baseline,
then ``--runs`` unchanged reruns and ``--runs`` reruns whose pipeline under test costs
``--slowdown`` more CPU per sample (``loader.extra_work`` through ``HARNESS_GATE_EXTRA_WORK``:
its cost per unit is measured first, then sized from the baseline's own CPU ms per sample), alternating in a shuffled order so
machine drift spreads over both. Each rerun is checked against the baseline with the
gate's settings, and every alternative setting in ``SETTINGS`` is evaluated on the same
sweeps (no extra runs), so the printed table shows which thresholds and metrics meet the
target: at most 1 false alarm in 20, at least 19 of 20 slowdowns caught.

    python benchmarks/gate_power.py --runs 20            # about 45 minutes on 2 cores
    python benchmarks/gate_power.py --evaluate reports/gate-power   # re-read the sweeps only

Numbers, not pass/fail: nothing here asserts. Run it on an otherwise idle machine (or on a
busy one, to see what a noisy CI runner does to the rates).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "a_yardstick"
UNDER_TEST = "b_tf_data"
PROBE = 40  # units of extra work in the calibration sweep
# (label, metrics, thresholds): the gate's own setting first (see the Makefile's gate target)
SETTINGS = [
    ("gate: samples+cpu 5%", ["samples_per_s", "cpu_ms_per_sample"], {"samples_per_s": 0.05, "cpu_ms_per_sample": 0.05}),
    ("samples 5%", ["samples_per_s"], {"samples_per_s": 0.05}),
    ("cpu 5%", ["cpu_ms_per_sample"], {"cpu_ms_per_sample": 0.05}),
    ("samples+cpu 3%", ["samples_per_s", "cpu_ms_per_sample"], {"samples_per_s": 0.03, "cpu_ms_per_sample": 0.03}),
    ("samples+cpu 7%", ["samples_per_s", "cpu_ms_per_sample"], {"samples_per_s": 0.07, "cpu_ms_per_sample": 0.07}),
    ("samples 10% (old metric set)", ["samples_per_s"], {"samples_per_s": 0.10}),
]


def sweep(folder: Path, extra_work: int, extra, experiment: str = "experiment=ci_gate") -> float:
    env = dict(os.environ, HARNESS_GATE_EXTRA_WORK=str(extra_work))
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "harness", "sweep", "--overwrite", experiment, f"hydra.sweep.dir={folder}", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"sweep into {folder} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - t


def unit_cost(out: Path, extra) -> float:
    """CPU ms per sample that one unit of loader.extra_work adds to the tested pipeline, measured."""
    from harness.results.table import rows

    folder = out / "calibration"
    sweep(
        folder,
        0,
        [*extra, f"loader.extra_work=0,{PROBE}", "trial.repeats=2", "dataset.count=2048"],
        experiment=f"+experiment/ci_gate={UNDER_TEST}",
    )
    cpu = {0: [], PROBE: []}
    for row in rows(folder):
        cpu[int(row["loader.extra_work"])].append(float(row["cpu_s_per_1000_samples"]))
    return (statistics.median(cpu[PROBE]) - statistics.median(cpu[0])) / PROBE


def calibrate(baseline: dict, slowdown: float, per_unit: float) -> int:
    """Units of extra work that add ``slowdown`` to the tested pipeline's CPU per sample."""
    cpu = [x for r in baseline["variants"][UNDER_TEST]["repeats"] for x in r["windows"]["cpu_ms_per_sample"]]
    return max(1, round(slowdown * statistics.median(cpu) / per_unit))


def verdicts(base: dict, folder: Path, metrics, thresholds):
    from harness.check import collect, compare

    return compare(base, collect(folder), metrics=metrics, thresholds=thresholds, alpha=0.01, ratio_to=REFERENCE)


def evaluate(out: Path) -> None:
    from harness.check import load_baseline

    base = load_baseline(out / "baseline.json")
    runs = json.loads((out / "runs.json").read_text())
    work = max((r["extra_work"] for r in runs), default=0)
    print(f"{len(runs)} gate reruns against {out / 'baseline.json'} (loader.extra_work={work} on the slowed runs)")
    print(f"{'setting':<30} {'false alarms':>14} {'caught':>10}   changes seen (unchanged / slowed, median)")
    for label, metrics, thresholds in SETTINGS:
        alarms = {"unchanged": 0, "slowed": 0}
        counts = {"unchanged": 0, "slowed": 0}
        changes = {"unchanged": [], "slowed": []}
        for run in runs:
            kind = "slowed" if run["extra_work"] else "unchanged"
            found = verdicts(base, out / run["folder"], metrics, thresholds)
            counts[kind] += 1
            alarms[kind] += any(v.verdict == "regressed" for v in found)
            change = next(v.change for v in found if v.metric == metrics[0])
            if change is not None:  # None: check could not judge that run (its reason is in check's output)
                changes[kind].append(change)
        med = {k: f"{statistics.median(v):+.1%}" if v else "–" for k, v in changes.items()}
        print(
            f"{label:<30} {alarms['unchanged']:>7} / {counts['unchanged']:<4} {alarms['slowed']:>4} / {counts['slowed']:<4}"
            f"   {metrics[0]} {med['unchanged']} / {med['slowed']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="unchanged reruns, and as many slowed ones")
    parser.add_argument("--slowdown", type=float, default=0.10, help="extra CPU per sample of the slowed runs")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "gate-power")
    parser.add_argument("--evaluate", type=Path, help="only re-evaluate the sweeps of an earlier run in this folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-repeats", type=int, default=10, help="repeats of the baseline sweep (CI keeps one such)")
    parser.add_argument("extra", nargs="*", help="more overrides for every sweep (e.g. trial.seconds=6)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.evaluate:
        evaluate(args.evaluate)
        return
    from harness.check import load_baseline, save_baseline

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    per_unit = unit_cost(out, args.extra)
    took = sweep(out / "baseline", 0, [*args.extra, f"trial.repeats={args.baseline_repeats}"])
    save_baseline(out / "baseline", out / "baseline.json")
    extra_work = calibrate(load_baseline(out / "baseline.json"), args.slowdown, per_unit)
    print(
        f"baseline sweep {took:.0f} s; one unit of extra work costs {per_unit * 1e3:.1f} us of CPU per sample; "
        f"a {args.slowdown:.0%} costlier map: loader.extra_work={extra_work}",
        flush=True,
    )
    order = [0, extra_work] * args.runs
    rng = random.Random(args.seed)
    pairs = [order[i : i + 2] for i in range(0, len(order), 2)]
    for pair in pairs:
        rng.shuffle(pair)
    runs = []
    for i, extra_work in enumerate(x for pair in pairs for x in pair):
        folder = f"run-{i:02d}-{'slowed' if extra_work else 'unchanged'}"
        took = sweep(out / folder, extra_work, args.extra)
        runs.append({"folder": folder, "extra_work": extra_work, "seconds": round(took, 1)})
        (out / "runs.json").write_text(json.dumps(runs, indent=1) + "\n")
        print(f"  {folder}: {took:.0f} s", flush=True)
    print(f"gate sweep time: median {statistics.median(r['seconds'] for r in runs):.0f} s")
    evaluate(out)


if __name__ == "__main__":
    main()
