"""A plain Python generator, seed 002's ``yield`` pattern.

``mode=direct``: the consumer iterates the generator itself, so loading and compute take
turns in one thread. ``mode=tf_from_generator``: the same generator behind
``tf.data.Dataset.from_generator`` with an ``output_signature`` and optional prefetch,
which moves it to a tf.data thread (still holding the GIL while Python decodes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from harness.config.schema import choice
from harness.config.validate import AUTOTUNE, parse_tuning
from harness.errors import require
from harness.loaders.base import Batch, Knobs, Loader, LoaderConf, Needs, register_loader
from harness.loaders.decode import ARRAY_DECODERS, ArrayDecoder, ImageDecoder
from harness.loaders.images import batches_of, load_batch


class GeneratorMode(Enum):
    direct = "direct"  # the consumer iterates the Python generator itself
    tf_from_generator = "tf_from_generator"  # tf.data.Dataset.from_generator(...) (seed 002)


@dataclass
class GeneratorLoaderConf(LoaderConf):
    """A plain Python generator that yields batches (seed 002's yield pattern)."""

    name: str = "generator"
    mode: GeneratorMode = GeneratorMode.direct  # iterate it directly or through Dataset.from_generator
    prefetch: Any = None  # from_generator only: prefetch none, N or autotune
    shuffle: bool = False  # shuffle the file order every epoch
    decoder: ArrayDecoder = ArrayDecoder.pil  # pil, pil_draft, opencv or simplejpeg (harness/loaders/decode.py)
    fastdct: bool = False  # decoder=simplejpeg: libjpeg-turbo's fast integer DCT (less exact)
    fastupsample: bool = False  # decoder=simplejpeg: fast chroma upsampling (less exact)


@register_loader
class GeneratorLoader(Loader):
    name = "generator"
    schema = GeneratorLoaderConf
    rank_sharding = "a per-rank slice of the file list (files rank, rank+ranks, ...)"
    knobs = Knobs(decoder="loader.decoder", decoders=ARRAY_DECODERS)

    @classmethod
    def needs(cls, conf) -> Needs:
        if choice(conf.mode) == "tf_from_generator":
            return Needs(framework=("tensorflow", "tf"))
        return Needs()

    @classmethod
    def check(cls, conf) -> None:
        parse_tuning("loader.prefetch", conf.prefetch)
        ImageDecoder.of(conf).check()

    @classmethod
    def check_augment(cls, conf, spec) -> None:
        ImageDecoder.of(conf).check(augment=spec is not None and spec.active)

    def __init__(self, conf, batch, dataset, seed: int, workdir=None, augment=None):
        super().__init__(conf, batch, dataset, seed, workdir, augment)
        self.decoder = ImageDecoder.of(conf)
        self.decoder.require(what="loader=generator")
        paths, labels, names = dataset.columns()
        self.paths, self.names = np.asarray(paths), np.asarray(names)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.rng = np.random.default_rng(seed)
        self.tf_dataset = self._wrap() if choice(conf.mode) == "tf_from_generator" else None

    def batches(self):
        """The user's generator: one epoch of (images, labels, ids) batches."""
        order = np.arange(len(self.paths))
        if self.conf.shuffle:
            self.rng.shuffle(order)
        for picked in batches_of(order, self.batch.size, drop_last=False):
            yield load_batch(self.paths[picked], self.batch, self.pipeline(), self.decoder), self.labels[picked], self.names[picked]

    def _wrap(self):
        tf = require("tensorflow", what="loader=generator mode=tf_from_generator", extra="tf")
        from harness.trial.consumer import batch_shape

        shape = (None,) + batch_shape(self.batch)[1:]
        signature = (
            tf.TensorSpec(shape=shape, dtype=choice(self.batch.dtype)),
            tf.TensorSpec(shape=(None,), dtype=tf.int64),
            tf.TensorSpec(shape=(None,), dtype=tf.string),
        )
        ds = tf.data.Dataset.from_generator(self.batches, output_signature=signature)
        prefetch = parse_tuning("loader.prefetch", self.conf.prefetch)
        if prefetch is not None:
            ds = ds.prefetch(tf.data.AUTOTUNE if prefetch == AUTOTUNE else prefetch)
        return ds

    def epoch(self, index: int) -> Iterator[Batch]:
        source = self.tf_dataset if self.tf_dataset is not None else self.batches()
        for images, labels, ids in source:
            yield Batch(images=images, labels=labels, ids=ids)

    def reference_pixels(self, path: str):
        return None if self.augment is not None else load_batch([path], self.batch, decode=self.decoder)[0]

    def describe(self) -> dict:
        decode = self.decoder.chain(self.dataset.image_format(), self.augment)
        ops = [f"python generator: batches of {self.batch.size}, serial: {decode} per file, np.stack"]
        if self.tf_dataset is not None:
            ops += ["tf.data.Dataset.from_generator"] + ([f"prefetch({self.conf.prefetch})"] if self.conf.prefetch is not None else [])
        return {"ops": ops, "mode": choice(self.conf.mode), "prefetch": self.conf.prefetch, "decoder": self.decoder.name}
