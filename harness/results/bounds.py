"""Which ceiling bounds a variant (a roofline for input pipelines), and whether each ceiling held.

Each variant has up to three ceilings, in samples/s: the accelerator's (its batch size over
its measured step and copy time), the CPU's for the work it does and the I/O's for the files
it reads (both from ``ceilings.json``, :mod:`harness.results.ceilings`). A ceiling the
variant's chain skips does not apply to it: a cache of decoded images skips decoding and
reading after the first epoch, files in the page cache are not read from the disk.

A ceiling is a claim: no variant it applies to can go faster. :func:`refute` holds every
ceiling against the steady-state samples/s of every ok repeat of every variant it applies to;
one that a measurement beats was mis-measured, is named so, and bounds nothing. The lowest
ceiling that held is the one a variant can reach at best; how close it comes names the bound:
at :data:`NEAR` of it or above it is bound by it, below :data:`FAR` of every one with idle
cores something serial holds it back.

Pure functions over a trial's records and numbers, so the report's data, plots, diagnosis and
the advice can all ask them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.results.ceilings import Ceilings, caches_decoded, work_of

NEAR = 0.8  # at or above this share of its lowest ceiling a variant is bound by that ceiling
FAR = 0.5  # below this share of every ceiling it is far from all of them
BUSY = 0.85  # share of the usable cores' time above which its processes kept them busy
IDLE = 0.6  # and below which cores stood idle
WARM = 0.9  # share of the dataset's pages in the page cache above which a trial's reads came from memory


@dataclass(frozen=True)
class Ceiling:
    kind: str  # "accelerator", "CPU" or "I/O"
    samples_per_s: float
    what: str  # how it was found, in a few words

    @property
    def key(self) -> tuple[str, str]:
        """What makes two variants' ceilings the same one: its kind and where it comes from."""
        return self.kind, self.what


@dataclass
class Bounds:
    """A variant's ceilings, and how close its median samples/s comes to the lowest that held."""

    rate: float | None  # the variant's median samples/s
    ceilings: list[Ceiling] = field(default_factory=list)  # those that apply to it, held or not
    skipped: list[str] = field(default_factory=list)  # measured ceilings that do not apply to it, and why
    measured: bool = False  # the sweep has a ceilings.json (CPU and I/O ceilings were measured)
    refuted: dict[tuple[str, str], str] = field(default_factory=dict)  # Ceiling.key -> which measurement beat it

    @property
    def holding(self) -> list[Ceiling]:
        """The ceilings no measurement beat: the ones to reason from."""
        return [c for c in self.ceilings if c.key not in self.refuted]

    @property
    def lowest(self) -> Ceiling | None:
        return min(self.holding, key=lambda c: c.samples_per_s, default=None)

    @property
    def fraction(self) -> float | None:
        """The variant's samples/s over its lowest holding ceiling's."""
        low = self.lowest
        return None if low is None or self.rate is None or low.samples_per_s <= 0 else self.rate / low.samples_per_s

    def of(self, kind: str) -> Ceiling | None:
        return next((c for c in self.holding if c.kind == kind), None)

    @property
    def bound(self) -> str | None:
        """The kind of ceiling the variant is at (NEAR or above), or None."""
        f = self.fraction
        return self.lowest.kind if f is not None and f >= NEAR and self.lowest is not None else None

    def mismeasured(self) -> list[str]:
        """One line per ceiling that a measurement beat, saying which."""
        return [
            f"the {c.kind} ceiling ({c.samples_per_s:,.0f} samples/s) was mis-measured: {self.refuted[c.key]}"
            for c in self.ceilings
            if c.key in self.refuted
        ]


def accelerator(trials: Sequence, h2d_ms: float | None = None) -> Ceiling | None:
    """Batch size / (step + copy) time: the measured compute and copy of the fastest repeat, else the configured step.

    Measured rather than configured: a step is never shorter than its compute and copy, so no
    repeat's steady state can beat the ceiling of the repeat whose steps were shortest.
    """
    first = trials[0] if trials else None
    size = first.config.get("batch", {}).get("size") if first is not None else None
    step = first.config.get("consumer", {}).get("step_ms") if first is not None else None
    if not size or not step:
        return None
    spans = [span for t in trials for span in [_mean_step(t)] if span is not None]
    if spans:
        compute, copy = min(spans, key=sum)
        return Ceiling("accelerator", size / ((compute + copy) / 1000.0), f"batch {size} every {compute:.2f} ms step + {copy:.2f} ms copy")
    h2d = h2d_ms or 0.0
    return Ceiling("accelerator", size / ((step + h2d) / 1000.0), f"batch {size} every {step:g} ms step + {h2d:.2f} ms copy")


def _mean_step(trial) -> tuple[float, float] | None:
    """(mean compute ms, mean copy ms) per measured step of one trial, or None without steps."""
    compute, copy = trial.steps.get("compute_ms") or [], trial.steps.get("h2d_ms") or []
    if not compute or len(copy) != len(compute) or sum(compute) <= 0:
        return None
    return sum(compute) / len(compute), sum(copy) / len(copy)


def of_variant(trials: Sequence, rate: float | None, h2d_ms: float | None, ceilings: Ceilings | None) -> Bounds:
    """The ceilings of the variant whose ok repeats are ``trials`` (its first one's records name its work)."""
    b = Bounds(rate, measured=ceilings is not None)
    acc = accelerator(trials, h2d_ms)
    if acc is not None:
        b.ceilings.append(acc)
    throttled = bool(trials) and _throttled(trials[0].config)
    if throttled:
        _storage_ceiling(b, trials[0])
    if ceilings is None or not trials:
        return b
    trial = trials[0]
    cached = caches_decoded(trial.loader)
    work = work_of(trial.config, trial.loader, trial.dataset, trial.augment)
    cpu = ceilings.cpu(work) if work is not None else None
    if cached:
        first = f" (its first epoch decodes at {cpu[0]:,.0f} samples/s at most)" if cpu is not None else ""
        b.skipped.append(f"its cache holds decoded images, so after the first epoch it neither reads nor decodes files{first}")
    elif cpu is not None:
        b.ceilings.append(Ceiling("CPU", cpu[0], cpu[1]))
    elif trial.dataset.get("count"):
        b.skipped.append("no CPU ceiling: the calibration did not run its chain alone (a custom pipeline, or that run failed)")
    disk = ceilings.disk(str(trial.dataset.get("root"))) if trial.dataset.get("root") and not throttled else None
    if disk is not None and not cached:
        warm = _warm(trial.dataset)
        if warm:
            b.skipped.append(f"no I/O ceiling: {warm}")
        else:
            state = "cold" if disk.cache == "evicted" else "page cache state unknown"
            b.ceilings.append(
                Ceiling("I/O", disk.io_samples_per_s, f"{disk.mb_per_s:,.0f} MB/s ({state}) / {disk.mean_bytes / 1024:,.0f} KB per file")
            )
    return b


REQUEST_BYTES = 128 * 1024  # the largest read request the kernel sends a FUSE server (harness/storage/throttle.c)
# a reader's read requests in flight at once: the one it waits on and one the kernel reads ahead (the server sets the
# readahead to one request; measured: a 4 MB file, 31 requests of 5 ms, read in 85 ms, not 155)
READS_IN_FLIGHT = 2


def _throttled(config: dict) -> bool:
    kind = ((config or {}).get("storage") or {}).get("kind")
    return str(getattr(kind, "value", kind)) in ("throttled", "http")  # the enum in a job's config, its text in a result


def _storage_ceiling(b: Bounds, trial) -> None:
    """The I/O ceiling a throttled storage's profile sets: readers x files per second each, and the link's bandwidth.

    For ``storage=throttled`` and ``http``. One reader waits ``open_ms`` per file and ``read_ms`` per
    128 KiB request of it, two requests at a time at most (the kernel reads one ahead), so it reads at
    most 1000 / (open_ms + ceil(requests / 2) * read_ms) files/s; ``k`` readers at once at most k times that,
    and all of them together no more than ``mb_per_s`` allows. A pipeline whose number of parallel
    readers is left to AUTOTUNE gets no such ceiling (it could not be held against it), only the reason.
    """
    storage = trial.config["storage"]
    size = trial.dataset.get("mean_bytes")
    if caches_decoded(trial.loader) or not size:
        return
    shards = _reads_shards(trial.config)
    read_ms = float(storage.get("read_ms") or 0)
    # a file: its open and each of its requests; a sample of a shard: its share of the shard's requests (the shard's
    # one open left out, which only raises the bound)
    if shards:
        per_file_ms = read_ms * int(size) / REQUEST_BYTES / READS_IN_FLIGHT
    else:
        requests = -(-int(size) // REQUEST_BYTES)
        per_file_ms = float(storage.get("open_ms") or 0) + read_ms * -(-requests // READS_IN_FLIGHT)  # rounds of requests
    rates, parts = [], []
    # with jitter each latency is drawn within +-jitter_pct: a ceiling no measurement may beat holds at the fastest draw
    # (at the mean one, a short trial's lucky draws beat it: object_store's 30 ms +-30%, 4 readers, measured +1%)
    fastest = 1 - float(storage.get("jitter_pct") or 0) / 100
    if per_file_ms > 0:
        readers = _readers(trial.config)
        if readers is None:
            b.skipped.append(f"no storage I/O ceiling: AUTOTUNE chooses how many files it reads at once ({per_file_ms:g} ms each)")
        else:
            rates.append(readers * 1000 / (per_file_ms * fastest))
            spread = f" (the fastest draw of {per_file_ms:g} ms +-{storage.get('jitter_pct'):g}%)" if fastest < 1 else ""
            parts.append(f"{readers} reader{'s' if readers > 1 else ''} x {per_file_ms * fastest:.3g} ms per file{spread}")
    if storage.get("mb_per_s"):
        rates.append(float(storage["mb_per_s"]) * 1e6 / int(size))
        parts.append(f"{float(storage['mb_per_s']):g} MB/s / {int(size) / 1024:,.0f} KB")
    if rates:
        b.ceilings.append(Ceiling("I/O", min(rates), f"storage={storage.get('profile')}: " + ", ".join(parts)))


def _reads_shards(config: dict) -> bool:
    """The loader reads TFRecord or tar shards: a handful of opens, each sample a slice of a large read."""
    loader = config.get("loader") or {}
    return loader.get("source") == "tfrecord" or loader.get("name") == "webdataset"


def _readers(config: dict) -> int | None:
    """How many files the loader reads at once, where its config fixes it; None where AUTOTUNE or the family decides."""
    loader = config.get("loader") or {}
    name = loader.get("name")
    if name == "tf_data":
        key = "interleave_parallel_calls" if loader.get("interleave") else "num_parallel_calls"
        if loader.get("source") == "tfrecord" and not loader.get("interleave"):
            return 1
        value = loader.get(key)
        return 1 if value in (None, "none") else value if isinstance(value, int) else None
    if name in ("torch", "webdataset"):
        return max(int(loader.get("num_workers") or 0), 1)
    return None


def of_trial(trial, rate: float | None, h2d_ms: float | None, ceilings: Ceilings | None) -> Bounds:
    """The ceilings of a variant known by one ok repeat."""
    return of_variant([trial], rate, h2d_ms, ceilings)


def steady(trial) -> float | None:
    """A repeat's steady-state samples/s (its samples/s where it recorded none)."""
    value = trial.summary.get("steady_samples_per_s")
    value = trial.summary.get("samples_per_s") if not isinstance(value, (int, float)) or value <= 0 else value
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def refute(variants: Sequence) -> list[str]:
    """Hold every ceiling against every ok repeat it applies to; mark those a steady state beat on each variant's bounds.

    Args:
        variants: objects with ``bounds`` (:class:`Bounds` or None), ``ok`` (the ok repeats) and ``label``.

    Returns:
        one line per mis-measured ceiling, naming the measurement that beat it.
    """
    fastest: dict[tuple[str, str], tuple[float, str, Ceiling]] = {}
    for v in variants:
        for c in v.bounds.ceilings if v.bounds is not None else []:
            for t in v.ok:
                rate = steady(t)
                if rate is not None and rate > c.samples_per_s and rate > fastest.get(c.key, (0.0, "", c))[0]:
                    fastest[c.key] = (rate, f"{v.label} repeat {t.repeat}", c)
    lines = []
    for key, (rate, who, c) in fastest.items():
        why = f"{who} reached {rate:,.0f} samples/s in its steady state ({rate / c.samples_per_s - 1:+.0%})"
        lines.append(f"the {c.kind} ceiling ({c.samples_per_s:,.0f} samples/s: {c.what}) was mis-measured: {why}")
        for v in variants:
            if v.bounds is not None and any(x.key == key for x in v.bounds.ceilings):
                v.bounds.refuted[key] = why
    return lines


def _warm(dataset: dict[str, Any]) -> str:
    """Why the trial's reads came from memory rather than the disk, or "" where they may not have."""
    record = dataset.get("page_cache") or {}
    if record.get("mode") == "warm":
        return "dataset.page_cache=warm read every file into memory before the trial"
    resident = record.get("resident_before")
    if record.get("mode") != "cold" and isinstance(resident, (int, float)) and resident >= WARM:
        return f"{resident:.0%} of the dataset's pages were in the page cache when the trial started"
    return ""
