"""Dataset classes behind ``loader=torch``, at module level so ``spawn`` workers can pickle them.

Imported only when that loader is built (it imports torch at the top).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from harness.config.schema import choice
from harness.loaders.decode import ImageDecoder, read_chw


class Decode:
    """Read, decode and resize one file to the batch's size, as a uint8 tensor in the batch's layout.

    ``decoder`` reads it (:mod:`harness.loaders.decode`); torchvision's stays a tensor throughout.

    With an augment spec, the file is decoded at its stored size and the spec's pipeline
    (torchvision on a CHW tensor, or albumentations on an HWC array) takes the resize's
    place. The pipeline is built in the process that first calls this, so each
    DataLoader worker builds its own; albumentations is seeded from the worker's torch
    seed, which the DataLoader derives from the loader's generator.
    """

    def __init__(self, batch, decoder: ImageDecoder, as_numpy: bool, augment=None):
        self.batch, self.read, self.as_numpy, self.augment = batch, decoder, as_numpy, augment
        self.decoder = decoder.name
        self.nchw = choice(batch.layout) == "nchw"
        self._pipeline = None

    def __getstate__(self):
        return dict(self.__dict__, _pipeline=None)  # workers build their own

    def pipeline(self):
        if self._pipeline is None:
            from harness.augment.pipeline import build

            self._pipeline = build(self.augment, torch.initial_seed() % 2**32)
        return self._pipeline

    def __call__(self, path: str):
        if self.decoder == "nvjpeg":  # the worker reads; the batch is decoded on the GPU (gpu_decode)
            from torchvision.io import read_file

            return read_file(path)
        if self.augment is not None:
            return self._augmented(path)
        if self.decoder == "torchvision":
            from torchvision.transforms.v2 import functional as F

            image = F.resize(read_chw(path, self.batch.channels), [self.batch.height, self.batch.width], antialias=True)
            image = image if self.nchw else image.permute(1, 2, 0).contiguous()  # decode_image gives CHW
            return image.numpy() if self.as_numpy else image
        array = self.read(path, self.batch)  # HWC
        if self.nchw:
            array = np.ascontiguousarray(array.transpose(2, 0, 1))
        return array if self.as_numpy else torch.from_numpy(array)

    def _augmented(self, path: str):
        pipeline = self.pipeline()
        if pipeline.library == "torchvision":  # CHW tensor in, CHW tensor out
            source = (
                read_chw(path, self.batch.channels)
                if self.decoder == "torchvision"
                else pipeline.native(self.read(path, self.batch, resize=False))
            )
            image = pipeline(source)
            image = image if self.nchw else image.permute(1, 2, 0).contiguous()
            return image.numpy() if self.as_numpy else image
        # albumentations: HWC array in, HWC array out
        source = self.read(path, self.batch, resize=False)
        array = pipeline(source)
        array = np.ascontiguousarray(array.transpose(2, 0, 1) if self.nchw else array)
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


def bytes_collate(samples):
    """A collate_fn for ``decoder=nvjpeg``: the files' bytes stay a list (their lengths differ)."""
    data, labels, indices = zip(*samples)
    return list(data), torch.as_tensor(labels), torch.as_tensor(indices)


def gpu_decode(data: list, batch, device) -> torch.Tensor:
    """Decode a batch of JPEG files' bytes on the GPU (nvJPEG through torchvision) and resize it there, in the batch's layout."""
    from torchvision.io import ImageReadMode, decode_jpeg
    from torchvision.transforms.v2 import functional as F

    mode = ImageReadMode.RGB if batch.channels == 3 else ImageReadMode.GRAY
    images = decode_jpeg(data, mode=mode, device=device)  # a list of CHW uint8 tensors on the device
    stacked = torch.stack([F.resize(image, [batch.height, batch.width], antialias=True) for image in images])
    return stacked if choice(batch.layout) == "nchw" else stacked.permute(0, 2, 3, 1).contiguous()


def set_worker_threads(threads: int, worker_id: int) -> None:
    """worker_init_fn: the torch threads each DataLoader worker may use."""
    torch.set_num_threads(threads)
