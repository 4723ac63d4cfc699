"""Grain's dataset API: ``MapDataset`` transformations, read by threads and worker processes.

The chain grain's docs build: ``MapDataset.source(files)`` -> ``.shuffle(seed)`` ->
``.map(decode)`` -> ``.batch(size)`` -> ``.repeat()`` (a new permutation every epoch,
which grain derives from the seed and the epoch) -> ``.to_iter_dataset(ReadOptions)``
(threads that read ahead) -> ``.mp_prefetch(MultiprocessingOptions)`` (worker processes,
each on its slice of the batches). Per epoch, the iterator reads that epoch's slice of
batches and its workers start again; with ``trial.epoch_mode=continuous``, one iterator
runs over the repeated dataset and the workers start once, as a training loop that
counts steps uses it.

Grain starts its workers with ``spawn``: each one imports the trial's main module again,
``harness.trial.worker``, whose ``__main__`` guard keeps it from running a trial.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from harness.config.schema import choice
from harness.config.validate import check_positive
from harness.errors import HarnessError, require
from harness.loaders.base import Batch, Knobs, Loader, LoaderConf, Needs, register_loader


@dataclass
class GrainLoaderConf(LoaderConf):
    """grain.MapDataset -> to_iter_dataset(ReadOptions) -> mp_prefetch(MultiprocessingOptions)."""

    name: str = "grain"
    worker_count: int = 0  # mp_prefetch worker processes (MultiprocessingOptions.num_workers); 0, grain's default: none
    worker_buffer_size: int = 1  # batches each worker holds ready (MultiprocessingOptions.per_worker_buffer_size)
    read_threads: int = 16  # ReadOptions.num_threads: threads reading ahead (in each worker, or here); grain's default
    read_buffer_size: int = 500  # ReadOptions.prefetch_buffer_size: elements read ahead; grain's default
    shuffle: bool = False  # MapDataset.shuffle: a global permutation, a new one every epoch
    seed: int | None = None  # the shuffle's seed; null: the trial's seed


class DecodeRecord:
    """``.map``'s function: (path, label, index) -> (image at the batch's size, dtype and layout, label, index).

    Module-level, so grain can pickle it into its spawned workers.
    """

    def __init__(self, batch):
        self.batch = batch

    def __call__(self, record):
        from harness.loaders.images import finish, load_pil

        path, label, index = record
        return finish(load_pil(path, self.batch)[None], self.batch)[0], label, index


@register_loader
class GrainLoader(Loader):
    name = "grain"
    schema = GrainLoaderConf
    continuous = True
    knobs = Knobs(parallel="loader.worker_count", continuous=True)
    rank_sharding = "MapDataset.source(all files)[rank:end:ranks], as grain's docs shard per process, then shuffle"

    @classmethod
    def needs(cls, conf) -> Needs:
        return Needs(framework=("grain", "data"))

    @classmethod
    def check(cls, conf) -> None:
        check_positive("loader.worker_count", conf.worker_count, allow_zero=True)
        check_positive("loader.worker_buffer_size", conf.worker_buffer_size)
        check_positive("loader.read_threads", conf.read_threads)
        check_positive("loader.read_buffer_size", conf.read_buffer_size)

    def __init__(self, conf, batch, dataset, seed: int, workdir=None, augment=None):
        super().__init__(conf, batch, dataset, seed, workdir, augment)
        self.grain = require("grain", what="loader=grain", extra="data")
        # a data-parallel rank slices the whole file list itself (the remainder dropped: equal steps per rank)
        self.rank = dataset.rank
        paths, labels, self.names = dataset.unsharded.columns()
        self.shuffle_seed = conf.seed if conf.seed is not None else seed
        self.per_epoch = -(-len(dataset) // batch.size)  # batches; the last may be partial
        self.ops: list[str] = []
        self.repeated = self._chain(list(zip(paths, labels, range(len(paths)))))
        self.iterator = None  # the running one, closed in close()

    def _chain(self, records):
        grain, c = self.grain, self.conf
        ds = grain.MapDataset.source(records)
        self.ops.append(f"MapDataset.source({len(records)} files)")
        if self.rank is not None:
            rank, ranks = self.rank
            end = ranks * (len(records) // ranks)
            ds = ds[rank:end:ranks]
            self.ops.append(f"[{rank}:{end}:{ranks}] (rank {rank} of {ranks}: {len(ds)} files)")
        if c.shuffle:
            ds = ds.shuffle(seed=self.shuffle_seed)
            self.ops.append(f"shuffle(seed={self.shuffle_seed})")
        ds = ds.map(DecodeRecord(self.batch)).batch(self.batch.size)
        b = self.batch
        self.ops += [
            f"map(PIL open+convert+resize(bilinear) to {b.height}x{b.width}, {choice(b.dtype)} {choice(b.layout).upper()})",
            f"batch({b.size}, drop_remainder=False)",
            "repeat()",
        ]
        return ds.repeat()

    def _iter_dataset(self, ds):
        grain, c = self.grain, self.conf
        read = grain.ReadOptions(num_threads=c.read_threads, prefetch_buffer_size=c.read_buffer_size)
        ds = ds.to_iter_dataset(read)
        if c.worker_count:
            ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=c.worker_count, per_worker_buffer_size=c.worker_buffer_size))
        return ds

    def _batches(self, ds) -> Iterator[Batch]:
        self.iterator = iterator = iter(self._iter_dataset(ds))
        try:
            for images, labels, indices in iterator:
                yield Batch(images=images, labels=labels, ids=[self.names[i] for i in indices.tolist()])
        finally:
            self._close_iterator()

    def epoch(self, index: int) -> Iterator[Batch]:
        if self.per_epoch == 0:
            raise HarnessError("the dataset is empty")
        yield from self._batches(self.repeated.slice(slice(index * self.per_epoch, (index + 1) * self.per_epoch)))

    def stream(self) -> Iterator[tuple[int, Batch | None]]:
        """``trial.epoch_mode=continuous``: one iterator over the repeated dataset; its workers start once."""
        for step, batch in enumerate(self._batches(self.repeated)):
            epoch, k = divmod(step, self.per_epoch)
            yield epoch, batch
            if k == self.per_epoch - 1:
                yield epoch, None

    def _close_iterator(self) -> None:
        iterator, self.iterator = self.iterator, None
        close = getattr(iterator, "close", None)
        if close is not None:
            close()  # stops mp_prefetch's worker processes now rather than at garbage collection

    def close(self) -> None:
        self._close_iterator()

    def describe(self) -> dict:
        c = self.conf
        ops = [
            *self.ops,
            "per epoch: slice(epoch's batches) of the repeated dataset (continuous: all of it, one iterator)",
            f"to_iter_dataset(ReadOptions(num_threads={c.read_threads}, prefetch_buffer_size={c.read_buffer_size}))",
            f"mp_prefetch(MultiprocessingOptions(num_workers={c.worker_count}, per_worker_buffer_size={c.worker_buffer_size}))"
            if c.worker_count
            else "mp_prefetch: off (worker_count=0)",
        ]
        return {
            "ops": ops,
            "worker_count": c.worker_count,
            "worker_buffer_size": c.worker_buffer_size,
            "read_threads": c.read_threads,
            "read_buffer_size": c.read_buffer_size,
            "shuffle": c.shuffle,
            "seed": self.shuffle_seed if c.shuffle else None,
            "start_method": "spawn" if c.worker_count else None,
            "grain": _version(self.grain),
        }


def _version(grain) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("grain")
    except PackageNotFoundError:
        return getattr(grain, "__version__", None)
