"""WebDataset: tar shards streamed through a torch DataLoader's workers.

The chain the webdataset README builds: ``WebDataset(shards)`` (whole shards split across
the DataLoader's workers, optionally shuffled) -> ``.shuffle(n)`` (a sample buffer) ->
``.decode("pil"|"torchrgb")`` -> ``.to_tuple(image, cls, id)`` -> ``.map(resize to the
batch)`` -> ``.batched(size)`` in each worker, and ``DataLoader(batch_size=None)`` to run
them. The shards are written from the dataset once (:mod:`harness.data.wds`), one set per
``loader.shards``. Each worker reads whole shards, so each ends its part of an epoch
with a partial batch unless its sample count divides by the batch size: every sample is
delivered, some batches are short.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

import numpy as np

from harness.config.schema import choice
from harness.config.validate import check_positive
from harness.errors import ConfigError, HarnessError, require
from harness.loaders.base import Batch, Knobs, Loader, LoaderConf, Needs, register_loader


class WdsDecode(Enum):
    pil = "pil"  # .decode("pil"): PIL images, resized with PIL (bilinear) as loader=torch does
    torchrgb = "torchrgb"  # .decode("torchrgb"): float CHW tensors in 0..1, resized with torchvision (antialias)


@dataclass
class WebDatasetLoaderConf(LoaderConf):
    """webdataset.WebDataset over tar shards written from the dataset, behind a torch DataLoader."""

    name: str = "webdataset"
    shards: int = 4  # tar shards written from the dataset; workers split whole shards, so num_workers <= shards
    num_workers: int = 2  # DataLoader worker processes; 0 reads in the consumer's process
    shardshuffle: int = 0  # shard-order shuffle buffer in each worker, shards; 0: in order
    shuffle_buffer: int = 0  # .shuffle(n) sample buffer in each worker, samples; 0: no shuffle
    decode: WdsDecode = WdsDecode.pil  # webdataset's decoder spec


class ToBatchSample:
    """``.map``'s function: (decoded image, cls, id) -> (image at the batch's size, dtype and layout, cls, id).

    Module-level, so spawned workers can pickle it; runs in the DataLoader's workers.
    """

    def __init__(self, batch, decode: str):
        self.batch, self.decode = batch, decode
        self.nchw, self.dtype = choice(batch.layout) == "nchw", choice(batch.dtype)

    def __call__(self, sample):
        image, label, sample_id = sample
        return (self.torch_image(image) if self.decode == "torchrgb" else self.pil_image(image)), label, sample_id

    def pil_image(self, image):
        """As :func:`harness.loaders.images.load_pil` resizes (the decoder already converted to RGB or L)."""
        from PIL import Image

        array = np.array(image.resize((self.batch.width, self.batch.height), Image.Resampling.BILINEAR), dtype=np.uint8)
        array = array if array.ndim == 3 else array[..., None]
        array = array.transpose(2, 0, 1) if self.nchw else array
        return np.ascontiguousarray(array, dtype=self.dtype)

    def torch_image(self, image):
        """0..1 float CHW -> resized, back on the 0..255 scale; rounded for uint8."""
        import torch
        from torchvision.transforms.v2 import functional as F

        image = F.resize(image, [self.batch.height, self.batch.width], antialias=True) * 255
        if self.dtype == "uint8":
            image = image.round_().clamp_(0, 255).to(torch.uint8)
        return image if self.nchw else image.permute(1, 2, 0).contiguous()


@register_loader
class WebDatasetLoader(Loader):
    name = "webdataset"
    schema = WebDatasetLoaderConf
    continuous_hint = "its DataLoader starts the workers, which reopen their shards, once per epoch"
    rank_sharding = (
        "WebDataset(nodesplitter=split_by_node): rank r reads shards r, r+ranks, ... (RANK and WORLD_SIZE, as torchrun sets them)"
    )
    knobs = Knobs(parallel="loader.num_workers")

    @classmethod
    def alone(cls, conf, cores: int) -> list[str]:
        return [f"loader.num_workers={max(1, min(cores, conf.shards))}"]  # whole shards per worker: no more workers than shards

    @classmethod
    def needs(cls, conf) -> Needs:
        return Needs(framework=("webdataset", "data"), webdataset=conf.shards)

    @classmethod
    def check(cls, conf) -> None:
        check_positive("loader.shards", conf.shards)
        check_positive("loader.num_workers", conf.num_workers, allow_zero=True)
        check_positive("loader.shardshuffle", conf.shardshuffle, allow_zero=True)
        check_positive("loader.shuffle_buffer", conf.shuffle_buffer, allow_zero=True)
        if conf.num_workers > conf.shards:
            raise ConfigError(
                f"loader.num_workers={conf.num_workers} > loader.shards={conf.shards}: WebDataset hands each worker whole shards, "
                "so a worker would get none (webdataset: 'No samples found'); set loader.shards >= loader.num_workers"
            )

    @classmethod
    def check_ranks(cls, conf, ranks: int) -> None:
        if conf.shards % ranks:
            raise ConfigError(
                f"consumer.ranks={ranks}: split_by_node gives each rank whole shards, and loader.shards={conf.shards} does not "
                f"divide among {ranks} ranks; set loader.shards to a multiple of {ranks}"
            )
        if conf.num_workers > conf.shards // ranks:
            raise ConfigError(
                f"loader.num_workers={conf.num_workers} > the {conf.shards // ranks} shards of each of consumer.ranks={ranks} ranks: "
                f"a worker would get none; set loader.shards >= {conf.num_workers * ranks}"
            )

    @classmethod
    def check_batch(cls, conf, batch) -> None:
        if choice(conf.decode) == "torchrgb" and batch.channels != 3:
            raise ConfigError(f"loader.decode=torchrgb gives 3 channels; batch.channels={batch.channels} needs loader.decode=pil")

    def __init__(self, conf, batch, dataset, seed: int, workdir=None, augment=None):
        super().__init__(conf, batch, dataset, seed, workdir, augment)
        torch = require("torch", what="loader=webdataset", extra="torch")
        wds = require("webdataset", what="loader=webdataset", extra="data")
        if choice(conf.decode) == "torchrgb":
            require("torchvision", what="loader.decode=torchrgb", extra="torch")
        self.torch, self.wds = torch, wds
        self.urls = dataset.webdataset.get(conf.shards)
        if not self.urls:
            raise HarnessError(
                f"{dataset.root}: no WebDataset shards for loader.shards={conf.shards}; prepare(..., webdataset={conf.shards})"
            )
        if conf.num_workers > len(self.urls):  # a dataset smaller than loader.shards got fewer
            raise HarnessError(
                f"loader.num_workers={conf.num_workers}: the dataset has {len(self.urls)} samples, so only {len(self.urls)} shards; "
                f"set loader.num_workers <= {len(self.urls)}"
            )
        self.rank = dataset.rank
        if self.rank is not None:
            self._check_rank_steps(len(dataset.unsharded), len(self.urls), self.rank[1])
        self.spec = self._spec()
        self.to_batch = ToBatchSample(batch, choice(conf.decode))
        self.dataset_obj = self._chain()
        kwargs = {"batch_size": None, "num_workers": conf.num_workers}
        self.loader = torch.utils.data.DataLoader(self.dataset_obj, **kwargs)

    def _check_rank_steps(self, samples: int, shards: int, ranks: int) -> None:
        """Ranks in lockstep must run the same steps per epoch; whole shards of unequal sizes could give them different ones."""
        steps = rank_steps(samples, shards, ranks, self.conf.num_workers, self.batch.size)
        if len(set(steps)) > 1:
            raise HarnessError(
                f"consumer.ranks={ranks}: the ranks' shards give {', '.join(map(str, steps))} steps per epoch, and ranks in "
                f"lockstep need the same; a dataset of a multiple of {shards} samples (loader.shards) gives every shard the same"
            )

    def _spec(self) -> str:
        """The decoder spec: pil (RGB) or pill (L) for one channel; torchrgb."""
        if choice(self.conf.decode) == "torchrgb":
            return "torchrgb"
        return "pil" if self.batch.channels == 3 else "pill"

    def _chain(self):
        from harness.data.wds import IMAGE_FIELDS

        c = self.conf
        # a rank's URLs: split_by_node reads RANK / WORLD_SIZE in each DataLoader worker (the rank's process set them)
        split = {"nodesplitter": self.wds.split_by_node} if self.rank is not None else {}
        dataset = self.wds.WebDataset(self.urls, shardshuffle=c.shardshuffle or False, seed=self.seed, **split)
        if c.shuffle_buffer:
            dataset = dataset.shuffle(c.shuffle_buffer)
        dataset = dataset.decode(self.spec).to_tuple(IMAGE_FIELDS, "cls", "path.txt").map(self.to_batch)
        return dataset.batched(self.batch.size, partial=True)

    def epoch(self, index: int) -> Iterator[Batch]:
        for images, labels, ids in self.loader:
            yield Batch(images=images, labels=labels, ids=list(ids))

    def expected_ids(self) -> list[str] | None:
        if self.rank is None:
            return super().expected_ids()
        # rank r's shards r, r+ranks, ... hold samples r, r+ranks, ... of the whole (shards are written round-robin),
        # the last one included: shards are split whole, so no remainder is dropped as a sampler drops it
        rank, ranks = self.rank
        return [sample.filename for sample in self.dataset.unsharded.samples[rank::ranks]]

    def reference_pixels(self, path: str):
        """The decoder and map this family runs, applied to the file's bytes."""
        from pathlib import Path

        ext = Path(path).suffix.lower().lstrip(".")
        image = self.wds.autodecode.ImageHandler(self.spec)(f"x.{ext}", Path(path).read_bytes())
        out = self.to_batch((image, 0, ""))[0]
        return out.numpy() if hasattr(out, "numpy") else out

    def close(self) -> None:
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()

    def describe(self) -> dict:
        c, b = self.conf, self.batch
        resize = "torchvision v2.resize(antialias)*255" if self.spec == "torchrgb" else "PIL resize(bilinear)"
        last = f"to {choice(b.dtype)} {choice(b.layout).upper()}" + (
            " (round+clamp)" if self.spec == "torchrgb" and choice(b.dtype) == "uint8" else ""
        )
        node = "" if self.rank is None else f"nodesplitter=split_by_node (rank {self.rank[0]} of {self.rank[1]}), "
        ops = [
            f"WebDataset({len(self.urls)} tar shards, shardshuffle={c.shardshuffle or False}, {node}workersplitter=split_by_worker)",
            *([f"shuffle({c.shuffle_buffer})"] if c.shuffle_buffer else []),
            f'decode("{self.spec}")',
            "to_tuple(jpg;jpeg;png, cls, path.txt)",
            f"map({resize} to {b.height}x{b.width}, {last})",
            f"batched({b.size}, partial=True)",
            f"DataLoader(batch_size=None, num_workers={self.loader.num_workers})",
        ]
        return {
            "ops": ops,
            "shards": len(self.urls),
            "num_workers": self.loader.num_workers,
            "shardshuffle": c.shardshuffle or False,
            "shuffle_buffer": c.shuffle_buffer,
            "decode": self.spec,
            "webdataset": getattr(self.wds, "__version__", None),
            "torch": self.torch.__version__,
        }


def rank_steps(samples: int, shards: int, ranks: int, workers: int, batch: int) -> list[int]:
    """Each rank's steps per epoch: its shards (r, r+ranks, ...) split among its workers, each batching its own with a partial last.

    The shards are written round-robin (:mod:`harness.data.wds`), so shard j holds
    ``samples // shards`` samples, one more where ``j < samples % shards``.
    """
    counts = [samples // shards + (1 if j < samples % shards else 0) for j in range(shards)]
    per_worker = max(workers, 1)
    steps = []
    for rank in range(ranks):
        mine = counts[rank::ranks]
        steps.append(sum(-(-sum(mine[w::per_worker]) // batch) for w in range(per_worker)))
    return steps
