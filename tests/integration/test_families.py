"""Each loader family end to end through the CLI, and the same-data check across rows."""

import csv
import json

import pytest

from tests.conftest import sweep_dir

TINY = [
    "dataset.count=48",
    "dataset.width=96",
    "dataset.height=72",
    "dataset.shards=2",
    "batch.size=8",
    "batch.height=32",
    "batch.width=32",
]

pytestmark = pytest.mark.slow


def results(folder):
    with open(folder / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    return [(row, json.loads((folder / row["result"]).read_text())) for row in rows]


def test_every_family_runs_and_delivers_the_same_epochs(cli, tmp_path):
    done = cli(
        "sweep",
        "loader=keras_idg,keras_sequence,generator,torch,tf_data",
        *TINY,
        "trial.epochs=2",
        "trial.warmup_steps=1",
        "threads.tf_inter_op=1",
        "threads.tf_intra_op=2",
        "threads.torch=1",
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = results(sweep_dir(done, tmp_path))
    assert sorted(row["loader"] for row, _ in rows) == ["generator", "keras_idg", "keras_sequence", "tf_data", "torch"]
    checksums = set()
    for row, result in rows:
        assert row["status"] == "ok" and row["same_data"] == "complete", (row["loader"], row["notes"], row["error"])
        same = result["same_data"]
        checksums |= {same["epochs"]["0"]["checksum"], same["epochs"]["1"]["checksum"], same["dataset_checksum"]}
        assert result["threads"]["asked"]["tf_inter_op"] == 1
        if "tensorflow" in result["threads"]:
            assert result["threads"]["tensorflow"]["inter_op"] == 1 and result["threads"]["tensorflow"]["intra_op"] == 2
        if row["loader"] == "torch":
            assert result["threads"]["torch"]["num_threads"] == 1 and "tensorflow" not in result["threads"]
    assert len(checksums) == 1


def test_broken_variant_is_marked_in_the_table(cli, tmp_path):
    done = cli(
        "sweep",
        "loader=tf_data",
        "loader.random_flip=true",
        "loader.cache=memory",
        "loader.cache_place=after_resize,after_augment",
        *TINY,
        "trial.epochs=3",
        "trial.warmup_steps=0",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {row["loader.cache_place"]: row for row, _ in results(sweep_dir(done, tmp_path))}
    assert rows["after_resize"]["same_data"] == "complete"
    assert rows["after_augment"]["same_data"] == "differs" and "repeat" in rows["after_augment"]["notes"]


def test_missing_option_combination_fails_before_any_trial(cli, tmp_path):
    done = cli("sweep", "loader=torch", "loader.persistent_workers=true", "loader.num_workers=0,2")
    assert done.returncode == 1 and "loader.persistent_workers needs loader.num_workers > 0" in done.stderr
    assert not (tmp_path / "reports").exists()


def test_seed001_preset_runs_with_tfrecord_gzip(cli, tmp_path):
    done = cli("run", "experiment=seed001", *TINY, "batch.size=8", "trial.epochs=2", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    ((row, result),) = results(sweep_dir(done, tmp_path))
    assert row["same_data"] == "complete"
    assert result["dataset"]["tfrecords"]["gzip"] == 2
    assert "map(mobilenet.preprocess_input" in " ".join(result["loader"]["ops"])
