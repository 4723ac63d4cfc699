"""Typed schemas for every config group.

Hydra merges ``conf/`` YAML, experiment files and command-line overrides onto these
dataclasses, so a mistyped key, a value of the wrong type or an enum value outside its
choices fails while composing, before any work starts. Values that the type system
cannot express (``"autotune"`` or a positive integer) are checked by
:mod:`harness.config.validate`.

Fields carry their unit in a trailing comment. Defaults live here; the YAML files
under ``conf/`` only select a schema and state values that differ.
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING


def choice(value) -> Any:
    """An enum member's value, or the value itself: configs reach code typed or plain."""
    return getattr(value, "value", value)


class ImageFormat(Enum):
    jpeg = "jpeg"
    png = "png"


class OnBadFile(Enum):
    skip = "skip"  # leave unreadable files out, for every loader alike, and name them
    fail = "fail"  # refuse the dataset, naming the files


class PixelDtype(Enum):
    float32 = "float32"
    uint8 = "uint8"


class Layout(Enum):
    nhwc = "nhwc"
    nchw = "nchw"


class Device(Enum):
    auto = "auto"
    cuda = "cuda"
    emulated = "emulated"


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


class EpochMode(Enum):
    restart = "restart"  # a fresh iterator per epoch, as Keras fit and a PyTorch epoch loop do
    continuous = "continuous"  # one iterator over the epochs back to back (tf.data repeat(), persistent workers)


class TrialKind(Enum):
    trial = "trial"  # a loader feeds the consumer in one process; the parent samples it
    augbench = "augbench"  # one thread times each augment op of one library (python -m harness augbench)


class CacheMode(Enum):
    none = "none"
    memory = "memory"  # Dataset.cache()
    file = "file"  # Dataset.cache(filename) in the trial folder


class CachePlace(Enum):
    after_decode = "after_decode"  # full-size decoded images, then shuffle and resize (seed 001's order)
    after_resize = "after_resize"  # resized images; random ops still run every epoch
    after_augment = "after_augment"  # after the random op: later epochs replay epoch 1's randomness


class IdgFlow(Enum):
    directory = "directory"  # flow_from_directory over the class folders
    dataframe = "dataframe"  # flow_from_dataframe over seed 001's DataFrame (manifest.csv)


class GeneratorMode(Enum):
    direct = "direct"  # the consumer iterates the Python generator itself
    tf_from_generator = "tf_from_generator"  # tf.data.Dataset.from_generator(...) (seed 002)


class AugLibrary(Enum):
    auto = "auto"  # the loader's own: torch -> torchvision, tf_data -> tf_image, keras_idg -> keras_idg, else albumentations
    torchvision = "torchvision"  # torchvision.transforms.v2 on uint8 tensors
    albumentations = "albumentations"  # albumentations (OpenCV) on numpy arrays
    tf_image = "tf_image"  # tf.image and TF kernels inside tf.data's map
    keras_idg = "keras_idg"  # ImageDataGenerator arguments


class Decoder(Enum):
    pil = "pil"  # PIL.Image.open + resize (what most Dataset classes do)
    torchvision = "torchvision"  # torchvision.io.decode_jpeg / decode_image + v2 resize


class TorchDatasetStyle(Enum):
    map = "map"  # torch.utils.data.Dataset with __getitem__ / __len__
    iterable = "iterable"  # torch.utils.data.IterableDataset, sharded across workers


class Sampler(Enum):
    sequential = "sequential"
    random = "random"


class Collate(Enum):
    default = "default"  # torch's default_collate
    numpy_stack = "numpy_stack"  # a collate_fn that stacks numpy arrays, then one torch.from_numpy


class StartMethod(Enum):
    default = "default"  # the platform default (fork on Linux)
    fork = "fork"
    spawn = "spawn"
    forkserver = "forkserver"


@dataclass
class BatchConf:
    """What every loader hands the consumer; fixed once so rows differ only by loader."""

    size: int = 32  # samples per batch
    height: int = 150  # pixels, after resize (seed 001 uses 150x150)
    width: int = 150  # pixels, after resize
    channels: int = 3  # colour channels
    # uint8 is what fast pipelines hand the device (normalizing there): a quarter of float32's copy
    dtype: PixelDtype = PixelDtype.uint8  # pixel dtype handed to the consumer
    layout: Layout = Layout.nhwc  # memory layout handed to the consumer


@dataclass
class DatasetConf:
    name: str = MISSING  # which dataset kind this is (set by the YAML choice)
    shards: int = 4  # TFRecord shards, built on demand for loaders that read TFRecord
    cache_dir: str | None = None  # built datasets live here; default $HARNESS_CACHE or ~/.cache/harness


@dataclass
class SyntheticDatasetConf(DatasetConf):
    name: str = "synthetic"
    count: int = 512  # images
    width: int = 500  # pixels of the stored image (Kaggle cats-vs-dogs photos are about 500x375)
    height: int = 375  # pixels of the stored image
    format: ImageFormat = ImageFormat.jpeg  # file format of the stored images
    jpeg_quality: int = 90  # 1..95, JPEG quality when format=jpeg
    classes: list[str] = field(default_factory=lambda: ["cat", "dog"])  # class folder names
    seed: int = 0  # generation seed; same seed, same bytes


@dataclass
class FolderDatasetConf(DatasetConf):
    name: str = "folder"
    path: str = MISSING  # a folder with one sub-folder of images per class
    on_bad_file: OnBadFile = OnBadFile.skip  # what an unreadable image (empty, truncated, not an image) does


@dataclass
class LoaderConf:
    name: str = MISSING  # loader family (set by the YAML choice)


@dataclass
class SyntheticLoaderConf(LoaderConf):
    """Known-answer loader: sleeps ``produce_ms`` per batch, like tf.data's ArtificialDataset."""

    name: str = "synthetic"
    produce_ms: float = 10.0  # time to produce one batch, ms
    workers: int = 1  # background producer threads; 0 produces in the consumer's thread (serial)
    prefetch: int = 2  # batches queued ahead of the consumer when workers > 0
    batches_per_epoch: int = 100  # batches in one epoch
    pool: int = 4  # distinct pre-generated batches cycled through (generation is not timed work)


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


@dataclass
class KerasIdgLoaderConf(LoaderConf):
    """Keras ImageDataGenerator, the seeds' slow serial baseline (legacy API in Keras 3)."""

    name: str = "keras_idg"
    flow: IdgFlow = IdgFlow.directory  # flow_from_directory or flow_from_dataframe
    rescale: float | None = None  # multiply pixels by this (1/255 is common); null: none
    rotation_range: float = 0.0  # degrees of random rotation
    width_shift_range: float = 0.0  # fraction of width
    height_shift_range: float = 0.0  # fraction of height
    zoom_range: float = 0.0  # random zoom in [1 - z, 1 + z]
    horizontal_flip: bool = False  # random horizontal flips
    vertical_flip: bool = False  # random vertical flips
    shuffle: bool = False  # shuffle every epoch
    interpolation: str = "bilinear"  # PIL interpolation used to reach batch.height x batch.width


@dataclass
class KerasSequenceLoaderConf(LoaderConf):
    """A keras.utils.PyDataset (Keras 3's Sequence) run as model.fit runs it (seed 002)."""

    name: str = "keras_sequence"
    workers: int = 1  # PyDataset workers; 1 = load in the consumer's thread
    use_multiprocessing: bool = False  # workers are processes instead of threads
    max_queue_size: int = 10  # batches queued ahead by the workers
    shuffle: bool = True  # on_epoch_end reshuffles the file order


@dataclass
class GeneratorLoaderConf(LoaderConf):
    """A plain Python generator that yields batches (seed 002's yield pattern)."""

    name: str = "generator"
    mode: GeneratorMode = GeneratorMode.direct  # iterate it directly or through Dataset.from_generator
    prefetch: Any = None  # from_generator only: prefetch none, N or autotune
    shuffle: bool = False  # shuffle the file order every epoch


@dataclass
class TorchLoaderConf(LoaderConf):
    """PyTorch Dataset + DataLoader with every knob seeds 003/004 list."""

    name: str = "torch"
    style: TorchDatasetStyle = TorchDatasetStyle.map  # map-style or iterable-style dataset
    decoder: Decoder = Decoder.pil  # PIL or torchvision.io
    num_workers: int = 0  # DataLoader worker processes; 0 loads in the consumer's process
    pin_memory: bool = False  # page-locked batches, for fast non_blocking copies to CUDA
    persistent_workers: bool = False  # keep workers alive between epochs
    prefetch_factor: int | None = None  # batches loaded ahead per worker; null: torch's default (2)
    shuffle: bool = False  # RandomSampler instead of SequentialSampler (map style)
    drop_last: bool = True  # drop the last partial batch
    collate: Collate = Collate.default  # default_collate or a numpy stacking collate_fn
    start_method: StartMethod = StartMethod.default  # worker start method (multiprocessing_context)
    worker_threads: int = 1  # torch.set_num_threads inside each worker (torch's own default is 1 too)


@dataclass
class YardstickLoaderConf(LoaderConf):
    """A fixed tf.data decode pipeline that measures the machine (the gate's reference); meant never to change."""

    name: str = "yardstick"
    parallel_calls: int = 2  # map parallelism, fixed
    prefetch: int = 2  # batches prefetched, fixed


@dataclass
class AugmentConf:
    """A declarative augmentation pipeline, translated into ``library`` (see harness/augment/spec.py)."""

    library: AugLibrary = AugLibrary.auto  # which library runs the ops inside the loader
    ops: list[Any] = field(default_factory=list)  # [{op: resize, size: [150, 150]}, {op: rotate, degrees: 30}, ...]
    order: Any = None  # null: as listed; a name from ``orders``; op names joined by '-' or '>'; or a list
    orders: dict[str, list[str]] = field(default_factory=dict)  # named orders, e.g. {cheap: [rotate, resize]}
    bench: bool = True  # after a sweep's trials, time each distinct pipeline op by op on one thread (augbench)
    bench_images: int = 32  # augbench: decoded images per timed pass
    bench_passes: int = 5  # augbench: timed passes (the median is reported)
    bench_warmup: int = 1  # augbench: untimed passes first
    bench_cv: float = 0.1  # augbench: a coefficient of variation above this flags the figure unstable
    preview: int = 6  # source images in the sample grid (samples.png); 0: no grid


@dataclass
class ConsumerConf:
    """The synthetic accelerator that every loader feeds."""

    device: Device = Device.auto  # auto picks cuda when a GPU and torch are present
    step_ms: float = 10.0  # accelerator compute time per batch, ms
    matmul_size: int = 2048  # side of the square fp32 matmul the CUDA consumer repeats to fill step_ms
    gpu_index: int = 0  # CUDA device index


@dataclass
class MonitorConf:
    """Utilization sampling beside each trial (a thread of the parent process; see harness/monitor)."""

    enabled: bool = True  # sample CPU, memory, I/O and GPU of the trial's process tree
    interval_ms: int = 100  # sampling interval, ms
    uss_interval_ms: int = 10000  # USS (unshared memory) costs ~10 ms per big process to read; 0: never
    gpu: bool = True  # read GPU counters through NVML (absent, with the reason, where there is none)
    trace: bool = True  # write trace.json (Chrome / Perfetto) per trial and one merged per sweep


@dataclass
class TrialConf:
    warmup_steps: int = 5  # steps consumed before measuring (excluded from metrics)
    steps: int | None = None  # measured steps; the first bound reached ends the trial
    seconds: float | None = None  # measured wall time, s
    epochs: int | None = None  # measured epochs (warm-up included in the first)
    repeats: int = 1  # independent trials, each in a fresh process; repeats of a sweep run in shuffled rounds
    epoch_mode: EpochMode = EpochMode.restart  # restart: an iterator per epoch (fit); continuous: one repeating
    timeout_s: float = 600.0  # a trial still running after this is killed and recorded as timeout
    seed: int = 0  # seed for shuffles and augmentation inside the trial
    default_seconds: float = 10.0  # bound used when steps, seconds and epochs are all null
    kind: TrialKind = TrialKind.trial  # what each trial of a job measures; augbench sets augbench


@dataclass
class ThreadsConf:
    """Thread pools that distort a comparison if left to chance; set before frameworks start."""

    tf_inter_op: int = 0  # TF inter-op pool threads; 0: TF's default (all cores)
    tf_intra_op: int = 0  # TF intra-op pool threads; 0: TF's default (all cores)
    torch: int = 0  # torch.set_num_threads in the trial process; 0: torch's default
    opencv: int = 0  # cv2.setNumThreads (albumentations uses OpenCV); 0 disables OpenCV's own pool


@dataclass
class Config:
    name: str = "default"  # sweep name, used in the result folder's name
    batch: BatchConf = field(default_factory=BatchConf)
    dataset: Any = MISSING
    loader: Any = MISSING
    augment: AugmentConf = field(default_factory=AugmentConf)
    consumer: ConsumerConf = field(default_factory=ConsumerConf)
    monitor: MonitorConf = field(default_factory=MonitorConf)
    trial: TrialConf = field(default_factory=TrialConf)
    threads: ThreadsConf = field(default_factory=ThreadsConf)


# group -> option name -> schema; registered in Hydra's ConfigStore under schema/<group>.
GROUP_SCHEMAS: dict[str, dict[str, type]] = {
    "dataset": {"synthetic": SyntheticDatasetConf, "folder": FolderDatasetConf},
    "loader": {
        "synthetic": SyntheticLoaderConf,
        "tf_data": TfDataLoaderConf,
        "keras_idg": KerasIdgLoaderConf,
        "keras_sequence": KerasSequenceLoaderConf,
        "generator": GeneratorLoaderConf,
        "torch": TorchLoaderConf,
        "yardstick": YardstickLoaderConf,
    },
    "augment": {"default": AugmentConf},
    "consumer": {"default": ConsumerConf},
    "monitor": {"default": MonitorConf},
    "trial": {"default": TrialConf},
}
