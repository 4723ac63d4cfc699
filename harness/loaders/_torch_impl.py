"""Dataset classes behind ``loader=torch``, at module level so ``spawn`` workers can pickle them.

Imported only when that loader is built (it imports torch at the top).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from harness.config.schema import choice
from harness.loaders.images import load_pil


class Decode:
    """Read, decode and resize one file to the batch's size, as a uint8 tensor in the batch's layout."""

    def __init__(self, batch, decoder: str, as_numpy: bool):
        self.batch, self.decoder, self.as_numpy = batch, decoder, as_numpy
        self.nchw = choice(batch.layout) == "nchw"

    def __call__(self, path: str):
        if self.decoder == "torchvision":
            from torchvision.io import ImageReadMode, decode_image, read_file
            from torchvision.transforms.v2 import functional as F

            mode = ImageReadMode.RGB if self.batch.channels == 3 else ImageReadMode.GRAY
            image = F.resize(decode_image(read_file(path), mode=mode), [self.batch.height, self.batch.width], antialias=True)
            image = image if self.nchw else image.permute(1, 2, 0).contiguous()  # decode_image gives CHW
            return image.numpy() if self.as_numpy else image
        array = load_pil(path, self.batch)  # HWC
        if self.nchw:
            array = np.ascontiguousarray(array.transpose(2, 0, 1))
        return array if self.as_numpy else torch.from_numpy(array)


class FilesDataset(Dataset):
    """Map-style: ``__getitem__(i)`` returns (image, label, i)."""

    def __init__(self, paths, labels, decode: Decode):
        self.paths, self.labels, self.decode = list(paths), list(labels), decode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        return self.decode(self.paths[index]), self.labels[index], index


class FilesIterable(IterableDataset):
    """Iterable-style: each worker reads its own shard (every num_workers-th file)."""

    def __init__(self, paths, labels, decode: Decode):
        self.paths, self.labels, self.decode = list(paths), list(labels), decode

    def __iter__(self):
        info = get_worker_info()
        start, step = (info.id, info.num_workers) if info is not None else (0, 1)
        for index in range(start, len(self.paths), step):
            yield self.decode(self.paths[index]), self.labels[index], index


def numpy_stack(samples):
    """A collate_fn: stack numpy samples once, then one torch.from_numpy per field."""
    images, labels, indices = zip(*samples)
    return torch.from_numpy(np.stack(images)), torch.as_tensor(labels), torch.as_tensor(indices)


def set_worker_threads(threads: int, worker_id: int) -> None:
    """worker_init_fn: the torch threads each DataLoader worker may use."""
    torch.set_num_threads(threads)
