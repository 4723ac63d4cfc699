"""A loader's chain run alone: the trial that measures a work's CPU ceiling as the pipeline runs.

The job's own overrides, then: no accelerator step (``consumer.step_ms=0``: the consumer only
copies each batch), one rank, the family's most parallel settings on the usable cores
(:meth:`~harness.loaders.base.Loader.alone`), one repeating iterator where the family has one,
a short warm-up and a bound in seconds, the sampler on. Under the harness launcher these trials
run in the sweep's own rounds (:func:`harness.engine.run_planned`), one per group of variants
doing the same work, so the ceiling and the trials it bounds see the same machine; another
launcher's sweep gets them after its trials (:mod:`harness.calibrate.alone`). Either way they
land in ``<sweep>/ceilings/<job>/``, a sweep folder of their own that the sweep's results
never include.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.config.compose import merge_overrides

ALONE_DIR = "ceilings"  # <sweep>/ceilings/<job>/: the chains run alone (a sweep folder of its own)
SECONDS = 2.0  # measured seconds per run: well past the iterator's set-up, four 0.5 s windows of steady state
QUICK_SECONDS = 1.0  # report.ceilings=quick
WARMUP = 5  # steps before measuring: the workers started, the buffers filled


def overrides(job: Sequence[str], family, conf, cores: int, *, seconds: float = SECONDS, repeats: int = 1) -> list[str]:
    """The job's overrides with what runs its chain alone: no step, most parallel, bounded by seconds, sampled."""
    changes = [
        "consumer.step_ms=0",
        "consumer.ranks=1",
        "consumer.slow_rank=null",
        "trial.cpus_per_rank=null",
        f"trial.seconds={seconds:g}",
        "trial.steps=null",
        "trial.epochs=null",
        f"trial.warmup_steps={WARMUP}",
        f"trial.repeats={repeats}",
        "monitor.enabled=true",
        "monitor.trace=false",
        "augment.bench=false",
        "augment.preview=0",
        *(["trial.epoch_mode=continuous"] if family.knobs.continuous else []),
        *family.alone(conf, cores),
    ]
    return merge_overrides(job, changes)


def group(config: dict[str, Any], knobs) -> str | None:
    """What variants share one run alone: the same family, data, batch, augment, cores and loader settings
    but for the knobs the run alone sets itself; None for a chain that caches decoded images (it decodes nothing per epoch)."""
    import json

    from harness.config.schema import choice

    loader = {k: choice(v) for k, v in config.get("loader", {}).items()}  # a planned job's config holds enum members
    if str(loader.get("cache", "none")) not in ("none", "None"):
        return None
    for key in (knobs.parallel, knobs.prefetch, knobs.persistent):
        if key:
            loader.pop(key.split(".", 1)[1], None)
    parts = {k: config.get(k) for k in ("dataset", "batch", "augment")}
    return json.dumps({"loader": loader, "cpus": config.get("trial", {}).get("cpus"), **parts}, sort_keys=True, default=str)


def usable_cores(config: dict[str, Any]) -> int:
    """The cores a trial of ``config`` may use: ``trial.cpus`` where set, else the process's (affinity, cgroup quota)."""
    from harness.trial.cores import allowed, quota

    cpus = config.get("trial", {}).get("cpus")
    if isinstance(cpus, int) and cpus > 0:
        return cpus
    limit = quota()
    count = len(allowed())
    return max(1, int(min(count, limit)) if limit else count)
