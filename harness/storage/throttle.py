"""The throttled storage's server: a read-only FUSE passthrough that charges each request its latency.

Run by :mod:`harness.storage.mount` in a process of its own (``python -m harness.storage.throttle
SOURCE MOUNTPOINT --open-ms ...``), never inside the trial, so the trial's CPU figures hold the
pipeline's work only. Every ``open`` waits ``open_ms``, every ``read`` request ``read_ms`` (each
drawn within +-``jitter_pct``), and a bandwidth cap (``mb_per_s``) is one shared wire: a read of
n bytes occupies it for n / rate, after the reads before it. The kernel asks in requests of at
most 128 KiB, so a 50 KB image is one open and one read; a 1 MB shard is eight reads.

Requests run in libfuse's threads (fusepy's multi-threaded mode): a sleep holds no lock, so k
readers at once wait their latencies side by side, as they would on a network file system.
Symbolic links (a folder dataset's view of the user's files) are followed here, so every byte
the trial reads crosses the throttle. Nothing is written; the page cache is not kept between
opens (libfuse's default without ``kernel_cache``), so each epoch reads through the server again.
"""

from __future__ import annotations

import errno
import os
import stat
import time

import fuse

from harness.storage.delays import Throttle, from_options, report_served, server_options

_STAT_KEYS = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid")


class Passthrough(fuse.Operations):
    """Read-only view of ``source`` with ``throttle``'s delays on open and read; links followed."""

    def __init__(self, source: str, throttle: Throttle):
        self.source = os.path.realpath(source)
        self.throttle = throttle
        self.cpu_at_mount: float | None = None

    def init(self, path):
        self.cpu_at_mount = time.process_time()  # the serving's own CPU starts here, after Python's start-up

    def _path(self, path: str) -> str:
        return os.path.join(self.source, path.lstrip("/"))

    def getattr(self, path, fh=None):
        try:
            st = os.stat(self._path(path))  # follows links: a linked file is served as a file
        except OSError as exc:
            raise fuse.FuseOSError(exc.errno or errno.EIO) from None
        found = {key: getattr(st, key) for key in _STAT_KEYS}
        found["st_mode"] = stat.S_IFMT(st.st_mode) | (stat.S_IMODE(st.st_mode) & 0o555)  # read-only
        return found

    def readdir(self, path, fh):
        return [".", "..", *os.listdir(self._path(path))]

    def access(self, path, amode):
        if amode & os.W_OK:
            raise fuse.FuseOSError(errno.EROFS)
        if not os.access(self._path(path), amode):
            raise fuse.FuseOSError(errno.EACCES)

    def open(self, path, flags):
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise fuse.FuseOSError(errno.EROFS)
        self.throttle.on_open()
        return os.open(self._path(path), os.O_RDONLY)

    def read(self, path, size, offset, fh):
        self.throttle.on_read(size)
        return os.pread(fh, size, offset)

    def release(self, path, fh):
        os.close(fh)
        return 0

    def statfs(self, path):
        st = os.statvfs(self.source)
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")
        return {key: getattr(st, key) for key in keys}


def main(argv: list[str] | None = None) -> None:
    p = server_options("python -m harness.storage.throttle", __doc__.split("\n")[0])
    p.add_argument("mountpoint")
    opts = p.parse_args(argv)
    throttle = from_options(opts)
    # foreground: the parent owns this process and unmounts it; ro; 128 KiB reads (the kernel's largest)
    served_by = Passthrough(opts.source, throttle)
    # the dataset does not change while mounted: the kernel may keep names and attributes for the mount's life,
    # so a file's reading costs its open, reads and release, not a lookup and a stat each time again
    cached = {"entry_timeout": 3600, "attr_timeout": 3600, "negative_timeout": 3600}
    fuse.FUSE(served_by, opts.mountpoint, foreground=True, ro=True, nothreads=False, max_read=131072, **cached)
    # unmounted: the loop has ended; the parent reads this line for the server's cost per request
    report_served(throttle, time.process_time() - served_by.cpu_at_mount if served_by.cpu_at_mount is not None else None)


if __name__ == "__main__":
    main()
