"""Write WebDataset tar shards of a built dataset.

A WebDataset shard is a plain tar file whose members are grouped into samples by their
name up to the first dot: ``s000012.jpg``, ``s000012.cls``, ``s000012.path.txt``. Each
sample holds the encoded file as read from disk (no re-encoding), its class index (``cls``,
which ``webdataset``'s decoders read as an int) and its sample id, the manifest filename
(``path.txt``, read as text). Samples go to shards round-robin so every shard holds every
class, as the TFRecord writer does. Members carry fixed owners and times, so the same
dataset always gives the same bytes. Only the standard library writes them: building the
shards imports no framework.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

from harness.data.manifest import DatasetManifest, write_shard_index

IMAGE_FIELDS = "jpg;jpeg;png"  # to_tuple's alternatives for the image member (scanned folders hold JPEG and PNG only)


def folder_name(shards: int) -> str:
    """The shard set's folder in the dataset folder: one per shard count, so a sweep over counts builds each once."""
    return f"webdataset-{shards}"


def shard_name(index: int, total: int) -> str:
    return f"train-{index:05d}-of-{total:05d}.tar"


def write_shards(manifest: DatasetManifest, out_dir: Path, shards: int, written: Callable[[int], None] | None = None) -> None:
    """Write the shards and their ``shards.json``; ``written(n)`` is called after each sample."""
    shards = max(1, min(shards, len(manifest)))
    paths = [out_dir / shard_name(i, shards) for i in range(shards)]
    counts = [0] * shards
    tars = [tarfile.open(p, "w") for p in paths]
    try:
        for index, sample in enumerate(manifest.samples):
            ext = Path(sample.filename).suffix.lower().lstrip(".")
            key = f"s{index:06d}"
            members = {ext: (manifest.images_dir / sample.filename).read_bytes(), "cls": str(sample.label).encode()}
            members["path.txt"] = sample.filename.encode()
            for field, data in members.items():
                _add(tars[index % shards], f"{key}.{field}", data)
            counts[index % shards] += 1
            if written is not None:
                written(index + 1)
    finally:
        for tar in tars:
            tar.close()
    write_shard_index(out_dir, paths, counts, format="webdataset")


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o444  # fixed: the same dataset gives the same shard bytes
    tar.addfile(info, io.BytesIO(data))
