"""A fixed tf.data pipeline that measures the machine, for ratio-mode gates.

``loader=yardstick`` reads, decodes and resizes the dataset's JPEG/PNG files in one map
with a fixed number of parallel calls, a fixed prefetch and tf.data's autotuning off. It
shares no code with ``loader=tf_data`` on purpose and is meant never to change: it does
the same kind of work on the same cores as the tf.data pipelines it stands beside, so
dividing their figures by its own from the same round (``check --ratio-to``) cancels the
machine's speed and load, while a change in the pipeline under test still shows.
Python-heavy pipelines (ImageDataGenerator, a PIL DataLoader) make poor yardsticks: on a
2-core VM their CPU time per sample moved by +-20% from process to process.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from harness.config.schema import choice
from harness.config.validate import check_positive
from harness.errors import require
from harness.loaders.base import Batch, Loader, LoaderConf, Needs, register_loader


@dataclass
class YardstickLoaderConf(LoaderConf):
    """A fixed tf.data decode pipeline that measures the machine (the gate's reference); meant never to change."""

    name: str = "yardstick"
    parallel_calls: int = 2  # map parallelism, fixed
    prefetch: int = 2  # batches prefetched, fixed


@register_loader
class YardstickLoader(Loader):
    name = "yardstick"
    schema = YardstickLoaderConf
    rank_sharding = "a per-rank slice of the file list (files rank, rank+ranks, ...)"

    @classmethod
    def needs(cls, conf) -> Needs:
        return Needs(framework=("tensorflow", "tf"))

    @classmethod
    def check(cls, conf) -> None:
        check_positive("loader.parallel_calls", conf.parallel_calls)
        check_positive("loader.prefetch", conf.prefetch)

    def __init__(self, conf, batch, dataset, seed: int, workdir=None, augment=None):
        super().__init__(conf, batch, dataset, seed, workdir, augment)
        self.tf = require("tensorflow", what="loader=yardstick", extra="tf")
        self.dataset_obj = self._build()

    def _build(self):
        tf, b = self.tf, self.batch
        paths, labels, ids = self.dataset.columns()
        decode = {"jpeg": tf.io.decode_jpeg, "png": tf.io.decode_png}.get(self.dataset.image_format() or "")

        def parse(path, label, sample_id):
            raw = tf.io.read_file(path)
            image = decode(raw, channels=b.channels) if decode else tf.io.decode_image(raw, channels=b.channels, expand_animations=False)
            image = tf.image.resize(image, [b.height, b.width])
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
            image = image if choice(b.dtype) == "uint8" else tf.cast(image, tf.float32)
            return (tf.transpose(image, [2, 0, 1]) if choice(b.layout) == "nchw" else image), label, sample_id

        ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int64), ids))
        ds = ds.map(parse, num_parallel_calls=self.conf.parallel_calls).batch(b.size, drop_remainder=True)
        options = tf.data.Options()
        options.autotune.enabled = False  # fixed parallelism, and no model thread to wait for at each epoch's end
        options.experimental_optimization.map_parallelization = False
        options.experimental_optimization.inject_prefetch = False
        return ds.prefetch(self.conf.prefetch).with_options(options)

    def epoch(self, index: int) -> Iterator[Batch]:
        for images, labels, ids in self.dataset_obj:
            yield Batch(images=images, labels=labels, ids=ids)

    def reference_pixels(self, path: str):
        return None  # a yardstick: its pixels are tf.image.resize's, as tf_data's are

    def describe(self) -> dict:
        c, b = self.conf, self.batch
        return {
            "ops": [
                f"from_tensor_slices(manifest, n={len(self.dataset)})",
                f"map(read_file+decode+resize+to_dtype, num_parallel_calls={c.parallel_calls})",
                f"batch({b.size}, drop_remainder=True)",
                f"prefetch({c.prefetch})",
                "autotune off",
            ],
            "tensorflow": self.tf.__version__,
        }
