"""The PyDataset subclass behind ``loader=keras_sequence``.

A module of its own because it imports Keras at the top: with
``use_multiprocessing=True`` the dataset is pickled into worker processes, which needs a
module-level class. Imported only when that loader is built.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from harness.loaders.images import load_batch


class FileSequence(keras.utils.PyDataset):
    """Seed 002's Sequence: ``__len__`` batches, ``__getitem__`` loads one, ``on_epoch_end`` shuffles."""

    def __init__(self, paths, labels, batch, shuffle: bool, seed: int, augment=None, decode=None, **kwargs):
        super().__init__(**kwargs)
        self.augment = augment  # a built albumentations pipeline, or None
        self.decode = decode  # an ImageDecoder (harness.loaders.decode), or None for PIL
        self.paths = np.asarray(paths)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.batch = batch
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(self.paths))
        if shuffle:
            self.rng.shuffle(self.order)

    def __len__(self) -> int:
        return math.ceil(len(self.paths) / self.batch.size)

    def __getitem__(self, index: int):
        picked = self.order[index * self.batch.size : (index + 1) * self.batch.size]
        # the third element (Keras reads it as sample weights) carries the sample indices
        return load_batch(self.paths[picked], self.batch, self.augment, self.decode), self.labels[picked], picked.astype(np.int64)

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.rng.shuffle(self.order)
