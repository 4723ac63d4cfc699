"""Pre-flight warnings: /dev/shm, workers above the usable cores, an in-memory cache above the free RAM."""

from __future__ import annotations

import shutil
from collections import namedtuple

import psutil
import pytest

from harness.config.compose import compose, to_typed
from harness.report import overview
from harness.results.sweep import load
from harness.trial import cores, preflight
from tests.unit.test_hostile_report import trial, write_sweep

Usage = namedtuple("Usage", "total used free")
Memory = namedtuple("Memory", "total available")


@pytest.fixture
def machine(monkeypatch):
    """Two usable cores, 64 MiB of /dev/shm (Docker's default), 1 GiB of RAM available."""
    monkeypatch.setattr(cores, "usable", lambda *a: 2)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(2**26, 0, 2**26))
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Memory(2**32, 2**30))


def warnings(*overrides):
    return preflight.warnings(to_typed(compose(list(overrides))))


def test_a_job_that_fits_the_machine_has_no_warning(machine):
    assert warnings("loader=torch", "loader.num_workers=2") == []
    assert warnings("loader=tf_data", "loader.num_parallel_calls=autotune", "loader.cache=memory") == []
    assert warnings("loader=synthetic", "loader.workers=8") == []  # its producers sleep: they need no core


@pytest.mark.parametrize(
    "overrides, knob",
    [
        (["loader=torch", "loader.num_workers=3"], "loader.num_workers=3"),
        (["loader=tf_data", "loader.num_parallel_calls=4"], "loader.num_parallel_calls=4"),
        (["loader=synthetic", "loader.busy=true", "loader.workers=3"], "loader.workers=3"),
    ],
)
def test_more_workers_than_usable_cores_is_named_with_the_cores(machine, overrides, knob):
    (line,) = warnings(*overrides)
    assert line.startswith(f"{knob} but only 2 cores usable here") and "keep " in line


def test_trial_cpus_lowers_the_cores_the_workers_are_checked_against(machine):
    (line,) = warnings("loader=torch", "loader.num_workers=2", "trial.cpus=1")
    assert line.startswith("loader.num_workers=2 but trial.cpus=1 gives the trial 1 core:")


def test_dev_shm_too_small_for_the_dataloaders_batches_in_flight(machine):
    # 64 x 224 x 224 x 3 float32 = 38.5 MB a batch, x 2 in flight x 2 workers x 2 copies: 294 MiB > 64 MiB
    big = ["loader=torch", "loader.num_workers=2", "batch.size=64", "batch.height=224", "batch.width=224", "batch.dtype=float32"]
    (line,) = warnings(*big)
    assert line.startswith("/dev/shm has 64 MiB free, but loader.num_workers=2 with prefetch_factor 2 may keep about 294 MiB")
    assert "--shm-size" in line
    assert warnings(*big[:1], "loader.num_workers=0", *big[2:]) == []  # no workers: no shared memory


def test_an_in_memory_cache_larger_than_the_ram_available(machine):
    # 4096 decoded 1000 x 1000 x 3 images: 11.4 GiB against 1 GiB available
    job = ["loader=tf_data", "loader.cache=memory", "dataset.count=4096", "dataset.width=1000", "dataset.height=1000"]
    (line,) = warnings(*job, "loader.cache_place=after_decode")
    assert line.startswith("loader.cache=memory would hold about 11.4 GiB (after_decode), more than the 1.0 GiB of RAM available")
    assert warnings(*job) == []  # after resize: 4096 x 150 x 150 x 3 = 264 MiB
    assert warnings(*job, "loader.cache_place=after_decode", "loader.cache=file") == []


def test_tell_prints_each_warning_once_per_sweep_on_stderr(machine, capsys):
    jobs = [compose(["loader=torch", "loader.num_workers=3", f"loader.pin_memory={p}"]) for p in ("true", "false")]
    lines = preflight.tell(jobs)
    err = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and err == [f"harness: WARNING: {lines[0]}"]


def test_the_reports_notes_carry_the_warnings_the_trials_recorded(tmp_path):
    trials = [trial(j, 0) for j in (0, 1)]
    for t in trials:
        t.environment["preflight"] = ["loader.num_workers=3 but only 2 cores usable here"]
    notes = overview.notes(load(write_sweep(tmp_path / "s", trials))) or []
    assert notes.count("Before the trials: loader.num_workers=3 but only 2 cores usable here.") == 1


def test_ranks_share_the_cores_so_each_ranks_workers_are_counted_against_its_share(machine):
    assert warnings("loader=torch", "loader.num_workers=1", "consumer.ranks=2") == []
    (line,) = warnings("loader=torch", "loader.num_workers=2", "consumer.ranks=2")
    assert line.startswith("loader.num_workers=2 but each of the consumer.ranks=2 ranks has 1 core")
    (line,) = warnings("loader=synthetic", "loader.busy=true", "consumer.ranks=3")
    assert line.startswith("consumer.ranks=3 but only 2 cores usable here")
    big = ["loader=torch", "loader.num_workers=1", "batch.height=320", "batch.width=320"]  # 9.8 MB batches, 39 MB in flight
    assert warnings(*big) == []
    (line,) = warnings(*big, "consumer.ranks=2")
    assert "/dev/shm" in line  # one rank's worker's batches fit in 64 MiB; two ranks' do not
