"""``ceilings.json``: what this machine could feed at most, measured once per sweep, versioned.

Three ceilings bound a loader's samples/s (a roofline for input pipelines):

* the **accelerator**'s: batch size / (step + copy) time, from the trials themselves (the report's);
* the **CPU**'s, per :class:`Work` (decode library, dataset, size, augment pipeline), measured as
  the pipeline runs (:class:`Pipeline`): the sweep's fastest chain doing that work, run alone
  (no accelerator step) at its most parallel on the usable cores, one repeating iterator where
  the family has one, long enough that iterator set-up is timed apart. The ceiling is the larger
  of its steady-state samples/s and the usable cores over its per-sample core time (every core
  busy with the work as the chain does it);
* the **I/O**'s: the dataset's read bandwidth / its mean bytes per file.

One core's decode cost per library (:class:`Cost`, timed on one thread as augbench times ops)
stays beside them: what a decoder change would save, not a ceiling. A ceiling is no ceiling for
a loader that decodes nothing per epoch (a cache holds decoded images). Whether each ceiling
held against every measured steady state is checked where the report reads it
(:mod:`harness.results.bounds`).

Schema 1 files (before the chains were run alone) took the one-thread decode cost times the
cores as the CPU ceiling; they are read so, and the check says where that fell short.

This module is the file's model, and the rule that says which measured work a variant does
(:func:`work_of`); both the calibration (which writes it) and the report (which reads it) use it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

CEILINGS_FILE = "ceilings.json"  # in the sweep's folder, beside results.csv
SCHEMA_VERSION = 2
UNITS = {
    "ms_per_sample": "ms of one core per sample",
    "core_ms_per_sample": "CPU ms of the trial's process tree per sample, the chain running alone",
    "cpu_samples_per_s": "samples/s: a pipeline's, the larger of its steady state alone and cores * 1000 / core_ms_per_sample; "
    "a decode cost's, every usable core decoding at its fastest pass's speed",
    "mb_per_s": "MB/s (10^6 bytes per second)",
    "io_samples_per_s": "samples/s at that bandwidth and the dataset's mean file size",
    "cores": "CPUs this process may use (affinity, limited by a cgroup quota)",
}
# decode library -> how the report names it; the keys are loader.decoder's values, plus tf_image
DECODE_LIBRARIES = {
    "pil": "PIL",
    "pil_draft": "PIL draft mode",
    "opencv": "OpenCV",
    "simplejpeg": "simplejpeg",
    "torchvision": "torchvision.io",
    "tf_image": "tf.io + tf.image",
}
# What a family's describe() says it runs, when it names no ``decoder``: first match wins
# (simplejpeg's "decode_jpeg" names its own decoder key, so tf.io's words come last).
_OPS_HINTS = (
    ("torchvision.io", "torchvision"),
    ("cv2.imdecode", "opencv"),
    ("simplejpeg", "simplejpeg"),
    ("draft(", "pil_draft"),
    ("PIL", "pil"),
    ("load_img", "pil"),
    ("read_file", "tf_image"),
    ("decode_jpeg", "tf_image"),
    ("decode_png", "tf_image"),
    ("decode_image", "tf_image"),
    ("TFRecordDataset", "tf_image"),
)


@dataclass(frozen=True)
class Work:
    """The per-sample work a loader variant does on the CPU, as far as the calibration measures it."""

    decoder: str  # a key of DECODE_LIBRARIES
    dataset: str  # the dataset's folder in the cache (its root)
    height: int  # pixels after the resize (batch.height)
    width: int  # pixels after the resize (batch.width)
    channels: int  # colour channels decoded
    augment: str = ""  # "<library>:<ops signature>" of the augment pipeline, "" for none
    augment_order: str = field(default="", compare=False)  # its ops in order ("resize > rotate"), for the label only

    @property
    def label(self) -> str:
        """``PIL decode+resize to 150x150`` or ``PIL decode+augment (albumentations: resize > rotate)``."""
        lib = DECODE_LIBRARIES.get(self.decoder, self.decoder)
        if self.augment:
            return f"{lib} decode+augment ({self.augment.split(':')[0]}: {self.augment_order or self.augment.split(':', 1)[-1]})"
        return f"{lib} decode+resize to {self.height}x{self.width}"


@dataclass
class Cost:
    """One core's measured cost per sample of one :class:`Work`."""

    work: Work
    ms_per_sample: float  # median over timed passes, ms of one core
    min_ms: float  # fastest pass, ms per sample
    max_ms: float  # slowest pass, ms per sample
    cv: float  # coefficient of variation of the passes' rates
    unstable: bool  # cv above the calibration's limit
    images: int  # files decoded per pass
    passes: int  # timed passes
    cpu_samples_per_s: float  # usable cores * 1000 / min_ms: the fastest pass, as a ceiling is the most it can do
    how: str  # what exactly was timed, in words


@dataclass
class Pipeline:
    """The CPU ceiling of one :class:`Work`, measured as the pipeline runs: a chain doing it, run alone."""

    work: Work
    job: int  # the sweep's job whose chain ran alone: the fastest (median steady state) doing this work
    overrides: list[str]  # what ran: that job's overrides, then the changes that run it alone at its most parallel
    samples_per_s: float  # the fastest repeat's steady-state samples/s, with no accelerator step
    repeats: list[float]  # every ok repeat's steady-state samples/s
    core_ms_per_sample: float  # CPU ms of the process tree per sample (the lowest repeat's)
    cpu_samples_per_s: float  # the ceiling: max(samples_per_s, cores * 1000 / core_ms_per_sample)
    setup_s: float  # time to the first batch (iterator, workers), median over repeats: timed apart, not in the rate
    how: str  # what ran, in words

    @property
    def what(self) -> str:
        """How the report names where the ceiling comes from."""
        core = f"{self.core_ms_per_sample:.2f} ms of core time a sample as it runs"
        return f"{self.work.label}: {core}, {self.samples_per_s:,.0f}/s run alone"


@dataclass
class Disk:
    """The read bandwidth of one dataset's files."""

    dataset: str  # the dataset's root
    mean_bytes: float  # mean file size of the whole dataset, bytes
    files: int  # files read
    bytes: int  # bytes read
    seconds: float  # wall time of the reads
    mb_per_s: float  # bytes / seconds / 1e6
    io_samples_per_s: float  # mb_per_s * 1e6 / mean_bytes
    cache: str  # "evicted" (read cold, from the disk), "unknown" (maybe from the page cache)
    resident_before: float | None  # share of the files' pages in the page cache before the reads; None: not known
    how: str  # how it was read, in words


@dataclass
class Ceilings:
    """The whole file: when and where it was measured, the usable cores, each cost and each disk figure."""

    measured_at: str  # ISO 8601, local time
    seconds: float  # how long the calibration took, s
    hostname: str
    cpu_model: str
    cores: float  # usable CPUs (see UNITS)
    cores_how: str  # where that number comes from, in words
    costs: list[Cost] = field(default_factory=list)
    disks: list[Disk] = field(default_factory=list)
    pipelines: list[Pipeline] = field(default_factory=list)  # the CPU ceilings (schema 2 on)
    map_ms: float | None = None  # tf.data's cost of one per-element map call, ms of one core (None: not timed)
    open_ms: float | None = None  # opening and closing one dataset file, beyond reading its bytes, ms of one core
    notes: list[str] = field(default_factory=list)  # what could not be measured, and why
    units: dict[str, str] = field(default_factory=lambda: dict(UNITS))
    schema_version: int = SCHEMA_VERSION

    def cost(self, work: Work) -> Cost | None:
        return next((c for c in self.costs if c.work == work), None)

    def disk(self, dataset: str) -> Disk | None:
        return next((d for d in self.disks if d.dataset == dataset), None)

    def pipeline(self, work: Work) -> Pipeline | None:
        return next((p for p in self.pipelines if p.work == work), None)

    def cpu(self, work: Work) -> tuple[float, str] | None:
        """(the CPU ceiling of ``work`` in samples/s, where it comes from), or None where none was measured.

        The chain run alone (schema 2); a schema 1 file's one-thread decode cost times the cores.
        """
        alone = self.pipeline(work)
        if alone is not None:
            return alone.cpu_samples_per_s, alone.what
        cost = self.cost(work) if self.schema_version < 2 else None
        if cost is None:
            return None
        return cost.cpu_samples_per_s, f"{cost.work.label}: one thread's fastest pass times {self.cores:g} CPUs"

    def write(self, path: Path) -> Path:
        from harness.data.manifest import write_text_atomic

        return write_text_atomic(Path(path), json.dumps(asdict(self), indent=1) + "\n")


def read(path: Path) -> Ceilings:
    """Read ``ceilings.json``; a newer schema or a malformed file is a :class:`HarnessError` naming it."""
    from harness.data.manifest import read_versioned

    path = Path(path)
    try:
        data = read_versioned(path, "ceilings", SCHEMA_VERSION)
        version = data.get("schema_version", 0)
        return Ceilings(
            **{
                **_known(Ceilings, data),
                "costs": [_cost(c) for c in data.get("costs", [])],
                "disks": [_disk(d) for d in data.get("disks", [])],
                "pipelines": [_pipeline(p) for p in data.get("pipelines", [])],
                "schema_version": version,
            }
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise HarnessError(f"{path}: not a readable ceilings file ({type(exc).__name__}: {exc})") from exc


def _known(cls, data: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _cost(data: dict) -> Cost:
    return Cost(**{**_known(Cost, data), "work": Work(**_known(Work, data["work"]))})


def _disk(data: dict) -> Disk:
    return Disk(**_known(Disk, data))


def _pipeline(data: dict) -> Pipeline:
    return Pipeline(**{**_known(Pipeline, data), "work": Work(**_known(Work, data["work"]))})


# -- which work a variant does --------------------------------------------------------------
def decode_library(loader: dict[str, Any]) -> str | None:
    """The decode library a trial's loader used, from what its family's ``describe()`` recorded.

    None where it decodes nothing (loader=synthetic) or runs code the harness cannot see
    (loader=custom: "as the pipeline does").
    """
    named = loader.get("decoder")
    if named is not None:
        return named if named in DECODE_LIBRARIES else None
    text = " ".join(str(op) for op in loader.get("ops", []))
    return next((lib for hint, lib in _OPS_HINTS if hint in text), None)


def caches_decoded(loader: dict[str, Any]) -> bool:
    """Whether the chain caches decoded images, so later epochs skip the decode the CPU ceiling counts."""
    return any(str(op).startswith("cache(") for op in loader.get("ops", []))


def work_of(config: dict[str, Any], loader: dict[str, Any], dataset: dict[str, Any], augment: dict[str, Any]) -> Work | None:
    """The :class:`Work` of one trial, from its result's config, loader, dataset and augment records.

    None where the calibration has nothing to measure for it: no dataset read, an unknown decoder.
    """
    decoder = decode_library(loader)
    root = dataset.get("root")
    if decoder is None or not root or not dataset.get("count"):
        return None
    batch = config.get("batch", {})
    pipeline = f"{augment.get('library')}:{augment.get('signature')}" if augment.get("ops") else ""
    order = str(augment.get("order") or "") if pipeline else ""
    size = (int(batch.get("height", 0)), int(batch.get("width", 0)), int(batch.get("channels", 3)))
    return Work(decoder, str(root), *size, augment=pipeline, augment_order=order)


def usable_cores(environment: dict[str, Any]) -> tuple[float | None, str]:
    """(usable CPUs, where the number comes from) from a result's environment; (None, "") where it says nothing.

    The affinity mask, lowered by the cgroup quota (a fraction of a core counts: 1.5 CPUs) where
    the environment records one (``cpu_quota``); ``cpu_usable`` rounds a quota up, so it comes second.
    """
    affinity, quota = environment.get("cpu_affinity"), environment.get("cpu_quota")
    if isinstance(affinity, int) and affinity > 0:
        if isinstance(quota, (int, float)) and 0 < quota < affinity:
            return float(quota), f"the trials' cgroup CPU quota ({quota:g} CPUs; affinity {affinity})"
        return float(affinity), "the trials' CPU affinity" + ("" if "cpu_quota" in environment else " (cgroup quota not recorded)")
    usable = environment.get("cpu_usable")
    if isinstance(usable, (int, float)) and usable > 0:
        return float(usable), "the trials' usable cores"
    return None, ""
