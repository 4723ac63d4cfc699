"""Datasets: generated, photo and folder datasets built once into harness's cache, and their manifests."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """harness's own cache folder: ``$HARNESS_CACHE``, else ``~/.cache/harness`` (datasets go under it unless
    ``dataset.cache_dir`` says elsewhere; the storage emulator's built FUSE server under ``bin/``)."""
    return Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness").expanduser()
