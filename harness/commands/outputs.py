"""Where runs and sweeps write, shared by the commands that launch trials (sweep, run, augbench)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

REPORTS_DIR = Path("reports")  # under the current folder, wherever harness is installed
FAILED_TRIALS_EXIT = 3  # exit status of a run or sweep that finished with some trials not ok


def new_result_dir(name: str, multirun: bool) -> Path:
    """``reports/<time>_<name>`` for a sweep, ``reports/runs/<time>_<name>`` for a run; never an existing folder."""
    base = REPORTS_DIR if multirun else REPORTS_DIR / "runs"
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    candidate, n = base / f"{stamp}_{name}", 1
    while candidate.exists():
        n += 1
        candidate = base / f"{stamp}_{name}-{n}"
    return candidate
