"""Deterministic photo-like images.

Decode cost and file size drive loader speed, so synthetic images must compress like
photographs: smooth lighting gradients, a few soft-edged objects, and sensor-like grain.
A flat or random-noise image would make JPEG decoding unrealistically cheap or dear.
Image ``i`` of seed ``s`` is a pure function of ``(s, i)``: any worker can render any
image, and the same parameters always give the same bytes.
"""

from __future__ import annotations

import io

import numpy as np

GENERATOR_VERSION = 2  # bump when the pixels change, so cached datasets are rebuilt


def render(seed: int, index: int, width: int, height: int) -> np.ndarray:
    """Render image ``index`` of ``seed`` as an ``(height, width, 3)`` uint8 array."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng([seed, index])
    image = Image.fromarray(_background(rng, width, height))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 9))):
        _shape(draw, rng, width, height)
    image = image.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.8, 2.0))))
    pixels = np.asarray(image, dtype=np.float32)
    grain = _grain(rng, width, height)
    out = np.empty((height, width, 3), dtype=np.uint8)
    for c in range(3):  # the same grain on every channel, added per channel (see _background)
        out[..., c] = np.clip(pixels[..., c] + grain, 0, 255)
    return out


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    # Both terms are separable (a plane and a plane wave), so they are built from one row
    # and one column by broadcasting: five times faster than evaluating them per pixel.
    x = np.arange(width, dtype=np.float32)[None, :] / width
    y = np.arange(height, dtype=np.float32)[:, None] / height
    angle = rng.uniform(0, 2 * np.pi)
    t = np.float32(np.cos(angle)) * x + np.float32(np.sin(angle)) * y
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    start, end = rng.uniform(20, 235, size=(2, 3)).astype(np.float32)
    # Low-frequency lighting variation, as in a real scene: sin(a + b) = sin a cos b + cos a sin b.
    fx, fy = rng.uniform(0.5, 3.0, size=2)
    phase = rng.uniform(0, 2 * np.pi)
    a, b = (2 * np.pi * fx * x).astype(np.float32), (2 * np.pi * fy * y + phase).astype(np.float32)
    light = 18 * (np.sin(a) * np.cos(b) + np.cos(a) * np.sin(b))
    out = np.empty((height, width, 3), dtype=np.uint8)
    for c in range(3):  # per channel: numpy broadcasts over a trailing axis of 3 slowly
        out[..., c] = np.clip(start[c] + t * (end[c] - start[c]) + light, 0, 255)
    return out


def _shape(draw, rng: np.random.Generator, width: int, height: int) -> None:
    color = tuple(int(c) for c in rng.integers(0, 256, size=3))
    x0, y0 = rng.uniform(-0.1, 0.9) * width, rng.uniform(-0.1, 0.9) * height
    w, h = rng.uniform(0.1, 0.5) * width, rng.uniform(0.1, 0.5) * height
    kind = int(rng.integers(0, 3))
    if kind == 0:
        draw.ellipse([x0, y0, x0 + w, y0 + h], fill=color)
    elif kind == 1:
        draw.rectangle([x0, y0, x0 + w, y0 + h], fill=color)
    else:
        points = [(x0 + rng.uniform(0, w), y0 + rng.uniform(0, h)) for _ in range(int(rng.integers(3, 7)))]
        draw.polygon(points, fill=color)


def _grain(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Sensor grain: mostly fine noise with a little coarser texture."""
    fine = rng.standard_normal(size=(height, width), dtype=np.float32) * np.float32(4.0)
    coarse = rng.standard_normal(size=(height // 4 + 1, width // 4 + 1), dtype=np.float32) * np.float32(6.0)
    coarse = coarse.repeat(4, axis=0).repeat(4, axis=1)[:height, :width]
    return fine + coarse


def encode(pixels: np.ndarray, fmt: str, quality: int) -> bytes:
    """Encode an RGB array as JPEG or PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    if fmt == "jpeg":
        image.save(buffer, format="JPEG", quality=quality)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()
