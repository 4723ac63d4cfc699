"""The utilization sampler: CPU, memory, I/O and GPU of a trial, every ``monitor.interval_ms``.

It runs as a thread of the *parent* process, which only waits for the trial's child
process meanwhile, so it never competes for the GIL of the process whose loader it
measures, and it costs no process start. It follows the child's whole process tree
(DataLoader and Keras workers included) through psutil, and one GPU through NVML.

Time stamps are ``time.perf_counter()`` seconds: CLOCK_MONOTONIC on Linux, the same
clock in parent and child, so the series line up with the child's step timeline.

Every tick costs a few /proc reads per process (about 0.1 ms each); the process list is
refreshed every ``CHILDREN_EVERY`` ticks. USS (memory no other process shares) and PSS
(shared pages divided among their sharers, so the tree's PSS sums to what the tree
really occupies, where RSS counts a forked worker's shared pages again) make the kernel
walk the page tables, about 10 ms for a process that imported torch; they are read once
at the end of the measured phase, while the trial waits for the sampler's answer on the
trial's channel (:class:`Phases`), and every ``monitor.uss_interval_ms`` if that is set.
The thread's own CPU time is measured, per part of a tick, and stored as overhead.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Protocol

import psutil

from harness.monitor.gpu import SERIES as GPU_SERIES
from harness.monitor.gpu import NvmlSource

CHILDREN_EVERY = 2
DISK_EVERY = 5
SLOW_EVERY = 5  # context switches and bytes read: rates over half a second at 100 ms
MB = 2**20

TREE_SERIES = (
    "machine_cpu_pct",
    "tree_cpu_pct",
    "tree_cpu_s",
    "tree_rss_mb",
    "tree_uss_mb",
    "tree_pss_mb",
    "tree_threads",
    "tree_ctx_switches_per_s",
    "tree_read_mb_s",
    "disk_read_mb_s",
    "processes_alive",
)


class Phases(Protocol):
    """The trial's side of its measured phase, as the sampler asks it once per tick (never blocking).

    :class:`harness.trial.protocol.Channel` is the one the parent passes.
    """

    def begun(self) -> bool: ...  # the measured phase has begun

    def ended(self) -> bool: ...  # it has ended, and the trial waits for acknowledge() to stop its workers

    def acknowledge(self) -> None: ...  # the end-of-phase memory is read


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def read_core_times() -> list[tuple]:
    """(busy, total) jiffies per core from /proc/stat; busy excludes idle and iowait."""
    cores = []
    with open("/proc/stat", "rb") as handle:
        for line in handle:
            if line.startswith(b"cpu") and line[3:4].isdigit():
                values = [int(v) for v in line.split()[1:9]]
                total = sum(values)
                cores.append((total - values[3] - values[4], total))
    return cores


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def read_proc_stat(pid: int):
    """(own CPU s, own + reaped children's CPU s, threads, RSS bytes) from one read of /proc/PID/stat.

    Reaped children's CPU (cutime, cstime) is how workers that ended stay in the tree's
    total. ``None`` for a process that is gone or a zombie.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()  # after "pid (comm) "; fields[0] is the state
    if fields[0] in (b"Z", b"X"):
        return None
    utime, stime, cutime, cstime = (int(v) / CLOCK_TICKS for v in fields[11:15])
    return utime + stime, utime + stime + cutime + cstime, int(fields[17]), int(fields[21]) * PAGE


def block_devices() -> list[str]:
    """Whole disks (not partitions) as /sys/block lists them, loop and ram devices left out."""
    try:
        return [d for d in os.listdir("/sys/block") if not d.startswith(("loop", "ram"))]
    except OSError:
        return []


def read_disk_bytes(disks: list[str]) -> int | None:
    """Bytes read from ``disks`` since boot (/proc/diskstats, 512-byte sectors)."""
    if not disks:
        return None
    wanted, total = set(disks), 0
    try:
        with open("/proc/diskstats", "rb") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) > 5 and fields[2].decode() in wanted:
                    total += int(fields[5]) * 512
    except OSError:
        return None
    return total


class _Proc:
    """One process of the tree, with its last cumulative counters."""

    def __init__(self, proc: psutil.Process, label: str, first_tick: int):
        self.proc, self.label, self.first_tick = proc, label, first_tick
        self.cpu_s = 0.0  # own + reaped children, cumulative
        self.own_s = 0.0  # own, cumulative
        self.ctx = None
        self.read = None
        self.seen = False
        self.alive = True
        try:
            self.name = " ".join(proc.cmdline()[:4]) or proc.name()
            self.created = proc.create_time()
        except psutil.Error:
            self.name, self.created = "?", time.time()
        self.series: dict[str, list] = {"cpu_pct": [], "rss_mb": [], "threads": []}


class Sampler:
    """Sample the process tree rooted at ``pid`` until :meth:`stop`."""

    def __init__(
        self,
        pid: int,
        interval_ms: float,
        *,
        gpu_index: int = 0,
        gpu: bool = True,
        nvml=None,
        uss_interval_ms: float = 0,
        phases: Phases | None = None,
        clock=time.perf_counter,
    ):
        self.root = psutil.Process(pid)
        self.interval = interval_ms / 1000.0
        self.uss_interval = uss_interval_ms / 1000.0
        self.phases = phases  # None: no phase known, the whole run counts as measured
        self.phase = "before"  # before | measuring | after
        self._acknowledged = False
        self.measured_cpu: list[float | None] = [None, None]  # thread CPU at the measured phase's start and end
        self._uss_at: float | None = None
        self.clock = clock
        self.gpu = NvmlSource(gpu_index, nvml) if gpu else None
        self.procs: dict[int, _Proc] = {}
        self.t: list[float] = []
        self.series: dict[str, list] = {k: [] for k in TREE_SERIES}
        self.gpu_series: dict[str, list] = {k: [] for k in GPU_SERIES}
        self.core_pct: list[list[float]] = []
        self.absent: dict[str, str] = {}
        self.tick_ms: list[float] = []
        self.costs: dict[str, float] = {}  # CPU seconds per part of a tick
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="harness-sampler", daemon=True)
        self._last_wall: float | None = None
        self._last_disk: int | None = None
        self._ticks = 0
        self._parents: dict[int, int | None] = {}
        self._disk_at: float | None = None
        self._tree_cpu_s: float | None = None
        self._last_cores: list[tuple] | None = None
        self._slow_at: float | None = None
        self._disks = block_devices()
        # processes that exist before the trial's child cannot descend from it: never read them
        self._parents.update({pid: None for pid in _pids() if pid != self.root.pid})
        self._add(self.root, "main")

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> Sampler:
        self._cores()  # prime the machine counters
        self._thread.start()
        return self

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        if self.gpu is not None:
            self.gpu.close()
        return self.record()

    def _run(self) -> None:
        started_cpu = time.thread_time()
        next_at = self.clock()
        while not self._stop.is_set():
            t0 = self.clock()
            self.tick(t0)
            self.tick_ms.append((self.clock() - t0) * 1e3)
            next_at += self.interval
            delay = next_at - self.clock()
            if delay < 0:  # fell behind (a loaded machine): skip missed ticks rather than burst
                next_at = self.clock()
                delay = 0
            self._stop.wait(delay)
        self.cpu_s = time.thread_time() - started_cpu

    # -- one tick ------------------------------------------------------------------
    def _add(self, proc: psutil.Process, label: str) -> None:
        p = _Proc(proc, label, len(self.t))
        for values in p.series.values():  # aligned with the sampler's ticks
            values.extend([None] * len(self.t))
        self.procs[proc.pid] = p

    def _refresh_children(self) -> None:
        """Find new descendants of the root.

        psutil's ``children()`` reads every process's stat file on the machine each time.
        Here only pids that appeared since the last look are read (a pid's parent never
        changes), and pids that existed before the trial started are never read at all.
        """
        alive = set(_pids())
        new = sorted(alive - self._parents.keys())
        for pid in self._parents.keys() - alive:
            del self._parents[pid]
        if not new:
            return
        tree = {pid for pid, p in self.procs.items() if p.alive} | {self.root.pid}
        for pid in new:  # parents have lower pids, so they come first (short of pid wrap-around)
            try:
                self._parents[pid] = parent = psutil.Process(pid).ppid()
            except psutil.Error:
                self._parents[pid] = None
                continue
            if parent in tree:
                tree.add(pid)
                try:
                    self._add(psutil.Process(pid), f"worker-{len(self.procs)}")
                except psutil.Error:
                    continue

    def _uss_due(self, now: float) -> bool:
        """USS is read once at the end of the measured phase (the trial waits for it there, so
        its cost falls outside the measured window), and every ``uss_interval`` while
        measuring if one is set; without the trial's phases, every ``uss_interval`` from the start."""
        if self.phase == "before" and (self.phases is None or self.phases.begun()):
            self.phase, self.measured_cpu[0] = "measuring", time.thread_time()
            self._uss_at = now
        if self.phase == "measuring" and self.phases is not None and self.phases.ended():
            self.phase, self.measured_cpu[1] = "after", time.thread_time()
            return True
        if self.phase == "measuring" and self.uss_interval:
            assert self._uss_at is not None  # set when the phase became "measuring"
            if now - self._uss_at >= self.uss_interval:
                self._uss_at = now
                return True
        return False

    def _acknowledge(self) -> None:
        """Tell the trial its end-of-phase USS has been read, so it may stop its workers."""
        if self.phase == "after" and self.phases is not None and not self._acknowledged:
            self.phases.acknowledge()
            self._acknowledged = True

    def _cost(self, part: str, since: float) -> float:
        now = time.thread_time()
        self.costs[part] = self.costs.get(part, 0.0) + now - since
        return now

    def tick(self, now: float) -> None:
        c = time.thread_time()
        if self._ticks % CHILDREN_EVERY == 0:
            self._refresh_children()
        c = self._cost("find_children", c)
        dt = None if self._last_wall is None else now - self._last_wall
        self._last_wall = now
        cores = self._cores()
        c = self._cost("machine_cpu", c)
        totals = {"rss": 0.0, "pss": 0.0, "uss": 0.0, "threads": 0, "ctx": 0.0, "read": 0.0, "alive": 0}
        uss_tick = self._uss_due(now)
        slow = self._ticks % SLOW_EVERY == 0
        dt_slow = now - self._slow_at if slow and self._slow_at is not None else None
        if slow:
            self._slow_at = now
        for p in self.procs.values():
            cpu_pct, rss, threads = self._sample_proc(p, dt, totals, uss_tick, slow)
            p.series["cpu_pct"].append(cpu_pct)
            p.series["rss_mb"].append(rss)
            p.series["threads"].append(threads)
        c = self._cost("processes", c)
        self.t.append(now)
        self.core_pct.append(cores)
        s = self.series
        s["machine_cpu_pct"].append(round(sum(cores) / max(len(cores), 1), 2))
        tree_cpu_s = sum(p.cpu_s for p in self.procs.values() if p.alive)
        last = self._tree_cpu_s
        self._tree_cpu_s = tree_cpu_s = max(tree_cpu_s, last or 0.0)  # a worker between exit and reaping dips
        s["tree_cpu_pct"].append(round((tree_cpu_s - last) / dt * 100, 2) if dt and last is not None else None)
        s["tree_cpu_s"].append(round(tree_cpu_s, 4))
        s["tree_rss_mb"].append(round(totals["rss"] / MB, 2))
        s["tree_uss_mb"].append(round(totals["uss"] / MB, 2) if uss_tick and "uss" not in self.absent else None)
        s["tree_pss_mb"].append(round(totals["pss"] / MB, 2) if uss_tick and "uss" not in self.absent else None)
        s["tree_threads"].append(totals["threads"])
        s["tree_ctx_switches_per_s"].append(round(totals["ctx"] / dt_slow, 1) if dt_slow else None)
        s["tree_read_mb_s"].append(round(totals["read"] / MB / dt_slow, 3) if dt_slow and "read" not in self.absent else None)
        s["disk_read_mb_s"].append(self._disk(now))
        s["processes_alive"].append(totals["alive"])
        c = self._cost("disk", c)
        gpu = self.gpu.sample() if self.gpu is not None and self.gpu.available else {}
        for key in GPU_SERIES:
            value = gpu.get(key)
            self.gpu_series[key].append(None if value is None else round(value, 2))
        self._cost("gpu", c)
        self._acknowledge()
        self._ticks += 1

    def _sample_proc(self, p: _Proc, dt, totals, uss_tick, slow):
        """One process: CPU, RSS and threads from /proc/PID/stat every tick (one read); context
        switches and bytes read every ``SLOW_EVERY`` ticks; USS when due."""
        if not p.alive:
            return None, None, None
        stat = read_proc_stat(p.proc.pid)
        if stat is None:
            p.alive = False
            return None, None, None
        own_s, cpu_s, threads, rss = stat
        if slow:
            ctx, read = self._slow_counters(p)
            if p.ctx is not None and ctx is not None:
                totals["ctx"] += ctx - p.ctx
            if read is not None and p.read is not None:
                totals["read"] += read - p.read
            p.ctx, p.read = ctx, read
        if uss_tick and "uss" not in self.absent:
            started = time.thread_time()
            try:
                full = p.proc.memory_full_info()
                totals["uss"] += full.uss
                totals["pss"] += getattr(full, "pss", 0)
            except psutil.AccessDenied as exc:
                self.absent["uss"] = f"psutil: {exc}"
            except psutil.Error:
                pass
            spent = time.thread_time() - started
            self.costs["uss"] = self.costs.get("uss", 0.0) + spent
            self.costs["processes"] = self.costs.get("processes", 0.0) - spent  # counted once, as uss
        if not p.seen:  # first look: its CPU since it started, if it started after the last look
            age = time.time() - p.created
            cpu_pct = own_s / age * 100 if dt and 0.01 < age <= dt * CHILDREN_EVERY else None
            p.seen = True
        else:
            cpu_pct = (own_s - p.own_s) / dt * 100 if dt else None
        totals["rss"] += rss
        totals["threads"] += threads
        totals["alive"] += 1
        p.cpu_s, p.own_s = cpu_s, own_s
        return (None if cpu_pct is None else round(cpu_pct, 2)), round(rss / MB, 2), threads

    def _slow_counters(self, p: _Proc):
        """(context switches, bytes read incl. page cache) from /proc/PID/status and /proc/PID/io."""
        ctx = read = None
        try:
            with open(f"/proc/{p.proc.pid}/status", "rb") as handle:
                ctx = sum(int(line.split()[1]) for line in handle if b"ctxt_switches:" in line)
        except (OSError, ValueError, IndexError):
            pass
        if "read" not in self.absent:
            try:
                with open(f"/proc/{p.proc.pid}/io", "rb") as handle:
                    read = next(int(line.split()[1]) for line in handle if line.startswith(b"rchar:"))
            except PermissionError as exc:
                self.absent["read"] = f"per-process I/O counters unavailable: {exc}"
            except (OSError, StopIteration, ValueError):
                pass
        return ctx, read

    def _disk(self, now: float) -> float | None:
        """Machine-wide disk reads, MB/s over the last DISK_EVERY ticks (None on the others)."""
        if "disk" in self.absent or self._ticks % DISK_EVERY:
            return None
        read = read_disk_bytes(self._disks)
        if read is None:
            self.absent["disk"] = "no block devices in /sys/block and /proc/diskstats"
            return None
        last, last_at = self._last_disk, self._disk_at
        self._last_disk, self._disk_at = read, now
        return round((read - last) / MB / (now - last_at), 3) if last is not None and last_at is not None and now > last_at else None

    def _cores(self) -> list[float]:
        """Busy % per core since the last call, from /proc/stat (what psutil reads, without its overhead)."""
        now = read_core_times()
        last, self._last_cores = self._last_cores, now
        if not last or len(last) != len(now):
            return [0.0] * len(now)
        out = []
        for (busy0, total0), (busy1, total1) in zip(last, now):
            out.append(round((busy1 - busy0) / (total1 - total0) * 100, 1) if total1 > total0 else 0.0)
        return out

    # -- the record ----------------------------------------------------------------
    def record(self) -> dict:
        """The series as the parent stores them in supervisor.json's ``monitor`` (times still on the perf_counter clock)."""
        absent = dict(self.absent)
        if self.phases is None and not self.uss_interval:
            absent["uss"] = "no trial phases to read it at and monitor.uss_interval_ms=0"
        if self.gpu is not None:
            absent.update({k: v for k, v in self.gpu.absent.items()})
        else:
            absent["gpu"] = "monitor.gpu=false"
        gpu = {k: v for k, v in self.gpu_series.items() if k not in absent and any(x is not None for x in v)}
        if self.gpu is not None and self.gpu.available:
            for key in GPU_SERIES:
                if key not in gpu and key not in absent:
                    absent[key] = "NVML returned no value"
        wall = (self.t[-1] - self.t[0]) if len(self.t) > 1 else 0.0
        start, end = self.measured_cpu
        measured_cpu = round(end - start, 4) if start is not None and end is not None else None
        return {
            "interval_ms": round(self.interval * 1e3, 3),
            "uss_interval_ms": round(self.uss_interval * 1e3, 3),
            "clock": "perf_counter (CLOCK_MONOTONIC), shared with the trial process",
            "t": [round(x, 4) for x in self.t],
            "series": {k: v for k, v in self.series.items() if not (k == "tree_read_mb_s" and "read" in absent)},
            "core_cpu_pct": self.core_pct,
            "processes": {p.label: {"pid": p.proc.pid, "cmd": p.name, "first_tick": p.first_tick, **p.series} for p in self.procs.values()},
            "gpu": {"device": self.gpu.device if self.gpu is not None else {}, "series": gpu},
            "absent": absent,
            "overhead": {
                "ticks": len(self.t),
                "sampler_cpu_s": round(self.cpu_s, 4),
                "sampler_cpu_pct_of_core": round(self.cpu_s / wall * 100, 3) if wall else None,
                "measured_phase_cpu_s": measured_cpu,
                "tick_ms_mean": round(sum(self.tick_ms) / len(self.tick_ms), 3) if self.tick_ms else None,
                "tick_ms_max": round(max(self.tick_ms), 3) if self.tick_ms else None,
                "cpu_s_by_part": {k: round(v, 4) for k, v in self.costs.items()},
                "where": "a thread of the parent process (not the trial's)",
            },
        }
