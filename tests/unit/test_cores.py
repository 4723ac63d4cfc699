"""``trial.cpus`` and the usable cores: affinity, cgroup quotas (v1 and v2), confining a process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config.compose import compose
from harness.config.validate import validate
from harness.errors import ConfigError
from harness.trial import cores
from tests.conftest import ROOT


def cgroup_tree(tmp_path: Path, own: str, files: dict[str, str]) -> tuple[Path, Path]:
    """A fake /sys/fs/cgroup (``files``: relative path -> content) and a /proc/self/cgroup saying ``own``."""
    root = tmp_path / "cgroup"
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    tmp_path.mkdir(parents=True, exist_ok=True)
    self_cgroup = tmp_path / "self_cgroup"
    self_cgroup.write_text(own)
    return root, self_cgroup


@pytest.mark.parametrize(
    "own, files, expected",
    [
        ("0::/job\n", {"job/cpu.max": "150000 100000\n"}, 1.5),  # v2: a container's --cpus=1.5
        ("0::/job\n", {"job/cpu.max": "max 100000\n"}, None),  # v2: no quota
        ("0::/a/b\n", {"a/cpu.max": "50000 100000\n", "a/b/cpu.max": "max 100000\n"}, 0.5),  # an ancestor's quota binds
        ("0::/host/path\n", {"cpu.max": "200000 100000\n"}, 2.0),  # a namespace shows the host's path, mounts our own
        ("4:cpu,cpuacct:/j\n", {"cpu,cpuacct/j/cpu.cfs_quota_us": "100000\n", "cpu,cpuacct/j/cpu.cfs_period_us": "100000\n"}, 1.0),
        ("1:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1: no quota
        ("1:cpu:/\n", {}, None),  # no cgroup files at all
    ],
)
def test_quota_reads_cgroup_v2_and_v1(tmp_path, own, files, expected):
    root, self_cgroup = cgroup_tree(tmp_path, own, files)
    assert cores.quota(root, self_cgroup) == expected


def test_usable_is_the_affinity_capped_by_the_quota_rounded_up(tmp_path, monkeypatch):
    monkeypatch.setattr(cores, "allowed", lambda: [0, 1, 2, 3])
    root, self_cgroup = cgroup_tree(tmp_path, "0::/\n", {"cpu.max": "150000 100000\n"})
    assert cores.usable(root, self_cgroup) == 2
    root, self_cgroup = cgroup_tree(tmp_path / "none", "0::/\n", {})
    assert cores.usable(root, self_cgroup) == 4


def test_the_environment_reports_usable_cores_not_the_machines():
    from harness.trial.environment import collect

    env = collect()
    assert env["cpu_usable"] == cores.usable() <= len(cores.allowed()) and "cpu_quota" in env


def test_more_cpus_than_available_is_refused_in_one_line_naming_both():
    have = cores.usable()
    with pytest.raises(ConfigError) as caught:
        validate(compose(["loader=synthetic", f"trial.cpus={have + 1}"]))
    message = str(caught.value)
    assert message.startswith(f"trial.cpus={have + 1}: only {have} cores are available") and "affinity" in message
    assert "\n" not in message
    with pytest.raises(ConfigError, match="trial.cpus=0: must be a positive"):
        validate(compose(["loader=synthetic", "trial.cpus=0"]))
    validate(compose(["loader=synthetic", "trial.cpus=1"]))
    validate(compose(["loader=synthetic", "trial.cpus=null"]))


def test_confine_pins_the_process_and_what_it_starts_to_the_first_n_cores():
    """In a child process: pinning the test process itself would slow every later test."""
    code = (
        "import json, os, subprocess, sys\n"
        "from harness.trial import cores\n"
        "record = cores.confine(1)\n"
        "grandchild = subprocess.run(['grep', 'Cpus_allowed_list', '/proc/self/status'], capture_output=True, text=True).stdout\n"
        "print(json.dumps({**record, 'grandchild': grandchild.split()[-1]}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    first = cores.allowed()[0]
    assert record["asked"] == 1 and record["allowed"] == cores.allowed() and record["used"] == [first]
    assert record["grandchild"] == str(first)  # a process the confined one starts inherits the mask


def test_confine_none_leaves_the_mask_and_says_so():
    record = cores.confine(None)
    assert record["asked"] is None and record["used"] == record["allowed"] == cores.allowed()


def test_core_lists_read_as_taskset_writes_them():
    assert cores._ranges([0, 1, 2, 3, 6, 8, 9]) == "0-3,6,8-9"
    assert cores._ranges([5]) == "5"
