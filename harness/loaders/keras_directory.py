"""Keras 3's ``keras.utils.image_dataset_from_directory`` on the dataset's class folders.

Keras walks ``images_dir`` itself, shuffles the file list once with the seed, and returns
either a tf.data pipeline (``format=tf``: from_tensor_slices -> shuffle(batch_size*8) ->
map(read_file+decode_image+resize, AUTOTUNE) -> batch -> prefetch(AUTOTUNE)) or a grain
one (``format=grain``: MapDataset.source -> shuffle -> map(PIL open+keras resize) ->
to_iter_dataset -> batch). Both yield float32 pixels; a uint8 batch costs one more pass.

Sample ids: the function returns its files in order (``file_paths``), but with
``shuffle=true`` the tf.data buffer reorders them again every epoch, so that list cannot
name a batch's samples. Instead of the class labels, each file's label is its position in
Keras' own listing (``labels=[0, 1, ...]``, which the function accepts in that order):
the position travels with the image through Keras' shuffles and is turned back into
the sample id and its class label after each batch. The pipeline is otherwise the one
``labels="inferred"`` builds, the same ops on an int32 label per image.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

import numpy as np

from harness.config.schema import choice
from harness.errors import ConfigError, HarnessError, require
from harness.loaders.base import Batch, Loader, LoaderConf, Needs, register_loader


class KerasFormat(Enum):
    tf = "tf"  # a tf.data.Dataset
    grain = "grain"  # a grain dataset (PIL decode, keras.ops resize), iterated once per epoch


class Interpolation(Enum):
    bilinear = "bilinear"
    nearest = "nearest"
    bicubic = "bicubic"
    area = "area"
    lanczos3 = "lanczos3"
    lanczos5 = "lanczos5"
    gaussian = "gaussian"
    mitchellcubic = "mitchellcubic"


@dataclass
class KerasDirectoryLoaderConf(LoaderConf):
    """keras.utils.image_dataset_from_directory: batch_size is batch.size, image_size batch.height x batch.width."""

    name: str = "keras_directory"
    format: KerasFormat = KerasFormat.tf  # what the function returns: tf.data or grain (grain needs the data extra)
    shuffle: bool = True  # Keras' default: the file list once, and (tf) a batch_size*8 buffer every epoch
    seed: int | None = None  # the shuffle's seed; null: the trial's seed
    interpolation: Interpolation = Interpolation.bilinear  # resize method
    crop_to_aspect_ratio: bool = False  # center-crop to the target aspect ratio before resizing
    pad_to_aspect_ratio: bool = False  # pad to the target aspect ratio before resizing
    prefetch: int = 0  # format=tf: one more .prefetch(n) after Keras' own prefetch(AUTOTUNE); -1: AUTOTUNE; 0: none


@register_loader
class KerasDirectoryLoader(Loader):
    name = "keras_directory"
    schema = KerasDirectoryLoaderConf
    continuous_hint = "Keras returns a dataset without repeat(), iterated once per epoch as model.fit does"

    @classmethod
    def needs(cls, conf) -> Needs:
        return Needs(framework=("keras", "tf"))

    @classmethod
    def check(cls, conf) -> None:
        if conf.crop_to_aspect_ratio and conf.pad_to_aspect_ratio:
            raise ConfigError("loader.crop_to_aspect_ratio and loader.pad_to_aspect_ratio: Keras takes one of them, not both")
        if conf.prefetch < -1:
            raise ConfigError(f"loader.prefetch={conf.prefetch}: must be >= 0, or -1 for AUTOTUNE")
        if conf.prefetch and choice(conf.format) == "grain":
            raise ConfigError("loader.prefetch applies to format=tf (a grain dataset has no prefetch(n)); leave it 0 with format=grain")

    @classmethod
    def check_batch(cls, conf, batch) -> None:
        if batch.channels not in (1, 3):
            raise ConfigError(f"batch.channels={batch.channels}: image_dataset_from_directory reads 1 (grayscale) or 3 (rgb) here")

    def __init__(self, conf, batch, dataset, seed: int, workdir=None, augment=None):
        super().__init__(conf, batch, dataset, seed, workdir, augment)
        self.keras = require("keras", what="loader=keras_directory", extra="tf")
        self.format = choice(conf.format)
        if self.format == "grain":
            require("grain", what="loader.format=grain", extra="data")
        else:
            self.tf = require("tensorflow", what="loader=keras_directory", extra="tf")
        self.shuffle_seed = conf.seed if conf.seed is not None else seed
        self.directory = str(dataset.images_dir)
        self.ids_at, self.labels_at = self._listing(dataset)
        self.data = self._from_directory()
        self.dataset_obj = self._finish(self.data)

    def _listing(self, dataset) -> tuple[np.ndarray, np.ndarray]:
        """Sample ids and class labels by position in Keras' own listing of the folder."""
        from keras.src.utils import dataset_utils, image_dataset_utils

        found, _, _ = dataset_utils.index_directory(
            self.directory, None, formats=image_dataset_utils.ALLOWLIST_FORMATS, shuffle=False, verbose=False
        )
        names = [os.path.relpath(p, self.directory) for p in found]
        _, labels, ids = dataset.columns()
        where = {name: i for i, name in enumerate(ids)}
        extra, missing = sorted(set(names) - set(where)), sorted(set(where) - set(names))
        if extra or missing:
            raise HarnessError(
                f"{self.directory}: Keras lists {len(names)} files, the manifest {len(ids)} "
                f"(not in the manifest: {extra[:3]}, not found by Keras: {missing[:3]}); rebuild the dataset"
            )
        order = [where[name] for name in names]
        return np.asarray(ids, dtype=object)[order], np.asarray(labels, dtype=np.int64)[order]

    def _options(self) -> dict:
        c, b = self.conf, self.batch
        return {
            "labels": list(range(len(self.ids_at))),  # each file's position in Keras' listing: see the module docstring
            "label_mode": "int",
            "color_mode": "rgb" if b.channels == 3 else "grayscale",
            "batch_size": b.size,
            "image_size": (b.height, b.width),
            "shuffle": c.shuffle,
            "seed": self.shuffle_seed,
            "interpolation": choice(c.interpolation),
            "crop_to_aspect_ratio": c.crop_to_aspect_ratio,
            "pad_to_aspect_ratio": c.pad_to_aspect_ratio,
            "data_format": "channels_first" if choice(b.layout) == "nchw" else "channels_last",
            "format": self.format,
            "verbose": False,
        }

    def _from_directory(self):
        return self.keras.utils.image_dataset_from_directory(self.directory, **self._options())

    def _finish(self, data):
        """Keras' float32 batches -> uint8 where batch.dtype asks (round, clip, cast), then the extra prefetch."""
        uint8 = choice(self.batch.dtype) == "uint8"
        if self.format == "grain":
            return data.map(lambda element: self._to_uint8(*element)) if uint8 else data  # grain maps whole (images, labels) tuples
        tf = self.tf
        if uint8:
            data = data.map(lambda x, y: (self._to_uint8(x), y), num_parallel_calls=tf.data.AUTOTUNE)
        if self.conf.prefetch:
            data = data.prefetch(tf.data.AUTOTUNE if self.conf.prefetch == -1 else self.conf.prefetch)
        return data

    def _to_uint8(self, images, labels=None):
        ops = self.keras.ops  # backend ops: tf inside tf.data's map, the Keras backend's arrays for grain
        images = ops.cast(ops.clip(ops.round(images), 0, 255), "uint8")
        return images if labels is None else (images, labels)

    def epoch(self, index: int) -> Iterator[Batch]:
        for images, positions in self.dataset_obj:
            at = np.asarray(positions)
            yield Batch(images=images, labels=self.labels_at[at], ids=self.ids_at[at].tolist())

    def reference_pixels(self, path: str):
        """Keras' own per-file loader (the function the pipeline maps), then this family's dtype step."""
        from keras.src.utils import image_dataset_utils

        o = self._options()
        load = image_dataset_utils._load_image_grain if self.format == "grain" else image_dataset_utils._load_image_tf
        image = load(
            path,
            o["image_size"],
            self.batch.channels,
            o["interpolation"],
            o["data_format"],
            o["crop_to_aspect_ratio"],
            o["pad_to_aspect_ratio"],
        )
        if choice(self.batch.dtype) == "uint8":
            image = self._to_uint8(image)
        return np.asarray(image)

    def describe(self) -> dict:
        c, b = self.conf, self.batch
        interp, size = choice(c.interpolation), f"{b.height}x{b.width}"
        fit = "+crop_to_aspect_ratio" if c.crop_to_aspect_ratio else "+pad_to_aspect_ratio" if c.pad_to_aspect_ratio else ""
        layout = "+transpose(CHW)" if choice(b.layout) == "nchw" else ""
        listing = f"index_directory: {len(self.ids_at)} files" + (
            f", shuffled once (seed={self.shuffle_seed})" if c.shuffle else ", sorted"
        )
        if self.format == "tf":
            chain = [
                "from_tensor_slices(paths, labels=positions)",
                *([f"shuffle({b.size * 8}, seed={self.shuffle_seed}) every epoch"] if c.shuffle else []),
                f"map(read_file+decode_image+resize({interp}){fit}{layout} to {size} float32, AUTOTUNE)",
                f"batch({b.size})",
                "prefetch(AUTOTUNE)",
            ]
        else:
            chain = [
                "MapDataset.source(paths, labels=positions)",
                *([f"shuffle(seed={self.shuffle_seed}): the same order every epoch"] if c.shuffle else []),
                f"map(PIL open+convert+keras.ops.image.resize({interp}){fit}{layout} to {size} float32)",
                "to_iter_dataset()",
                f"batch({b.size}, keras make_batch)",
            ]
        return {
            "ops": [
                f"image_dataset_from_directory(format={self.format}, batch_size={b.size}, image_size=({b.height}, {b.width}))",
                listing,
                *chain,
                *self._finish_ops(),
                "per batch: ids and class labels gathered (numpy) from the carried positions",
            ],
            "format": self.format,
            "shuffle": c.shuffle,
            "seed": self.shuffle_seed,
            "interpolation": interp,
            "crop_to_aspect_ratio": c.crop_to_aspect_ratio,
            "pad_to_aspect_ratio": c.pad_to_aspect_ratio,
            "data_format": self._options()["data_format"],
            "prefetch": c.prefetch if self.format == "tf" else None,
            "dataset_class": type(self.dataset_obj).__name__,
            "keras": self.keras.__version__,
        }

    def _finish_ops(self) -> list[str]:
        b = self.batch
        ops = []
        if choice(b.dtype) == "uint8":
            values = b.size * b.height * b.width * b.channels
            where = "in tf.data's threads, AUTOTUNE" if self.format == "tf" else "in the consumer's thread, as grain batches"
            ops.append(
                f"map(round+clip+cast to uint8 on whole batches, {where}): one more pass over each batch's "
                f"{values:,} float32 values ({values * 4 / 2**20:.2f} MiB read, {values / 2**20:.2f} MiB written)"
            )
        if self.format == "tf" and self.conf.prefetch:
            ops.append(f"prefetch({'AUTOTUNE' if self.conf.prefetch == -1 else self.conf.prefetch})")
        return ops
