"""Your own input pipelines, measured beside harness's built-in ones (``loader=custom``).

Each function is what you would write for training: it gets the dataset's files
(``data.paths``, ``data.labels``, ``data.ids``, ``data.folder``), the batch harness expects
(``batch.size``, ``batch.height``, ``batch.width``, ``batch.dtype``, ``batch.layout``) and
your own keyword arguments (``loader.kwargs.NAME=...``, each one a sweep axis), and returns
the pipeline as you would hand it to ``model.fit`` or an epoch loop.

    python -m harness sweep loader=custom loader.target=examples.my_pipeline:make_tf loader.kwargs.parallel=1,autotune
    python -m harness sweep --config-dir examples/experiments experiment=mine_vs_builtin
"""

from __future__ import annotations


def make_tf(data, batch, parallel="autotune", prefetch=True):
    """The tf.data chain of the study notes: file list -> map(read, decode, resize) -> batch -> prefetch."""
    import tensorflow as tf

    calls = tf.data.AUTOTUNE if parallel == "autotune" else int(parallel)

    def load(path, label, sample_id):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=batch.channels)
        image = tf.image.resize(image, (batch.height, batch.width))  # bilinear, float32
        return tf.cast(image, batch.dtype), label, sample_id

    ds = tf.data.Dataset.from_tensor_slices((data.paths, data.labels, data.ids))
    ds = ds.map(load, num_parallel_calls=calls).batch(batch.size)
    return ds.prefetch(tf.data.AUTOTUNE) if prefetch else ds


def make_torch(data, batch, workers=2, pin_memory=False):
    """A map-style Dataset that opens each file with PIL, behind a DataLoader with worker processes."""
    from torch.utils.data import DataLoader

    return DataLoader(
        Files(data.paths, data.labels, data.ids, (batch.width, batch.height)),
        batch_size=batch.size,
        num_workers=int(workers),
        pin_memory=bool(pin_memory),
        collate_fn=collate,
    )


class Files:
    """``dataset[i]`` is one decoded, resized image as uint8 HWC, its label and its id."""

    def __init__(self, paths, labels, ids, size):
        self.paths, self.labels, self.ids, self.size = paths, labels, ids, size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import numpy as np
        from PIL import Image

        with Image.open(self.paths[i]) as image:
            pixels = np.asarray(image.convert("RGB").resize(self.size, Image.BILINEAR))
        return pixels, self.labels[i], self.ids[i]


def collate(samples):
    """uint8 NHWC batches, labels and ids: what harness's default batch.* asks for."""
    import numpy as np
    import torch

    images, labels, ids = zip(*samples)
    return torch.from_numpy(np.stack(images)), torch.tensor(labels), list(ids)
