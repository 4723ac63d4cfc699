"""augbench: each op of a pipeline timed on one thread over preloaded decoded images.

The scope of albumentations' own benchmark: no loader, no I/O, no decoding; images are
decoded once and converted to the library's input type before any timing. Each op is
timed at its place in the pipeline: its inputs are the previous ops' outputs, so
``rotate`` after a resize to 512x512 is timed on 512x512 images and before it on the
stored 500x375 ones. The whole pipeline is timed the same way.

Per figure: ``warmup`` untimed passes, then ``passes`` timed passes over all images;
images/s is reported as the median over passes with its min and max, and the
coefficient of variation flags an unstable figure.

Runs in a process of its own (``python -m harness.trial.worker`` with kind augbench),
with every thread pool set to one thread before the library is imported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ONE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "OPENCV_FOR_THREADS_NUM": "1",
}


def time_passes(fn: Callable, inputs: Sequence, passes: int, warmup: int) -> list[float]:
    """Seconds per timed pass of ``fn`` over every input, after ``warmup`` untimed passes."""
    for _ in range(warmup):
        for x in inputs:
            fn(x)
    seconds = []
    for _ in range(passes):
        started = time.perf_counter()
        for x in inputs:
            fn(x)
        seconds.append(time.perf_counter() - started)
    return seconds


def figure(count: int, seconds: Sequence[float], cv_limit: float) -> dict:
    """images/s over passes: median, min, max, coefficient of variation, unstable flag."""
    rates = [count / s for s in seconds]
    mean = statistics.fmean(rates)
    cv = statistics.pstdev(rates) / mean if len(rates) > 1 and mean else 0.0
    return {
        "images_per_s": round(statistics.median(rates), 2),
        "min": round(min(rates), 2),
        "max": round(max(rates), 2),
        "cv": round(cv, 4),
        "unstable": cv > cv_limit,
        "passes": len(rates),
    }


def bench(spec, images: Sequence, *, passes: int, warmup: int, cv_limit: float, seed: int) -> dict:
    """Time each op at its place and the whole pipeline; ``images`` are decoded uint8 HWC arrays."""
    from harness.augment.pipeline import build
    from harness.augment.spec import check_support

    ops, current = [], list(images)
    for op in spec.ops:
        single = spec.subset([op])
        check_support(single, partial=True)
        pipeline = build(single, seed)
        inputs = [pipeline.native(x) for x in current]  # conversion: not timed
        seconds = time_passes(pipeline, inputs, passes, warmup)
        outputs = [pipeline.numpy(pipeline(x)) for x in inputs]
        ops.append(
            {
                "name": op.name,
                "op": op.op,
                "input_shape": list(current[0].shape),
                "output_shape": list(outputs[0].shape),
                **figure(len(inputs), seconds, cv_limit),
            }
        )
        current = outputs
    pipeline = build(spec, seed)
    inputs = [pipeline.native(x) for x in images]
    seconds = time_passes(pipeline, inputs, passes, warmup)
    whole = figure(len(inputs), seconds, cv_limit)
    summed = sum(1 / o["images_per_s"] for o in ops if o["images_per_s"])
    return {
        "scope": "one thread, decoded images in memory, no loader",
        "images": len(images),
        "source_shape": list(images[0].shape),
        "pipeline": whole,
        "ops": ops,
        "ops_combined_images_per_s": round(1 / summed, 2) if summed else None,
        "pipeline_objects": pipeline.describe(),
    }


def execute(config_file: Path, repeat: int, result) -> None:
    """The augbench trial kind: fill ``result`` (a TrialResult) for the job's pipeline."""
    from omegaconf import OmegaConf

    from harness.augment.pipeline import translator
    from harness.augment.preview import source_images, write_samples
    from harness.augment.spec import parse
    from harness.config.compose import load_trial_config
    from harness.config.schema import ThreadsConf, choice
    from harness.data.build import prepare
    from harness.errors import ConfigError
    from harness.trial import environment, threads

    result.kind = "augbench"
    result.config = OmegaConf.to_container(OmegaConf.load(config_file), resolve=True)
    cfg = load_trial_config(config_file)
    a = cfg.augment
    spec = parse(a, cfg.loader.name if choice(a.library) == "auto" else None)
    if not spec.active:
        raise ConfigError("augbench: augment.ops is empty; pick a pipeline (augment=resize_rotate) or list ops")
    result.environment = environment.collect()
    manifest = prepare(cfg.dataset)
    result.dataset = manifest.describe()
    images = source_images(manifest, cfg.batch.channels, a.bench_images)
    t = time.perf_counter()
    translator(spec.library).require()
    result.overhead["framework_import_s"] = round(time.perf_counter() - t, 4)
    one = ThreadsConf(tf_inter_op=1, tf_intra_op=1, torch=1, opencv=0)
    threads.configure(one)
    figures = bench(spec, images, passes=a.bench_passes, warmup=a.bench_warmup, cv_limit=a.bench_cv, seed=cfg.trial.seed)
    result.threads = threads.describe(one)
    result.augment = {**spec.describe(), "bench": figures}
    whole = figures["pipeline"]
    result.summary = {"samples_per_s": whole["images_per_s"], "cv": whole["cv"], "unstable": whole["unstable"]}
    if a.preview:
        write_samples(spec, manifest, cfg.batch.channels, a.preview, cfg.trial.seed, Path(config_file).parent)


def format_table(result) -> str:
    """Terminal lines: one per op and one for the whole pipeline."""
    aug = result.augment
    figures = aug["bench"]
    head = f"  {aug['library']:<15} {aug['order']:<32}"
    lines = []
    for o in figures["ops"]:
        flag = "  unstable" if o["unstable"] else ""
        shape = "x".join(str(d) for d in o["input_shape"][:2])
        lines.append(f"{head} {o['name']:<20} on {shape:>9}: {o['images_per_s']:9.1f} images/s (cv {o['cv']:.1%}){flag}")
    p = figures["pipeline"]
    flag = "  unstable" if p["unstable"] else ""
    lines.append(f"{head} {'= whole pipeline':<20} {'':>12}: {p['images_per_s']:9.1f} images/s (cv {p['cv']:.1%}){flag}")
    return "\n".join(lines)
