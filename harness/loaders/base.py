"""The loader interface and its registry.

A loader family is one module of this package plus one YAML file, ``conf/loader/<name>.yaml``.
The module holds a :class:`LoaderConf` dataclass (the family's config schema) and a
:class:`Loader` subclass that names it as its ``schema`` and is registered under its config
name. The loader declares what it needs (framework, dataset, TFRecord or tar shards), validates
its own config node without importing its framework, and yields :class:`Batch` objects of
the shape and dtype that ``batch`` fixes, one epoch per call to :meth:`Loader.epoch`.

Families are found, not listed: :func:`discover` imports every module of this package
whose name does not start with ``_``, and each family module registers itself. A helper
module either registers nothing (``images``, ``decode``, ``base``) or starts with ``_`` and is only
imported by its family (``_torch_impl``, which imports torch at its top).
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import pkgutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from omegaconf import MISSING

from harness.errors import ConfigError, HarnessError

_REGISTRY: dict[str, type[Loader]] = {}
_discovered = False


RANK_SEED_STRIDE = 1000  # draw_seed: rank r draws with seed + 1000 r


@dataclass
class LoaderConf:
    """The base of every family's config schema: ``loader=<name>`` composes onto its subclass."""

    name: str = MISSING  # loader family (set by the YAML choice)


@dataclass
class Batch:
    """One batch as the loader's framework produced it."""

    images: Any  # framework array (numpy, tf.Tensor, torch.Tensor) shaped by ``batch``
    labels: Any  # integer class labels
    ids: Sequence | None = None  # sample ids (dataset filenames) when the loader carries them

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass
class Needs:
    """What a loader needs prepared before its trial starts."""

    dataset: bool = True  # read the image dataset
    tfrecord: list[str] = field(default_factory=list)  # TFRecord compressions whose shards must exist
    webdataset: int = 0  # WebDataset tar shards that must exist, how many (0: none)
    framework: tuple[str, str] | None = None  # (module, pip extra), e.g. ("tensorflow", "tf")


@dataclass(frozen=True)
class Knobs:
    """The family's keys that set how it uses the machine: the advice turns them, the CPU ceiling's run alone sets them.

    Each is a full override key (``loader.num_workers``) or None where the family has no such
    knob. The worker records them in result.json (``loader.knobs``), so the advice reads them
    from results and never imports a family.
    """

    parallel: str | None = None  # map calls or worker count
    parallel_auto: str | None = None  # a value of ``parallel`` that lets the framework choose ("autotune"); None: give a count
    prefetch: str | None = None  # batches prepared ahead of the consumer (none, a count or autotune)
    persistent: str | None = None  # a bool that keeps the workers alive across epochs
    decoder: str | None = None  # the decode library (harness/loaders/decode.py's names)
    decoders: tuple[str, ...] = ()  # the values ``decoder`` takes that decode on the CPU
    gpu_decoders: tuple[str, ...] = ()  # the values ``decoder`` takes that decode on a CUDA GPU (nvjpeg)
    cache: str | None = None  # caches decoded samples: its value "memory" turns it on
    autotune: str | None = None  # a bool that switches the framework's autotuning
    vectorize: str | None = None  # a bool that runs the light per-sample ops on whole batches
    pin_memory: str | None = None  # a bool that hands page-locked batches to a CUDA consumer
    shards: tuple[str, ...] = ()  # the overrides that read the dataset from shards (TFRecord) instead of files
    continuous: bool = False  # trial.epoch_mode=continuous works (one repeating iterator)


class Loader(abc.ABC):
    """Base class of every loader family."""

    name: ClassVar[str]  # the config name: loader=<name>, conf/loader/<name>.yaml
    schema: ClassVar[type[LoaderConf]]  # this family's config dataclass, whose ``name`` defaults to ``name``
    # overrides that make a working config where the defaults alone do not (a required key): the contract suite uses them
    example: ClassVar[tuple[str, ...]] = ()
    # consumer.ranks > 1: how each rank gets its share of the data, as the family's users split it; None: not supported.
    # The worker hands every family a per-rank DatasetManifest (manifest.shard); families that shard themselves
    # (DistributedSampler, Dataset.shard) read its ``whole`` and ``rank`` instead.
    rank_sharding: ClassVar[str | None] = None

    def __init__(self, conf, batch, dataset, seed: int, workdir=None, augment=None):
        """Build the pipeline.

        Args:
            conf: this family's config, an instance of its ``schema``.
            batch: the :class:`~harness.config.schema.BatchConf` every family obeys.
            dataset: the :class:`~harness.data.manifest.DatasetManifest`, or ``None``.
            seed: trial seed for shuffles and random ops.
            workdir: a folder of the trial's own for scratch files (file caches), or ``None``.
            augment: the validated :class:`~harness.augment.spec.Spec` to run inside the
                loader, or ``None``. With one, images are decoded at their stored size and
                the pipeline (which ends at the batch's size) replaces the plain resize.
        """
        self.conf, self.batch, self.dataset, self.seed, self.workdir = conf, batch, dataset, seed, workdir
        self.augment = augment if augment is not None and augment.active else None
        self._pipeline = None

    @property
    def draw_seed(self) -> int:
        """The seed of random draws (augmentation): the trial's, offset by the rank's under data-parallel ranks.

        Ranks share ``seed`` for what must agree (a DistributedSampler's permutation) but draw
        their own augmentations, as training stacks seed them (accelerate's
        ``set_seed(device_specific=True)``, Lightning's worker seeds, timm: seed + rank); the
        offset is a multiple of 1000, so no rank draws what another repeat drew (repeats add 1).
        """
        rank = getattr(self.dataset, "rank", None)
        return self.seed if rank is None else self.seed + RANK_SEED_STRIDE * rank[0]

    def pipeline(self):
        """The augment pipeline built in its library (once), or ``None``."""
        if self.augment is not None and self._pipeline is None:
            from harness.augment.pipeline import build

            self._pipeline = build(self.augment, self.draw_seed)
        return self._pipeline

    def augment_preview(self, images):
        """Run the trial's pipeline on decoded uint8 HWC images, as the loader runs it (sample grids)."""
        pipeline = self.pipeline()
        return None if pipeline is None else [pipeline.apply_numpy(image) for image in images]

    knobs: ClassVar[Knobs] = Knobs()

    @classmethod
    def alone(cls, conf, cores: int) -> list[str]:
        """Overrides that run this family's chain at its most parallel on ``cores`` CPUs, for the CPU ceiling's run alone.

        The parallel knob at the framework's own choice or one lane per core, prefetch left to the
        framework where it chooses parallelism too, workers kept across epochs; a family whose
        knobs have limits of their own (WebDataset's workers and shards) overrides this.
        """
        k, out = cls.knobs, []
        if k.parallel is not None:
            out.append(f"{k.parallel}={k.parallel_auto or max(1, cores)}")
        if k.prefetch is not None and k.parallel_auto is not None:
            out.append(f"{k.prefetch}={k.parallel_auto}")
        if k.persistent is not None:
            out.append(f"{k.persistent}=true")
        return out

    @classmethod
    def needs(cls, conf) -> Needs:
        return Needs()

    @classmethod
    def check(cls, conf) -> None:
        """Raise :class:`~harness.errors.ConfigError` for values that make no sense."""

    @classmethod
    def check_batch(cls, conf, batch) -> None:
        """Raise :class:`ConfigError` for loader settings that cannot give the batch's dtype or layout."""

    @classmethod
    def check_ranks(cls, conf, ranks: int) -> None:
        """Raise :class:`ConfigError` for loader settings that cannot be split between ``ranks`` data-parallel ranks."""

    @classmethod
    def check_augment(cls, conf, spec) -> None:
        """Raise :class:`ConfigError` for loader settings that clash with the augment pipeline
        (``spec``: the parsed :class:`~harness.augment.spec.Spec`, or ``None`` without one)."""

    @abc.abstractmethod
    def epoch(self, index: int) -> Iterator[Batch]:
        """Yield the batches of epoch ``index``."""

    # Families with one iterator that runs across epochs (trial.epoch_mode=continuous) set this
    # and override stream(); the others say what comes closest.
    continuous: bool = False
    continuous_hint: str = "it builds a fresh iterator per epoch"

    def stream(self) -> Iterator[tuple[int, Batch | None]]:
        """One iterator across epochs: ``(epoch, batch)``, and ``(epoch, None)`` when an epoch ends."""
        raise ConfigError(f"trial.epoch_mode=continuous: loader={self.name} has no repeating iterator ({self.continuous_hint})")

    def describe(self) -> dict:
        """What was actually built (framework objects' settings), for result.json."""
        return {}

    def random_ops(self) -> bool:
        """Whether the pipeline changes a sample's pixels at random (augmentation)."""
        return self.augment is not None and self.augment.random()

    def reference_pixels(self, path: str):
        """The deterministic part of this family's pipeline (decode, resize, dtype) applied to one file.

        Returns:
            A numpy array shaped like one sample of a batch, or ``None`` if not applicable.
        """
        if self.augment is not None:
            return None  # the pipeline decides the pixels: see result.json's augment.output
        from harness.loaders.images import finish, load_pil

        return finish(load_pil(path, self.batch)[None], self.batch)[0]

    def expected_ids(self) -> list[str] | None:
        """The sample ids one full epoch should deliver (the dataset's filenames by default)."""
        if self.dataset is None:
            return None
        return self.dataset.columns()[2]

    def close(self) -> None:
        """Release workers, threads and files."""


def register_loader(cls: type[Loader]) -> type[Loader]:
    """Class decorator: make ``cls`` available as ``loader=<cls.name>``, typed by ``cls.schema``.

    A family that breaks the rules is a bug in its module, so it fails loudly (``TypeError``)
    at import, which :func:`discover` does for every family.
    """
    schema = getattr(cls, "schema", None)
    if not (isinstance(schema, type) and dataclasses.is_dataclass(schema) and issubclass(schema, LoaderConf)):
        raise TypeError(f"loader family {cls.__qualname__}: set schema = <a LoaderConf dataclass> (its config schema)")
    if schema.name != cls.name:  # the YAML never sets name: the schema's default is what the typed node says
        raise TypeError(f"loader family {cls.__qualname__}: {schema.__qualname__}.name defaults to {schema.name!r}, not {cls.name!r}")
    known = _REGISTRY.get(cls.name)
    where = f"{cls.__module__}.{cls.__qualname__}"
    if known is not None and f"{known.__module__}.{known.__qualname__}" != where:  # the same class again: a module reloaded
        raise TypeError(f"loader={cls.name} is registered twice: {known.__module__}.{known.__qualname__} and {where}")
    _REGISTRY[cls.name] = cls
    return cls


def discover() -> None:
    """Import every module of this package whose name does not start with ``_``, once.

    Family modules register themselves as they are imported; they import their frameworks
    lazily, so importing them all is cheap. Everything that needs the families (the loader
    registry below, and the loader schemas that config composition types nodes with) goes
    through here, so a new family module needs no list to be added to.
    """
    global _discovered
    if _discovered:
        return
    package = importlib.import_module(__package__ or "harness.loaders")
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    _discovered = True


def list_loaders() -> list[str]:
    discover()
    return sorted(_REGISTRY)


def get_loader(name: str) -> type[Loader]:
    discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise HarnessError(f"loader={name}: unknown loader; choose one of: {', '.join(sorted(_REGISTRY))}") from None


def loader_schemas() -> dict[str, type]:
    """Each family's config schema by its name (``schema/loader/<name>`` in Hydra's ConfigStore)."""
    discover()
    return {name: _REGISTRY[name].schema for name in sorted(_REGISTRY)}
