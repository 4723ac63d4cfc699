"""Write TFRecord shards of a built dataset, the way seed 001 does.

Each record is ``tf.train.Example{image_raw: bytes, label: int64, id: bytes}`` holding
the encoded file as read from disk (no re-encoding), written with
``tf.io.TFRecordWriter`` and optional GZIP ``TFRecordOptions``. Samples go to shards
round-robin so every shard holds every class. Run as
``python -m harness.data.tfrecord DATASET_DIR OUT_DIR none|gzip SHARDS``, which prints
``WRITTEN TOTAL`` lines as it goes, for the parent's progress bar.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from harness.data.manifest import DatasetManifest, write_shard_index

FEATURES = ("image_raw", "label", "id")
REPORTS = 200  # progress lines main() prints over a whole write


def shard_name(index: int, total: int) -> str:
    return f"train-{index:05d}-of-{total:05d}.tfrecord"


def write_shards(
    manifest: DatasetManifest, out_dir: Path, compression: str, shards: int, written: Callable[[int], None] | None = None
) -> None:
    """Write the shards and their ``shards.json``; ``written(n)`` is called now and then with the records written so far."""
    from harness.frameworks import import_module

    tf = import_module("tensorflow")

    options = tf.io.TFRecordOptions(compression_type="GZIP" if compression == "gzip" else "")
    shards = max(1, min(shards, len(manifest)))
    paths = [out_dir / shard_name(i, shards) for i in range(shards)]
    writers = [tf.io.TFRecordWriter(str(p), options=options) for p in paths]
    counts = [0] * shards
    try:
        for index, sample in enumerate(manifest.samples):
            raw = (manifest.images_dir / sample.filename).read_bytes()
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "image_raw": tf.train.Feature(bytes_list=tf.train.BytesList(value=[raw])),
                        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[sample.label])),
                        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[sample.filename.encode()])),
                    }
                )
            )
            writers[index % shards].write(example.SerializeToString())
            counts[index % shards] += 1
            if written is not None:
                written(index + 1)
    finally:
        for writer in writers:
            writer.close()
    write_shard_index(out_dir, paths, counts, compression=compression)


def main(argv) -> int:
    root, out_dir, compression, shards = Path(argv[0]), Path(argv[1]), argv[2], int(argv[3])
    manifest = DatasetManifest.load(root)
    total = len(manifest)
    every = max(1, total // REPORTS)

    def report(n: int) -> None:
        if n % every == 0 or n == total:
            print(n, total, flush=True)

    write_shards(manifest, out_dir, compression, shards, report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
