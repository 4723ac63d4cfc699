"""Where harness keeps what it builds once and reuses: a module with no harness imports, so any package may use it
(datasets and the storage emulator's FUSE server both live under the one cache folder)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """harness's own cache folder: ``$HARNESS_CACHE``, else ``~/.cache/harness`` (datasets go under it unless
    ``dataset.cache_dir`` says elsewhere; the storage emulator's built FUSE server under ``bin/``)."""
    return Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness").expanduser()
