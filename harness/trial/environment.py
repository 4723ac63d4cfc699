"""The environment a trial ran in: machine, GPU, library versions, project commit.

Versions come from package metadata, so recording them imports no framework.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from functools import lru_cache
from importlib import metadata

from harness.config import PROJECT_ROOT

LAUNCHER_VARIABLES = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_NODELIST", "SLURM_CPUS_ON_NODE")
PACKAGES = ("tensorflow", "keras", "torch", "torchvision", "albumentations", "numpy", "pillow", "hydra-core", "nvidia-ml-py", "psutil")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@lru_cache(maxsize=1)
def git_commit() -> dict[str, str | bool | None]:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if dirty is None else bool(dirty)}


def collect() -> dict:
    """Everything a comparison between two results needs to know about the machine."""
    import psutil

    from harness.trial import cores, nvml

    gpu = nvml.probe()
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_logical": psutil.cpu_count(logical=True),
        "cpu_physical": psutil.cpu_count(logical=False),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        # what the trial's pools could really use: the affinity mask capped by the cgroup quota, not os.cpu_count()
        "cpu_usable": cores.usable(),
        "cpu_quota": cores.quota(),
        "ram_bytes": psutil.virtual_memory().total,
        "gpu": gpu,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        # where a launcher placed the job, so a row says which allocation it ran in
        "launcher": {k: v for k, v in os.environ.items() if k in LAUNCHER_VARIABLES},
        "packages": package_versions(),
        "harness": git_commit(),
    }


def fingerprint(env: dict) -> dict:
    """The fields that make absolute numbers comparable between two machines."""
    gpus = [g["name"] for g in env.get("gpu", {}).get("gpus", [])]
    packages = env.get("packages", {})
    return {
        "cpu_model": env.get("cpu_model"),
        "cpu_logical": env.get("cpu_logical"),
        "ram_gib": round((env.get("ram_bytes") or 0) / 2**30),
        "gpus": gpus,
        "tensorflow": packages.get("tensorflow"),
        "torch": packages.get("torch"),
    }
