"""Image decoders: every way a Python-side loader can turn a file into resized pixels.

``loader.decoder`` picks one; each reads the file, decodes it and resizes it to
``batch.height x batch.width`` (uint8 HWC), and every family that offers the knob calls
the same :class:`ImageDecoder`, so a row differs from another by the decoder alone.

* ``pil``: ``Image.open`` + ``convert`` + ``resize(bilinear)``, the reference every other
  decoder is measured against (and what most Dataset classes do).
* ``pil_draft``: the same, after ``Image.draft``: libjpeg decodes the JPEG at 1/2, 1/4 or
  1/8 scale in the DCT (the strongest reduction that keeps both sides at least the
  batch's), so fewer pixels are decoded and resized. PNG has no such mode: PNG files are
  decoded in full.
* ``opencv``: ``cv2.imdecode`` + ``cvtColor(BGR->RGB)`` + ``cv2.resize(INTER_LINEAR)``, as
  OpenCV/albumentations pipelines do; the resize does not antialias when it shrinks.
* ``simplejpeg``: libjpeg-turbo through ``simplejpeg.decode_jpeg`` (``fastdct`` and
  ``fastupsample`` off unless asked), then PIL's bilinear resize; PNG files go to PIL.
* ``torchvision``: ``torchvision.io.decode_image`` + ``v2.resize(antialias)``.
* ``nvjpeg`` (``loader=torch`` on a CUDA GPU): the DataLoader's workers only read the files;
  the whole batch is decoded on the GPU by ``torchvision.io.decode_jpeg(device="cuda")``
  (nvJPEG) and resized there, so the batch reaches the consumer already on the device.

Each decoder's :class:`Tolerance` states how far its pixels may sit from PIL's on the same
files; ``tests/unit/test_decode.py`` holds every decoder to it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from harness.config.schema import choice
from harness.errors import ConfigError, require
from harness.loaders.images import load_pil


class Decoder(Enum):
    """Decoders of a family that can hand torch tensors (loader=torch)."""

    pil = "pil"  # PIL open+convert+resize(bilinear): the reference
    pil_draft = "pil_draft"  # PIL with Image.draft: JPEG decoded at 1/2, 1/4 or 1/8 scale, then resized
    opencv = "opencv"  # cv2.imdecode+cvtColor+resize(INTER_LINEAR)
    simplejpeg = "simplejpeg"  # libjpeg-turbo via simplejpeg.decode_jpeg, then PIL's resize
    torchvision = "torchvision"  # torchvision.io.decode_image+v2.resize(antialias)
    nvjpeg = "nvjpeg"  # workers read the bytes; torchvision.io.decode_jpeg(device="cuda") decodes the batch on the GPU


class ArrayDecoder(Enum):
    """Decoders of a family that hands numpy arrays (no torchvision)."""

    pil = "pil"  # PIL open+convert+resize(bilinear): the reference
    pil_draft = "pil_draft"  # PIL with Image.draft: JPEG decoded at 1/2, 1/4 or 1/8 scale, then resized
    opencv = "opencv"  # cv2.imdecode+cvtColor+resize(INTER_LINEAR)
    simplejpeg = "simplejpeg"  # libjpeg-turbo via simplejpeg.decode_jpeg, then PIL's resize


ARRAY_DECODERS = tuple(d.value for d in ArrayDecoder)  # every CPU decoder, as a family's Knobs.decoders lists them


@dataclass(frozen=True)
class Tolerance:
    """How far a decoder's pixels may sit from PIL's (``pil``) on the same file, in levels of 255."""

    mean: float  # mean absolute difference over every pixel of a file
    max: int  # largest absolute difference of any one pixel


@dataclass(frozen=True)
class DecoderInfo:
    module: str | None  # the library it imports; None: PIL, a core dependency
    extra: str  # the pip extra that installs it
    jpeg_only: bool  # other files (PNG) are decoded by PIL instead
    reads: str  # how it reads and decodes, for describe() and the report
    resizes: str  # how it resizes
    tolerance: Tolerance | None  # against pil, on the same files (measured: see the comments); None: not measured yet


# Tolerances hold for photo-sized files shrunk to a batch: measured per file on 300 generated and 300
# cropped real (dataset=photos) 500x375 JPEGs at quality 90, each decoded to 150x150, 112x150 and
# 224x224, and set just above the largest value seen. Tiny files (the tests' 64x48 images to 32x24)
# differ more where the resize differs: pil_draft mean up to 8.1, opencv up to 7.1.
DECODERS: dict[str, DecoderInfo] = {
    "pil": DecoderInfo(None, "", False, "PIL open+convert", "resize(bilinear)", Tolerance(0.0, 0)),
    # libjpeg's scaled IDCT (1/2 for 500x375 to 150x150), then a bilinear resize from about the batch's
    # size instead of from the full image: measured mean per file up to 2.36 (photos; generated 1.40), max 78.
    # When a side is under 2x the batch's (500x375 to 224x224) draft decodes in full: identical to pil
    "pil_draft": DecoderInfo(None, "", True, "PIL open+draft(JPEG at 1/2-1/8 scale)+convert", "resize(bilinear)", Tolerance(2.5, 80)),
    # the same libjpeg-turbo IDCT as PIL's; cv2.resize's INTER_LINEAR does not antialias when it
    # shrinks, so edges alias: measured mean up to 4.83 (photos at 112x150; generated 3.11), max 154
    "opencv": DecoderInfo("cv2", "aug", False, "cv2.imdecode+cvtColor(BGR2RGB)", "cv2.resize(INTER_LINEAR)", Tolerance(5.0, 160)),
    # libjpeg-turbo with PIL's settings (accurate integer DCT, smooth upsampling) and PIL's resize:
    # measured identical on every file
    "simplejpeg": DecoderInfo("simplejpeg", "data", True, "simplejpeg.decode_jpeg", "PIL resize(bilinear)", Tolerance(0.0, 0)),
    # the same libjpeg-turbo decode; v2.resize's antialiased bilinear rounds a few pixels the other
    # way: measured mean up to 0.004, max 1
    "torchvision": DecoderInfo("torchvision", "torch", False, "torchvision.io.decode_image", "v2.resize(antialias)", Tolerance(0.01, 1)),
    # nvJPEG's IDCT and upsampling are not libjpeg-turbo's: not yet measured on a GPU, so no tolerance is claimed
    "nvjpeg": DecoderInfo(
        "torchvision", "torch", True, "read_file in workers, decode_jpeg(device=cuda) per batch", "v2.resize(antialias) on the GPU", None
    ),
}
# simplejpeg with fastdct and fastupsample (libjpeg-turbo's fast paths, less exact): measured mean up to
# 1.33, max 23 (at 224x224, where PIL's resize smooths least)
FAST_TOLERANCE = Tolerance(1.4, 24)


@dataclass(frozen=True)
class ImageDecoder:
    """A decoder as a family's config chose it: picklable into DataLoader workers and PyDataset processes.

    Call it as ``decoder(path, batch)`` for a uint8 HWC array of ``batch.height x batch.width``
    (``resize=False``: at the stored size, for an augment pipeline that resizes itself).
    """

    name: str = "pil"  # a key of DECODERS
    fastdct: bool = False  # simplejpeg: libjpeg-turbo's fast integer DCT
    fastupsample: bool = False  # simplejpeg: nearest-neighbour chroma upsampling

    @classmethod
    def of(cls, conf) -> ImageDecoder:
        """The decoder a family's config node asks for (``pil`` for a family without the knob)."""
        return cls(
            choice(getattr(conf, "decoder", "pil")), bool(getattr(conf, "fastdct", False)), bool(getattr(conf, "fastupsample", False))
        )

    @property
    def info(self) -> DecoderInfo:
        return DECODERS[self.name]

    @property
    def tolerance(self) -> Tolerance | None:
        return FAST_TOLERANCE if self.fastdct or self.fastupsample else self.info.tolerance

    def check(self, augment: bool = False) -> None:
        """Refuse settings that do nothing, without importing anything.

        Args:
            augment: an augment pipeline runs, so images are decoded at their stored size.
        """
        if (self.fastdct or self.fastupsample) and self.name != "simplejpeg":
            key = "fastdct" if self.fastdct else "fastupsample"
            raise ConfigError(f"loader.{key}=true is a simplejpeg setting; set loader.decoder=simplejpeg or drop it")
        if augment and self.name == "pil_draft":
            raise ConfigError(
                "loader.decoder=pil_draft decodes at reduced scale for the loader's resize, but with augment.ops "
                "images are decoded at their stored size; use loader.decoder=pil"
            )
        if self.name == "nvjpeg":
            check_nvjpeg(augment)

    def require(self, what: str) -> None:
        """Import the decoder's library now (a one-line error names the extra), so that
        ``threads.configure`` sees OpenCV before the first image is decoded."""
        if self.info.module is not None:
            require(self.info.module, what=f"{what} loader.decoder={self.name}", extra=self.info.extra)

    def describe(self, image_format: str | None = None, resize: bool = True) -> str:
        """The decoder's chain, e.g. ``cv2.imdecode+cvtColor(BGR2RGB)+cv2.resize(INTER_LINEAR)``.

        Args:
            image_format: the dataset's (``DatasetManifest.image_format()``): a JPEG-only decoder
                says when PIL decodes the files instead.
            resize: include the resize (an augment pipeline replaces it).
        """
        label = self.info.reads + (f"+{self.info.resizes}" if resize else "")
        if self.fastdct or self.fastupsample:
            label = label.replace("decode_jpeg", f"decode_jpeg(fastdct={self.fastdct}, fastupsample={self.fastupsample})")
        if self.info.jpeg_only and image_format != "jpeg":
            which = "every file is PNG" if image_format == "png" else "non-JPEG files"
            label += f" [{which}: PIL's full decode, {self.name} reads JPEG only]"
        return label

    def chain(self, image_format: str | None, augment=None) -> str:
        """:meth:`describe`, with the augment pipeline (an augment ``Spec``) in the resize's place when one runs."""
        if augment is None:
            return self.describe(image_format)
        return f"{self.describe(image_format, resize=False)}+augment({augment.library}: {augment.order_label()})"

    def __call__(self, path: str, batch, resize: bool = True) -> np.ndarray:
        if self.name == "pil":
            return load_pil(path, batch, resize)
        if self.name == "pil_draft":
            return load_pil(path, batch, resize, draft=resize)
        if self.name == "opencv":
            return _opencv(path, batch, resize)
        if self.name == "simplejpeg":
            return _simplejpeg(path, batch, resize, self.fastdct, self.fastupsample)
        if self.name in ("torchvision", "nvjpeg"):  # nvjpeg: one file through the same nvJPEG decode (the CPU's without CUDA)
            image = read_chw(path, batch.channels, device="cuda" if self.name == "nvjpeg" and _cuda() else "cpu")
            if resize:
                from torchvision.transforms.v2 import functional as F

                image = F.resize(image, [batch.height, batch.width], antialias=True)
            return image.permute(1, 2, 0).contiguous().cpu().numpy()
        raise ValueError(f"unknown decoder {self.name!r}")  # the config enums allow only DECODERS' keys


def check_nvjpeg(augment: bool) -> None:
    """``loader.decoder=nvjpeg`` needs a CUDA GPU that torch can use; an augment pipeline runs per sample on the CPU."""
    if augment:
        raise ConfigError(
            "loader.decoder=nvjpeg decodes whole batches on the GPU, but augment.ops run per sample on the CPU; "
            "use loader.decoder=torchvision"
        )
    from harness.trial.consumer import cuda_unavailable_reason  # asks NVML first: no torch import on a machine without a GPU

    reason = cuda_unavailable_reason()
    if reason is not None:
        raise ConfigError(
            f"loader.decoder=nvjpeg decodes on a CUDA GPU (torchvision.io.decode_jpeg(device='cuda')), but here: {reason}; "
            "use loader.decoder=torchvision (the same library's CPU decode)"
        )


def read_chw(path: str, channels: int, device: str = "cpu"):
    """torchvision.io: read and decode at the stored size, uint8 CHW tensor (``device="cuda"``: JPEG by nvJPEG, on the GPU)."""
    from torchvision.io import ImageReadMode, decode_image, decode_jpeg, read_file

    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    if device != "cpu":
        return decode_jpeg(read_file(path), mode=mode, device=device)
    return decode_image(read_file(path), mode=mode)


@functools.cache  # once a process: NVML's probe starts and stops NVML, and this runs per file (calibration times it)
def _cuda() -> bool:
    from harness.trial.consumer import cuda_unavailable_reason

    return cuda_unavailable_reason() is None


def _opencv(path: str, batch, resize: bool) -> np.ndarray:
    import cv2

    # PIL does not apply EXIF orientation, and neither may OpenCV, or the pixels would differ by a rotation
    flags = (cv2.IMREAD_COLOR if batch.channels == 3 else cv2.IMREAD_GRAYSCALE) | cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), flags)
    if image is None:
        raise OSError(f"{path}: OpenCV cannot decode it")
    if batch.channels == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if resize:
        image = cv2.resize(image, (batch.width, batch.height), interpolation=cv2.INTER_LINEAR)
    return image if image.ndim == 3 else image[..., None]


def _simplejpeg(path: str, batch, resize: bool, fastdct: bool, fastupsample: bool) -> np.ndarray:
    import simplejpeg
    from PIL import Image

    data = Path(path).read_bytes()
    # libjpeg-turbo cannot turn CMYK/YCCK into RGB; those and PNG take PIL's path, as pil_draft's do
    if not simplejpeg.is_jpeg(data) or simplejpeg.decode_jpeg_header(data)[2] not in ("Gray", "YCbCr", "RGB"):
        return load_pil(path, batch, resize)
    gray = batch.channels == 1
    array = simplejpeg.decode_jpeg(data, colorspace="GRAY" if gray else "RGB", fastdct=fastdct, fastupsample=fastupsample)
    if resize:
        image = Image.fromarray(array[..., 0] if gray else array).resize((batch.width, batch.height), Image.Resampling.BILINEAR)
        array = np.array(image, dtype=np.uint8)
    return array if array.ndim == 3 else array[..., None]
