"""A harness sweep through hydra-submitit-launcher's ``submitit_slurm`` on a real SLURM cluster.

``make slurm`` (ci/slurm/start) starts a one-node cluster on this machine, with accounting
(submitit reads job states with sacct); CI runs it before the tests. Where no cluster
answers, the test skips and says why.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.test_launcher import rows

SWEEP = ["loader=synthetic", "loader.produce_ms=1,2", "trial.steps=8", "trial.warmup_steps=2"]
NAME = "harness_test_slurm"  # the SLURM job name, to find (and on failure cancel) this test's jobs
# The overrides that run a sweep on SLURM: the launcher, and each job alone on its node(s)
SLURM = ["hydra/launcher=submitit_slurm", f"hydra.launcher.name={NAME}"]  # harness asks for whole nodes by itself
START = "make slurm (ci/slurm/start) starts a one-node cluster"


def slurm(*args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


def idle_node_cpus() -> int:
    """The CPUs of an idle node of the default partition; skips the test where no SLURM cluster answers."""
    if shutil.which("sinfo") is None:
        pytest.skip(f"no SLURM here: sinfo not found; {START}")
    try:
        done = slurm("sinfo", "-h", "-N", "-o", "%T %c", timeout=5)
    except subprocess.TimeoutExpired:
        pytest.skip(f"SLURM does not answer: sinfo took over 5 s; {START}")
    if done.returncode != 0:
        pytest.skip(f"SLURM does not answer: sinfo: {done.stderr.strip()[-300:]}; {START}")
    nodes = [line.split() for line in done.stdout.splitlines() if line.strip()]
    idle = [int(cpus) for state, cpus in nodes if state.rstrip("*~#") == "idle"]
    if not idle:
        pytest.skip(f"no idle SLURM node (sinfo: {', '.join(state for state, _ in nodes) or 'no nodes'})")
    return idle[0]


def variants(folder: Path) -> list[tuple[str, ...]]:
    """(job, the swept value, status) of every trial row."""
    return sorted((r["job"], r["loader.produce_ms"], r["status"]) for r in rows(folder) if r["kind"] == "trial")


def accounting(jobs: list[str], wait_s: float = 15) -> tuple[dict[str, list[str]], str]:
    """sacct's JobID -> [State, Start, End, AllocCPUS] of the jobs once all have ended (or after wait_s), and its stderr."""
    deadline = time.monotonic() + wait_s
    while True:
        done = slurm("sacct", "-n", "-X", "-P", "-o", "JobID,State,Start,End,AllocCPUS", "-j", ",".join(jobs))
        found = {line.split("|")[0]: line.split("|")[1:] for line in done.stdout.splitlines() if line.strip()}
        ended = all(job in found and found[job][0] not in ("PENDING", "RUNNING", "COMPLETING") for job in jobs)
        if ended or time.monotonic() > deadline:
            return found, done.stderr.strip()
        time.sleep(0.5)


@pytest.mark.slow
def test_submitit_slurm_runs_the_same_trials_and_rows_as_the_harness_launcher(cli, tmp_path):
    cpus = idle_node_cpus()
    try:
        for name, launcher in (("harness", ["hydra/launcher=harness"]), ("slurm", SLURM)):
            done = cli("sweep", *SWEEP, *launcher, f"hydra.sweep.dir={name}", timeout=90)
            assert done.returncode == 0, done.stderr[-2000:]
        assert "SLURM jobs ask for whole nodes (sbatch --exclusive)" in done.stderr
    finally:  # a failed or timed-out sweep leaves no job of this test on the cluster
        with contextlib.suppress(subprocess.TimeoutExpired):
            slurm("scancel", f"--name={NAME}")
    harness, on_slurm = (variants(tmp_path / name) for name in ("harness", "slurm"))
    assert len(harness) == 2 and harness == on_slurm and {row[-1] for row in harness} == {"ok"}
    assert list(rows(tmp_path / "harness")[0]) == list(rows(tmp_path / "slurm")[0])  # the same columns
    report = (tmp_path / "slurm" / "report.html").read_text()
    assert "trials ran at the same time as another" not in report  # exclusive jobs never overlap
    assert {r["host"] for r in rows(tmp_path / "slurm")} == {socket.gethostname()}
    # Each job ran as a SLURM job: an array task's folder with submitit's log, the override in sbatch's
    # script, and sacct records it COMPLETED, alone on the node (one after the other, every CPU its own).
    submitit = tmp_path / "slurm" / ".submitit"
    jobs = sorted(p.name for p in submitit.iterdir() if re.fullmatch(r"\d+_\d+", p.name))
    assert len(jobs) == 2 and all("Job completed successfully" in (submitit / j / f"{j}_0_log.out").read_text() for j in jobs), jobs
    script = (submitit / jobs[0].split("_")[0] / f"{jobs[0].split('_')[0]}_submission.sh").read_text()
    assert "#SBATCH --exclusive" in script and f"#SBATCH --job-name={NAME}" in script, script
    records, errors = accounting(jobs)
    assert {job: records.get(job, ["missing"])[0] for job in jobs} == dict.fromkeys(jobs, "COMPLETED"), f"sacct: {records} {errors}"
    assert all(int(records[job][3]) == cpus for job in jobs), records
    (_, _, first_end, _), (_, second_start, _, _) = sorted((records[job] for job in jobs), key=lambda r: r[1])
    assert second_start >= first_end, records  # ISO times without a zone compare as text
