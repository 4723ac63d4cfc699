"""A user's folder as real folders are: odd modes and formats, broken files, odd names.

Every image is 48x64, so a loader asked for 48x64 batches resizes nothing and families
can be compared pixel for pixel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HEIGHT, WIDTH = 48, 64
PLAIN_PER_CLASS = 6  # ordinary RGB JPEGs per class
BAD = {"cat/empty.jpg": "empty (0 bytes)", "cat/truncated.jpg": "truncated", "dog/notes-really.jpg": "not an image"}
CONVERTED = {"cat/deep16.png": "16-bit samples", "dog/bitmap.bmp": "BMP format"}
IGNORED = {"nested folders": ["dog/more"], "hidden files": ["cat/._apple.jpg"], "other files": ["cat/readme.txt"]}


def _pixels(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth gradients plus a little noise: JPEG-like content, not white noise
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1) + rng.integers(0, 40, (HEIGHT, WIDTH, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def make_odd_folder(root: Path, plain_per_class: int = PLAIN_PER_CLASS) -> dict[str, int]:
    """Write the folder; return how many files of each class every loader must deliver."""
    from PIL import Image

    for name in ("cat", "dog", "dog/more"):
        (root / name).mkdir(parents=True, exist_ok=True)
    seed = 0
    for label in ("cat", "dog"):
        for i in range(plain_per_class):
            seed += 1
            Image.fromarray(_pixels(seed)).save(root / label / f"{label}.{i}.jpg", quality=90)
    odd = {
        "cat/gray.jpg": lambda p: p.convert("L").save(root / "cat/gray.jpg"),
        "cat/gray.png": lambda p: p.convert("L").save(root / "cat/gray.png"),
        "cat/alpha.png": lambda p: p.convert("RGBA").save(root / "cat/alpha.png"),
        "cat/고양이.jpg": lambda p: p.save(root / "cat/고양이.jpg"),
        "dog/palette.png": lambda p: p.convert("P").save(root / "dog/palette.png"),
        "dog/cmyk.jpg": lambda p: p.convert("CMYK").save(root / "dog/cmyk.jpg"),
        "dog/café é.png": lambda p: p.save(root / "dog/café é.png"),
        "dog/bitmap.bmp": lambda p: p.save(root / "dog/bitmap.bmp"),
        "dog/chien.png": lambda p: p.save(root / "dog/chien.png"),
    }
    for write in odd.values():
        seed += 1
        write(Image.fromarray(_pixels(seed)))
    wide = _pixels(seed + 1)[..., 0].astype(np.uint16) * 257 + 100
    Image.fromarray(wide).save(root / "cat/deep16.png")  # 16-bit grayscale PNG
    good = (root / "cat/cat.0.jpg").read_bytes()
    (root / "cat/empty.jpg").write_bytes(b"")
    (root / "cat/truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "dog/notes-really.jpg").write_text("this is not a picture\n")
    (root / "cat/._apple.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (root / "cat/readme.txt").write_text("labels by hand\n")
    Image.fromarray(_pixels(999)).save(root / "dog/more/nested.jpg")
    readable = [*odd, "cat/deep16.png"]
    return {label: plain_per_class + sum(name.startswith(label + "/") for name in readable) for label in ("cat", "dog")}
