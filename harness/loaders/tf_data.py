"""tf.data over image files, as seed 000 writes it.

``from_tensor_slices`` of the manifest (or ``list_files`` over the class folders), an
optional ``shuffle``, a ``map`` that reads, decodes and resizes with
``num_parallel_calls`` none / N / AUTOTUNE, ``batch``, and ``prefetch`` none / N /
AUTOTUNE. Iterated once per epoch, as ``model.fit`` does.
"""

from __future__ import annotations

from typing import Dict, Iterator, List

from harness.config.validate import AUTOTUNE, check_positive, parse_tuning
from harness.errors import require
from harness.loaders.base import Batch, Loader, Needs, register_loader


def _value(enum_or_str):
    return getattr(enum_or_str, "value", enum_or_str)


@register_loader
class TfDataLoader(Loader):
    name = "tf_data"

    @classmethod
    def needs(cls, conf) -> Needs:
        return Needs(framework=("tensorflow", "tf"))

    @classmethod
    def check(cls, conf) -> None:
        parse_tuning("loader.num_parallel_calls", conf.num_parallel_calls)
        parse_tuning("loader.prefetch", conf.prefetch)
        check_positive("loader.shuffle_buffer", conf.shuffle_buffer, allow_zero=True)

    def __init__(self, conf, batch, dataset, seed: int):
        super().__init__(conf, batch, dataset, seed)
        self.tf = require("tensorflow", what="loader=tf_data", extra="tf")
        self.ops: List[str] = []
        self.dataset_obj = self._build()

    def _tuning(self, key: str, value):
        parsed = parse_tuning(key, value)
        return self.tf.data.AUTOTUNE if parsed == AUTOTUNE else parsed

    def _build(self):
        tf, conf, b = self.tf, self.conf, self.batch
        ds = self._source()
        if conf.shuffle_buffer:
            ds = ds.shuffle(conf.shuffle_buffer, seed=self.seed, reshuffle_each_iteration=True)
            self.ops.append(f"shuffle({conf.shuffle_buffer})")
        parallel = self._tuning("loader.num_parallel_calls", conf.num_parallel_calls)
        ds = ds.map(self._decode_fn(), num_parallel_calls=parallel)
        self.ops.append(f"map(read+decode+resize, num_parallel_calls={conf.num_parallel_calls})")
        ds = ds.batch(b.size, drop_remainder=conf.drop_remainder)
        self.ops.append(f"batch({b.size}, drop_remainder={conf.drop_remainder})")
        prefetch = self._tuning("loader.prefetch", conf.prefetch)
        if prefetch is not None:
            ds = ds.prefetch(prefetch)
            self.ops.append(f"prefetch({conf.prefetch})")
        return ds.with_options(self._options())

    def _source(self):
        tf = self.tf
        files = self.dataset.files()
        paths = [p for p, _ in files]
        labels = [label for _, label in files]
        ids = [s.filename for s in self.dataset.samples]
        if _value(self.conf.source) == "list_files":
            pattern = str(self.dataset.images_dir / "*" / "*")
            ds = tf.data.Dataset.list_files(pattern, shuffle=False)
            table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant(paths), tf.constant(labels, tf.int64)), default_value=-1
            )
            prefix = len(str(self.dataset.images_dir)) + 1
            ds = ds.map(lambda path: (path, table.lookup(path), tf.strings.substr(path, prefix, -1)))
            self.ops.append(f"list_files({pattern!r})")
        else:
            ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int64), ids))
            self.ops.append(f"from_tensor_slices(manifest, n={len(paths)})")
        return ds

    def _decode_fn(self):
        tf, b = self.tf, self.batch
        nchw = _value(b.layout) == "nchw"
        uint8 = _value(b.dtype) == "uint8"

        def decode(path, label, sample_id):
            image = tf.io.decode_image(tf.io.read_file(path), channels=b.channels, expand_animations=False)
            image = tf.image.resize(image, [b.height, b.width])
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8) if uint8 else image
            if nchw:
                image = tf.transpose(image, [2, 0, 1])
            return image, label, sample_id

        return decode

    def _options(self):
        options = self.tf.data.Options()
        if self.conf.deterministic is not None:
            options.deterministic = self.conf.deterministic
        if self.conf.map_parallelization is not None:
            options.experimental_optimization.map_parallelization = self.conf.map_parallelization
        if self.conf.inject_prefetch is not None:
            options.experimental_optimization.inject_prefetch = self.conf.inject_prefetch
        return options

    def epoch(self, index: int) -> Iterator[Batch]:
        for images, labels, ids in self.dataset_obj:
            yield Batch(images=images, labels=labels, ids=ids)

    def describe(self) -> Dict:
        options = self.dataset_obj.options()
        opt = options.experimental_optimization
        return {
            "ops": self.ops,
            "element_spec": str(self.dataset_obj.element_spec),
            "options": {
                "deterministic": options.deterministic,
                "map_parallelization": opt.map_parallelization,
                "inject_prefetch": opt.inject_prefetch,
                "map_and_batch_fusion": opt.map_and_batch_fusion,
                "autotune_enabled": options.autotune.enabled,
            },
            "tensorflow": self.tf.__version__,
        }
