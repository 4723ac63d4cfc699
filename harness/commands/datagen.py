"""``datagen``: build (or find) the dataset a configuration describes."""

from __future__ import annotations

import time

from harness.errors import HarnessError

TFRECORD_CHOICES = {"none": ["none"], "gzip": ["gzip"], "both": ["none", "gzip"]}


def datagen(args: list[str]) -> int:
    from harness.config.compose import compose, to_typed
    from harness.config.validate import validate
    from harness.data.build import prepare

    tfrecord: list[str] = []
    overrides, shards = [], 0
    for arg in args:
        if arg.lstrip("+").startswith("webdataset="):
            value = arg.split("=", 1)[1]
            if not value.isdigit() or int(value) < 1:
                raise HarnessError(f"webdataset={value}: give the number of tar shards, e.g. webdataset=4")
            shards = int(value)
        elif arg.lstrip("+").startswith("tfrecord="):
            value = arg.split("=", 1)[1]
            for choice in value.split(","):
                if choice not in TFRECORD_CHOICES:
                    raise HarnessError(f"tfrecord={choice}: choose none, gzip or both")
                tfrecord += [c for c in TFRECORD_CHOICES[choice] if c not in tfrecord]
        else:
            overrides.append(arg)
    cfg = compose(overrides)
    validate(cfg)
    start = time.perf_counter()
    manifest = prepare(to_typed(cfg).dataset, tfrecord=tfrecord, webdataset=shards)
    info = manifest.describe()
    print(
        f"{info['count']} images in {len(info['classes'])} classes, {info['total_bytes'] / 2**20:.1f} MiB "
        f"(mean {info['mean_bytes'] / 1024:.1f} KiB), TFRecord: {info['tfrecords'] or 'none'}"
        + (f", WebDataset: {shards} shards" if shards else "")
        + "; "
        f"ready in {time.perf_counter() - start:.1f} s"
    )
    for line in manifest.notes():
        print(line)
    print(manifest.root)
    return 0
