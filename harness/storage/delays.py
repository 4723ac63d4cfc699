"""The delays of an emulated storage tier, as the HTTP server charges them.

:class:`Throttle` charges each open its latency, each read request its latency and its turn on one
shared link; :func:`server_options` and :func:`from_options` are the server's command line (the
parent, :mod:`harness.storage.mount`, starts it with these options). The FUSE server
(``throttle.c``) charges the same delays in C, with the same command line, and is held to the same
known answers by the tests. Imports nothing beyond the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time


class Throttle:
    """The delays of one storage tier: per open, per read request, and a shared wire of ``mb_per_s``."""

    def __init__(self, open_ms: float, read_ms: float, mb_per_s: float | None, jitter_pct: float, seed: int = 0):
        self.open_s, self.read_s = open_ms / 1e3, read_ms / 1e3
        self.byte_s = 1 / (mb_per_s * 1e6) if mb_per_s else 0.0
        self.jitter = jitter_pct / 100
        self._wire_free = 0.0  # monotonic time the wire is next free
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.opens = self.reads = self.bytes = 0  # requests served (bytes: as asked; a last read may return fewer)

    def _spread(self, seconds: float) -> float:
        if not seconds or not self.jitter:
            return seconds
        with self._lock:
            return seconds * (1 + self._random.uniform(-self.jitter, self.jitter))

    def on_open(self) -> None:
        with self._lock:
            self.opens += 1
        _sleep(self._spread(self.open_s))

    def on_read(self, size: int) -> None:
        """Wait the request's latency, then its turn on the wire (its bytes after those already on it)."""
        with self._lock:
            self.reads += 1
            self.bytes += size
        _sleep(self._spread(self.read_s))
        if not self.byte_s:
            return
        with self._lock:
            start = max(time.monotonic(), self._wire_free)
            self._wire_free = start + size * self.byte_s
            done = self._wire_free
        _sleep(done - time.monotonic())


def _sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


def server_options(prog: str, description: str) -> argparse.ArgumentParser:
    """A server's command line: SOURCE, then the tier's figures and the cores to run on."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("source")
    p.add_argument("--open-ms", type=float, default=0.0)
    p.add_argument("--read-ms", type=float, default=0.0)
    p.add_argument("--mb-per-s", type=float, default=None)
    p.add_argument("--jitter-pct", type=float, default=0.0)
    p.add_argument("--cpus", default="", help="cores to run on, comma-separated (off the trial's where one is free)")
    return p


def from_options(opts: argparse.Namespace) -> Throttle:
    """Pin this process to ``--cpus`` (if given) and make the tier's :class:`Throttle`."""
    if opts.cpus:
        os.sched_setaffinity(0, {int(c) for c in opts.cpus.split(",")})
    return Throttle(opts.open_ms, opts.read_ms, opts.mb_per_s, opts.jitter_pct)


def report_served(throttle: Throttle, serving_cpu_s: float | None) -> None:
    """The server's last line, which the parent reads for its requests and its CPU per request."""
    served = {"opens": throttle.opens, "reads": throttle.reads, "bytes": throttle.bytes, "serving_cpu_s": serving_cpu_s}
    print("served: " + json.dumps(served), flush=True)
