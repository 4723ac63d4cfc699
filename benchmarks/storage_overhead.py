"""Is the emulated storage what it measures? storage=throttled at zero latency and no cap against storage=local.

One sweep, both storages in the same shuffled rounds: tf.data over the dataset's files, pinned to
one core (trial.cpus=1) so the FUSE server runs on the other, as a serial reader (one file at a
time, nothing prefetched: every request's round trip through the mount shows) and with a parallel
map and prefetch (as most pipelines read). Prints per pipeline the median samples/s of each storage,
their ratio (the issue's bar: within 5%) and the server's own CPU per request and share of a core.

    python benchmarks/storage_overhead.py                 # about 3 minutes on 2 cores
    python benchmarks/storage_overhead.py trial.repeats=8

Numbers, not pass/fail: nothing here asserts. Run it on an otherwise idle machine (needs FUSE: make fuse).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = {
    "serial reader": ["loader.num_parallel_calls=none", "loader.prefetch=none"],
    "parallel map + prefetch": ["loader.num_parallel_calls=4", "loader.prefetch=2"],
}
COMMON = [
    "loader=tf_data",
    "dataset.count=1024",
    "trial.cpus=1",
    "trial.seconds=3",
    "trial.warmup_steps=3",
    "trial.repeats=5",
    "loader.map_parallelization=false",
    "loader.inject_prefetch=false",
    "report.ceilings=false",
    "storage=local,throttled",
]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from harness.results.model import read_result

    extra = sys.argv[1:]
    print(f"{'pipeline':<24} {'local':>10} {'throttled':>10} {'ratio':>7}   server CPU / request, % of a core")
    for name, knobs in PIPELINES.items():
        out = ROOT / "reports" / "storage-overhead" / name.replace(" ", "-").replace("+", "and")
        argv = [sys.executable, "-m", "harness", "sweep", "--overwrite", *COMMON, *knobs, *extra, f"hydra.sweep.dir={out}"]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"the sweep into {out} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        rates: dict[str, list[float]] = {"local": [], "throttled": []}
        cost, share = [], []
        for path in sorted(out.rglob("result.json")):
            result = read_result(path)  # with the parent's supervisor.json, where the server's record is
            if result.status != "ok":
                continue
            rates[result.config["storage"]["kind"]].append(result.summary["samples_per_s"])
            facts = result.overhead.get("storage") or {}
            if facts.get("cpu_us_per_request") is not None:
                cost.append(facts["cpu_us_per_request"])
                share.append(100 * facts["serving_cpu_s"] / result.timing["duration_s"])
        local, throttled = statistics.median(rates["local"]), statistics.median(rates["throttled"])
        server = f"{statistics.median(cost):.0f} us, {statistics.median(share):.1f}%" if cost else "–"
        print(f"{name:<24} {local:>10,.0f} {throttled:>10,.0f} {throttled / local:>7.3f}   {server}", flush=True)


if __name__ == "__main__":
    main()
