"""Hostile input through ``python -m harness`` (issue 13): one ``ERROR:`` line, exit 1, no hang.

Every command line here is bounded (one step, no warm-up), so a regression that accepts
it again runs a short trial and fails on its exit code instead of running for long. The
subprocess timeout turns a hang into a failure.
"""

import errno
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SHORT = ["trial.steps=1", "trial.warmup_steps=0", "monitor.enabled=false"]
TIMEOUT = 120  # generous for slow shared machines; a hang never ends


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The single ERROR line of a refused command, after checking that it is all there is."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), done.stderr[-2000:]
    return lines[0]


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "seconds=5"], ["seconds", "did you mean trial.seconds"]),  # spun at 100% CPU forever
        (["sweep", "nosuchgroup=foo"], ["nosuchgroup", "config groups"]),  # spun at 100% CPU forever
        (["run", "+tag=x"], ["tag", "unknown key"]),
        (["run", "++nosuch.key=1"], ["nosuch", "unknown key"]),
        (["run", "loader=nosuch"], ["loader=nosuch", "synthetic", "tf_data", "torch"]),
        (["run", "experiment=nosuch"], ["experiment=nosuch", "quickstart"]),
        (["run", "dataset=folder"], ["dataset.path=/some/folder"]),
        (["run", "dataset=folder", "dataset.path="], ["dataset.path is empty"]),  # benchmarked the current folder
        (["run", "trial.timeout_s=nan"], ["trial.timeout_s=nan", "finite"]),  # disabled the timeout
        (["sweep", "trial.seconds=inf", "loader.workers=0,1"], ["trial.seconds=inf", "finite"]),
        (["run", "consumer.step_ms=nan"], ["consumer.step_ms=nan", "finite"]),
    ],
)
def test_hostile_overrides_fail_in_one_line(cli, args, words):
    line = one_error_line(cli(*args, *SHORT, timeout=TIMEOUT))
    for word in words:
        assert word in line


def test_folder_that_is_missing_or_a_file(cli, tmp_path):
    a_file = tmp_path / "images.zip"
    a_file.write_text("not a folder")
    assert "no such folder" in one_error_line(cli("run", "dataset=folder", f"dataset.path={tmp_path / 'nope'}", *SHORT))
    assert "not a folder" in one_error_line(cli("run", "dataset=folder", f"dataset.path={a_file}", *SHORT))


# Runs the CLI with build.prepare replaced by one that raises the given OSError, so the error
# travels the real path (Hydra's job function, then __main__) even where the disk cannot be
# made to fail, e.g. as root, where a read-only mode does not stop writes.
INJECT = """
import errno, os, sys
import harness.data.build as build
def prepare(*args, **kwargs):
    raise OSError(errno.{name}, os.strerror(errno.{name}), "/cache/datasets/x")
build.prepare = prepare
from harness.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def run_injected(name: str, tmp_path, command: str):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = [command, "loader=tf_data", f"hydra.run.dir={tmp_path / 'run'}", f"hydra.sweep.dir={tmp_path / 'sweep'}", *SHORT]
    return subprocess.run(
        [sys.executable, "-c", INJECT.format(name=name), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )


@pytest.mark.parametrize("name, command", [("ENOSPC", "run"), ("EROFS", "sweep")])
def test_disk_errors_are_one_line(tmp_path, name, command):
    done = run_injected(name, tmp_path, command)
    assert done.returncode == 1, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR: ")]
    assert errors == [
        f"ERROR: cannot write /cache/datasets/x: {os.strerror(getattr(errno, name))}; free space / "
        "choose a writable folder (dataset.cache_dir=..., hydra.sweep.dir=... or hydra.run.dir=...)"
    ]
    assert "Traceback" not in done.stderr


def test_other_os_errors_keep_their_traceback(tmp_path):
    done = run_injected("EIO", tmp_path, "run")
    assert done.returncode != 0 and "Traceback" in done.stderr and "ERROR: " not in done.stderr


# Root writes through a read-only mode; without these two capabilities it is refused like anyone.
DROP_ROOT_OVERRIDE = ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]


def as_ordinary_writer() -> list:
    """A command prefix under which a 0o500 folder refuses writes, or skip the test."""
    if os.name != "posix":
        pytest.skip("file modes are POSIX")
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None or subprocess.run([*DROP_ROOT_OVERRIDE, "true"]).returncode != 0:
        pytest.skip("running as root without setpriv: test_disk_errors_are_one_line covers this path by injection")
    return DROP_ROOT_OVERRIDE


def test_read_only_result_folder_is_one_line(tmp_path):
    prefix = as_ordinary_writer()
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o500)
    env = dict(os.environ, PYTHONPATH=str(ROOT), HARNESS_CACHE=str(tmp_path / "cache"))
    try:
        done = subprocess.run(
            [*prefix, sys.executable, "-m", "harness", "run", f"hydra.run.dir={read_only / 'run'}", *SHORT],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    finally:
        read_only.chmod(0o700)
    line = one_error_line(done)
    assert line.startswith(f"ERROR: cannot write {read_only / 'run'}: ") and "writable folder" in line
