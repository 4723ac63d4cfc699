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
from typing import Any, List, Optional

from omegaconf import MISSING


class ImageFormat(Enum):
    jpeg = "jpeg"
    png = "png"


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
    cache_dir: Optional[str] = None  # built datasets live here; default $HARNESS_CACHE or ~/.cache/harness


@dataclass
class SyntheticDatasetConf(DatasetConf):
    name: str = "synthetic"
    count: int = 512  # images
    width: int = 500  # pixels of the stored image (Kaggle cats-vs-dogs photos are about 500x375)
    height: int = 375  # pixels of the stored image
    format: ImageFormat = ImageFormat.jpeg  # file format of the stored images
    jpeg_quality: int = 90  # 1..95, JPEG quality when format=jpeg
    classes: List[str] = field(default_factory=lambda: ["cat", "dog"])  # class folder names
    seed: int = 0  # generation seed; same seed, same bytes


@dataclass
class FolderDatasetConf(DatasetConf):
    name: str = "folder"
    path: str = MISSING  # a folder with one sub-folder of images per class


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
    """tf.data over image files: list, read, decode, resize, batch, prefetch (seed 000)."""

    name: str = "tf_data"
    source: FileSource = FileSource.manifest  # how the file list enters tf.data
    num_parallel_calls: Any = "autotune"  # map parallelism: none, a positive integer or autotune
    prefetch: Any = "autotune"  # batches prefetched: none, a positive integer or autotune
    shuffle_buffer: int = 0  # samples in the shuffle buffer; 0 disables shuffling
    drop_remainder: bool = True  # drop the last partial batch of each epoch
    deterministic: Optional[bool] = None  # tf.data.Options.deterministic; null keeps TF's default
    # TF's default graph rewrites can parallelize a sequential map and add a prefetch the
    # code never asked for; set these false to measure a pipeline exactly as written.
    map_parallelization: Optional[bool] = None  # experimental_optimization.map_parallelization; null: TF's default
    inject_prefetch: Optional[bool] = None  # experimental_optimization.inject_prefetch; null: TF's default


@dataclass
class ConsumerConf:
    """The synthetic accelerator that every loader feeds."""

    device: Device = Device.auto  # auto picks cuda when a GPU and torch are present
    step_ms: float = 10.0  # accelerator compute time per batch, ms
    matmul_size: int = 2048  # side of the square fp32 matmul the CUDA consumer repeats to fill step_ms
    gpu_index: int = 0  # CUDA device index


@dataclass
class MonitorConf:
    enabled: bool = True  # sample utilization beside the trial
    interval_ms: int = 100  # sampling interval, ms


@dataclass
class TrialConf:
    warmup_steps: int = 5  # steps consumed before measuring (excluded from metrics)
    steps: Optional[int] = None  # measured steps; the first bound reached ends the trial
    seconds: Optional[float] = None  # measured wall time, s
    epochs: Optional[int] = None  # measured epochs (warm-up included in the first)
    repeats: int = 1  # independent trials, each in a fresh process
    timeout_s: float = 600.0  # a trial still running after this is killed and recorded as timeout
    seed: int = 0  # seed for shuffles and augmentation inside the trial
    default_seconds: float = 10.0  # bound used when steps, seconds and epochs are all null


@dataclass
class Config:
    name: str = "default"  # sweep name, used in the result folder's name
    batch: BatchConf = field(default_factory=BatchConf)
    dataset: Any = MISSING
    loader: Any = MISSING
    consumer: ConsumerConf = field(default_factory=ConsumerConf)
    monitor: MonitorConf = field(default_factory=MonitorConf)
    trial: TrialConf = field(default_factory=TrialConf)


# group -> option name -> schema; registered in Hydra's ConfigStore under schema/<group>.
GROUP_SCHEMAS = {
    "dataset": {"synthetic": SyntheticDatasetConf, "folder": FolderDatasetConf},
    "loader": {"synthetic": SyntheticLoaderConf, "tf_data": TfDataLoaderConf},
    "consumer": {"default": ConsumerConf},
    "monitor": {"default": MonitorConf},
    "trial": {"default": TrialConf},
}
