"""``calibrate``: this machine's ceilings for a configuration or a finished sweep, printed and written to ceilings.json.

``python -m harness calibrate [overrides]`` composes the jobs as ``sweep`` would (comma lists
give several), builds their datasets and writes ``reports/<time>_calibrate/ceilings.json``;
``python -m harness calibrate SWEEP_DIR`` measures for the sweep's own trials and writes
``SWEEP_DIR/ceilings.json``, which ``report`` then shows. A sweep does the latter by itself
after its trials unless ``report.ceilings=false`` (or ``HARNESS_CEILINGS=0``) says not to.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from harness.errors import ConfigError, HarnessError
from harness.results.ceilings import CEILINGS_FILE, Ceilings, Work

OPTION = "report.ceilings"  # on the sweep's command line: false skips the calibration after the trials, quick shortens it
ENV_SWITCH = "HARNESS_CEILINGS"  # 0 / false / quick: the same for every sweep of this environment (a CI job, a test suite)
_FALSE, _TRUE, QUICK = ("0", "false", "no", "off"), ("1", "true", "yes", "on"), "quick"
# quick, for smoke tests: each chain alone once for 1 s (in the sweep's rounds: harness.trial.alone) and the disks read in
# a 2 s budget; no decoding timed in a framework's process (10-20 s of imports), so no decoder advice; the rules the same
QUICK_SECONDS, QUICK_BUDGET_S = 1.0, 2.0


def take_option(args: Sequence[str]) -> tuple[list[str], str | None]:
    """(the arguments without ``report.ceilings=...``, how to calibrate after the sweep: "full", "quick" or None: not)."""
    mode = _mode(os.environ.get(ENV_SWITCH, "1"), ENV_SWITCH)
    rest = []
    for arg in args:
        key, eq, value = arg.partition("=")
        if key.lstrip("+") != OPTION or not eq:
            rest.append(arg)
        else:
            mode = _mode(value, OPTION)
    return rest, mode


def _mode(value: str, where: str) -> str | None:
    text = value.strip().lower()
    if text in _FALSE + _TRUE + (QUICK,):
        return None if text in _FALSE else QUICK if text == QUICK else "full"
    raise ConfigError(f"{where}={value}: true, false or quick (false: no calibration after the trials; quick: a shorter one)")


def after_sweep(root: Path, mode: str | None = "full") -> None:
    """Measure the sweep's ceilings into ``root/ceilings.json`` for its report; a failure is a warning, not the sweep's."""
    from harness.calibrate.run import for_sweep, plan_sweep

    plan = plan_sweep(root)
    if mode is None or (not plan.datasets and not plan.works):
        return  # no trial read a dataset (loader=synthetic): nothing to calibrate
    print(f"calibrating this machine's ceilings ({OPTION}=false skips it)", flush=True)
    try:
        if mode == QUICK:
            ceilings = for_sweep(root, seconds=QUICK_SECONDS, repeats=1, alternatives=False, decode=False, budget_s=QUICK_BUDGET_S)
        else:
            ceilings = for_sweep(root)
    except HarnessError as exc:
        print(f"WARNING: no ceilings in the report: {exc}", file=sys.stderr, flush=True)
        return
    if ceilings is not None:
        print(f"  {_headline(ceilings)}", flush=True)


def calibrate(args: list[str]) -> int:
    """The command: a sweep folder, or overrides (none: the default configuration)."""
    folders = [a for a in args if "=" not in a]
    if folders and (len(folders) > 1 or len(args) > 1 or not Path(folders[0]).is_dir()):
        raise HarnessError(
            "calibrate takes overrides (loader=tf_data ...) or one sweep folder: python -m harness calibrate reports/<sweep>"
        )
    if folders:
        ceilings, out, accelerators = _for_folder(Path(folders[0]))
    else:
        ceilings, out, accelerators = _for_overrides(args)
    for line in lines(ceilings, accelerators):
        print(line)
    print(out)
    return 0


def _for_folder(root: Path) -> tuple[Ceilings, Path, list[str]]:
    from harness.calibrate.run import for_sweep

    ceilings = for_sweep(root)
    if ceilings is None:
        raise HarnessError(f"{root}: no ok trial that read a dataset, so nothing to calibrate; pass a sweep folder or overrides")
    return ceilings, root / CEILINGS_FILE, []


def _for_overrides(overrides: list[str]) -> tuple[Ceilings, Path, list[str]]:
    from harness.calibrate.run import measure, plan_configs
    from harness.commands.outputs import new_result_dir
    from harness.config.compose import compose, expand_sweep
    from harness.data.build import prepare
    from harness.engine import check_job, write_trial_config
    from harness.loaders import get_loader

    jobs = [compose(job) for job in expand_sweep(overrides)]
    typed = [check_job(cfg) for cfg in jobs]  # every job checked before anything is measured
    out = new_result_dir("calibrate", multirun=True)
    with tempfile.TemporaryDirectory(prefix="harness-calibrate-") as scratch:
        configs, datasets, reference = [], [], []
        for i, (cfg, t) in enumerate(zip(jobs, typed)):
            root = str(prepare(t.dataset).root)
            datasets.append(root)
            if get_loader(t.loader.name).needs(t.loader).dataset:
                configs.append(write_trial_config(cfg, Path(scratch) / str(i))[0])
            else:  # a loader that reads no files (loader=synthetic): PIL's decode+resize, the reference
                reference.append(Work("pil", root, t.batch.height, t.batch.width, t.batch.channels))
        plan = plan_configs(configs, datasets)
        plan.works += [{"work": asdict(w), "config": None} for w in dict.fromkeys(reference)]
        out.mkdir(parents=True, exist_ok=True)
        pipelines = _alone(
            out, [job for job, t in zip(expand_sweep(overrides), typed) if get_loader(t.loader.name).needs(t.loader).dataset]
        )
        ceilings = measure(plan, out / CEILINGS_FILE)
        ceilings.pipelines = pipelines
        ceilings.write(out / CEILINGS_FILE)
    accelerators = sorted({(t.batch.size, t.consumer.step_ms) for t in typed})
    return ceilings, out / CEILINGS_FILE, [_accelerator_line(size, step) for size, step in accelerators]


def _alone(out: Path, jobs: list[list[str]]) -> list:
    """Each job's chain run alone (its CPU ceiling as the pipeline runs) into ``out/ceilings/``; their pipelines."""
    from harness.calibrate import alone as measured
    from harness.calibrate.probes import usable_cores
    from harness.config.compose import compose, to_typed
    from harness.engine import run_jobs
    from harness.loaders import get_loader
    from harness.trial import alone

    if not jobs:
        return []
    cores = usable_cores()[0]
    runs = []
    for job in jobs:
        typed = to_typed(compose(job))
        runs.append(
            alone.overrides(
                job, get_loader(typed.loader.name), typed.loader, alone.usable_cores({"trial": {"cpus": typed.trial.cpus}}), repeats=2
            )
        )
    print(f"running {len(runs)} chain(s) alone for the CPU ceilings (no accelerator step, most parallel)", flush=True)
    run_jobs(runs, out / alone.ALONE_DIR)
    return measured.pipelines(out, cores)


def _accelerator_line(size: int, step_ms: float) -> str:
    rate = f"{size * 1000 / step_ms:,.0f} samples/s" if step_ms > 0 else "no limit (step_ms=0)"
    return f"  accelerator  batch {size} every consumer.step_ms={step_ms:g}: at most {rate} (before the copy to the device)"


def _headline(c: Ceilings) -> str:
    cpu = ", ".join(f"{p.work.label} {p.cpu_samples_per_s:,.0f}" for p in c.pipelines) or "none measured"
    io = ", ".join(f"{d.io_samples_per_s:,.0f} ({d.cache})" for d in c.disks) or "none measured"
    return f"ceilings, samples/s: CPU ({c.cores:g} cores): {cpu}; I/O: {io}; measured in {c.seconds:.1f} s"


def lines(c: Ceilings, accelerators: Sequence[str] = ()) -> list[str]:
    """The ceilings as the terminal shows them: one line per cost, per disk, per accelerator, then the notes."""
    out = [
        f"ceilings of {c.hostname} ({c.cpu_model}; {c.cores:g} usable CPUs: {c.cores_how}), measured {c.measured_at} in {c.seconds:.1f} s:"
    ]
    for p in c.pipelines:
        out.append(
            f"  CPU  {p.work.label}: the chain alone (job {p.job}) {p.samples_per_s:,.0f} samples/s steady, "
            f"{p.core_ms_per_sample:.2f} ms of core time a sample -> ceiling {p.cpu_samples_per_s:,.0f} samples/s on {c.cores:g} CPUs"
        )
    for cost in c.costs:
        spread = f"fastest {cost.min_ms:.2f}, slowest {cost.max_ms:.2f}, CV {cost.cv:.0%}" + (", unstable" if cost.unstable else "")
        out.append(f"  decode  {cost.work.label}: {cost.ms_per_sample:.2f} ms per sample on one core ({spread})")
    for d in c.disks:
        cache = "cold (evicted first)" if d.cache == "evicted" else "page cache state unknown"
        out.append(
            f"  I/O  {Path(d.dataset).name}: {d.mb_per_s:,.1f} MB/s, {cache}; {d.mean_bytes / 1024:,.0f} KB per file "
            f"-> {d.io_samples_per_s:,.0f} samples/s ({d.files} files, {d.bytes / 1e6:.1f} MB)"
        )
    return out + list(accelerators) + [f"  note: {n}" for n in c.notes]
