"""Image helpers shared by the Python-side loaders (Sequence, generator, torch with PIL).

Every family must hand the consumer the same shape, dtype and layout; these helpers do
the last conversion the same way for all of them. The other decoders a family can choose
(``loader.decoder``) live in :mod:`harness.loaders.decode`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from harness.config.schema import choice


def load_pil(path: str, batch, resize: bool = True, draft: bool = False) -> np.ndarray:
    """Decode a file with PIL and resize to ``batch.height x batch.width``: uint8 HWC.

    ``resize=False`` keeps the stored size (an augment pipeline resizes later).
    ``draft=True`` lets libjpeg decode a JPEG at 1/2, 1/4 or 1/8 scale (``Image.draft``),
    the strongest reduction that keeps both sides at least the batch's; other formats decode in full.
    """
    from PIL import Image

    with Image.open(path) as image:
        if draft and image.format == "JPEG":
            image.draft("RGB" if batch.channels == 3 else "L", (batch.width, batch.height))
        image = image.convert("RGB" if batch.channels == 3 else "L")
        if resize:
            image = image.resize((batch.width, batch.height), Image.Resampling.BILINEAR)
        array = np.array(image, dtype=np.uint8)  # writable: torch.from_numpy refuses read-only memory
    return array if array.ndim == 3 else array[..., None]


def finish(images: np.ndarray, batch) -> np.ndarray:
    """uint8 NHWC -> the batch's dtype and layout."""
    if choice(batch.layout) == "nchw":
        images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    if choice(batch.dtype) != "uint8":
        images = images.astype(choice(batch.dtype))
    return images


def load_batch(paths: Iterable[str], batch, augment=None, decode=None) -> np.ndarray:
    """Decode and stack files into one batch in the config's dtype and layout.

    Args:
        augment: a built numpy-in, numpy-out pipeline (albumentations) run on each
            image at its stored size, or ``None`` to resize only.
        decode: ``decode(path, batch, resize=True)`` -> uint8 HWC (a
            :class:`~harness.loaders.decode.ImageDecoder`); ``None``: :func:`load_pil`.
    """
    load = decode or load_pil
    if augment is None:
        return finish(np.stack([load(p, batch) for p in paths]), batch)
    return finish(np.stack([augment.apply_numpy(load(p, batch, resize=False)) for p in paths]), batch)


def batches_of(indices: Sequence[int], size: int, drop_last: bool) -> list[Sequence[int]]:
    chunks = [indices[i : i + size] for i in range(0, len(indices), size)]
    if drop_last and chunks and len(chunks[-1]) < size:
        chunks.pop()
    return chunks
