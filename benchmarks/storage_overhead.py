"""Is the emulated storage what it measures? storage=throttled at zero latency and no cap against storage=local.

One sweep per pipeline, three storages in the same shuffled rounds: tf.data over the dataset's files,
pinned to one core (trial.cpus=1) so the FUSE server runs on the other, as a serial reader (one file
at a time, nothing prefetched: every request's round trip through the mount shows) and with a parallel
map and prefetch (as most pipelines read). The storages: ``local``; ``throttled`` at zero latency (the
issue's bar: within 5% of local; free requests never reach the server, see throttle.c); and
``throttled`` with 1 us per read request, so that every open, read and release of every epoch is a
round trip through the server: what each request the server handles adds to a file's time beyond
its latency. Prints per pipeline the median samples/s, the ratios to local, the time each file gains
with every request served, and the server's own CPU per request and share of a core.

    python benchmarks/storage_overhead.py                 # about 6 minutes on 2 cores
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
    "storage.read_ms=0,0.001",  # local ignores it: twice the local trials
]
SERVED = "throttled, every request served"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from harness.results.model import read_result

    extra = sys.argv[1:]
    print(f"{'pipeline':<24} {'local':>7} {'zero latency':>18} {'every request served':>30}   server CPU / request, % of a core")
    for name, knobs in PIPELINES.items():
        out = ROOT / "reports" / "storage-overhead" / name.replace(" ", "-").replace("+", "and")
        argv = [sys.executable, "-m", "harness", "sweep", "--overwrite", *COMMON, *knobs, *extra, f"hydra.sweep.dir={out}"]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"the sweep into {out} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        rates: dict[str, list[float]] = {"local": [], "throttled": [], SERVED: []}
        cost, share = [], []
        for path in sorted(out.rglob("result.json")):
            result = read_result(path)  # with the parent's supervisor.json, where the server's record is
            if result.status != "ok":
                continue
            storage = result.config["storage"]
            rates[SERVED if storage["kind"] == "throttled" and storage["read_ms"] else storage["kind"]].append(
                result.summary["samples_per_s"]
            )
            facts = result.overhead.get("storage") or {}
            if facts.get("cpu_us_per_request") is not None and storage["read_ms"]:
                cost.append(facts["cpu_us_per_request"])
                share.append(100 * facts["serving_cpu_s"] / result.timing["duration_s"])
        local, zero, served = (statistics.median(rates[k]) for k in ("local", "throttled", SERVED))
        server = f"{statistics.median(cost):.0f} us, {statistics.median(share):.1f}%" if cost else "–"
        added_us = (1 / served - 1 / local) * 1e6
        print(
            f"{name:<24} {local:>7,.0f} {zero:>7,.0f} ({zero / local:.3f}) {served:>7,.0f} ({served / local:.3f}, "
            f"{added_us:+.0f} us a file)"
            f"   {server}",
            flush=True,
        )


if __name__ == "__main__":
    main()
