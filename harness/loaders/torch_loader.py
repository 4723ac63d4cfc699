"""PyTorch ``Dataset`` + ``DataLoader`` with the knobs seeds 003/004 list.

Map-style (``__getitem__``/``__len__``) or iterable-style (sharded per worker), decoded
by any of :mod:`harness.loaders.decode`'s decoders (PIL, PIL's draft mode, OpenCV,
simplejpeg, ``torchvision.io``); ``num_workers``, ``pin_memory``, ``persistent_workers``,
``prefetch_factor``, ``shuffle`` (RandomSampler), ``drop_last``, ``collate_fn`` and the
worker start method. The DataLoader is built once and iterated once per epoch, so worker
start-up shows at every epoch start unless workers persist.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from harness.config.schema import choice
from harness.config.validate import check_positive
from harness.errors import ConfigError, require
from harness.loaders.base import Batch, Knobs, Loader, LoaderConf, Needs, register_loader
from harness.loaders.decode import ARRAY_DECODERS, Decoder, ImageDecoder


class TorchDatasetStyle(Enum):
    map = "map"  # torch.utils.data.Dataset with __getitem__ / __len__
    iterable = "iterable"  # torch.utils.data.IterableDataset, sharded across workers


class Collate(Enum):
    default = "default"  # torch's default_collate
    numpy_stack = "numpy_stack"  # a collate_fn that stacks numpy arrays, then one torch.from_numpy


class StartMethod(Enum):
    default = "default"  # the platform default (fork on Linux)
    fork = "fork"
    spawn = "spawn"
    forkserver = "forkserver"


@dataclass
class TorchLoaderConf(LoaderConf):
    """PyTorch Dataset + DataLoader with every knob seeds 003/004 list."""

    name: str = "torch"
    style: TorchDatasetStyle = TorchDatasetStyle.map  # map-style or iterable-style dataset
    decoder: Decoder = Decoder.pil  # pil, pil_draft, opencv, simplejpeg, torchvision or nvjpeg (GPU) (harness/loaders/decode.py)
    fastdct: bool = False  # decoder=simplejpeg: libjpeg-turbo's fast integer DCT (less exact)
    fastupsample: bool = False  # decoder=simplejpeg: fast chroma upsampling (less exact)
    num_workers: int = 0  # DataLoader worker processes; 0 loads in the consumer's process
    pin_memory: bool = False  # page-locked batches, for fast non_blocking copies to CUDA
    persistent_workers: bool = False  # keep workers alive between epochs
    prefetch_factor: int | None = None  # batches loaded ahead per worker; null: torch's default (2)
    shuffle: bool = False  # RandomSampler instead of SequentialSampler (map style)
    drop_last: bool = True  # drop the last partial batch
    collate: Collate = Collate.default  # default_collate or a numpy stacking collate_fn
    start_method: StartMethod = StartMethod.default  # worker start method (multiprocessing_context)
    worker_threads: int = 1  # torch.set_num_threads inside each worker (torch's own default is 1 too)


@register_loader
class TorchLoader(Loader):
    name = "torch"
    schema = TorchLoaderConf
    rank_sharding = "DistributedSampler(num_replicas=ranks, rank=rank, drop_last=True), set_epoch every epoch"
    knobs = Knobs(
        parallel="loader.num_workers",
        persistent="loader.persistent_workers",
        pin_memory="loader.pin_memory",
        decoder="loader.decoder",
        decoders=(*ARRAY_DECODERS, "torchvision"),
        gpu_decoders=("nvjpeg",),
    )
    continuous_hint = "it starts a DataLoader iterator per epoch; loader.persistent_workers=true keeps the workers across epochs"

    @classmethod
    def needs(cls, conf) -> Needs:
        return Needs(framework=("torch", "torch"))

    @classmethod
    def check(cls, conf) -> None:
        check_positive("loader.num_workers", conf.num_workers, allow_zero=True)
        check_positive("loader.prefetch_factor", conf.prefetch_factor, optional=True)
        check_positive("loader.worker_threads", conf.worker_threads)
        needs_workers = {
            "persistent_workers": conf.persistent_workers,
            "prefetch_factor": conf.prefetch_factor is not None,
            "start_method": choice(conf.start_method) != "default",
        }
        for key, used in needs_workers.items():
            if used and conf.num_workers == 0:
                raise ConfigError(f"loader.{key} needs loader.num_workers > 0 (DataLoader refuses it otherwise)")
        if choice(conf.style) == "iterable" and conf.shuffle:
            raise ConfigError("loader.shuffle=true needs loader.style=map (an IterableDataset has no sampler)")
        ImageDecoder.of(conf).check()

    @classmethod
    def check_augment(cls, conf, spec) -> None:
        ImageDecoder.of(conf).check(augment=spec is not None and spec.active)
        if choice(conf.decoder) == "nvjpeg" and choice(conf.collate) == "numpy_stack":
            raise ConfigError(
                "loader.decoder=nvjpeg hands the files' bytes to the GPU: loader.collate=numpy_stack has no images to stack; drop it"
            )

    def __init__(self, conf, batch, dataset, seed: int, workdir=None, augment=None):
        super().__init__(conf, batch, dataset, seed, workdir, augment)
        torch = require("torch", what="loader=torch", extra="torch")
        self.decoder = ImageDecoder.of(conf)
        self.decoder.require(what="loader=torch")
        from harness.loaders import _torch_impl as impl

        self.torch = torch
        self.decode_device = "cuda"  # decoder=nvjpeg: where batches are decoded (tests decode on the CPU by the same path)
        # a data-parallel rank reads the whole file list through a DistributedSampler, as DDP scripts do; an
        # IterableDataset has no sampler, so it iterates the rank's slice of the list
        self.rank = dataset.rank if choice(conf.style) == "map" else None
        paths, labels, self.names = (dataset.unsharded if self.rank is not None else dataset).columns()
        if self.augment is not None:
            torch.manual_seed(self.draw_seed)  # the pipeline's draws when num_workers=0 (workers get seeds from the generator)
        if self.decoder.name == "nvjpeg" and dataset.image_format() != "jpeg":
            raise ConfigError(
                f"loader.decoder=nvjpeg decodes JPEG only, and {dataset.images_dir} holds other files; use loader.decoder=torchvision"
            )
        decode = impl.Decode(batch, self.decoder, as_numpy=choice(conf.collate) == "numpy_stack", augment=self.augment)
        style = impl.FilesIterable if choice(conf.style) == "iterable" else impl.FilesDataset
        self.data = style(paths, labels, decode)
        self.loader = self._dataloader(impl)

    def _dataloader(self, impl):
        torch, c = self.torch, self.conf
        kwargs = dict(batch_size=self.batch.size, num_workers=c.num_workers, pin_memory=c.pin_memory, drop_last=c.drop_last)
        if self.rank is not None:  # shuffle and seed go to the sampler: every rank draws the same permutation
            rank, ranks = self.rank
            kwargs["sampler"] = torch.utils.data.DistributedSampler(
                self.data, num_replicas=ranks, rank=rank, shuffle=c.shuffle, seed=self.seed, drop_last=True
            )
            kwargs["generator"] = torch.Generator().manual_seed(self.draw_seed)  # the workers' seeds: the rank's own draws
        elif choice(c.style) == "map":
            kwargs["shuffle"] = c.shuffle
            kwargs["generator"] = torch.Generator().manual_seed(self.seed)
        if c.num_workers > 0:
            kwargs["persistent_workers"] = c.persistent_workers
            kwargs["worker_init_fn"] = functools.partial(impl.set_worker_threads, c.worker_threads)
            if c.prefetch_factor is not None:
                kwargs["prefetch_factor"] = c.prefetch_factor
            if choice(c.start_method) != "default":
                kwargs["multiprocessing_context"] = choice(c.start_method)
        if choice(c.collate) == "numpy_stack":
            kwargs["collate_fn"] = impl.numpy_stack
        if self.decoder.name == "nvjpeg":
            kwargs["collate_fn"] = impl.bytes_collate
        return torch.utils.data.DataLoader(self.data, **kwargs)

    def epoch(self, index: int) -> Iterator[Batch]:
        if self.rank is not None:
            self.loader.sampler.set_epoch(index)  # without it every epoch repeats the first one's order
        for images, labels, indices in self.loader:
            if self.decoder.name == "nvjpeg":  # bytes from the workers: decoded and resized on the GPU, where they stay
                from harness.loaders._torch_impl import gpu_decode

                images = gpu_decode(images, self.batch, self.decode_device)
            if choice(self.batch.dtype) != "uint8":
                images = images.to(getattr(self.torch, choice(self.batch.dtype)))
            self.pinned = images.is_pinned() if self.conf.pin_memory and not images.is_cuda else False
            yield Batch(images=images, labels=labels, ids=[self.names[i] for i in indices.tolist()])

    def expected_ids(self) -> list[str] | None:
        # a shuffled DistributedSampler gives each rank a different share every epoch: only duplicates are checked then
        return None if self.rank is not None and self.conf.shuffle else super().expected_ids()

    def reference_pixels(self, path: str):
        if self.augment is not None:
            return None
        if self.decoder.name == "nvjpeg":  # the workers hand over bytes: one file through the batch's own decode instead
            array = self.decoder(path, self.batch)
            return (array.transpose(2, 0, 1) if choice(self.batch.layout) == "nchw" else array).astype(choice(self.batch.dtype))
        image = self.data.decode(path)
        array = image if not hasattr(image, "numpy") else image.numpy()
        return array.astype(choice(self.batch.dtype))

    def close(self) -> None:
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()

    def describe(self) -> dict:
        loader = self.loader
        context = loader.multiprocessing_context
        b = self.batch
        decode = self.decoder.chain(self.dataset.image_format(), self.augment)
        collate = getattr(loader.collate_fn, "__name__", str(loader.collate_fn))
        return {
            "ops": [
                f"{type(self.data).__name__}: per sample read+{decode} to {b.height}x{b.width}",
                f"DataLoader(batch_size={b.size}, num_workers={loader.num_workers}, sampler={type(loader.sampler).__name__}, "
                f"collate_fn={collate}, pin_memory={loader.pin_memory}, persistent_workers={loader.persistent_workers}, "
                f"prefetch_factor={loader.prefetch_factor})",
            ],
            "dataset": type(self.data).__name__,
            "decoder": self.decoder.name,
            "num_workers": loader.num_workers,
            "pin_memory": loader.pin_memory,
            "batches_pinned": getattr(self, "pinned", None),
            "persistent_workers": loader.persistent_workers,
            "prefetch_factor": loader.prefetch_factor,
            "sampler": type(loader.sampler).__name__,
            "drop_last": loader.drop_last,
            "collate_fn": getattr(loader.collate_fn, "__name__", str(loader.collate_fn)),
            "multiprocessing_context": context.get_start_method() if context is not None else "default",
            "worker_threads": self.conf.worker_threads if loader.num_workers else None,
            "torch": self.torch.__version__,
        }
