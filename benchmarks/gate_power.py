"""How often does the CI gate cry wolf, and how often does it catch a 10% slowdown or a lost parallel map?

First a baseline as CI keeps one (``experiment=ci_gate``, ``--baseline-repeats`` rounds), then
``--runs`` gate-sized sweeps. Each runs the gate's three variants and, in the same shuffled
rounds, two changed ones: ``x_slowed`` (the cost tier's pipeline with extra CPU work sized to
cost ``--slowdown`` more per sample, measured first) and ``y_serial_map`` (the parallelism
tier's map with ``num_parallel_calls`` AUTOTUNE -> 1). Every sweep is then checked three
times against the baseline with the options in ``ci/gate.args`` (as ``make gate`` checks):

- unchanged: a_yardstick, b_tf_data, c_parallel. Any regression is a false alarm.
- slowed: x_slowed in b_tf_data's place. Caught when b_tf_data regresses.
- serial map: y_serial_map in c_parallel's place. Caught when c_parallel regresses.

A "could not judge" (exit 2: the run's noise left the threshold undetectable) is counted apart:
it fails a CI job too, so it is printed beside the false alarms.

    python benchmarks/gate_power.py --runs 20                       # about an hour on 2 cores
    python benchmarks/gate_power.py --evaluate reports/gate-power   # re-read the sweeps only

Numbers, not pass/fail: nothing here asserts. Run it on an otherwise idle machine.
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


def gate_options() -> dict:
    """ci/gate.args as check's own parser reads it: metrics, thresholds, reference."""
    from harness.commands.check import _parser, _thresholds

    opts = _parser().parse_args(shlex.split((ROOT / "ci" / "gate.args").read_text()))
    return {"metrics": opts.metrics, "thresholds": _thresholds(opts.threshold), "ratio_to": opts.ratio_to, "alpha": opts.alpha}


def as_gate(data: dict, swap: tuple[str, str] | None) -> dict:
    """The sweep's variants as a gate run sees them: the gate's three, one of them replaced by its changed twin."""
    variants = {name: data["variants"][name] for name in GATE}
    if swap:
        changed, place = swap
        variants[place] = data["variants"][changed]
    return {**data, "variants": variants}


def evaluate(out: Path) -> None:
    from harness.check import collect, compare, load_baseline

    base = load_baseline(out / "baseline.json")
    runs = json.loads((out / "runs.json").read_text())
    options = gate_options()
    args = (ROOT / "ci" / "gate.args").read_text().strip()
    print(f"{len(runs)} gate-sized sweeps against {out / 'baseline.json'}; check options: {args}")
    print(f"{'case':<12} {'regressed':>10} {'could not judge':>16}   change of the tier's samples/s ratio (min / median / max)")
    for case, swap in [("unchanged", None), *CHANGED.items()]:
        regressed = unjudged = 0
        changes = []
        for run in runs:
            verdicts = compare(base, as_gate(collect(out / run["folder"]), swap), **options)
            target = [v for v in verdicts if swap is None or v.variant == swap[1]]
            regressed += any(v.verdict == "regressed" for v in target)
            unjudged += not any(v.verdict == "regressed" for v in target) and any(v.verdict == "could not judge" for v in target)
            tier = swap[1] if swap else "b_tf_data"
            changes += [v.change for v in verdicts if v.variant == tier and v.metric == "samples_per_s" and v.change is not None]
        spread = f"{min(changes):+.1%} / {statistics.median(changes):+.1%} / {max(changes):+.1%}" if changes else "–"
        what = "false alarms" if swap is None else "caught"
        print(f"{case:<12} {regressed:>4} / {len(runs):<3} {unjudged:>10} / {len(runs):<3}   {spread}   ({what})")
    took = statistics.median(r["seconds"] for r in runs)
    print(f"gate-sized sweep time: median {took:.0f} s (the gate's three variants and the two changed ones, in the gate's rounds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="gate-sized sweeps, each checked unchanged, slowed and with a serial map")
    parser.add_argument("--slowdown", type=float, default=0.10, help="extra CPU per sample of the slowed variant")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "gate-power")
    parser.add_argument("--evaluate", type=Path, help="only re-evaluate the sweeps of an earlier run in this folder")
    parser.add_argument("--baseline-repeats", type=int, default=10, help="rounds of the baseline sweep (CI keeps one such)")
    parser.add_argument("extra", nargs="*", help="more overrides for every sweep (e.g. trial.seconds=4)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.evaluate:
        evaluate(args.evaluate)
        return
    from harness.check import load_baseline, save_baseline

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    per_unit = unit_cost(out, args.extra)
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


if __name__ == "__main__":
    main()
