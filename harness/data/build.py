"""Build datasets once per parameter set, in parallel, atomically, and reuse them.

A build happens in a hidden temporary folder beside its final place and is renamed
into place only when complete, under a file lock, so an interrupted build never leaves
a folder that looks like a dataset and two processes never build the same one twice.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import harness.progress as progress
from harness.config.schema import choice
from harness.data import photos, scan, synth
from harness.data.manifest import MANIFEST_FILE, DatasetManifest, Sample
from harness.errors import HarnessError
from harness.paths import cache_home

# JPEG and PNG are read as they are; the others are converted to PNG (see harness.data.scan).
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
SCAN_VERSION = 1  # bump when the scan's rule changes, so folder datasets are scanned again
COMPRESSIONS = ("none", "gzip")


def cache_root(conf) -> Path:
    """Where datasets are built: ``dataset.cache_dir``, else ``$HARNESS_CACHE``, else ``~/.cache/harness``."""
    base = Path(conf.cache_dir).expanduser() if conf.cache_dir else cache_home()
    return base.resolve() / "datasets"


def dataset_params(conf) -> dict:
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
    if conf.name == "photos":
        return photos.params(conf)
    source = folder_source(conf)
    return {"kind": "folder", "path": str(source), "scan_version": SCAN_VERSION, "listing": _digest(list_folder(source)[1])}


def dataset_dir(conf, params: dict | None = None) -> Path:
    params = params or dataset_params(conf)
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root(conf) / f"{params['kind']}-{digest}"


def prepare(conf, *, tfrecord: Iterable[str] = (), webdataset: int = 0) -> DatasetManifest:
    """Return the dataset for ``conf``, building it (and any shards asked for) if needed.

    Args:
        conf: a ``dataset`` config node (synthetic, photos or folder).
        tfrecord: compressions (``"none"``, ``"gzip"``) whose shards must exist.
        webdataset: how many WebDataset tar shards must exist (0: none).
    """
    params = dataset_params(conf)
    root = dataset_dir(conf, params)
    if not (root / MANIFEST_FILE).exists():
        with _writable(root.parent):
            root.parent.mkdir(parents=True, exist_ok=True)
            with _locked(root), _staging(root) as tmp:
                if tmp is not None:
                    manifest = _index_folder(conf, tmp, params) if conf.name == "folder" else _build_images(conf, tmp, params)
                    manifest.save(tmp)
    with _writable(root):
        for compression in tfrecord:
            _ensure_tfrecord(root, compression.lower(), conf.shards)
        if webdataset:
            _ensure_webdataset(root, webdataset)
    manifest = DatasetManifest.load(root)
    _apply_bad_file_policy(conf, manifest)
    return manifest


def _apply_bad_file_policy(conf, manifest: DatasetManifest) -> None:
    if manifest.skipped and choice(getattr(conf, "on_bad_file", "skip")) == "fail":
        raise HarnessError(f"dataset.path={conf.path}: {manifest.skipped_line()}; remove or fix them, or set dataset.on_bad_file=skip")


@contextlib.contextmanager
def _writable(folder: Path) -> Iterator[None]:
    """Turn 'cannot write the cache' (read-only, no permission, disk full) into one line that says what to do."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT):
            raise
        what = "free some space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "choose a writable folder"
        raise HarnessError(
            f"dataset cache {folder}: cannot write {exc.filename or ''} ({exc.strerror}); "
            f"{what}: dataset.cache_dir=DIR or HARNESS_CACHE=DIR"
        ) from exc


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


def _build_images(conf, folder: Path, params: dict) -> DatasetManifest:
    """Write a generated (synthetic) or cropped (photos) dataset's images in parallel."""
    fmt = choice(conf.format)
    ext = "jpg" if fmt == "jpeg" else "png"
    images = str(folder / "images")
    if conf.name == "photos":
        classes, jobs, write = photos.class_names(conf), photos.plan(conf, images), photos.write_image
    else:
        classes, write = list(conf.classes), _write_image
        jobs = [
            (conf.seed, i, conf.width, conf.height, fmt, conf.jpeg_quality, images, classes[i % len(classes)], ext)
            for i in range(conf.count)
        ]
    for name in classes:
        (folder / "images" / name).mkdir(parents=True)
    written = parallel_map(write, jobs, per_worker=16, what="writing images")
    samples = [Sample(filename=f, label=classes.index(f.split("/")[0]), bytes=n, sha1=h) for f, n, h in written]
    _write_csv(folder / "manifest.csv", samples)
    return DatasetManifest(folder, folder / "images", classes, samples, params)


def parallel_map(fn, jobs: list, per_worker: int, what: str) -> list:
    """``[fn(job) for job in jobs]`` on every core (in this process when the jobs are few).

    ``what`` names the work on the progress bar a terminal shows (:mod:`harness.progress`).
    On Ctrl-C or SIGTERM the queued work is cancelled, so a stopped sweep does not wait
    for a whole dataset to finish building.
    """
    workers = min(os.cpu_count() or 1, max(1, len(jobs) // per_worker))
    if workers == 1:
        with progress.counted(what, len(jobs)) as bar:
            return list(bar.track(map(fn, jobs)))
    pool = ProcessPoolExecutor(workers)
    try:
        # map() forks every worker before the bar's refresh thread starts: a fork while that
        # thread holds a lock (stderr's, say) would leave the lock held in the worker
        results = pool.map(fn, jobs, chunksize=max(1, len(jobs) // (workers * 8)))
        with progress.counted(what, len(jobs)) as bar:
            done = list(bar.track(results))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return done


def _write_image(job) -> tuple:
    seed, index, width, height, fmt, quality, images_dir, label, ext = job
    data = synth.encode(synth.render(seed, index, width, height), fmt, quality)
    relative = f"{label}/{label}.{index:05d}.{ext}"
    Path(images_dir, relative).write_bytes(data)
    return relative, len(data), hashlib.sha1(data).hexdigest()


def _index_folder(conf, folder: Path, params: dict) -> DatasetManifest:
    """Scan the user's folder and lay out a view of it: ``images/<class>/<file>`` links to the
    files every loader can read, converted copies of the odd ones, nothing else.

    Every family reads the view, so none walks the user's folder by itself: Keras'
    ``flow_from_directory`` would descend into nested folders the others do not read.
    """
    source = folder_source(conf)
    classes, files, ignored = list_folder(source)
    if _digest(files) != params["listing"]:
        raise HarnessError(f"dataset.path={conf.path}: files changed while it was being indexed; run again when the folder is still")
    if not files:
        raise HarnessError(
            f"dataset.path={conf.path}: no images found; expected one sub-folder per class holding "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))} files"
        )
    view = folder / "images"
    for name in classes:
        (view / name).mkdir(parents=True)
    samples, skipped = _scan(source, files, view, classes)
    _write_csv(folder / "manifest.csv", samples)
    manifest = DatasetManifest(folder, view, classes, samples, params)
    manifest.source, manifest.skipped, manifest.ignored = str(source), skipped, ignored
    return manifest


def _scan(source: Path, files: dict[str, tuple[int, int]], view: Path, classes: list[str]):
    """Decode every file once, in parallel; link or convert the good ones into ``view``."""
    print(f"harness: scanning {len(files)} files in {source} (once per version of the folder)", file=sys.stderr, flush=True)
    jobs = [(str(source / relative), relative, str(view)) for relative in sorted(files)]
    scanned = parallel_map(scan.scan_job, jobs, per_worker=64, what="scanning")
    samples: list[Sample] = []
    skipped: list[dict[str, str]] = []
    for relative, kind, reason, size, digest, written in scanned:
        if kind == scan.BAD:
            skipped.append({"file": relative, "reason": reason})
            continue
        if written is None:
            os.symlink(source / relative, view / relative)
        label = classes.index(relative.split("/", 1)[0])
        samples.append(Sample(written or relative, label, size, digest, converted=reason or None, mtime_ns=files[relative][1]))
    return samples, skipped


def folder_source(conf) -> Path:
    """The user's folder, resolved, or a one-line error saying what is wrong with ``dataset.path``."""
    if not str(conf.path or "").strip():
        raise HarnessError("dataset.path is empty; set dataset.path=/folder/with/one/sub-folder/per/class")
    source = Path(conf.path).expanduser().resolve()
    if not source.is_dir():
        raise HarnessError(f"dataset.path={conf.path}: not a folder; point it at a folder of class sub-folders")
    return source


def list_folder(source: Path) -> tuple[list[str], dict[str, tuple[int, int]], dict[str, list[str]]]:
    """Class folders, candidate images (``class/name`` -> size, mtime in ns) and what is left out, by why.

    Only files directly inside a class folder count; hidden files (macOS' ``._x.jpg``),
    other extensions and nested folders are left out, for every loader alike.
    """
    files: dict[str, tuple[int, int]] = {}
    ignored: dict[str, list[str]] = {"nested folders": [], "hidden files": [], "other files": []}
    try:
        classes = sorted((e for e in os.scandir(source) if e.is_dir() and not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as exc:
        raise HarnessError(f"dataset.path={source}: cannot list it ({exc.strerror})") from exc
    for entry in classes:
        for item in sorted(os.scandir(entry.path), key=lambda e: e.name):
            relative = f"{entry.name}/{item.name}"
            if item.is_dir():
                ignored["nested folders"].append(relative)
            elif item.name.startswith("."):
                ignored["hidden files"].append(relative)
            elif Path(item.name).suffix.lower() not in IMAGE_EXTENSIONS or not item.is_file():
                ignored["other files"].append(relative)
            else:
                info = item.stat()
                files[relative] = (info.st_size, info.st_mtime_ns)
    return [e.name for e in classes], files, {k: v for k, v in ignored.items() if v}


def _digest(files: dict[str, tuple[int, int]]) -> str:
    """What the folder holds: any file added, removed, resized or touched changes it."""
    return hashlib.sha1(json.dumps(sorted(files.items())).encode()).hexdigest()[:16]


def _write_csv(path: Path, samples: list[Sample]) -> None:
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
            _write_tfrecord(cmd, compression)


def _ensure_webdataset(root: Path, shards: int) -> None:
    """Tar shards for ``loader=webdataset``, written here: the standard library's tarfile needs no child process."""
    from harness.data import wds

    target = root / wds.folder_name(shards)
    if (target / "shards.json").exists():
        return
    with _locked(target), _staging(target) as tmp:
        if tmp is not None:
            manifest = DatasetManifest.load(root)
            with progress.counted(f"WebDataset shards ({shards})", len(manifest), unit="samples") as bar:
                wds.write_shards(manifest, tmp, shards, lambda n: bar.update(n, len(manifest)))


def _write_tfrecord(cmd: list[str], compression: str) -> None:
    """Run the shard writer; its ``WRITTEN TOTAL`` lines move a bar, its stderr's last line names a failure."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            with progress.counted(f"TFRecord shards ({compression})", None, unit="records") as bar:
                for line in proc.stdout or ():
                    written, _, total = line.partition(" ")
                    if written.isdigit() and total.strip().isdigit():
                        bar.update(int(written), int(total))
            returncode = proc.wait()
        except BaseException:  # Ctrl-C, SIGTERM: the writer goes with the build
            proc.kill()
            proc.wait()
            raise
        if returncode != 0:
            err.seek(0)
            last = (err.read().strip().splitlines() or ["no output"])[-1]
            raise HarnessError(f"building TFRecord shards ({compression}) failed: {last}")
