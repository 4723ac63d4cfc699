"""tf.data, as seeds 000 and 001 write it, with every knob a sweep can vary.

The chain (``loader.chain=fused``, the default: seed 000's ``parse_file_to_img`` and the
tf.data guide put read, decode and resize in one function mapped in parallel)::

    source   from_tensor_slices(manifest) | list_files | TFRecordDataset (+ interleave)
    map      [parse_single_example +] read_file + decode_jpeg|png|image [+ cast] + resize + to_dtype
    or, with cache after_decode (seed 001's order): read+decode -> cache -> shuffle -> resize
    light    rescale (uint8 -> float32), random flip, random brightness: one map per sample,
             or after batch() on whole batches (``vectorized``, the guide's "vectorizing mapping")
    cache after_augment                        (later epochs replay epoch 1's randomness)
    batch -> preprocess (mobilenet) -> prefetch, then tf.data.Options

``loader.chain=split`` builds one map per step instead: a sequential read map, then
parallel decode and resize maps. Each map is a separate tf.data stage with its own
buffers and thread hand-offs, which costs about 10% at one core and, on two cores, lets
AUTOTUNE settle in one of two speeds from run to run.

Every map takes ``num_parallel_calls`` none / N / AUTOTUNE; iterated once per epoch, as
``model.fit`` does (or once, repeating, with ``trial.epoch_mode=continuous``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from harness.config.schema import choice
from harness.config.validate import AUTOTUNE, check_positive, parse_tuning
from harness.errors import ConfigError, HarnessError, require
from harness.loaders._tf_data_maps import ElementMaps
from harness.loaders.base import Batch, Knobs, Loader, LoaderConf, Needs, register_loader

FEATURES = ("image_raw", "label", "id")


class FileSource(Enum):
    manifest = "manifest"  # tf.data.Dataset.from_tensor_slices over the CSV manifest
    list_files = "list_files"  # tf.data.Dataset.list_files over the class folders (seed 000)
    tfrecord = "tfrecord"  # tf.data.TFRecordDataset over the shards (seed 001)


class Compression(Enum):
    none = "none"
    gzip = "gzip"


class Chain(Enum):
    fused = "fused"  # one parallel map: read + decode + resize (seed 000's parse_file_to_img, the tf.data guide)
    split = "split"  # a sequential read map, then parallel decode and resize maps (one map per step)


class CacheMode(Enum):
    none = "none"
    memory = "memory"  # Dataset.cache()
    file = "file"  # Dataset.cache(filename) in the trial folder


class CachePlace(Enum):
    after_decode = "after_decode"  # full-size decoded images, then shuffle and resize (seed 001's order)
    after_resize = "after_resize"  # resized images; random ops still run every epoch
    after_augment = "after_augment"  # after the random op: later epochs replay epoch 1's randomness


@dataclass
class TfDataLoaderConf(LoaderConf):
    """tf.data: files or TFRecord, map, cache, shuffle, batch, prefetch, Options (seeds 000, 001)."""

    name: str = "tf_data"
    source: FileSource = FileSource.manifest  # how samples enter tf.data
    compression: Compression = Compression.none  # TFRecord compression when source=tfrecord
    interleave: bool = False  # read TFRecord shards with interleave instead of one sequential reader
    cycle_length: Any = "autotune"  # interleave: shards read at once (none, N or autotune)
    interleave_parallel_calls: Any = "autotune"  # interleave: none, N or autotune
    num_parallel_calls: Any = "autotune"  # map parallelism: none, a positive integer or autotune
    chain: Chain = Chain.fused  # fused: one map read+decode+resize; split: one map per step (costs more)
    vectorized: bool = False  # run the light per-sample ops (rescale, flip, brightness) on whole batches
    rescale: float | None = None  # light op: cast the uint8 image to float32 and multiply (1/255); null: off
    random_flip: bool = False  # light op: a random horizontal flip after resize (the random op cache must precede)
    random_brightness: float | None = None  # light op: add a uniform delta in [-d, d] (float32 pixels); null: off
    # What if each sample cost more? Deterministic CPU work in the per-sample map (not a sleep: it
    # holds a core as decoding does); the gate's benchmark injects a known slowdown with it.
    extra_work: int = 0  # extra work per sample in the map: a cumulative sum over this many thousand floats; 0: none
    cache: CacheMode = CacheMode.none  # cache decoded images: none, memory or file
    cache_place: CachePlace = CachePlace.after_resize  # where the cache sits in the chain
    shuffle_buffer: int = 0  # samples in the shuffle buffer; 0 disables shuffling
    drop_remainder: bool = True  # drop the last partial batch of each epoch
    prefetch: Any = "autotune"  # batches prefetched: none, a positive integer or autotune
    cast_float: bool = False  # cast to float32 right after decode, before cache (seed 001)
    preprocess: str | None = None  # "mobilenet": keras.applications.mobilenet.preprocess_input after batch (seed 001)
    deterministic: bool | None = None  # tf.data.Options.deterministic; null keeps TF's default
    # TF's default graph rewrites can parallelize a sequential map and add a prefetch the
    # code never asked for; set these false to measure a pipeline exactly as written.
    map_parallelization: bool | None = None  # experimental_optimization.map_parallelization; null: TF's default
    inject_prefetch: bool | None = None  # experimental_optimization.inject_prefetch; null: TF's default
    map_and_batch_fusion: bool | None = None  # experimental_optimization.map_and_batch_fusion; null: TF's default
    autotune: bool | None = None  # Options.autotune.enabled; null: TF's default (on)
    autotune_cpu_budget: int | None = None  # Options.autotune.cpu_budget, cores; null: all
    autotune_ram_budget: int | None = None  # Options.autotune.ram_budget, bytes; null: TF's default
    private_threadpool_size: int | None = None  # Options.threading.private_threadpool_size; null: shared pool


def _compose(fns):
    """One map function that runs ``fns`` in turn on the (image, label, id) element."""

    def fused(*element):
        for fn in fns:
            element = fn(*element)
        return element

    return fused


def light_ops(conf) -> list[str]:
    """The light per-sample ops the config turns on, in the order they run."""
    return [
        name
        for name, on in (
            ("rescale", conf.rescale is not None),
            ("random_flip", conf.random_flip),
            ("random_brightness", conf.random_brightness is not None),
        )
        if on
    ]


@register_loader
class TfDataLoader(ElementMaps, Loader):
    name = "tf_data"
    schema = TfDataLoaderConf
    rank_sharding = "Dataset.shard(ranks, rank) right after the source"
    continuous = True  # stream(): the chain with repeat() before prefetch
    knobs = Knobs(
        parallel="loader.num_parallel_calls",
        parallel_auto="autotune",
        prefetch="loader.prefetch",
        cache="loader.cache",
        autotune="loader.autotune",
        vectorize="loader.vectorized",
        shards=("loader.source=tfrecord", "loader.interleave=true"),
        continuous=True,
    )

    @classmethod
    def alone(cls, conf, cores: int) -> list[str]:
        shards = ["loader.interleave_parallel_calls=autotune"] if conf.interleave else []
        return super().alone(conf, cores) + shards

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
        if conf.vectorized and not light_ops(conf):
            raise ConfigError(
                "loader.vectorized=true has nothing to vectorize: set loader.rescale, loader.random_flip "
                "or loader.random_brightness (the light ops it moves after batch)"
            )
        check_positive("loader.rescale", conf.rescale, optional=True)
        check_positive("loader.extra_work", conf.extra_work, allow_zero=True)
        check_positive("loader.random_brightness", conf.random_brightness, optional=True)

    @classmethod
    def check_batch(cls, conf, batch) -> None:
        floats = [
            key
            for key, value in (
                ("preprocess=mobilenet", conf.preprocess == "mobilenet"),
                ("rescale", conf.rescale is not None),
                ("random_brightness", conf.random_brightness is not None),
            )
            if value
        ]
        if floats and choice(batch.dtype) != "float32":
            raise ConfigError(f"loader.{floats[0]} outputs float32 pixels; set batch.dtype=float32")

    @classmethod
    def check_augment(cls, conf, spec) -> None:
        if spec is not None and (conf.rescale is not None or conf.random_brightness is not None):
            raise ConfigError(
                "loader.rescale and loader.random_brightness do not combine with augment.ops: "
                "put the scaling and colour ops in augment.ops (normalize, color_jitter)"
            )
        if choice(conf.cache) == "none":
            return
        random = conf.random_flip or conf.random_brightness is not None
        if spec is None and choice(conf.cache_place) == "after_augment" and not random:
            raise ConfigError(
                "loader.cache_place=after_augment needs loader.random_flip, loader.random_brightness or "
                "augment.ops (there is no random op to follow)"
            )
        if spec is not None and choice(conf.cache_place) == "after_resize":
            raise ConfigError(
                "loader.cache_place=after_resize: with augment.ops the pipeline does the resizing, so the "
                "cache goes after_decode (before the random ops) or after_augment"
            )

    def __init__(self, conf, batch, dataset, seed: int, workdir=None, augment=None):
        super().__init__(conf, batch, dataset, seed, workdir, augment)
        self.check_batch(conf, batch)
        self.tf = require("tensorflow", what="loader=tf_data", extra="tf")
        self.decoder = self._decoder()
        # the light ops' draws: a generator's state carries over from one epoch's iterator to the next,
        # while a plain tf.random op restarts its sequence with every iterator once a global seed is set
        # (every epoch would draw the same flips)
        random = conf.random_flip or conf.random_brightness is not None
        self.rng = self.tf.random.Generator.from_seed(self.draw_seed) if random else None
        self.ops: list[str] = []
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
    def _build(self, repeat: bool = False):
        c, b = self.conf, self.batch
        self.ops = []
        ds = self._source()
        before, after = self._stages()
        ds = self._maps(ds, before)
        if choice(c.cache_place) == "after_decode":  # seed 001: cache, shuffle, then resize
            ds = self._maps(self._shuffle(self._cache(ds, "after_decode")), after)
        else:
            ds = self._shuffle(self._cache(ds, "after_resize"))
        light = "+".join(light_ops(c))
        if light and not c.vectorized:
            ds = self._map(ds, self._light, light)
        if not c.vectorized:
            ds = self._cache(ds, "after_augment")
        ds = ds.batch(b.size, drop_remainder=c.drop_remainder)
        self.ops.append(f"batch({b.size}, drop_remainder={c.drop_remainder})")
        if light and c.vectorized:
            ds = self._map(ds, self._light, light + " on whole batches")
        if c.vectorized:
            ds = self._cache(ds, "after_augment")
        if c.preprocess == "mobilenet":
            ds = self._map(ds, self._mobilenet, "mobilenet.preprocess_input")
        if repeat:  # before prefetch, so the buffer keeps the consumer fed while the next epoch starts
            ds = ds.repeat()
            self.ops.append("repeat()")
        prefetch = self._tuning("loader.prefetch", c.prefetch)
        if prefetch is not None:
            ds = ds.prefetch(prefetch)
            self.ops.append(f"prefetch({c.prefetch})")
        return ds.with_options(self._options())

    def _stages(self):
        """The per-sample steps as (label, fn), split where a cache after_decode sits between them."""
        c = self.conf
        head = [("parse_single_example", self._parse)] if choice(c.source) == "tfrecord" else [("read_file", self._read)]
        head.append((self.decoder + ("+cast" if c.cast_float else ""), self._decode))
        if self.augment is not None:  # the augment pipeline resizes: it takes the resize map's place
            tail = (f"augment({self.augment.library}: {self.augment.order_label()})+to_dtype", self._augment)
        else:
            tail = ("resize+to_dtype", self._resize)
        tail = [tail] + ([(f"extra_work({c.extra_work}k)", self._extra_work)] if c.extra_work else [])
        if choice(c.cache_place) == "after_decode":
            return head, tail
        return head + tail, []

    def _maps(self, ds, stages):
        """One parallel map of the stages composed (fused), or one map each (split; the read map sequential)."""
        if not stages:
            return ds
        if choice(self.conf.chain) == "fused":
            return self._map(ds, _compose([fn for _, fn in stages]), "+".join(label for label, _ in stages))
        for label, fn in stages:
            if label == "read_file":  # as the split chain has always read: in the source, one file at a time
                ds = ds.map(fn)
                self.ops.append("map(read_file)")
            else:
                ds = self._map(ds, fn, label)
        return ds

    def _source(self):
        ds = self._whole_source()
        if self.dataset is None or self.dataset.rank is None:
            return ds
        # a data-parallel rank: Dataset.shard on the whole source, as a tf.distribute input function does; the
        # remainder is taken off first so that every rank runs the same number of steps
        rank, ranks = self.dataset.rank
        whole = len(self.dataset.whole.samples) if self.dataset.whole is not None else len(self.dataset.samples) * ranks
        self.ops.append(f"take({ranks * (whole // ranks)}).shard({ranks}, {rank})")
        return ds.take(ranks * (whole // ranks)).shard(ranks, rank)

    def _whole_source(self):
        tf, c = self.tf, self.conf
        source = choice(c.source)
        if source == "tfrecord":
            return self._tfrecord_source()
        paths, labels, ids = self.dataset.unsharded.columns()
        if source == "list_files":
            pattern = str(self.dataset.images_dir / "*" / "*")
            ds = tf.data.Dataset.list_files(pattern, shuffle=False)
            table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant(paths), tf.constant(labels, tf.int64)), default_value=-1
            )
            prefix = len(str(self.dataset.images_dir)) + 1
            self.ops.append(f"list_files({pattern!r})")
            return ds.map(lambda path: (path, table.lookup(path), tf.strings.substr(path, prefix, -1)))
        self.ops.append(f"from_tensor_slices(manifest, n={len(paths)})")
        return tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int64), ids))

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
            cycle_length=cycle,
            num_parallel_calls=parallel,
            deterministic=c.deterministic,
        )

    def _decoder(self) -> str:
        """decode_jpeg / decode_png where every file has that format (as the seeds write it), else decode_image."""
        if self.dataset is None:
            return "decode_image"
        return {"jpeg": "decode_jpeg", "png": "decode_png"}.get(self.dataset.image_format() or "", "decode_image")

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
    def expected_ids(self) -> list[str] | None:
        # a rank's share is the manifest order's every ranks-th sample; only the manifest source keeps that order
        # exactly (list_files globs, interleave mixes shards): elsewhere only duplicates are checked per rank
        if self.dataset is not None and self.dataset.rank is not None and choice(self.conf.source) != "manifest":
            if choice(self.conf.source) == "list_files" or self.conf.interleave:
                return None
        return super().expected_ids()

    def epoch(self, index: int) -> Iterator[Batch]:
        for images, labels, ids in self.dataset_obj:
            yield Batch(images=images, labels=labels, ids=ids)

    def stream(self):
        """``trial.epoch_mode=continuous``: the same chain with ``repeat()``, iterated once."""
        self.dataset_obj = self._build(repeat=True)
        n, size = len(self.dataset), self.batch.size
        per_epoch = n // size if self.conf.drop_remainder else -(-n // size)
        if per_epoch == 0:
            raise HarnessError(f"the dataset ({n} samples) is smaller than one batch ({size}); lower batch.size")
        for index, (images, labels, ids) in enumerate(self.dataset_obj):
            epoch, k = divmod(index, per_epoch)
            yield epoch, Batch(images=images, labels=labels, ids=ids)
            if k == per_epoch - 1:
                yield epoch, None

    def random_ops(self) -> bool:
        c = self.conf
        return bool(c.random_flip) or c.random_brightness is not None or super().random_ops()

    def reference_pixels(self, path: str):
        if self.augment is not None:
            return None
        image, _, _ = self._decode(self.tf.io.read_file(path), 0, b"")
        return self._resize(image, 0, b"")[0].numpy()

    def describe(self) -> dict:
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
