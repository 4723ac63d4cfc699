"""Which ceiling bounds a variant (a roofline for input pipelines), and what the diagnosis says about it.

Each variant has up to three ceilings, in samples/s: the accelerator's (its batch size over
its step and copy time), the CPU's for the decode library it uses and the I/O's for the
files it reads (both from ``ceilings.json``, :mod:`harness.results.ceilings`). A ceiling
the variant's chain skips does not apply to it: a cache of decoded images skips decoding
and reading after the first epoch, files in the page cache are not read from the disk.
The lowest that applies is the one it can reach at best; how close it comes names the
bound: at :data:`NEAR` of it or above it is bound by it, below :data:`FAR` of every one
with idle cores something serial holds it back.

Pure functions over a trial's records and numbers, so the report's data, plots and
recommendation can all ask them.
"""

from __future__ import annotations

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


@dataclass
class Bounds:
    """A variant's ceilings, and how close its median samples/s comes to the lowest."""

    rate: float | None  # the variant's median samples/s
    ceilings: list[Ceiling] = field(default_factory=list)  # those that apply to it
    skipped: list[str] = field(default_factory=list)  # measured ceilings that do not apply to it, and why
    measured: bool = False  # the sweep has a ceilings.json (CPU and I/O ceilings were measured)

    @property
    def lowest(self) -> Ceiling | None:
        return min(self.ceilings, key=lambda c: c.samples_per_s, default=None)

    @property
    def fraction(self) -> float | None:
        """The variant's samples/s over its lowest ceiling's."""
        low = self.lowest
        return None if low is None or self.rate is None or low.samples_per_s <= 0 else self.rate / low.samples_per_s

    def of(self, kind: str) -> Ceiling | None:
        return next((c for c in self.ceilings if c.kind == kind), None)

    @property
    def bound(self) -> str | None:
        """The kind of ceiling the variant is at (NEAR or above), or None."""
        f = self.fraction
        return self.lowest.kind if f is not None and f >= NEAR and self.lowest is not None else None


def accelerator(trial, h2d_ms: float | None) -> Ceiling | None:
    """Batch size / (step + copy) time, from the trial's config and the variant's mean copy time."""
    size = trial.config.get("batch", {}).get("size")
    step = trial.config.get("consumer", {}).get("step_ms")
    if not size or not step:
        return None
    h2d = h2d_ms or 0.0
    return Ceiling("accelerator", size / ((step + h2d) / 1000.0), f"batch {size} every {step:g} ms step + {h2d:.2f} ms copy")


def of_trial(trial, rate: float | None, h2d_ms: float | None, ceilings: Ceilings | None) -> Bounds:
    """The ceilings of the variant whose first ok repeat is ``trial``."""
    b = Bounds(rate, measured=ceilings is not None)
    acc = accelerator(trial, h2d_ms)
    if acc is not None:
        b.ceilings.append(acc)
    if ceilings is None:
        return b
    cached = caches_decoded(trial.loader)
    work = work_of(trial.config, trial.loader, trial.dataset, trial.augment)
    cost = ceilings.cost(work) if work is not None else None
    if cached:
        first = f" (its first epoch decodes at {cost.cpu_samples_per_s:,.0f} samples/s at most)" if cost is not None else ""
        b.skipped.append(f"its cache holds decoded images, so after the first epoch it neither reads nor decodes files{first}")
    elif cost is not None:
        b.ceilings.append(Ceiling("CPU", cost.cpu_samples_per_s, f"{cost.work.label} on {ceilings.cores:g} CPUs"))
    elif trial.dataset.get("count"):
        b.skipped.append("no CPU ceiling: the calibration did not time its decoding (a custom pipeline, or its decoder failed)")
    disk = ceilings.disk(str(trial.dataset.get("root"))) if trial.dataset.get("root") else None
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


def _warm(dataset: dict[str, Any]) -> str:
    """Why the trial's reads came from memory rather than the disk, or "" where they may not have."""
    record = dataset.get("page_cache") or {}
    if record.get("mode") == "warm":
        return "dataset.page_cache=warm read every file into memory before the trial"
    resident = record.get("resident_before")
    if record.get("mode") != "cold" and isinstance(resident, (int, float)) and resident >= WARM:
        return f"{resident:.0%} of the dataset's pages were in the page cache when the trial started"
    return ""


def words(b: Bounds, cpu_pct: float | None, cores: int | None) -> list[str]:
    """The diagnosis of an input-bound variant (it waited 5% of its steps or more) from its ceilings."""
    low, f = b.lowest, b.fraction
    if low is None or f is None:
        return []
    busy = cpu_pct / (cores * 100) if cpu_pct is not None and cores else None
    cpu = f"its processes used {cpu_pct:.0f}% of {(cores or 0) * 100}% of CPU" if busy is not None else ""
    where = f"{f:.0%} of the {low.kind} ceiling ({low.samples_per_s:,.0f} samples/s: {low.what})"
    if f >= NEAR and low.kind == "accelerator":
        out = [f"accelerator-bound: it reaches {where}, so the loader nearly keeps up; a faster loader gains at most {1 / f - 1:.0%}"]
    elif f >= NEAR and low.kind == "CPU":
        out = [
            f"CPU-bound: it reaches {where}; more workers or parallel calls will not help; "
            "a cheaper decoder, smaller stored images or a cache of decoded images would"
        ]
    elif f >= NEAR:
        out = [f"fetch-bound: it reaches {where}; more CPU or workers will not help; a cache, fewer bytes per file or faster storage would"]
    elif busy is not None and busy > BUSY:
        out = [
            f"CPU-bound below its ceilings: {cpu}, all {cores} cores, yet it reaches only {where}: "
            "its chain does more per sample than the decode the ceiling counts; more workers will not help"
        ]
    elif f < FAR and busy is not None and busy < IDLE:
        out = [
            f"far below every ceiling: it reaches {where}, and {cpu}, so something serial limits it "
            "(one thread doing the work, no prefetch, or waits); more parallelism has room to help"
        ]
    else:
        out = [f"it reaches {where}" + (f"; {cpu}" if cpu else "")]
    return out + b.skipped


def accelerator_words(b: Bounds) -> list[str]:
    """For a variant that is not input-bound: how much of the accelerator's ceiling it reaches."""
    acc, rate = b.of("accelerator"), b.rate
    if acc is None or rate is None:
        return []
    return [f"it reaches {rate / acc.samples_per_s:.0%} of the accelerator ceiling ({acc.samples_per_s:,.0f} samples/s)"]
