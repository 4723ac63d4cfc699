"""``diagnose``: where a loader's data stall comes from, preparation (CPU) or fetch (I/O), without root.

DS-Analyzer's differential method, on the sweep engine (one process per trial, the three
jobs in interleaved rounds, ``trial.repeats`` of them, 3 by default):

- **ingest**: the consumer fed from memory (``loader=synthetic`` with ``produce_ms=0``, batches
  of the same shape already built): the most the consumer can take, its maximum ingestion rate;
- **warm**: the loader with every dataset file read once before it starts
  (``dataset.page_cache=warm``): reads come from memory, so what it lacks is preparation;
- **cold**: the loader with the dataset's files evicted first (``dataset.page_cache=cold``,
  ``posix_fadvise(DONTNEED)``, no root needed): preparation plus fetching from the disk.

With ``storage=throttled`` (or a profile) the warm job reads the local copy (``storage=local``): what
the throttled storage adds (its latency per open and read, its bandwidth) is then fetch, as it is
on the storage it stands for, where a page cache on this machine would not hold the files.

With ``t`` the time per sample (1 / samples/s) of each: the data stall is ``t_cold - t_ingest``,
the prep stall ``t_warm - t_ingest``, the fetch stall ``t_cold - t_warm``, each given as a share
of the cold step time, so prep + fetch = data stall. The loader jobs run one epoch (unless a
bound is given): a cold cache only stays cold until the first epoch has read every file.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from harness.errors import HarnessError

JOBS = ("ingest", "warm", "cold")
BOUND_KEYS = ("trial.steps=", "trial.seconds=", "trial.epochs=")


def diagnose(args: Sequence[str]) -> int:
    from harness.commands.launch import _write_outputs, new_result_dir
    from harness.config.compose import compose
    from harness.engine import check_job, run_jobs

    overrides = list(args)
    typed = check_job(compose(overrides, typed=False))
    root = new_result_dir(f"diagnose-{typed.loader.name}", True)
    jobs = _jobs(overrides, typed)
    print(f"harness: diagnose loader={typed.loader.name}: {', '.join(JOBS)} in interleaved rounds -> {root}", flush=True)
    results = run_jobs([jobs[name] for name in JOBS], root)
    _write_outputs(root, True, trace=False)
    found = stalls(_rates(results), reads_files=typed.loader.name != "synthetic")
    (root / "diagnosis.json").write_text(json.dumps(found, indent=1) + "\n")
    from harness.config.schema import choice

    throttled = choice(typed.storage.kind) != "local"
    text = describe(found, typed.loader.name, typed.storage.profile if throttled else None)
    (root / "diagnosis.md").write_text(text + "\n")
    print(text)
    print(root)
    return 0


def _jobs(overrides: list[str], typed) -> dict[str, list[str]]:
    """The three jobs' overrides: the consumer fed from memory, the loader warm, the loader cold."""
    from harness.config.schema import choice

    repeats = [] if any(o.startswith("trial.repeats=") for o in overrides) else ["trial.repeats=3"]
    # one epoch (cold stays cold only until every file was read once), with a short warm-up so small datasets measure
    bound = [] if any(o.startswith(BOUND_KEYS) for o in overrides) else ["trial.epochs=1"]
    bound += [] if any(o.startswith("trial.warmup_steps=") for o in overrides) else ["trial.warmup_steps=2"]
    shape = [f"batch.{k}={choice(v)}" for k, v in dataclasses.asdict(typed.batch).items()]
    consumer = [f"consumer.{k}={_value(choice(v))}" for k, v in dataclasses.asdict(typed.consumer).items() if v is not None]
    trial = [o for o in overrides if o.startswith(("trial.", "threads.", "monitor."))]
    ingest = ["loader=synthetic", "loader.produce_ms=0", *shape, *consumer, *trial, *repeats]
    if not any(o.startswith(BOUND_KEYS) for o in trial):
        ingest.append(f"trial.steps={max(typed.trial.warmup_steps, 5) * 6}")
    loader = [*overrides, *repeats, *bound]
    local = ["storage=local"] if choice(typed.storage.kind) != "local" else []  # warm: no remote fetch either
    return {"ingest": ingest, "warm": [*loader, *local, "dataset.page_cache=warm"], "cold": [*loader, "dataset.page_cache=cold"]}


def _value(value) -> str:
    return {True: "true", False: "false"}.get(value, str(value)) if isinstance(value, bool) else str(value)


def _rates(results) -> dict[str, float | None]:
    """Median samples/s of each job's ok trials (jobs in :data:`JOBS` order); ``None`` for a job with none ok."""
    from harness.engine import outcomes

    found = outcomes(results)
    return {name: found[i].samples_per_s if i in found and "ok" in found[i].statuses else None for i, name in enumerate(JOBS)}


def stalls(rates: dict[str, float | None], *, reads_files: bool = True) -> dict:
    """DS-Analyzer's stall split from the three jobs' samples/s.

    Returns:
        the rates, the per-sample times (ms) and ``data_stall``, ``prep_stall``, ``fetch_stall``
        as shares of the cold step time (``None`` where a job did not finish ok).
    """
    if any(rates.get(name) in (None, 0) for name in JOBS):
        missing = [name for name in JOBS if not rates.get(name)]
        return {"rates": rates, "error": f"no ok trial for {', '.join(missing)}: see results.csv"}
    t = {name: 1000.0 / float(rates[name]) for name in JOBS}  # type: ignore[arg-type]
    cold = t["cold"]
    data = max(cold - t["ingest"], 0.0)
    prep = min(max(t["warm"] - t["ingest"], 0.0), data)
    fetch = data - prep  # what warming the cache took away; noise can make warm slower than cold: never negative
    return {
        "rates": rates,
        "ms_per_sample": {name: round(v, 4) for name, v in t.items()},
        "data_stall": round(data / cold, 4),
        "prep_stall": round(prep / cold, 4),
        "fetch_stall": round(fetch / cold, 4),
        "reads_files": reads_files,
    }


def describe(found: dict, loader: str, storage: str | None = None) -> str:
    """Plain words and a table for the console and diagnosis.md; ``storage``: the throttled profile read, if any."""
    if "error" in found:
        raise HarnessError(f"diagnose: {found['error']}")
    rates = found["rates"]
    title = f"## diagnose: loader={loader}" + (f" storage={storage}" if storage else "")
    lines = [title, "", "| job | samples/s (median) | ms per sample |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {rates[name]:.1f} | {found['ms_per_sample'][name]:.3f} |" for name in JOBS]
    data, prep, fetch = found["data_stall"], found["prep_stall"], found["fetch_stall"]
    lines += ["", f"Data stall: {data:.0%} of the step time with a cold page cache (prep {prep:.0%}, fetch {fetch:.0%})."]
    if data < 0.05:
        lines.append("The loader keeps up with the consumer: the accelerator, not the input pipeline, sets the pace.")
    elif fetch > prep:
        lines.append(
            f"Most of it is fetch: reading the files from {f'storage={storage}' if storage else 'disk'}. Cache the dataset in "
            "memory, copy it to faster local storage, or read fewer, larger files (TFRecord, tar shards) several at once "
            "(interleave, more workers)."
        )
    else:
        lines.append(
            "Most of it is prep: decoding and transforming on the CPU. More parallel calls or workers help until the "
            "CPU is full; then a cheaper decoder, smaller stored images, or caching decoded samples."
        )
    if not found.get("reads_files", True):
        lines.append("This loader reads no files, so there is no fetch to measure.")
    return "\n".join(lines)
