"""Progress bars through the CLI: drawn on stderr (forced with HARNESS_PROGRESS=1, as a terminal would get them),
never on stdout, not under --quiet, and a sweep with its bar still stops cleanly on SIGTERM."""

import os
import signal
import subprocess
import sys

from harness.progress import ENV
from tests.conftest import ROOT
from tests.integration.test_hostile_sweep import THREE_JOBS, assert_kept_and_reported, start_sweep, stop_after_first_trial, survivors

TINY = ["dataset.count=48", "dataset.width=96", "dataset.height=72"]


def harness(tmp_path, *args, setting="1"):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{ENV: setting})
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_datagen_draws_its_bar_on_stderr_and_quiet_draws_none(tmp_path):
    drawn = harness(tmp_path, "datagen", *TINY, f"dataset.cache_dir={tmp_path / 'a'}")
    assert drawn.returncode == 0, drawn.stderr
    assert "writing images" in drawn.stderr and "48/48" in drawn.stderr and "files/s" in drawn.stderr
    assert "\x1b" not in drawn.stdout and drawn.stdout.splitlines()[-1].startswith(str(tmp_path / "a"))
    for quiet in ("--quiet", "-q"):
        done = harness(tmp_path, "datagen", quiet, *TINY, f"dataset.cache_dir={tmp_path / quiet}")
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""  # nothing but the bar would have been printed there
        assert done.stdout.splitlines()[-1].startswith(str(tmp_path / quiet))


def test_run_takes_quiet_out_before_hydra_sees_it(tmp_path):
    done = harness(tmp_path, "run", "--quiet", "loader=synthetic", "--cfg", "job")
    assert done.returncode == 0, done.stderr
    assert "name: synthetic" in done.stdout


def test_a_sweep_with_its_bar_keeps_stdout_and_stops_cleanly_on_sigterm(cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "1")
    sweep = start_sweep(cache_dir, tmp_path, *THREE_JOBS)
    out, err, took, tree = stop_after_first_trial(sweep, tmp_path, [lambda: os.kill(sweep.pid, signal.SIGTERM)])
    assert sweep.returncode == 143, out + err
    assert not survivors(tmp_path, tree)
    assert_kept_and_reported(tmp_path, out)
    assert "trial 1/3 loader.workers=" in err and "trial 2/3 loader.workers=" in err and "ETA" in err
    assert err.rfind("\x1b[?25h") > err.rfind("\x1b[?25l")  # the cursor is shown again
    assert "\x1b" not in out and " repeat 0: ok " in out  # stdout's lines are what a log gets
    assert out.splitlines()[-1] == str(tmp_path / "sweep")
