"""Where runs and sweeps write, shared by the commands that launch trials (sweep, run, augbench)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

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


def write_trial_config(cfg: DictConfig, job_dir: Path):
    """The job's resolved config without Hydra's node, as ``job_dir/trial.yaml`` (all a trial reads).

    Returns:
        (the file, the config without ``hydra``).
    """
    job_dir.mkdir(parents=True, exist_ok=True)
    plain = OmegaConf.masked_copy(cfg, [str(k) for k in cfg.keys() if k != "hydra"])
    config_file = job_dir / "trial.yaml"
    config_file.write_text(OmegaConf.to_yaml(plain, resolve=True))
    return config_file, plain
