"""Shared fixtures: an isolated dataset cache and result folder per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


KIND_ORDER = {"integration": 0, "examples": 1, "contract": 2, "unit": 3}


def pytest_collection_modifyitems(items):
    """Longest first: the slow end-to-end tests start at once and the second-long unit tests fill the end.

    In collection order (contract, integration, unit alphabetically) the minute-long sweeps of
    test_tune, test_storage and test_torch_only came last, and one worker ran them for minutes
    while the other sat idle. Stable: within a kind, the files' own order holds.
    """
    parts = {item: Path(str(item.path)).relative_to(ROOT).parts for item in items}
    kind = {item: KIND_ORDER.get(p[1] if p[0] == "tests" and len(p) > 2 else p[0], 1) for item, p in parts.items()}
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, kind[item]))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One dataset cache for the whole session, so tiny datasets are built once."""
    return tmp_path_factory.mktemp("harness-cache")


@pytest.fixture(autouse=True)
def no_storage_mount_left(request):
    """After every test, none of this session's storage=throttled FUSE mounts is left (issue 26: mount lists none)."""
    yield
    if "cache_dir" in request.fixturenames:  # only a test that ran harness (cli) can have mounted anything
        from harness.storage.mount import leftover_mounts

        left = leftover_mounts(mounts(request.getfixturevalue("cache_dir")))
        assert left == [], f"FUSE mounts left behind: {left}"


@pytest.fixture
def cli(cache_dir, tmp_path):
    """Run ``python -m harness ...`` in a subprocess, as a user would, in a scratch folder."""

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        # No per-sweep calibration (1-6 s a sweep) unless a test asks for it with report.ceilings=true
        # storage=throttled mounts go in this session's own folder, so a test can tell its mounts from another worker's
        env = dict(
            os.environ, HARNESS_CACHE=str(cache_dir), PYTHONPATH=str(ROOT), HARNESS_CEILINGS="0", HARNESS_STORAGE_DIR=mounts(cache_dir)
        )
        return subprocess.run(
            [sys.executable, "-m", "harness", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
        )

    return run


def mounts(cache_dir: Path) -> str:
    """The folder this session's throttled storage mounts go in (harness.storage.mount.MOUNTS_ENV)."""
    return str(cache_dir.parent / f"{cache_dir.name}-mounts")


def sweep_dir(completed: subprocess.CompletedProcess, cwd: Path) -> Path:
    """The folder a run or sweep printed on its last line."""
    last = completed.stdout.strip().splitlines()[-1]
    path = Path(last)
    return path if path.is_absolute() else cwd / path
