"""``augbench``: one-thread, per-op timings of augment pipelines, in the sweep's results format.

``python -m harness augbench augment=resize_rotate augment.library=torchvision,albumentations
augment.order=cheap,costly`` runs one process per job (one per library x order), each
writing a ``result.json`` of kind ``augbench`` and a ``samples.png``; ``results.csv``
holds them as rows like any sweep's.

A ``sweep`` whose jobs augment (with ``augment.bench=true``, the default) ends with the
same benchmark for each distinct pipeline, into ``<sweep>/augbench/``, so the sweep's
table shows in-loader and single-thread figures side by side.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, List, Sequence

from omegaconf import OmegaConf

from harness.errors import ConfigError
from harness.results.model import TrialResult

BENCH_DIR = "augbench"
# a bench process is bounded by its images and passes, not a trial bound; this only catches hangs
BENCH_TIMEOUT_S = 900.0


def run_bench(config_file: Path, out_dir: Path, *, job: int, overrides: Sequence[str]) -> TrialResult:
    """One augbench process for the pipeline in ``config_file``; its result lands in ``out_dir``."""
    from harness.augment.bench import ONE_THREAD_ENV
    from harness.trial.spawn import run_trial

    out_dir.mkdir(parents=True, exist_ok=True)
    own = out_dir / "trial.yaml"
    if Path(config_file).resolve() != own.resolve():
        shutil.copyfile(config_file, own)
    config = OmegaConf.to_container(OmegaConf.load(own), resolve=True)
    return run_trial(own, out_dir, job=job, repeat=0, overrides=overrides, config=config, timeout_s=BENCH_TIMEOUT_S,
                     kind="augbench", env=ONE_THREAD_ENV)


def _folder_name(spec) -> str:
    return f"{spec.library}-{'-'.join(op.name for op in spec.ops)}"


def bench_sweep(root: Path) -> List[TrialResult]:
    """After a sweep: augbench once per distinct (library, pipeline, dataset) among its jobs."""
    from harness.config.compose import load_trial_config
    from harness.config.validate import augment_spec
    from harness.results.model import RESULT_FILE, read_result

    done: Dict[tuple, Path] = {}
    results = []
    for config_file in sorted(Path(root).glob("*/trial.yaml"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1):
        cfg = load_trial_config(config_file)
        if not cfg.augment.ops or not cfg.augment.bench:
            continue
        spec = augment_spec(cfg)
        key = (spec.library, spec.signature(), OmegaConf.to_yaml(OmegaConf.structured(cfg.dataset)), cfg.batch.channels,
               cfg.augment.bench_images, cfg.augment.bench_passes)
        if key in done:
            continue
        first = sorted(config_file.parent.glob(f"repeat-*/{RESULT_FILE}"))
        overrides = read_result(first[0]).overrides if first else []
        job = int(config_file.parent.name) if config_file.parent.name.isdigit() else 0
        out = Path(root) / BENCH_DIR / _folder_name(spec)
        done[key] = out
        results.append(run_bench(config_file, out, job=job, overrides=overrides))
        _print(results[-1])
    return results


def _print(result: TrialResult) -> None:
    from harness.augment.bench import format_table

    if result.status == "ok":
        print(format_table(result), flush=True)
    else:
        print(f"  augbench job {result.job}: {result.status}: {result.error}", flush=True)


def augbench(args: Sequence[str]) -> int:
    """The ``augbench`` command: every job of the override grid, one process each."""
    from harness.augment.spec import parse
    from harness.commands.launch import FAILED_TRIALS_EXIT, new_result_dir
    from harness.config.compose import compose, expand_sweep, to_typed
    from harness.config.schema import choice
    from harness.data.build import prepare
    from harness.results.table import write_table

    args = list(args)
    given = [a.split("=", 1)[1] for a in args if a.startswith("hydra.sweep.dir=")]
    jobs = expand_sweep(args)
    plans = []
    for job in jobs:
        cfg = compose(job)
        typed = to_typed(cfg)
        if choice(typed.augment.library) == "auto":
            raise ConfigError("augbench: set augment.library (torchvision, albumentations, tf_image, keras_idg; "
                              "a comma list compares them)")
        spec = parse(typed.augment, None)
        if not spec.active:
            raise ConfigError("augbench: augment.ops is empty; pick a pipeline (augment=resize_rotate) or list ops")
        plans.append((job, cfg, typed))
    root = Path(given[0]) if given else new_result_dir("augbench", True)
    print(f"harness: augbench, {len(plans)} job(s) -> {root}", flush=True)
    failed = 0
    for number, (job, cfg, typed) in enumerate(plans):
        prepare(typed.dataset)  # built here, once, outside any timing
        job_dir = root / str(number)
        job_dir.mkdir(parents=True, exist_ok=True)
        plain = OmegaConf.masked_copy(cfg, [k for k in cfg.keys() if k != "hydra"])
        (job_dir / "trial.yaml").write_text(OmegaConf.to_yaml(plain, resolve=True))
        result = run_bench(job_dir / "trial.yaml", job_dir, job=number, overrides=[o for o in job if not o.startswith("hydra.")])
        failed += result.status != "ok"
        _print(result)
        write_table(root)
    print(f"table: {root / 'results.csv'}")
    print(root)
    return FAILED_TRIALS_EXIT if failed else 0
