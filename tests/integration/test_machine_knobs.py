"""``dataset.page_cache`` and ``trial.cpus`` through the CLI, in real trials."""

from __future__ import annotations

import csv
import json
import textwrap

import pytest

from harness.trial import cores
from tests.conftest import sweep_dir

TINY = ["dataset.count=48", "dataset.width=96", "dataset.height=72", "batch.size=8", "batch.height=32", "batch.width=32"]
SHORT = ["trial.steps=6", "trial.warmup_steps=1", "consumer.step_ms=2"]
# the page-cache tests count the dataset folder's files: a dataset of their own (its seed is part of the cache key),
# which no other test of the session adds TFRecord or WebDataset shards to
OWN = [*TINY, "dataset.seed=48"]

PROBE = '''
import os

import numpy as np


class Probe:
    """Every sample writes the affinity of the process that loads it: a DataLoader worker."""

    def __init__(self, data, batch, out):
        self.data, self.batch, self.out = data, batch, out

    def __len__(self):
        return len(self.data.paths)

    def __getitem__(self, i):
        from torch.utils.data import get_worker_info

        with open(self.out, "w") as handle:  # "0 worker": this process's cores, and that it is a DataLoader worker
            handle.write(",".join(map(str, sorted(os.sched_getaffinity(0)))) + (" worker" if get_worker_info() else " main"))
        b = self.batch
        return np.zeros((b.height, b.width, b.channels), np.uint8), self.data.labels[i], self.data.ids[i]


def collate(samples):
    import torch

    images, labels, ids = zip(*samples)
    return torch.from_numpy(np.stack(images)), torch.tensor(labels), list(ids)


def make(data, batch, out=""):
    from torch.utils.data import DataLoader

    return DataLoader(Probe(data, batch, out), batch_size=batch.size, num_workers=1, collate_fn=collate)
'''


def result_of(done, cwd) -> dict:
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(next(sweep_dir(done, cwd).rglob("result.json")).read_text())


def test_a_cold_run_evicts_the_dataset_and_records_it(cli, tmp_path):
    done = cli("run", "loader=generator", "dataset.page_cache=cold", *OWN, *SHORT)
    cache = result_of(done, tmp_path)["dataset"]["page_cache"]
    assert cache["mode"] == "cold" and cache["files"] == 48 + 1 and cache["bytes"] > 48 * 1000  # the images and manifest.csv
    assert cache["seconds"] >= 0 and {"resident_before", "resident_after", "filesystem"} <= set(cache)
    if cache["filesystem"] == "tmpfs" or cache["resident_after"] is None:
        pytest.skip(f"the dataset cache is on {cache['filesystem']}: nothing can be evicted there, or mincore is missing")
    assert cache["resident_after"] <= 0.05, cache


def test_a_warm_run_has_the_whole_dataset_in_memory(cli, tmp_path):
    done = cli("run", "loader=generator", "dataset.page_cache=warm", *OWN, *SHORT)
    cache = result_of(done, tmp_path)["dataset"]["page_cache"]
    assert cache["mode"] == "warm" and cache["files"] == 49 and cache["resident_after"] in (1.0, None)


@pytest.mark.slow
def test_trial_cpus_1_pins_the_trial_and_its_dataloader_workers(cli, tmp_path):
    (tmp_path / "probe.py").write_text(textwrap.dedent(PROBE))
    out = tmp_path / "worker-affinity.txt"
    done = cli(
        "run",
        "loader=custom",
        "loader.target=probe:make",
        f"loader.path={tmp_path}",
        f"loader.kwargs.out={out}",
        "trial.cpus=1",
        *TINY,
        *SHORT,
    )
    result = result_of(done, tmp_path)
    first = cores.allowed()[0]
    assert result["environment"]["cpus"] == {"asked": 1, "allowed": cores.allowed(), "used": [first], "quota": cores.quota()}
    assert result["environment"]["cpu_usable"] == 1 and result["environment"]["cpu_affinity"] == 1
    assert out.read_text() == f"{first} worker"  # the DataLoader worker inherited the mask


@pytest.mark.slow
@pytest.mark.skipif(len(cores.allowed()) < 2, reason="needs two cores to compare one with two")
def test_cpu_bound_producers_on_one_core_give_about_half_of_two(cli, tmp_path):
    """Two producer threads that each burn 20 ms of CPU per batch: 100 batches/s on two idle cores, 50 on one.

    Other work on the machine takes cores from both, so interleaved repeats keep each setting's
    best; a trial pinned to one core can never use more than one, and every trial delivers about
    50 batches per CPU-second it got. The ratio itself is judged only when the two-core trial
    was given its two cores: on a machine busy with other work it was not, and says how many it got.
    """
    busy = ["loader=synthetic", "loader.busy=true", "loader.workers=2", "loader.produce_ms=20", "loader.batches_per_epoch=1000"]
    small = ["batch.size=2", "batch.height=8", "batch.width=8", "consumer.step_ms=1", "trial.seconds=2", "trial.warmup_steps=3"]
    done = cli("sweep", *busy, *small, "trial.cpus=1,2", "trial.repeats=4", "monitor.trace=false", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(sweep_dir(done, tmp_path) / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    best = {c: max((r for r in rows if r["trial.cpus"] == c), key=lambda r: float(r["batches_per_s"])) for c in ("1", "2")}
    rate = {c: float(r["batches_per_s"]) for c, r in best.items()}
    got = {c: float(r["cpu_tree_mean_pct"]) / 100 for c, r in best.items()}  # cores the trial's processes used
    assert got["1"] <= 1.05 and rate["1"] <= 1000 / 20 * 1.1, (rate, got)  # pinned: one core's worth at most
    for c in ("1", "2"):
        assert 0.7 * 50 <= rate[c] / got[c] <= 1.1 * 50, (rate, got)  # about 50 batches per CPU-second
    if got["2"] < 1.6:
        pytest.skip(f"the machine gave the trial.cpus=2 trial only {got['2']:.2f} cores (other work): cannot judge the ratio {rate}")
    assert 0.35 <= rate["1"] / rate["2"] <= 0.75, (rate, got)
