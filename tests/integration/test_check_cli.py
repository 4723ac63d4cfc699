"""The regression gate through the CLI, on known-answer sweeps of the synthetic loader.

Two variants (produce 5 ms and 12 ms per batch, consumer step 10 ms) keep their labels
across sweeps; ``loader.workers=0`` (produce and consume in turn) is the deliberate
slowdown: about 3000 -> 2000 and 2600 -> 1400 samples/s.
"""

import dataclasses
import json

from harness.history.store import append, record_of
from tests.conftest import sweep_dir

SWEEP = [
    "loader=synthetic",
    "loader.produce_ms=5,12",
    "consumer.step_ms=10",
    "trial.seconds=2",
    "trial.repeats=2",
    "trial.warmup_steps=2",
    "monitor.trace=false",
]


def sweep(cli, tmp_path, *extra):
    done = cli("sweep", *SWEEP, *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    return sweep_dir(done, tmp_path)


def test_unchanged_reruns_pass_and_a_slowed_pipeline_fails_with_a_table_that_names_it(cli, tmp_path):
    first = sweep(cli, tmp_path)
    store = tmp_path / "history.jsonl"  # the run's figures kept for the speed across commits (harness history)
    added = cli("history", "--store", str(store), "--add", str(first), "--commit", "abc123")
    assert added.returncode == 0 and "history: abc123 added" in added.stdout, added.stderr
    (kept,) = [json.loads(line) for line in store.read_text().splitlines()]
    assert set(kept["variants"]) == {"produce_ms=5", "produce_ms=12"} and kept["variants"]["produce_ms=5"]["samples_per_s"]["n"] == 2
    baseline = tmp_path / "baseline.json"
    saved = cli("check", str(first), "--save-baseline", str(baseline))
    assert saved.returncode == 0, saved.stderr
    doc = json.loads(baseline.read_text())
    assert set(doc["variants"]) == {"produce_ms=5", "produce_ms=12"} and doc["fingerprint"]["cores"]
    assert len(doc["variants"]["produce_ms=5"]["repeats"]) == 2
    # an unchanged pipeline on the same noisy machine passes (again in test_hostile_check_cli); its CPU per
    # sample is not gated: a loader that sleeps uses almost none, and two repeats of that noise cannot
    # support "no change beyond 10%" (check says so: could not judge, exit 2)
    again = cli("check", str(sweep(cli, tmp_path)), "--baseline", str(baseline), "--metric", "samples_per_s", "--metric", "stall_pct")
    assert again.returncode == 0, again.stdout + again.stderr
    slowed = sweep(cli, tmp_path, "loader.workers=0")
    out = tmp_path / "out"
    done = cli(
        "check",
        str(slowed),
        "--baseline",
        str(baseline),
        "--markdown",
        f"{out}.md",
        "--github-json",
        str(out),
        "--bencher-json",
        f"{out}-bencher.json",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    regressed = [line for line in done.stdout.splitlines() if "REGRESSED" in line]
    assert any(line.startswith("produce_ms=5 ") and "samples_per_s" in line for line in regressed), done.stdout
    assert "**regressed**" in (tmp_path / "out.md").read_text()
    bigger = json.loads((tmp_path / "out-bigger.json").read_text())
    assert {"name", "unit", "value"} <= set(bigger[0]) and any(b["name"] == "produce_ms=5 samples_per_s" for b in bigger)
    assert "produce_ms=12" in json.loads((tmp_path / "out-bencher.json").read_text())
    assert "Regression check against" in (slowed / "report.html").read_text()
    # the same two sweeps side by side (harness compare): the slowdown is beyond the noise, in the page and the table
    page = tmp_path / "compare.html"
    side = cli("compare", str(first), str(slowed), "--out", str(page), "--metric", "samples_per_s")
    assert side.returncode == 0, side.stdout + side.stderr
    (row,) = [line for line in side.stdout.splitlines() if line.startswith("produce_ms=5 ")]
    assert "beyond the noise: worse" in row and "%" in row, side.stdout
    html = page.read_text()
    assert html.count("<tr class=") == 2 and "produce_ms=12" in html and "measured on the same machine" in html
    # with a history of 30 steady runs of the first sweep's figures, the slowed run is a change point at its own commit
    steady = record_of(first)
    for i in range(30):
        jitter = 1 + 0.01 * ((i * 7) % 5 - 2) / 2  # +-1%
        figures = {v: {m: {**f, "median": f["median"] * jitter} for m, f in ms.items()} for v, ms in steady.variants.items()}
        append(store, dataclasses.replace(steady, commit=f"c{i:02d}", variants=figures))
    history = ["--history", str(store), "--commit", "slow1"]
    gated = cli("check", str(slowed), "--baseline", str(baseline), "--metric", "samples_per_s", *history)
    assert gated.returncode == 1 and "history: produce_ms=5 samples_per_s stepped -" in gated.stdout, gated.stdout + gated.stderr
    assert " at slow1 " in gated.stdout and json.loads(store.read_text().splitlines()[-1])["commit"] == "slow1"


def test_the_check_cannot_run_without_a_valid_baseline_or_matching_variants(cli, tmp_path):
    folder = sweep(cli, tmp_path)
    missing = cli("check", str(folder), "--baseline", str(tmp_path / "none.json"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert cli("check", str(folder), "--baseline", str(bad)).returncode == 2
    bad.write_text(json.dumps({"something": "else"}))
    wrong = cli("check", str(folder), "--baseline", str(bad))
    assert wrong.returncode == 2 and "not a harness baseline" in wrong.stderr
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"harness_baseline": 1, "fingerprint": {}, "variants": {"x": {"repeats": []}}}))
    unmatched = cli("check", str(folder), "--baseline", str(other), "--allow-env-change")
    assert unmatched.returncode == 2 and "no variant of the sweep matches" in unmatched.stderr
    moved = cli("check", str(folder), "--baseline", str(other))
    assert moved.returncode == 2 and "differ from the baseline's" in moved.stderr and "--ratio-to" in moved.stderr
    assert cli("check", str(folder)).returncode == 2
    assert cli("check", str(folder), "--baseline", str(bad), "--frobnicate").returncode == 2
    # compare: a folder that is no sweep, and two sweeps with no variant in common, each one line
    nowhere = cli("compare", str(folder), str(tmp_path / "nowhere"))
    assert nowhere.returncode == 1 and nowhere.stderr.strip() == f"ERROR: compare: {tmp_path / 'nowhere'}: no such sweep folder"
    run = cli("run", "loader=synthetic", "loader.produce_ms=5", "trial.seconds=1", "trial.warmup_steps=1", "monitor.trace=false")
    assert run.returncode == 0, run.stderr
    apart = cli("compare", str(folder), str(sweep_dir(run, tmp_path)))  # its one variant is "job 0"
    assert apart.returncode == 1 and "share no variant" in apart.stderr and len(apart.stderr.strip().splitlines()) == 1
