"""Pre-flight scan of a user's image folder: the files every loader can read alike.

Real folders hold 0-byte files, truncated downloads, text files named ``.jpg``, BMPs,
16-bit PNGs. One such file fails a whole tf.data epoch (without naming the file), and a
16-bit PNG comes out all-255 from PIL but scaled from TensorFlow. So every file is decoded
once with PIL, in parallel, once per version of the folder, and sorted into three kinds:

* **read as is**: JPEG or PNG with 8-bit samples, whatever the mode (grayscale, RGB,
  RGBA, palette, CMYK, bilevel). PIL, TensorFlow and torchvision agree on these (RGB out,
  alpha dropped, palette expanded, gray repeated); only TensorFlow's default JPEG
  decoder differs, by a few levels, because its default DCT is ``INTEGER_FAST`` — that
  is what a user's own ``tf.io.decode_jpeg`` does, so it is kept.
* **converted** into an 8-bit PNG in the dataset cache, by one rule for every library:
  16-bit samples are shifted right by 8 (as libpng and TensorFlow do), other formats
  (BMP, GIF, TIFF, WebP: torchvision or Keras' folder reader cannot read them) are
  re-encoded as PNG. Gray stays gray; any other mode becomes RGB.
* **skipped** with the reason (empty, truncated, not an image, unreadable), or the
  dataset refused when ``dataset.on_bad_file=fail``.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

# Read as is when PIL calls them so; MPO is the multi-picture JPEG that cameras write.
NATIVE_FORMATS = {"JPEG", "PNG", "MPO"}
CONVERTED_SUFFIX = ".png"  # appended to a converted file's name: cat/x.bmp -> cat/x.bmp.png

OK, CONVERT, BAD = "ok", "convert", "bad"


def inspect(path: str) -> tuple[str, str, int, str]:
    """Decode one file: ``(kind, reason, bytes, sha1)``, kind one of ``ok``, ``convert``, ``bad``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return BAD, f"unreadable ({exc.strerror})", 0, ""
    if not data:
        return BAD, "empty (0 bytes)", 0, ""
    digest = hashlib.sha1(data).hexdigest()
    kind, reason = _classify(data)
    return kind, reason, len(data), digest


def _classify(data: bytes) -> tuple[str, str]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return _kind_of(image, data)
    except UnidentifiedImageError:
        return BAD, "not an image"
    except Image.DecompressionBombError:
        return BAD, "too many pixels (PIL's decompression-bomb limit)"
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = str(exc)
        return BAD, "truncated" if "truncated" in text or isinstance(exc, EOFError) else f"undecodable ({text[:80]})"


def _kind_of(image, data: bytes) -> tuple[str, str]:
    if image.format not in NATIVE_FORMATS:
        return CONVERT, f"{image.format or 'unknown'} format"
    if _sixteen_bit(image, data):
        return CONVERT, "16-bit samples"
    return OK, ""


def _sixteen_bit(image, data: bytes) -> bool:
    # PIL loads a 16-bit RGB PNG as 8-bit RGB but a 16-bit gray one as I;16, and
    # torchvision returns uint16 for both: read the bit depth from the PNG header.
    if image.format == "PNG" and len(data) > 24 and data[24] == 16:
        return True
    return _wide_mode(image.mode)


def _wide_mode(mode: str) -> bool:
    """PIL's modes for samples wider than 8 bits: I;16 variants, 32-bit I, and F."""
    return mode.startswith("I") or mode == "F"


def convert(source: str, target: str) -> None:
    """Write ``source`` as an 8-bit PNG at ``target`` by the module's rule."""
    import numpy as np
    from PIL import Image

    with Image.open(source) as image:
        image.load()
        if _wide_mode(image.mode):
            wide = np.asarray(image).astype(np.int64)
            image = Image.fromarray(np.clip(wide >> 8, 0, 255).astype(np.uint8), "L")
        elif image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        image.save(target, "PNG")


def scan_job(job: tuple[str, str, str]) -> tuple[str, str, str, int, str, str | None]:
    """Scan one file and convert it if needed: ``(relative, kind, reason, bytes, sha1, written)``.

    Args:
        job: ``(source path, its name relative to the folder, the view folder)``.
    """
    source, relative, view = job
    kind, reason, size, digest = inspect(source)
    written = None
    if kind == CONVERT:
        written = relative + CONVERTED_SUFFIX
        try:
            convert(source, str(Path(view) / written))
        except (OSError, ValueError) as exc:
            kind, reason, written = BAD, f"could not convert ({exc})", None
    return relative, kind, reason, size, digest, written
