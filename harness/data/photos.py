"""Real photographs, cut into as many distinct images as a dataset asks for (``dataset=photos``).

Generated images (:mod:`harness.data.synth`) compress like photographs, but a decoder's
speed also depends on real detail: edges, texture, noise, chroma. So this kind starts from
colour photographs that scikit-image ships inside its wheel, each under a licence that
lets anyone copy and alter it (public domain or CC0), and makes image ``i`` a random crop
of one of them (seeded: size, position, mirror), rescaled to ``width x height``. The files
are found without importing scikit-image, so building stays light.

Image ``i`` is a pure function of the sources' bytes and ``(seed, i)``, and the plan
guarantees that no two images share a source, crop box and mirror.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harness.config.schema import choice
from harness.data import synth
from harness.errors import HarnessError, MissingExtraError

PHOTOS_VERSION = 1  # bump when the crops or the rescaling change, so cached datasets are rebuilt
SMALLEST_CROP = 0.5  # a crop's side is 50-100% of the largest crop of the batch's aspect ratio that fits
ATTEMPTS = 100  # draws per image before giving up on finding a crop no other image has


@dataclass(frozen=True)
class Source:
    """One photograph: where it ships, and what its licence and credit are (from its package's docs)."""

    name: str  # class name when classes are per source
    file: str  # path inside the package
    licence: str  # as scikit-image's skimage/data/_fetchers.py states it
    credit: str  # who took it, where it was published


PACKAGE = "skimage"  # scikit-image's import name; its wheel ships these under skimage/data/
# Colour photographs only (brick, grass and gravel are grey; camera, coins, moon too), each with
# a licence its docstring in skimage/data/_fetchers.py states plainly. Left out: the Middlebury
# stereo pair (no licence stated), ihc.png ("no known copyright restrictions", a micrograph),
# and matplotlib's grace_hopper.jpg (matplotlib ships it without stating its licence).
SOURCES = (
    Source("astronaut", "data/astronaut.png", "public domain", "NASA (Eileen Collins), NASA Great Images database"),
    Source("chelsea", "data/chelsea.png", "CC0", "Stefan van der Walt"),
    Source("coffee", "data/coffee.png", "CC0", "Rachel Michetti, courtesy of Pikolo Espresso Bar"),
    Source("hubble_deep_field", "data/hubble_deep_field.jpg", "public domain", "NASA, HubbleSite (Hubble eXtreme Deep Field)"),
    Source("retina", "data/retina.jpg", "CC0 1.0", "Mikael Häggström, Wikimedia Commons"),
    Source("rocket", "data/rocket.jpg", "public domain", "SpaceX (DSCOVR launch on Falcon 9), SpaceX Photos"),
)


def locate() -> list[tuple[Source, Path]]:
    """Each source and its file, found through the package's import spec (nothing is imported).

    Raises:
        MissingExtraError: scikit-image is not installed (``pip install -e '.[photos]'``).
        HarnessError: it is, but without one of the photographs.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("dataset=photos", "scikit-image", "photos")
    root = Path(list(spec.submodule_search_locations)[0])
    found = [(s, root / s.file) for s in SOURCES]
    missing = [str(path) for _, path in found if not path.is_file()]
    if missing:
        raise HarnessError(
            f"dataset=photos: scikit-image is installed without {', '.join(missing)}; reinstall it (pip install -e '.[photos]')"
        )
    return found


def params(conf) -> dict:
    """What determines the dataset's bytes, the sources' SHA-1s included; dataset.json keeps it."""
    fmt = choice(conf.format)
    return {
        "kind": "photos",
        "photos_version": PHOTOS_VERSION,
        "count": conf.count,
        "width": conf.width,
        "height": conf.height,
        "format": fmt,
        "jpeg_quality": conf.jpeg_quality if fmt == "jpeg" else None,
        "classes": list(conf.classes),
        "seed": conf.seed,
        "sources": [
            dict(asdict(source), package="scikit-image", sha1=hashlib.sha1(path.read_bytes()).hexdigest()) for source, path in locate()
        ],
    }


def class_names(conf) -> list[str]:
    """The class folders: ``dataset.classes``, or one per source photograph when it is empty."""
    return list(conf.classes) or [s.name for s in SOURCES]


def plan(conf, images_dir: str) -> list[tuple]:
    """One job per image for :func:`write_image`: its source, crop box, mirror, size and file.

    Image ``i`` comes from source ``i mod n`` (so classes per source are balanced); its crop
    has the output's aspect ratio, so nothing is stretched.
    """
    from PIL import Image

    classes, sources = class_names(conf), locate()
    sizes = []
    for _, path in sources:
        with Image.open(path) as image:  # reads the header only
            sizes.append(image.size)
    fmt = choice(conf.format)
    ext = "jpg" if fmt == "jpeg" else "png"
    taken: set[tuple] = set()
    jobs = []
    for i in range(conf.count):
        k = i % len(sources)
        box, mirror = _distinct_crop(np.random.default_rng([conf.seed, i]), sizes[k], conf.width / conf.height, taken, k)
        label = sources[k][0].name if not conf.classes else classes[i % len(classes)]
        relative = f"{label}/{label}.{i:05d}.{ext}"
        jobs.append((str(sources[k][1]), box, mirror, conf.width, conf.height, fmt, conf.jpeg_quality, images_dir, relative))
    return jobs


def _distinct_crop(rng: np.random.Generator, size: tuple[int, int], aspect: float, taken: set, source: int):
    """A crop box (left, top, right, bottom) and mirror flag that no earlier image of the source has."""
    width, height = size
    full_w, full_h = (width, round(width / aspect)) if width / height <= aspect else (round(height * aspect), height)
    for _ in range(ATTEMPTS):
        scale = rng.uniform(SMALLEST_CROP, 1.0)
        w, h = max(1, round(full_w * scale)), max(1, round(full_h * scale))
        left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        key = (source, left, top, w, h, bool(rng.integers(0, 2)))
        if key not in taken:
            taken.add(key)
            return (left, top, left + w, top + h), key[-1]
    raise HarnessError(
        f"dataset=photos: found no new crop for image {len(taken)} in {ATTEMPTS} draws; ask for fewer images (dataset.count)"
    )


@functools.lru_cache(maxsize=len(SOURCES))
def _source(path: str):
    """A source decoded once per process: every worker crops the same few photographs many times."""
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def write_image(job) -> tuple[str, int, str]:
    """Crop, mirror, rescale and encode one image; ``(relative path, bytes, sha1)``."""
    from PIL import Image

    path, box, mirror, width, height, fmt, quality, images_dir, relative = job
    image = _source(path).crop(box)
    if mirror:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    # Lanczos, as photo tools scale: a smoother filter would make the images cheaper to encode and decode than real ones
    pixels = np.asarray(image.resize((width, height), Image.Resampling.LANCZOS))
    data = synth.encode(pixels, fmt, quality)
    Path(images_dir, relative).write_bytes(data)
    return relative, len(data), hashlib.sha1(data).hexdigest()
