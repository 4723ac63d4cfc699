"""Shared fixtures: an isolated dataset cache and result folder per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One dataset cache for the whole session, so tiny datasets are built once."""
    return tmp_path_factory.mktemp("harness-cache")


@pytest.fixture
def cli(cache_dir, tmp_path):
    """Run ``python -m harness ...`` in a subprocess, as a user would, in a scratch folder."""

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        # No per-sweep calibration (1-6 s a sweep) unless a test asks for it with report.ceilings=true
        env = dict(os.environ, HARNESS_CACHE=str(cache_dir), PYTHONPATH=str(ROOT), HARNESS_CEILINGS="0")
        return subprocess.run(
            [sys.executable, "-m", "harness", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
        )

    return run


def sweep_dir(completed: subprocess.CompletedProcess, cwd: Path) -> Path:
    """The folder a run or sweep printed on its last line."""
    last = completed.stdout.strip().splitlines()[-1]
    path = Path(last)
    return path if path.is_absolute() else cwd / path
