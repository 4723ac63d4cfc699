"""The throttled storage's FUSE server, built from its C source (``throttle.c``, libfuse 3) on first use.

The build goes to ``$HARNESS_CACHE/bin`` (default ``~/.cache/harness/bin``) under a name that holds
the source's hash, so an edited source is built again and two sweeps at once (or two test workers)
never run a half-written file: each compiles to a temporary name and renames it into place.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.paths import cache_home

SOURCE = Path(__file__).with_name("throttle.c")
NAME = "harness-throttle"  # the binary's name (with the source's hash), so a test can find its process
INSTALL = "Debian/Ubuntu: apt-get install gcc pkg-config libfuse3-dev, or make fuse"


def path() -> Path:
    """Where this source's build lives (it may not be built yet): under harness's cache folder, which a test may move."""
    return cache_home() / "bin" / f"{NAME}-{_digest()}"


@functools.cache
def _digest() -> str:
    """The source's hash, read once a process (every throttled trial asks for the path twice)."""
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]


def build() -> str | None:
    """Build the server unless it is built; why it could not be, or None."""
    target = path()
    if target.exists():
        return None
    cc = shutil.which(os.environ.get("CC") or "cc") or shutil.which("gcc")
    if not cc or not shutil.which("pkg-config"):
        return f"a C compiler and pkg-config are needed to build the FUSE server ({INSTALL})"
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], capture_output=True, text=True)
    if flags.returncode != 0:
        return f"libfuse 3's headers are not installed ({INSTALL})"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, part = tempfile.mkstemp(prefix=f".{NAME}-", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run([cc, "-O2", "-o", part, str(SOURCE), *flags.stdout.split()], capture_output=True, text=True)
        if done.returncode != 0:
            return f"the FUSE server did not compile: {(done.stderr.strip().splitlines() or ['no output'])[-1]}"
        os.replace(part, target)
    finally:
        if os.path.exists(part):
            os.unlink(part)
    return None
