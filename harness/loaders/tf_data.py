"""tf.data, as seeds 000 and 001 write it, with every knob a sweep can vary.

The chain::

    source   from_tensor_slices(manifest) | list_files | TFRecordDataset (+ interleave)
    parse    tfrecord only: parse_single_example (seed 001's first map)
    decode   read_file + decode_image  [+ cast to float32: cast_float]
    cache after_decode -> shuffle -> resize+to_dtype     (seed 001's order)
    or resize+to_dtype -> cache after_resize -> shuffle
    flip     random horizontal flip            (per sample, or per batch when vectorized)
    cache after_augment                        (later epochs replay epoch 1's flips)
    batch -> preprocess (mobilenet) -> prefetch, then tf.data.Options

Every map takes ``num_parallel_calls`` none / N / AUTOTUNE; iterated once per epoch, as
``model.fit`` does.
"""

from __future__ import annotations

from typing import Dict, Iterator, List

from harness.config.schema import choice
from harness.config.validate import AUTOTUNE, check_positive, parse_tuning
from harness.errors import ConfigError, require
from harness.loaders.base import Batch, Loader, Needs, register_loader

FEATURES = ("image_raw", "label", "id")



@register_loader
class TfDataLoader(Loader):
    name = "tf_data"

    @classmethod
    def needs(cls, conf) -> Needs:
        tfrecord = [choice(conf.compression)] if choice(conf.source) == "tfrecord" else []
        return Needs(framework=("tensorflow", "tf"), tfrecord=tfrecord)

    @classmethod
    def check(cls, conf) -> None:
        for key in ("num_parallel_calls", "prefetch", "cycle_length", "interleave_parallel_calls"):
            parse_tuning(f"loader.{key}", getattr(conf, key))
        check_positive("loader.shuffle_buffer", conf.shuffle_buffer, allow_zero=True)
        for key in ("autotune_cpu_budget", "autotune_ram_budget", "private_threadpool_size"):
            check_positive(f"loader.{key}", getattr(conf, key), optional=True)
        if conf.preprocess not in (None, "mobilenet"):
            raise ConfigError(f"loader.preprocess={conf.preprocess}: choose null or mobilenet")
        if conf.interleave and choice(conf.source) != "tfrecord":
            raise ConfigError("loader.interleave=true needs loader.source=tfrecord (it interleaves shards)")

    @classmethod
    def check_augment(cls, conf, spec) -> None:
        if choice(conf.cache) == "none":
            return
        if spec is None and choice(conf.cache_place) == "after_augment" and not conf.random_flip:
            raise ConfigError("loader.cache_place=after_augment needs loader.random_flip=true or augment.ops "
                              "(there is no random op to follow)")
        if spec is not None and choice(conf.cache_place) == "after_resize":
            raise ConfigError("loader.cache_place=after_resize: with augment.ops the pipeline does the resizing, so the "
                              "cache goes after_decode (before the random ops) or after_augment")

    def __init__(self, conf, batch, dataset, seed: int, workdir=None, augment=None):
        super().__init__(conf, batch, dataset, seed, workdir, augment)
        if conf.preprocess == "mobilenet" and choice(batch.dtype) != "float32":
            raise ConfigError("loader.preprocess=mobilenet outputs floats in [-1, 1]; set batch.dtype=float32")
        self.tf = require("tensorflow", what="loader=tf_data", extra="tf")
        self.ops: List[str] = []
        self.dataset_obj = self._build()

    # -- helpers -------------------------------------------------------------------
    def _tuning(self, key: str, value):
        parsed = parse_tuning(key, value)
        return self.tf.data.AUTOTUNE if parsed == AUTOTUNE else parsed

    def _map(self, ds, fn, label: str):
        parallel = self._tuning("loader.num_parallel_calls", self.conf.num_parallel_calls)
        self.ops.append(f"map({label}, num_parallel_calls={self.conf.num_parallel_calls})")
        return ds.map(fn, num_parallel_calls=parallel)

    def _cache(self, ds, place: str):
        c = self.conf
        if choice(c.cache) == "none" or choice(c.cache_place) != place:
            return ds
        if choice(c.cache) == "file":
            import tempfile
            from pathlib import Path

            folder = Path(self.workdir) / "tfdata-cache" if self.workdir else Path(tempfile.mkdtemp(prefix="harness-tfcache-"))
            folder.mkdir(parents=True, exist_ok=True)
            self.ops.append(f"cache(file, {place})")
            return ds.cache(str(folder / "tfdata.cache"))
        self.ops.append(f"cache(memory, {place})")
        return ds.cache()

    def _shuffle(self, ds):
        if not self.conf.shuffle_buffer:
            return ds
        self.ops.append(f"shuffle({self.conf.shuffle_buffer})")
        return ds.shuffle(self.conf.shuffle_buffer, seed=self.seed, reshuffle_each_iteration=True)

    # -- the chain -----------------------------------------------------------------
    def _build(self):
        c, b = self.conf, self.batch
        flip = "flip" if c.random_flip else None
        ds = self._source()
        if choice(c.source) == "tfrecord":
            ds = self._map(ds, self._parse, "parse_single_example")
        ds = self._map(ds, self._decode, "decode" + ("+cast" if c.cast_float else ""))
        if self.augment is not None:  # the augment pipeline resizes: it takes the resize map's place
            tail, label = self._augment, f"augment({self.augment.library}: {self.augment.order_label()})+to_dtype"
        else:
            tail, label = self._resize, "resize+to_dtype"
        if choice(c.cache_place) == "after_decode":  # seed 001: cache, shuffle, then resize
            ds = self._shuffle(self._cache(ds, "after_decode"))
            ds = self._map(ds, tail, label)
        else:
            ds = self._map(ds, tail, label)
            ds = self._shuffle(self._cache(ds, "after_resize"))
        if flip and not c.vectorized:
            ds = self._map(ds, self._flip, "random_flip")
        if not c.vectorized:
            ds = self._cache(ds, "after_augment")
        ds = ds.batch(b.size, drop_remainder=c.drop_remainder)
        self.ops.append(f"batch({b.size}, drop_remainder={c.drop_remainder})")
        if flip and c.vectorized:
            ds = self._map(ds, self._flip, "random_flip on whole batches")
        if c.vectorized:
            ds = self._cache(ds, "after_augment")
        if c.preprocess == "mobilenet":
            ds = self._map(ds, self._mobilenet, "mobilenet.preprocess_input")
        prefetch = self._tuning("loader.prefetch", c.prefetch)
        if prefetch is not None:
            ds = ds.prefetch(prefetch)
            self.ops.append(f"prefetch({c.prefetch})")
        return ds.with_options(self._options())

    def _source(self):
        tf, c = self.tf, self.conf
        source = choice(c.source)
        if source == "tfrecord":
            return self._tfrecord_source()
        paths, labels, ids = self.dataset.columns()
        if source == "list_files":
            pattern = str(self.dataset.images_dir / "*" / "*")
            ds = tf.data.Dataset.list_files(pattern, shuffle=False)
            table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant(paths), tf.constant(labels, tf.int64)), default_value=-1
            )
            prefix = len(str(self.dataset.images_dir)) + 1
            self.ops.append(f"list_files({pattern!r})")
            return ds.map(lambda path: (tf.io.read_file(path), table.lookup(path), tf.strings.substr(path, prefix, -1)))
        self.ops.append(f"from_tensor_slices(manifest, n={len(paths)})")
        ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int64), ids))
        return ds.map(lambda path, label, sample_id: (tf.io.read_file(path), label, sample_id))

    def _tfrecord_source(self):
        tf, c = self.tf, self.conf
        compression = choice(c.compression)
        shards = self.dataset.tfrecords[compression]
        kind = "GZIP" if compression == "gzip" else ""
        if not c.interleave:
            self.ops.append(f"TFRecordDataset({len(shards)} shards, compression={compression or 'none'})")
            return tf.data.TFRecordDataset(shards, compression_type=kind)
        cycle = self._tuning("loader.cycle_length", c.cycle_length)
        parallel = self._tuning("loader.interleave_parallel_calls", c.interleave_parallel_calls)
        self.ops.append(f"interleave(TFRecordDataset, cycle_length={c.cycle_length}, num_parallel_calls={c.interleave_parallel_calls})")
        return tf.data.Dataset.from_tensor_slices(shards).interleave(
            lambda shard: tf.data.TFRecordDataset(shard, compression_type=kind),
            cycle_length=cycle, num_parallel_calls=parallel, deterministic=c.deterministic,
        )

    def _parse(self, record):
        tf = self.tf
        spec = {
            "image_raw": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64),
            "id": tf.io.FixedLenFeature([], tf.string),
        }
        parsed = tf.io.parse_single_example(record, spec)
        return parsed["image_raw"], parsed["label"], parsed["id"]

    def _decode(self, raw, label, sample_id):
        tf = self.tf
        image = tf.io.decode_image(raw, channels=self.batch.channels, expand_animations=False)
        if self.conf.cast_float:
            image = tf.cast(image, tf.float32)
        return image, label, sample_id

    def _resize(self, image, label, sample_id):
        """Resize, then convert to the batch's dtype and layout (the deterministic tail)."""
        b = self.batch
        return self._to_batch(self.tf.image.resize(image, [b.height, b.width])), label, sample_id

    def _to_batch(self, image):
        """The batch's dtype (rounding floats into uint8) and layout, for one image."""
        tf, b = self.tf, self.batch
        if choice(b.dtype) == "uint8" and image.dtype != tf.uint8:
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        elif choice(b.dtype) == "float32" and image.dtype != tf.float32:
            image = tf.cast(image, tf.float32)
        if choice(b.layout) == "nchw":
            image = tf.transpose(image, [2, 0, 1])
        return image

    def _augment(self, image, label, sample_id):
        """The augment pipeline on one decoded image, then the batch's dtype and layout."""
        tf, b = self.tf, self.batch
        pipeline = self.pipeline()
        if pipeline.library == "tf_image":
            image = pipeline.objects(image)  # traced into the map function
        else:  # albumentations inside the map through tf.numpy_function, as its docs show for tf.data
            out = tf.float32 if self.augment.output_dtype() == "float32" else tf.uint8
            image = tf.numpy_function(pipeline, [tf.cast(image, tf.uint8)], out, stateful=True)
            image.set_shape([b.height, b.width, b.channels])
        return self._to_batch(image), label, sample_id

    def _flip(self, image, label, sample_id):
        """Random horizontal flip, per sample or per image of a batch, in either layout."""
        tf = self.tf
        width_axis = -1 if choice(self.batch.layout) == "nchw" else -2
        if self.conf.vectorized:  # one coin per image of the batch
            coins = tf.random.uniform(tf.shape(image)[:1]) < 0.5
            mask = tf.reshape(coins, [-1, 1, 1, 1])
            return tf.where(mask, tf.reverse(image, [width_axis]), image), label, sample_id
        flipped = tf.cond(tf.random.uniform([]) < 0.5, lambda: tf.reverse(image, [width_axis]), lambda: image)
        return flipped, label, sample_id

    def _mobilenet(self, image, label, sample_id):
        from tensorflow.keras.applications import mobilenet

        return mobilenet.preprocess_input(image), label, sample_id

    def _options(self):
        c = self.conf
        options = self.tf.data.Options()
        if c.deterministic is not None:
            options.deterministic = c.deterministic
        opt = options.experimental_optimization
        for key in ("map_parallelization", "inject_prefetch", "map_and_batch_fusion"):
            if getattr(c, key) is not None:
                setattr(opt, key, getattr(c, key))
        if c.autotune is not None:
            options.autotune.enabled = c.autotune
        if c.autotune_cpu_budget is not None:
            options.autotune.cpu_budget = c.autotune_cpu_budget
        if c.autotune_ram_budget is not None:
            options.autotune.ram_budget = c.autotune_ram_budget
        if c.private_threadpool_size is not None:
            options.threading.private_threadpool_size = c.private_threadpool_size
        return options

    # -- the interface -------------------------------------------------------------
    def epoch(self, index: int) -> Iterator[Batch]:
        for images, labels, ids in self.dataset_obj:
            yield Batch(images=images, labels=labels, ids=ids)

    def random_ops(self) -> bool:
        return bool(self.conf.random_flip) or super().random_ops()

    def reference_pixels(self, path: str):
        if self.augment is not None:
            return None
        image, _, _ = self._decode(self.tf.io.read_file(path), 0, b"")
        return self._resize(image, 0, b"")[0].numpy()

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
                "autotune_cpu_budget": options.autotune.cpu_budget,
                "autotune_ram_budget": options.autotune.ram_budget,
                "private_threadpool_size": options.threading.private_threadpool_size,
            },
            "options_note": "null means TensorFlow's default applies",
            "tensorflow": self.tf.__version__,
        }
