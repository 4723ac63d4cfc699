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
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

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
    # to_container is typed as any container OmegaConf makes; a resolved trial.yaml is a mapping with str keys
    config = cast("dict[str, Any]", OmegaConf.to_container(OmegaConf.load(own), resolve=True))
    return run_trial(
        own, out_dir, job=job, repeat=0, overrides=overrides, config=config, timeout_s=BENCH_TIMEOUT_S, kind="augbench", env=ONE_THREAD_ENV
    )


def _folder_name(spec) -> str:
    return f"{spec.library}-{'-'.join(op.name for op in spec.ops)}"


def bench_sweep(root: Path) -> list[TrialResult]:
    """After a sweep: augbench once per distinct (library, pipeline, dataset) among its jobs."""
    from harness.config.compose import load_trial_config
    from harness.config.validate import augment_spec
    from harness.results.model import RESULT_FILE, read_result

    done: dict[tuple, Path] = {}
    results = []
    for config_file in sorted(Path(root).glob("*/trial.yaml"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1):
        cfg = load_trial_config(config_file)
        if not cfg.augment.ops or not cfg.augment.bench:
            continue
        spec = augment_spec(cfg)
        key = (
            spec.library,
            spec.signature(),
            OmegaConf.to_yaml(OmegaConf.structured(cfg.dataset)),
            cfg.batch.channels,
            cfg.augment.bench_images,
            cfg.augment.bench_passes,
        )
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
    """The ``augbench`` command: every job of the override grid, one process each.

    Ctrl-C or SIGTERM stops the running job with its process group, keeps what finished
    and exits 130 / 143, as a sweep does.
    """
    from harness.commands.outputs import FAILED_TRIALS_EXIT, new_result_dir
    from harness.config.compose import expand_sweep
    from harness.results.table import write_table
    from harness.trial import stop

    args = with_defaults(list(args))
    given = [a.split("=", 1)[1] for a in args if a.startswith("hydra.sweep.dir=")]
    plans = [_plan(job) for job in expand_sweep(args)]
    root = Path(given[0]) if given else new_result_dir("augbench", True)
    print(f"harness: augbench, {len(plans)} job(s) -> {root}", flush=True)
    with stop.stopping_on_signals():
        try:
            failed = _run_all(plans, root)
        except stop.Interrupted as exc:
            if root.exists():
                write_table(root)
            print(f"interrupted by {exc}: the running job was stopped; finished jobs are kept in {root}", flush=True)
            return stop.exit_status(exc.signum)
    print(f"table: {root / 'results.csv'}")
    print(root)
    return FAILED_TRIALS_EXIT if failed else 0


DEFAULT_PIPELINE = "resize_rotate"  # the seeds' comparison: resize up, then rotate


def with_defaults(args: list[str]) -> list[str]:
    """What ``augbench`` alone means: the resize_rotate pipeline (unless ops or a pipeline are given),
    in every library that can express it (unless ``augment.library`` is given)."""
    from dataclasses import replace

    from harness.augment.spec import LIBRARIES, check_support, parse
    from harness.config.compose import compose, expand_sweep, to_typed
    from harness.errors import HarnessError

    keys = {a.lstrip("+").split("=", 1)[0] for a in args}
    if not any(k == "augment" or k.startswith("augment.ops") for k in keys):
        args = [*args, f"augment={DEFAULT_PIPELINE}"]
    if "augment.library" in keys:
        return args
    # parsed with a library named (auto means "the loader's", and augbench runs no loader)
    spec = parse(to_typed(compose([*expand_sweep(args)[0], f"augment.library={LIBRARIES[0]}"])).augment, None)
    able = []
    for library in LIBRARIES:
        try:
            check_support(replace(spec, library=library))
            able.append(library)
        except HarnessError:  # the library lacks an op or cannot express the pipeline
            continue
    if not able:
        raise ConfigError("augbench: no library can run this pipeline; change augment.ops")
    print(f"augbench: augment.library={','.join(able)} (every library that can run the pipeline)", flush=True)
    return [*args, f"augment.library={','.join(able)}"]


def _plan(job: list[str]):
    """Compose and check one job before anything runs: (overrides, config, typed config)."""
    from harness.augment.spec import parse
    from harness.config.compose import compose, to_typed
    from harness.config.schema import choice
    from harness.config.validate import check_finite

    cfg = compose(job)
    typed = to_typed(cfg)
    check_finite(typed)  # not validate(): augbench runs no loader, so the loader's rules do not apply
    if choice(typed.augment.library) == "auto":
        raise ConfigError("augbench: set augment.library (torchvision, albumentations, tf_image, keras_idg; a comma list compares them)")
    if not parse(typed.augment, None).active:
        raise ConfigError("augbench: augment.ops is empty; pick a pipeline (augment=resize_rotate) or list ops")
    return job, cfg, typed


def _run_all(plans, root: Path) -> int:
    """Run every planned job in order; the number that did not end ok."""
    from harness.commands.outputs import write_trial_config
    from harness.data.build import prepare
    from harness.results.table import write_table
    from harness.trial import stop

    failed = 0
    for number, (job, cfg, typed) in enumerate(plans):
        stop.check()  # a signal between two jobs: start no other
        prepare(typed.dataset)  # built here, once, outside any timing
        config_file, _ = write_trial_config(cfg, root / str(number))
        result = run_bench(config_file, config_file.parent, job=number, overrides=[o for o in job if not o.startswith("hydra.")])
        failed += result.status != "ok"
        _print(result)
        write_table(root)
    stop.check()  # the last job was interrupted
    return failed
