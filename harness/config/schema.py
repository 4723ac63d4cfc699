"""Typed schemas for the config groups, but for each loader family's own.

Hydra merges ``conf/`` YAML, experiment files and command-line overrides onto these
dataclasses, so a mistyped key, a value of the wrong type or an enum value outside its
choices fails while composing, before any work starts. Values that the type system
cannot express (``"autotune"`` or a positive integer) are checked by
:mod:`harness.config.validate`.

Fields carry their unit in a trailing comment. Defaults live here; the YAML files
under ``conf/`` only select a schema and state values that differ. A loader family's
schema (a :class:`~harness.loaders.base.LoaderConf` dataclass) lives in its own module
under ``harness/loaders/``, beside the loader it configures.
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


class PageCache(Enum):
    as_is = "as_is"  # leave the OS page cache as earlier trials and builds left it
    warm = "warm"  # read every dataset file once before the loader is built: reads come from memory
    cold = "cold"  # evict the dataset's files from the page cache first: reads come from the disk


class StorageKind(Enum):
    local = "local"  # the dataset's own folder on this machine's disk
    throttled = "throttled"  # served through a FUSE mount that adds latency per open and read and a bandwidth cap
    http = "http"  # served by an HTTP server with the same throttle, read by URL (loader=webdataset's shards)


class ServerCores(Enum):
    free = "free"  # the storage server runs on the cores trial.cpus leaves free (its CPU is not the pipeline's)
    shared = "shared"  # on the trial's own cores, as a kernel NFS client's work would (no cross-core wake-up per request)


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


class EpochMode(Enum):
    restart = "restart"  # a fresh iterator per epoch, as Keras fit and a PyTorch epoch loop do
    continuous = "continuous"  # one iterator over the epochs back to back (tf.data repeat(), persistent workers)


class TrialKind(Enum):
    trial = "trial"  # a loader feeds the consumer in one process; the parent samples it
    augbench = "augbench"  # one thread times each augment op of one library (python -m harness augbench)


class AugLibrary(Enum):
    auto = "auto"  # the loader's own: torch -> torchvision, tf_data -> tf_image, keras_idg -> keras_idg, else albumentations
    torchvision = "torchvision"  # torchvision.transforms.v2 on uint8 tensors
    albumentations = "albumentations"  # albumentations (OpenCV) on numpy arrays
    tf_image = "tf_image"  # tf.image and TF kernels inside tf.data's map
    keras_idg = "keras_idg"  # ImageDataGenerator arguments


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
    page_cache: PageCache = PageCache.as_is  # the dataset files' page-cache state when a trial starts (see harness/data/pagecache.py)


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
class PhotosDatasetConf(DatasetConf):
    """Random crops of real photographs that ship with scikit-image (see harness/data/photos.py)."""

    name: str = "photos"
    count: int = 512  # distinct images, each a seeded random crop of one source photograph
    width: int = 500  # pixels of the stored image, as the synthetic default
    height: int = 375  # pixels of the stored image
    format: ImageFormat = ImageFormat.jpeg  # file format of the stored images
    jpeg_quality: int = 90  # 1..95, JPEG quality when format=jpeg
    classes: list[str] = field(default_factory=list)  # class folder names, dealt in turn; empty: one class per source photo
    seed: int = 0  # crop seed; same seed, same crops, same bytes


@dataclass
class FolderDatasetConf(DatasetConf):
    name: str = "folder"
    path: str = MISSING  # a folder with one sub-folder of images per class
    on_bad_file: OnBadFile = OnBadFile.skip  # what an unreadable image (empty, truncated, not an image) does


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
    gpu_index: int = 0  # CUDA device index (of rank 0; rank k uses gpu_index + k)
    ranks: int = 1  # data-parallel ranks, one process each, every step ending in an all-reduce (torch.distributed)
    slow_rank: int | None = None  # a rank whose every step takes slow_rank_ms longer (a slower GPU, or rank 0's logging)
    slow_rank_ms: float = 0.0  # the extra accelerator time per step of slow_rank, ms
    rank_placement: str = "machine"  # machine: every rank here; nodes: ranks 1.. each on a node of its own (SLURM or Ray launcher)


@dataclass
class MonitorConf:
    """Utilization sampling beside each trial (a thread of the parent process; see harness/monitor)."""

    enabled: bool = True  # sample CPU, memory, I/O and GPU of the trial's process tree
    interval_ms: int = 100  # sampling interval, ms
    uss_interval_ms: int = 10000  # USS (unshared memory) costs ~10 ms per big process to read; 0: never
    gpu: bool = True  # read GPU counters through NVML (absent, with the reason, where there is none)
    trace: bool = True  # write trace.json (Chrome / Perfetto) per trial and one merged per sweep


@dataclass
class StorageConf:
    """Where the trial's files are read from (harness/storage): this disk, or a slower tier emulated on it."""

    kind: StorageKind = StorageKind.local  # local: the dataset's folder; throttled: a FUSE mount; http: an HTTP server
    profile: str = "local"  # the tier's name in the report (a conf/storage option sets it)
    open_ms: float = 0.0  # throttled: latency of each file open, ms
    read_ms: float = 0.0  # throttled: latency of each read request (at most 128 KiB), ms
    mb_per_s: float | None = None  # throttled: bandwidth of the one shared link, MB/s; null: no cap
    jitter_pct: float = 0.0  # throttled: each latency drawn uniformly within +-this %
    source: str = ""  # where the profile's figures come from
    server_cores: ServerCores = ServerCores.free  # throttled, http: where the server runs when trial.cpus pins the trial


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
    cpus: int | None = None  # cores the trial and every worker it starts are pinned to (the first N allowed); null: all
    cpus_per_rank: int | None = None  # consumer.ranks > 1: rank k and its workers pinned to cores [k*N, (k+1)*N); null: shared
    code: str | None = None  # a checkout the trial runs in (its folder and first on PYTHONPATH): check --ab's base; null: here


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
    storage: StorageConf = field(default_factory=StorageConf)


# group -> option name -> schema for the groups defined here; registered in Hydra's ConfigStore
# under schema/<group>. The loader group's schemas live with their families
# (harness/loaders/<family>.py); harness.config.group_schemas() returns every group.
GROUP_SCHEMAS: dict[str, dict[str, type]] = {
    "dataset": {"synthetic": SyntheticDatasetConf, "photos": PhotosDatasetConf, "folder": FolderDatasetConf},
    "augment": {"default": AugmentConf},
    "consumer": {"default": ConsumerConf},
    "monitor": {"default": MonitorConf},
    "trial": {"default": TrialConf},
    "storage": {"default": StorageConf},
}
