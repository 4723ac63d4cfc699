"""The parent's side of ``storage=throttled``: mount the dataset cache through the throttle, always unmount.

The trial's parent (:mod:`harness.trial.spawn`) wraps each trial of a throttled job in
:func:`mounted`: a FUSE server (``throttle.c``, built by :mod:`harness.storage.native`; a process of its own, on a core
the trial does not use where one is free) serves the dataset cache read-only at a fresh
mountpoint, and the child is told where (its Request's ``storage``: :data:`MOUNT`, :data:`SOURCE`) so its loader
reads every file through it (:func:`relocate`). On the way out (a finished trial, a failure,
Ctrl-C or SIGTERM) the mount is detached and the server stopped before the next trial starts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from harness.errors import HarnessError
from harness.storage import native

# what the child is told (its Request's ``storage``): it reads the dataset under "mount", or (storage=http) its
# shards at "url", instead of under "source"
MOUNT, URL, SOURCE = "mount", "url", "source"
LOG_FILE = "storage.log"  # the server's output, in the trial's folder
READY_S = 15.0  # how long the server may take to mount (it imports little; a start takes ~0.3 s)
MOUNT_PREFIX = "harness-storage-"
MOUNTS_ENV = "HARNESS_STORAGE_DIR"  # a user setting: where mountpoints are made (default: the system's temporary folder)


class StorageError(HarnessError):
    """The throttled storage could not start, or died while a trial read from it."""


def kind_of(storage: dict) -> str:
    """``storage.kind`` as a string: a job's config holds the enum, a result's the text it was saved as."""
    kind = storage.get("kind", "local")
    return str(getattr(kind, "value", kind))


def available() -> str | None:
    """Why FUSE cannot be used here, or None (the server is built on first use: :mod:`harness.storage.native`)."""
    if not os.path.exists("/dev/fuse"):
        return "this machine has no /dev/fuse (a container without it: run with --device /dev/fuse)"
    why = native.build()
    if why:
        return why
    if os.geteuid() != 0 and shutil.which("fusermount3") is None:
        return "fusermount3 is not on PATH, which mounting needs unless run as root (Debian/Ubuntu: apt-get install fuse3)"
    return None


@contextlib.contextmanager
def mounted(config: dict, source: Path, trial_dir: Path, cpus: list[int] | None = None) -> Iterator[dict]:
    """Serve the dataset cache ``source`` (where the job's dataset was built) through the throttle for one trial:
    a FUSE mount (``storage.kind=throttled``) or harness's HTTP server (``http``).

    Yields ``{"where": what the child is told (its Request's storage), "facts": what the parent saw}``; the facts
    (the server's requests and CPU time, and an ``error`` where it stopped before it was asked
    to) are complete once the block has ended. A ``local`` job mounts nothing: both are empty.

    Args:
        cpus: cores for the server (those the trial leaves free); None: wherever the OS puts it.

    Raises:
        StorageError: the mount could not start (nothing is left mounted).
    """
    storage = config.get("storage") or {}
    mount: dict = {"where": {}, "facts": {}}
    if kind_of(storage) == "local":
        yield mount
        return
    name = f"storage={storage.get('profile')}"
    if not source.is_dir():
        raise StorageError(f"{name}: no dataset cache at {source} to serve (the sweep builds it before its first trial)")
    if kind_of(storage) == "http":
        with _served_over_http(storage, source, trial_dir / LOG_FILE, cpus, name) as mount:
            yield mount
        return
    why = available()
    if why:
        raise StorageError(f"{name}: {why}")
    folder = os.environ.get(MOUNTS_ENV) or None
    if folder:
        os.makedirs(folder, exist_ok=True)
    point = Path(tempfile.mkdtemp(prefix=MOUNT_PREFIX, dir=folder))
    log = trial_dir / LOG_FILE
    server = _start(storage, source, point, log, cpus)
    mount["facts"] = _profile(storage)
    try:
        _wait_mounted(server, point, name, log)
        mount["where"] = {MOUNT: str(point), SOURCE: str(source)}
        yield mount
        if server.poll() is not None:  # gone before it was asked to go: the trial read from a dead mount
            mount["facts"]["error"] = f"{name}: the FUSE server stopped mid-trial (exit {server.returncode}); see {LOG_FILE}"
    finally:
        mount["facts"].update(_unmount(point, server, log))


def _profile(storage: dict) -> dict:
    """The tier's figures, the first of the facts the parent records beside the trial (FUSE and HTTP alike)."""
    return {key: storage.get(key) for key in ("profile", "open_ms", "read_ms", "mb_per_s", "jitter_pct")}


@contextlib.contextmanager
def _served_over_http(storage: dict, source: Path, log: Path, cpus: list[int] | None, name: str) -> Iterator[dict]:
    """``storage=http``: the cache behind harness's HTTP server on a free port of 127.0.0.1, stopped on the way out."""
    server = _start(storage, source, None, log, cpus)
    mount: dict = {"where": {}, "facts": _profile(storage)}
    try:
        port = _wait_port(server, log, name)
        mount["where"] = {URL: f"http://127.0.0.1:{port}", SOURCE: str(source)}
        yield mount
        if server.poll() is not None:
            mount["facts"]["error"] = f"{name}: the HTTP server stopped mid-trial (exit {server.returncode}); see {LOG_FILE}"
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)  # it prints what it served, then exits
        cpu_s = _reap(server)
        mount["facts"].update(_cost(_served(log), cpu_s))


def _wait_port(server: subprocess.Popen, log: Path, name: str) -> int:
    deadline = time.monotonic() + READY_S
    while True:
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        port = next((line.split()[1] for line in lines if line.startswith("port: ")), None)
        if port:
            return int(port)
        if server.poll() is not None or time.monotonic() > deadline:
            what = f"exited ({server.returncode})" if server.returncode is not None else f"did not listen within {READY_S:g} s"
            raise StorageError(f"{name}: the HTTP server {what}: {' '.join(lines[-1:]) or 'no output'}")
        time.sleep(0.02)


def _start(storage: dict, source: Path, point: Path | None, log: Path, cpus: list[int] | None) -> subprocess.Popen:
    """The FUSE server mounting ``source`` at ``point``, or (``point`` None) the HTTP server serving it."""
    if point:
        argv = [str(native.path()), str(source), str(point)]
    else:
        argv = [sys.executable, "-m", "harness.storage.http", str(source)]
    argv += ["--open-ms", str(storage.get("open_ms") or 0), "--read-ms", str(storage.get("read_ms") or 0)]
    argv += ["--jitter-pct", str(storage.get("jitter_pct") or 0)]
    if storage.get("mb_per_s"):
        argv += ["--mb-per-s", str(storage["mb_per_s"])]
    if cpus:
        argv += ["--cpus", ",".join(map(str, cpus))]
    with open(log, "wb") as out:  # its own session: a signal to the trial's group never reaches it
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def _wait_mounted(server: subprocess.Popen, point: Path, name: str, log: Path) -> None:
    deadline = time.monotonic() + READY_S
    while not os.path.ismount(point):
        if server.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            what = f"exited ({server.returncode})" if server.returncode is not None else f"did not mount within {READY_S:g} s"
            raise StorageError(f"{name}: the FUSE server {what}: {' '.join(tail) or 'no output'}")
        time.sleep(0.02)


def _unmount(point: Path, server: subprocess.Popen, log: Path) -> dict:
    """Detach the mount (lazily: a reader still inside lets go later), let the server end, remove the folder.

    Returns:
        The server's own cost: CPU seconds (its rusage, start-up included), the requests it served
        and the CPU per request while mounted (its last log line).
    """
    if str(point) in _mountpoints():  # not os.path.ismount: a dead server's mount fails stat() yet is still there
        fusermount = shutil.which("fusermount3")
        unmount = [fusermount, "-u", "-z", str(point)] if fusermount else ["umount", "-l", str(point)]
        subprocess.run(unmount, capture_output=True)
    cpu_s = _reap(server)
    with contextlib.suppress(OSError):
        point.rmdir()
    return _cost(_served(log), cpu_s)


def _cost(served: dict, cpu_s: float | None) -> dict:
    """What the server served and what it cost: CPU in all (start-up included) and per request while serving."""
    requests = (served.get("opens") or 0) + (served.get("reads") or 0)
    serving = served.get("serving_cpu_s")
    return {
        **served,
        "server_cpu_s": round(cpu_s, 4) if cpu_s is not None else None,
        "cpu_us_per_request": round(serving / requests * 1e6, 1) if serving is not None and requests else None,
    }


def _reap(server: subprocess.Popen, grace_s: float = 5.0) -> float | None:
    """Wait for the server (unmounted, it ends by itself; else SIGTERM, then SIGKILL); its CPU seconds."""
    deadline = time.monotonic() + grace_s
    signals = [signal.SIGTERM, signal.SIGKILL]
    while True:
        if server.returncode is not None:
            return None  # reaped before (its CPU time went with it)
        pid, status, usage = os.wait4(server.pid, os.WNOHANG)
        if pid:
            server.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline and signals:
            server.send_signal(signals.pop(0))
            deadline = time.monotonic() + grace_s
        time.sleep(0.02)


def _served(log: Path) -> dict:
    """The counts the server printed as its last line (``served: {...}``), or {}."""
    import json

    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    last = next((line for line in reversed(lines) if line.startswith(SERVED)), None)
    try:
        return json.loads(last[len(SERVED) :]) if last else {}
    except ValueError:
        return {}


SERVED = "served: "  # the server's last line: its requests and bytes, as JSON


def relocate(manifest, where: dict[str, str]):
    """The child's side: ``manifest`` with every path under the mount, where the parent serves it (``where``: its
    Request's storage; empty: unchanged).

    With ``storage=http`` only the WebDataset shards move (to their URLs): the one reader here that
    takes URLs, which validation holds every other loader to.
    """
    point, source, url = where.get(MOUNT), where.get(SOURCE), where.get(URL)
    from dataclasses import replace

    if url and source:
        return replace(manifest, webdataset={k: [_url(url, source, p) for p in v] for k, v in manifest.webdataset.items()})
    if not point or not source:
        return manifest

    def moved(path) -> Path:
        path = Path(path)
        try:
            return Path(point) / path.relative_to(source)
        except ValueError:
            return path  # outside the cache (never, for a built dataset): read where it is

    return replace(
        manifest,
        root=moved(manifest.root),
        images_dir=moved(manifest.images_dir),
        tfrecords={k: [str(moved(p)) for p in v] for k, v in manifest.tfrecords.items()},
        webdataset={k: [str(moved(p)) for p in v] for k, v in manifest.webdataset.items()},
    )


def _url(base: str, source: str, path: str) -> str:
    from urllib.parse import quote

    return f"{base}/{quote(Path(path).relative_to(source).as_posix())}"


def _mountpoints() -> list[str]:
    with open("/proc/mounts") as mounts:
        return [line.split()[1] for line in mounts if len(line.split()) > 1]


def leftover_mounts(under: str | Path | None = None) -> list[str]:
    """Mountpoints of throttled storage still mounted on this machine, or in folder ``under`` (none once every trial has ended)."""
    found = [point for point in _mountpoints() if Path(point).name.startswith(MOUNT_PREFIX)]
    return [point for point in found if under is None or Path(point).parent == Path(under).resolve()]
