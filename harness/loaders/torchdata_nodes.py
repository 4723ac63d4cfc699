"""torchdata.nodes (0.11): a graph of nodes in place of the DataLoader.

The chain the torchdata docs build: ``SamplerWrapper`` (sequential or random indices)
-> ``ParallelMapper`` (read, decode and resize each file in threads or processes)
-> ``Batcher`` -> ``Mapper(default_collate)`` -> optional ``PinMemory`` -> ``Prefetcher``,
wrapped in a ``Loader``, which resets the graph at the start of every epoch. Files are
decoded with PIL exactly as ``loader=torch`` decodes them by default, so the two differ
only in what drives the decoding.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from harness.config.schema import choice
from harness.config.validate import check_positive
from harness.errors import ConfigError, require
from harness.loaders.base import Batch, Knobs, Loader, LoaderConf, Needs, register_loader


class MapMethod(Enum):
    thread = "thread"  # ParallelMapper workers are threads (PIL releases the GIL while it decodes)
    process = "process"  # worker processes (the platform's default start method)


@dataclass
class TorchdataNodesLoaderConf(LoaderConf):
    """torchdata.nodes: SamplerWrapper -> ParallelMapper -> Batcher -> collate -> PinMemory -> Prefetcher."""

    name: str = "torchdata_nodes"
    num_workers: int = 2  # ParallelMapper workers; 0 maps inline in the consumer's thread
    method: MapMethod = MapMethod.thread  # ParallelMapper workers: threads or processes
    in_order: bool = True  # deliver samples in sampler order (false: as they finish)
    pin_memory: bool = False  # PinMemory node (pins for the current CUDA device; left out without one)
    prefetch_factor: int = 2  # batches the Prefetcher holds ready; 0: no Prefetcher
    shuffle: bool = False  # RandomSampler instead of SequentialSampler
    drop_last: bool = True  # Batcher drops the last partial batch


class _Sample:
    """ParallelMapper's map_fn: index -> (uint8 image in the batch's layout, label, index).

    Module-level, so worker processes can pickle it; numpy out, which default_collate stacks into tensors.
    """

    def __init__(self, paths, labels, batch):
        self.paths, self.labels, self.batch = list(paths), list(labels), batch
        self.nchw = choice(batch.layout) == "nchw"

    def __call__(self, index: int):
        from harness.loaders.images import load_pil

        array = load_pil(self.paths[index], self.batch)
        return (array.transpose(2, 0, 1).copy() if self.nchw else array), self.labels[index], index


@register_loader
class TorchdataNodesLoader(Loader):
    name = "torchdata_nodes"
    schema = TorchdataNodesLoaderConf
    continuous_hint = "its Loader resets the node graph once per epoch"
    rank_sharding = "SamplerWrapper(DistributedSampler(num_replicas=ranks, rank=rank, drop_last=True)), its epoch set on every reset"
    knobs = Knobs(parallel="loader.num_workers", prefetch="loader.prefetch_factor", pin_memory="loader.pin_memory")

    @classmethod
    def needs(cls, conf) -> Needs:
        return Needs(framework=("torchdata", "data"))

    @classmethod
    def check(cls, conf) -> None:
        check_positive("loader.num_workers", conf.num_workers, allow_zero=True)
        check_positive("loader.prefetch_factor", conf.prefetch_factor, allow_zero=True)
        if choice(conf.method) == "process" and conf.num_workers == 0:
            raise ConfigError("loader.method=process needs loader.num_workers > 0 (0 maps inline, in no process)")

    def __init__(self, conf, batch, dataset, seed: int, workdir=None, augment=None):
        super().__init__(conf, batch, dataset, seed, workdir, augment)
        torch = require("torch", what="loader=torchdata_nodes", extra="torch")
        require("torchdata.nodes", what="loader=torchdata_nodes", extra="data")
        self.torch = torch
        # a data-parallel rank samples the whole file list through a DistributedSampler, as the torchdata docs' DDP example
        self.rank = dataset.rank
        paths, labels, self.names = dataset.unsharded.columns()
        self.nodes: dict = {}  # the graph's nodes by their torchdata.nodes name, source first
        self.pinning = conf.pin_memory and torch.cuda.is_available()
        self.loader = self._graph(_Sample(paths, labels, batch), len(paths))

    def _graph(self, sample: _Sample, count: int):
        import torchdata.nodes as tn
        from torch.utils.data import RandomSampler, SequentialSampler, default_collate

        c = self.conf
        if self.rank is not None:  # SamplerWrapper calls its set_epoch on every reset: a new shared permutation per epoch
            rank, ranks = self.rank
            sampler = self.torch.utils.data.DistributedSampler(
                range(count), num_replicas=ranks, rank=rank, shuffle=c.shuffle, seed=self.seed, drop_last=True
            )
        elif c.shuffle:
            sampler = RandomSampler(range(count), generator=self.torch.Generator().manual_seed(self.seed))
        else:
            sampler = SequentialSampler(range(count))
        node = self._add("SamplerWrapper", tn.SamplerWrapper(sampler))
        node = self._add(
            "ParallelMapper",
            tn.ParallelMapper(node, map_fn=sample, num_workers=c.num_workers, in_order=c.in_order, method=choice(c.method)),
        )
        node = self._add("Batcher", tn.Batcher(node, batch_size=self.batch.size, drop_last=c.drop_last))
        node = self._add("Mapper", tn.Mapper(node, default_collate))  # a ParallelMapper with no workers
        if self.pinning:
            node = self._add("PinMemory", tn.PinMemory(node))
        if c.prefetch_factor:
            node = self._add("Prefetcher", tn.Prefetcher(node, prefetch_factor=c.prefetch_factor))
        return tn.Loader(node)

    def _add(self, name: str, node):
        self.nodes[name] = node
        return node

    def epoch(self, index: int) -> Iterator[Batch]:
        dtype = choice(self.batch.dtype)
        for images, labels, indices in self.loader:  # iter() resets the graph: a new epoch
            if dtype != "uint8":
                images = images.to(getattr(self.torch, dtype))
            yield Batch(images=images, labels=labels, ids=[self.names[i] for i in indices.tolist()])

    def expected_ids(self) -> list[str] | None:
        # a shuffled DistributedSampler gives each rank a different share every epoch: only duplicates are checked then
        return None if self.rank is not None and self.conf.shuffle else super().expected_ids()

    def close(self) -> None:
        # each node runs its threads or processes in an iterator object (node._it, sometimes one
        # more _it down) with a _shutdown(); a trial cut short mid-epoch leaves them running
        for node in reversed(self.nodes.values()):
            it = getattr(node, "_it", None)
            while it is not None:
                if hasattr(it, "_shutdown"):
                    it._shutdown()
                it = getattr(it, "_it", None)

    def describe(self) -> dict:
        c, b = self.conf, self.batch
        sampler, mapper, batcher = self.nodes["SamplerWrapper"], self.nodes["ParallelMapper"], self.nodes["Batcher"]
        decode = "PIL open+convert+resize(bilinear)" + ("+transpose(CHW)" if choice(b.layout) == "nchw" else "")
        ops = [
            f"SamplerWrapper({type(sampler.sampler).__name__}, n={len(self.names)}"
            + (f", rank={self.rank[0]} of {self.rank[1]})" if self.rank is not None else ")"),
            f"ParallelMapper(read+{decode} to {b.height}x{b.width}, num_workers={mapper.num_workers}, "
            f"method={mapper.method}, in_order={mapper.in_order})",
            f"Batcher(batch_size={batcher.batch_size}, drop_last={batcher.drop_last})",
            "Mapper(default_collate)",
            "PinMemory()" if self.pinning else f"PinMemory: {'left out (no CUDA device to pin for)' if c.pin_memory else 'off'}",
            f"Prefetcher(prefetch_factor={c.prefetch_factor})" if c.prefetch_factor else "Prefetcher: off",
            "Loader: iter() resets the graph per epoch"
            + (f"; then .to({choice(b.dtype)}) per batch" if choice(b.dtype) != "uint8" else ""),
        ]
        import torchdata

        return {
            "ops": ops,
            "nodes": list(self.nodes),
            "num_workers": mapper.num_workers,
            "method": mapper.method,
            "in_order": mapper.in_order,
            "pin_memory": self.pinning,
            "prefetch_factor": c.prefetch_factor or None,
            "sampler": type(sampler.sampler).__name__,
            "drop_last": batcher.drop_last,
            "torchdata": torchdata.__version__,
            "torch": self.torch.__version__,
        }
