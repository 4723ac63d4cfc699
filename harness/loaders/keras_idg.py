"""Keras ``ImageDataGenerator``: the seeds' baseline ("slow, serial I/O").

A legacy API in Keras 3, still at ``tf.keras.preprocessing.image``. ``flow_from_directory``
reads the class folders; ``flow_from_dataframe`` reads seed 001's DataFrame
(``manifest.csv``: filename, label). The iterator loads, augments and stacks each batch
in the consumer's thread, as ``model.fit`` does with it.

It decodes with PIL only (``keras.utils.load_img``): the iterator calls ``load_img`` by
name inside Keras' own batch method, so another decoder could only come in by
monkeypatching Keras or rewriting that method, and then this would no longer be the
``ImageDataGenerator`` a user runs. ``loader.decoder`` is offered by the torch,
keras_sequence and generator families instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

import numpy as np

from harness.config.schema import choice
from harness.config.validate import check_positive
from harness.errors import ConfigError, HarnessError, require
from harness.loaders.base import Batch, Loader, LoaderConf, Needs, register_loader
from harness.loaders.images import finish

# the loader's own augmentation arguments (an alternative to augment.ops, not a complement)
OWN_AUGMENT = ("rotation_range", "width_shift_range", "height_shift_range", "zoom_range", "horizontal_flip", "vertical_flip")


class IdgFlow(Enum):
    directory = "directory"  # flow_from_directory over the class folders
    dataframe = "dataframe"  # flow_from_dataframe over seed 001's DataFrame (manifest.csv)


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


@register_loader
class KerasIdgLoader(Loader):
    name = "keras_idg"
    schema = KerasIdgLoaderConf

    @classmethod
    def needs(cls, conf) -> Needs:
        return Needs(framework=("tensorflow", "tf"))

    @classmethod
    def check(cls, conf) -> None:
        for key in ("rotation_range", "width_shift_range", "height_shift_range", "zoom_range"):
            check_positive(f"loader.{key}", getattr(conf, key), allow_zero=True)

    @classmethod
    def check_augment(cls, conf, spec) -> None:
        if spec is None:
            return
        own = [k for k in OWN_AUGMENT if getattr(conf, k)] + (["rescale"] if conf.rescale is not None else [])
        if own:
            raise ConfigError(
                f"loader.{own[0]} and augment.ops both augment; put the whole pipeline in augment.ops "
                "(it becomes ImageDataGenerator's arguments)"
            )

    def __init__(self, conf, batch, dataset, seed: int, workdir=None, augment=None):
        super().__init__(conf, batch, dataset, seed, workdir, augment)
        tf = require("tensorflow", what="loader=keras_idg", extra="tf")
        c = conf
        if c.rescale is not None and choice(batch.dtype) == "uint8":
            raise HarnessError("loader.rescale with batch.dtype=uint8 would round rescaled pixels to 0/1; set batch.dtype=float32")
        if self.augment is not None:  # augment.ops translated into the generator's arguments
            self.generator = self.pipeline().objects
            self.iterator = self._flow()
            return
        self.generator = tf.keras.preprocessing.image.ImageDataGenerator(
            rescale=c.rescale,
            rotation_range=c.rotation_range,
            width_shift_range=c.width_shift_range,
            height_shift_range=c.height_shift_range,
            zoom_range=c.zoom_range,
            horizontal_flip=c.horizontal_flip,
            vertical_flip=c.vertical_flip,
        )
        self.iterator = self._flow()

    def _flow(self):
        c, b = self.conf, self.batch
        common = dict(
            target_size=(b.height, b.width),
            color_mode="rgb" if b.channels == 3 else "grayscale",
            batch_size=b.size,
            shuffle=c.shuffle,
            seed=self.seed,
            interpolation=c.interpolation,
            class_mode="sparse",
        )
        if choice(c.flow) == "dataframe":
            import pandas as pd

            frame = pd.read_csv(self.dataset.csv_path, dtype={"filename": str, "label": str})
            return self.generator.flow_from_dataframe(
                frame, directory=str(self.dataset.images_dir), x_col="filename", y_col="label", **common
            )
        return self.generator.flow_from_directory(str(self.dataset.images_dir), classes=self.dataset.classes, **common)

    def epoch(self, index: int) -> Iterator[Batch]:
        # Iterator.next() is exactly: take the next index array, then load and transform it.
        it = self.iterator
        for _ in range(len(it)):
            with it.lock:
                index_array = next(it.index_generator)
            x, y = it._get_batches_of_transformed_samples(index_array)  # always a float32 stack
            if choice(self.batch.dtype) == "uint8":
                x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
            yield Batch(images=finish(x, self.batch), labels=y, ids=[self._id(it.filenames[i]) for i in index_array])

    def reference_pixels(self, path: str):
        if self.augment is not None:
            return None
        from keras.utils import img_to_array, load_img

        b = self.batch
        image = load_img(
            path,
            color_mode="rgb" if b.channels == 3 else "grayscale",
            target_size=(b.height, b.width),
            interpolation=self.conf.interpolation,
        )
        x = img_to_array(image)[None]
        if choice(b.dtype) == "uint8":
            x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        return finish(x, b)[0]

    def _id(self, filename: str) -> str:
        return filename.replace("\\", "/")

    def random_ops(self) -> bool:
        c = self.conf
        return super().random_ops() or any(getattr(c, k) for k in OWN_AUGMENT)

    def describe(self) -> dict:
        it, g, c = self.iterator, self.generator, self.conf
        args = {
            "rescale": g.rescale,
            "rotation_range": g.rotation_range,
            "width_shift_range": g.width_shift_range,
            "height_shift_range": g.height_shift_range,
            "zoom_range": list(g.zoom_range),
            "horizontal_flip": g.horizontal_flip,
            "vertical_flip": g.vertical_flip,
        }
        set_args = ", ".join(f"{k}={v}" for k, v in args.items() if v not in (None, 0, 0.0, False, [1.0, 1.0]))
        return {
            "ops": [
                f"ImageDataGenerator({set_args})",
                f"flow_from_{choice(c.flow)}(target_size={tuple(it.target_size)}, batch_size={it.batch_size}, "
                f"shuffle={c.shuffle}, interpolation={c.interpolation}): per batch, serial: "
                f"load_img (PIL open+convert+resize({c.interpolation})), random transforms, np.stack",
            ],
            "decoder": "pil",
            "flow": choice(self.conf.flow),
            "iterator": type(it).__name__,
            "samples": it.samples,
            "batches_per_epoch": len(it),
            "target_size": list(it.target_size),
            "generator": {
                "rescale": g.rescale,
                "rotation_range": g.rotation_range,
                "zoom_range": list(g.zoom_range),
                "horizontal_flip": g.horizontal_flip,
                "vertical_flip": g.vertical_flip,
            },
        }
