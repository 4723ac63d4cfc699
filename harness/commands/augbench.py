"""``augbench``: one-thread, per-op timings of augment pipelines, a sweep of augbench trials.

``python -m harness augbench augment=resize_rotate augment.library=torchvision,albumentations
augment.order=cheap,costly`` is a sweep with ``trial.kind=augbench``: the same engine and
launcher as ``sweep`` (:mod:`harness.engine`) run one process per job (one per library x
order), each writing a ``result.json`` of kind ``augbench`` and a ``samples.png``;
``results.csv`` and the report hold them as rows like any sweep's.

A ``sweep`` whose jobs augment (with ``augment.bench=true``, the default) ends with the
same benchmark for each distinct pipeline, into ``<sweep>/augbench/``, so the sweep's
table shows in-loader and single-thread figures side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.errors import ConfigError


def augbench(args: Sequence[str]) -> int:
    """The ``augbench`` command: every job of the override grid through the sweep engine.

    Ctrl-C or SIGTERM stops the running job with its process group, keeps what finished
    and exits 130 / 143, as a sweep does.
    """
    from harness.commands.launch import finish, launch

    return finish(launch([*with_defaults(list(args)), "trial.kind=augbench"], multirun=True))


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
