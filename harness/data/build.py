"""Build datasets once per parameter set, in parallel, atomically, and reuse them.

A build happens in a hidden temporary folder beside its final place and is renamed
into place only when complete, under a file lock, so an interrupted build never leaves
a folder that looks like a dataset and two processes never build the same one twice.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, Iterable, Iterator, List

from harness.config.schema import choice
from harness.data import synth
from harness.data.manifest import MANIFEST_FILE, DatasetManifest, Sample
from harness.errors import HarnessError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}
COMPRESSIONS = ("none", "gzip")


def cache_root(conf) -> Path:
    """Where datasets are built: ``dataset.cache_dir``, else ``$HARNESS_CACHE``, else ``~/.cache/harness``."""
    base = conf.cache_dir or os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness"
    return Path(base).expanduser().resolve() / "datasets"


def dataset_params(conf) -> Dict:
    """The parameters that determine a dataset's bytes; their hash names its folder."""
    if conf.name == "synthetic":
        return {
            "kind": "synthetic",
            "generator_version": synth.GENERATOR_VERSION,
            "count": conf.count,
            "width": conf.width,
            "height": conf.height,
            "format": choice(conf.format),
            "jpeg_quality": conf.jpeg_quality if choice(conf.format) == "jpeg" else None,
            "classes": list(conf.classes),
            "seed": conf.seed,
        }
    return {"kind": "folder", "path": str(Path(conf.path).expanduser().resolve())}


def dataset_dir(conf) -> Path:
    params = dataset_params(conf)
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root(conf) / f"{params['kind']}-{digest}"


def prepare(conf, *, tfrecord: Iterable[str] = ()) -> DatasetManifest:
    """Return the dataset for ``conf``, building it (and any TFRecord shards asked for) if needed.

    Args:
        conf: a ``dataset`` config node (synthetic or folder).
        tfrecord: compressions (``"none"``, ``"gzip"``) whose shards must exist.
    """
    root = dataset_dir(conf)
    if not (root / MANIFEST_FILE).exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        with _locked(root), _staging(root) as tmp:
            if tmp is not None:
                manifest = _build_images(conf, tmp) if conf.name == "synthetic" else _index_folder(conf, tmp)
                manifest.save(tmp)
    for compression in tfrecord:
        _ensure_tfrecord(root, compression.lower(), conf.shards)
    return DatasetManifest.load(root)


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    lock_path = target.with_name(f".{target.name}.lock")
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _staging(target: Path) -> Iterator[Path | None]:
    """Yield a fresh temporary folder that becomes ``target`` on success; ``None`` if already built."""
    if target.exists():  # another process finished it while we waited for the lock
        yield None
        return
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _build_images(conf, folder: Path) -> DatasetManifest:
    fmt = choice(conf.format)
    ext = "jpg" if fmt == "jpeg" else "png"
    classes = list(conf.classes)
    jobs = [
        (conf.seed, i, conf.width, conf.height, fmt, conf.jpeg_quality, str(folder / "images"), classes[i % len(classes)], ext)
        for i in range(conf.count)
    ]
    for name in classes:
        (folder / "images" / name).mkdir(parents=True)
    workers = min(os.cpu_count() or 1, max(1, conf.count // 16))
    chunk = max(1, len(jobs) // (workers * 8))
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            written = list(pool.map(_write_image, jobs, chunksize=chunk))
    else:
        written = [_write_image(job) for job in jobs]
    samples = [Sample(filename=f, label=classes.index(f.split("/")[0]), bytes=n, sha1=h) for f, n, h in written]
    _write_csv(folder / "manifest.csv", samples)
    return DatasetManifest(folder, folder / "images", classes, samples, dataset_params(conf))


def _write_image(job) -> tuple:
    seed, index, width, height, fmt, quality, images_dir, label, ext = job
    data = synth.encode(synth.render(seed, index, width, height), fmt, quality)
    relative = f"{label}/{label}.{index:05d}.{ext}"
    Path(images_dir, relative).write_bytes(data)
    return relative, len(data), hashlib.sha1(data).hexdigest()


def _index_folder(conf, folder: Path) -> DatasetManifest:
    source = Path(conf.path).expanduser().resolve()
    classes = sorted(p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
    samples: List[Sample] = []
    for label, name in enumerate(classes):
        for path in sorted((source / name).iterdir()):
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                data = path.read_bytes()
                samples.append(Sample(f"{name}/{path.name}", label, len(data), hashlib.sha1(data).hexdigest()))
    if not samples:
        raise HarnessError(
            f"dataset.path={conf.path}: no images found; expected one sub-folder per class holding "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))} files"
        )
    _write_csv(folder / "manifest.csv", samples)
    return DatasetManifest(folder, source, classes, samples, dataset_params(conf))


def _write_csv(path: Path, samples: List[Sample]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "label"])
        writer.writerows((s.filename, s.label) for s in samples)


def _ensure_tfrecord(root: Path, compression: str, shards: int) -> None:
    if compression not in COMPRESSIONS:
        raise HarnessError(f"TFRecord compression {compression!r}: choose one of {', '.join(COMPRESSIONS)}")
    target = root / f"tfrecord-{compression}"
    if (target / "shards.json").exists():
        return
    with _locked(target), _staging(target) as tmp:
        if tmp is not None:
            # TensorFlow writes the shards (seed 001's TFRecordWriter) in a child process,
            # so the calling process never imports TensorFlow.
            cmd = [sys.executable, "-m", "harness.data.tfrecord", str(root), str(tmp), compression, str(shards)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise HarnessError(f"building TFRecord shards ({compression}) failed: {last}")
