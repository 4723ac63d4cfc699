"""The dataset's files in the OS page cache: measure, evict, warm (``dataset.page_cache``).

A loader that reads files the kernel still holds in memory measures decoding, not
reading; one that reads them from the disk measures both. Which of the two a trial gets
depends on what ran before it (the dataset build, the previous trial), unless it is set:

- :func:`evict` drops each file's cached pages with ``posix_fadvise(POSIX_FADV_DONTNEED)``.
  No root is needed, but the kernel keeps dirty pages (so each file is fsync'ed first)
  and pages another process has mapped; on tmpfs the file *is* its pages and nothing goes.
- :func:`warm` reads every file once.
- :func:`residency` says which share of the files' pages is in memory, with ``mincore(2)``
  over a read-only mapping of each file (Linux and other systems with ``mincore``).

The trial's own process applies the mode (:func:`apply`) before its loader is built, so it
is outside the measured phase and the same for every loader family; ``harness diagnose``
can call the same functions for cold-versus-warm trials.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import time
from collections.abc import Iterable
from pathlib import Path

from harness.errors import HarnessError

MODES = ("as_is", "warm", "cold")
_CHUNK = 1 << 20  # bytes read per call when warming
_LOW_BIT = bytes(b & 1 for b in range(256))  # mincore defines only bit 0 of each byte: resident


def dataset_files(manifest) -> list[Path]:
    """Every file a trial may read from a dataset: the manifest's images, its CSV, every shard folder's files.

    Args:
        manifest: a :class:`~harness.data.manifest.DatasetManifest`.

    Returns:
        Paths, images first; links (a user's folder) are followed when the files are opened.
    """
    files = [manifest.images_dir / s.filename for s in manifest.samples]
    files.append(manifest.csv_path)
    for folder in sorted(p for p in Path(manifest.root).iterdir() if p.is_dir() and p.name != "images" and not p.name.startswith(".")):
        files += sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))  # TFRecord, WebDataset shards
    return [f for f in files if f.exists()]


def residency(paths: Iterable[str | Path]) -> float | None:
    """The share of the files' pages that are in the page cache, 0..1; ``None`` where it cannot be measured.

    Each file counts by its pages, so a large file weighs more than a small one.
    """
    resident = total = 0
    for path in paths:
        counted = resident_pages(path)
        if counted is None:
            return None
        resident, total = resident + counted[0], total + counted[1]
    return resident / total if total else None


def resident_pages(path: str | Path) -> tuple[int, int] | None:
    """(pages in memory, pages) of one file, from ``mincore(2)``; ``None`` where the system has no mincore."""
    libc = _libc()
    if libc is None:
        return None
    page = mmap.PAGESIZE
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            return 0, 0
        pages = (size + page - 1) // page
        # a mapping's address is what mincore takes; Python's mmap object does not expose it for a read-only map
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, handle.fileno(), 0)
        if address in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), f"mmap {path}: {os.strerror(ctypes.get_errno())}")
        try:
            vector = (ctypes.c_ubyte * pages)()
            if libc.mincore(ctypes.c_void_p(address), ctypes.c_size_t(size), vector) != 0:
                raise OSError(ctypes.get_errno(), f"mincore {path}: {os.strerror(ctypes.get_errno())}")
        finally:
            libc.munmap(ctypes.c_void_p(address), ctypes.c_size_t(size))
    return bytes(vector).translate(_LOW_BIT).count(1), pages


def evict(paths: Iterable[str | Path]) -> dict:
    """Drop the files' pages from the page cache (fsync first: dirty pages cannot be dropped).

    Returns:
        ``{"files", "bytes", "seconds"}``.
    """
    if not hasattr(os, "posix_fadvise"):
        raise HarnessError("dataset.page_cache=cold: this system has no posix_fadvise to evict files with; use as_is or warm")
    t, files, size = time.perf_counter(), 0, 0
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            try:
                os.fsync(fd)
            except OSError:
                pass  # a file system that cannot sync a read-only descriptor holds no dirty pages of ours either
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            files, size = files + 1, size + os.fstat(fd).st_size
        finally:
            os.close(fd)
    return {"files": files, "bytes": size, "seconds": round(time.perf_counter() - t, 4)}


def warm(paths: Iterable[str | Path]) -> dict:
    """Read every file once, so its pages are in the page cache.

    Returns:
        ``{"files", "bytes", "seconds"}``.
    """
    t, files, size = time.perf_counter(), 0, 0
    buffer = bytearray(_CHUNK)
    for path in paths:
        with open(path, "rb", buffering=0) as handle:
            while n := handle.readinto(buffer):
                size += n
        files += 1
    return {"files": files, "bytes": size, "seconds": round(time.perf_counter() - t, 4)}


def apply(mode: str, manifest) -> dict:
    """Put the dataset's files in ``mode`` (as_is, warm, cold) and say what the cache held before and after.

    Returns:
        For ``result.json`` (``dataset.page_cache``): ``mode``, ``files``, ``bytes``, ``seconds``,
        ``resident_before`` and ``resident_after`` (shares of the files' pages, ``None`` where
        ``mincore`` is missing), ``filesystem``, and ``note`` when eviction left pages behind.
    """
    if mode not in MODES:
        raise ValueError(f"page cache mode {mode!r}: one of {', '.join(MODES)}")
    paths = dataset_files(manifest)
    where = filesystem(paths[0] if paths else Path(manifest.images_dir))
    record: dict = {"mode": mode, "filesystem": where, "resident_before": _share(residency(paths))}
    stats = {"files": len(paths), "bytes": sum(p.stat().st_size for p in paths), "seconds": 0.0}
    if mode == "cold":
        stats = evict(paths)
    elif mode == "warm":
        stats = warm(paths)
    record.update(stats, resident_after=record["resident_before"] if mode == "as_is" else _share(residency(paths)))
    if mode == "cold" and (record["resident_after"] or 0) > 0.05:
        record["note"] = (
            f"{record['resident_after']:.0%} of the dataset's pages stayed in memory after eviction "
            f"(on {where}; tmpfs cannot evict, and pages that other processes keep mapped stay)"
        )
    return record


def filesystem(path: Path) -> str:
    """The type of the file system that holds ``path`` (``ext4``, ``tmpfs``, ...), from /proc/self/mounts; ``?`` elsewhere."""
    try:
        mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return "?"
    target = str(Path(path).resolve())
    best, kind = "", "?"
    for fields in mounts:
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def _share(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


_LIBC: list = []  # [libc or None], loaded once


def _libc():
    """libc with ``mmap``, ``mincore`` and ``munmap`` typed, or ``None`` where there is no mincore."""
    if not _LIBC:
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name, use_errno=True)
            libc.mmap.restype = ctypes.c_void_p
            libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
            libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
            libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
            _LIBC.append(libc)
        except (OSError, AttributeError):
            _LIBC.append(None)
    return _LIBC[0]
