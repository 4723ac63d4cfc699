"""Keras 3's Sequence (``keras.utils.PyDataset``), driven the way ``model.fit`` drives it.

Keras' own ``PyDatasetAdapter`` runs the dataset: with ``workers > 1`` its enqueuer fills
a queue of ``max_queue_size`` batches from threads (or processes with
``use_multiprocessing``), and it calls ``on_epoch_end`` between epochs. Its numpy
iterator is used, the backend-neutral core of what ``fit`` consumes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from harness.config.validate import check_positive
from harness.errors import require
from harness.loaders.base import Batch, Knobs, Loader, LoaderConf, Needs, register_loader
from harness.loaders.decode import ARRAY_DECODERS, ArrayDecoder, ImageDecoder
from harness.loaders.images import load_batch


@dataclass
class KerasSequenceLoaderConf(LoaderConf):
    """A keras.utils.PyDataset (Keras 3's Sequence) run as model.fit runs it (seed 002)."""

    name: str = "keras_sequence"
    workers: int = 1  # PyDataset workers; 1 = load in the consumer's thread
    use_multiprocessing: bool = False  # workers are processes instead of threads
    max_queue_size: int = 10  # batches queued ahead by the workers
    shuffle: bool = True  # on_epoch_end reshuffles the file order
    decoder: ArrayDecoder = ArrayDecoder.pil  # pil, pil_draft, opencv or simplejpeg (harness/loaders/decode.py)
    fastdct: bool = False  # decoder=simplejpeg: libjpeg-turbo's fast integer DCT (less exact)
    fastupsample: bool = False  # decoder=simplejpeg: fast chroma upsampling (less exact)


@register_loader
class KerasSequenceLoader(Loader):
    name = "keras_sequence"
    schema = KerasSequenceLoaderConf
    rank_sharding = "a per-rank slice of the file list (files rank, rank+ranks, ...)"
    knobs = Knobs(parallel="loader.workers", decoder="loader.decoder", decoders=ARRAY_DECODERS)

    @classmethod
    def needs(cls, conf) -> Needs:
        return Needs(framework=("keras", "tf"))

    @classmethod
    def check(cls, conf) -> None:
        check_positive("loader.workers", conf.workers)
        check_positive("loader.max_queue_size", conf.max_queue_size)
        ImageDecoder.of(conf).check()

    @classmethod
    def check_augment(cls, conf, spec) -> None:
        ImageDecoder.of(conf).check(augment=spec is not None and spec.active)

    def __init__(self, conf, batch, dataset, seed: int, workdir=None, augment=None):
        super().__init__(conf, batch, dataset, seed, workdir, augment)
        require("keras", what="loader=keras_sequence", extra="tf")
        self.decoder = ImageDecoder.of(conf)
        self.decoder.require(what="loader=keras_sequence")
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

        from harness.loaders._sequence_impl import FileSequence

        paths, labels, self.names = dataset.columns()
        self.sequence = FileSequence(
            paths,
            labels,
            batch,
            conf.shuffle,
            seed,
            augment=self.pipeline(),
            decode=self.decoder,
            workers=conf.workers,
            use_multiprocessing=conf.use_multiprocessing,
            max_queue_size=conf.max_queue_size,
        )
        self.adapter = PyDatasetAdapter(self.sequence, shuffle=False)

    def epoch(self, index: int) -> Iterator[Batch]:
        self.adapter.on_epoch_begin()
        try:
            for x, y, picked in self.adapter.get_numpy_iterator():
                yield Batch(images=x, labels=y, ids=[self.names[i] for i in picked])
        finally:
            self.adapter.on_epoch_end()

    def close(self) -> None:
        if self.adapter.enqueuer is not None:
            self.adapter.enqueuer.stop()

    def reference_pixels(self, path: str):
        return None if self.augment is not None else load_batch([path], self.batch, decode=self.decoder)[0]

    def describe(self) -> dict:
        s = self.sequence
        decode = self.decoder.chain(self.dataset.image_format(), self.augment)
        return {
            "ops": [
                f"PyDataset.__getitem__: batches of {self.batch.size}, {decode} per file, np.stack",
                f"PyDatasetAdapter(workers={s.workers}, use_multiprocessing={s.use_multiprocessing}, "
                f"max_queue_size={s.max_queue_size}), as model.fit drives it",
            ],
            "class": "keras.utils.PyDataset",
            "driver": "keras PyDatasetAdapter.get_numpy_iterator (model.fit's enqueuer)",
            "decoder": self.decoder.name,
            "workers": s.workers,
            "use_multiprocessing": s.use_multiprocessing,
            "max_queue_size": s.max_queue_size,
            "enqueuer": type(self.adapter.enqueuer).__name__ if self.adapter.enqueuer is not None else None,
            "batches_per_epoch": len(s),
        }
