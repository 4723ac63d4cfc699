"""Sample grids: what a pipeline does to a few images, saved as ``samples.png``.

Every grid of a sweep uses the same source images (the dataset's first files by name)
and the same seeds, so grids of two orders or two libraries differ only by the pipeline.
Row 1 shows the sources, rows 2 and 3 two seeded draws of the pipeline. Normalized
(float) output is stretched to 0..255 per image for display.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

SAMPLES_FILE = "samples.png"
DRAWS = 2
LABEL_H = 18


def source_images(manifest, channels: int, count: int) -> list[np.ndarray]:
    """The dataset's first ``count`` files by name, decoded at their stored size (uint8 HWC)."""
    from types import SimpleNamespace

    from harness.loaders.images import load_pil

    paths = sorted(manifest.columns()[0])[:count]
    return [load_pil(p, SimpleNamespace(channels=channels), resize=False) for p in paths]


def displayable(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        out = image
    else:
        low, high = float(image.min()), float(image.max())
        out = ((image - low) / max(high - low, 1e-6) * 255).round().astype(np.uint8)
    return np.repeat(out, 3, axis=2) if out.shape[2] == 1 else out


def draws(spec, images: Sequence[np.ndarray], seed: int) -> list[list[np.ndarray]]:
    """``DRAWS`` rows of pipeline outputs, each from a pipeline built afresh with seed ``seed + row``."""
    from harness.augment.pipeline import build

    rows = []
    for d in range(DRAWS):
        pipeline = build(spec, seed + d)
        rows.append([displayable(pipeline.apply_numpy(image)) for image in images])
    return rows


def save_grid(sources: Sequence[np.ndarray], rows: list[list[np.ndarray]], title: str, path: Path) -> Path:
    """Tile sources (resized to the output cell) above the pipeline's rows, with a title."""
    from PIL import Image, ImageDraw

    cell_h, cell_w = rows[0][0].shape[:2]
    scale = min(1.0, 160 / max(cell_h, cell_w))
    ch, cw = max(1, round(cell_h * scale)), max(1, round(cell_w * scale))
    grid = [[displayable(s) for s in sources]] + rows
    canvas = Image.new("RGB", (cw * len(sources) + 2 * (len(sources) - 1), LABEL_H + (ch + 2) * len(grid)), "white")
    for r, row in enumerate(grid):
        for c, image in enumerate(row):
            tile = Image.fromarray(image).resize((cw, ch), Image.Resampling.BILINEAR)
            canvas.paste(tile, (c * (cw + 2), LABEL_H + r * (ch + 2)))
    ImageDraw.Draw(canvas).text((2, 3), title + "   (top: sources; below: 2 seeded draws)", fill="black")
    path = Path(path)
    canvas.save(path)
    return path


def write_samples(spec, manifest, channels: int, count: int, seed: int, folder: Path) -> Path:
    sources = source_images(manifest, channels, count)
    rows = draws(spec, sources, seed)
    return save_grid(sources, rows, f"{spec.library}: {spec.order_label()}", Path(folder) / SAMPLES_FILE)
