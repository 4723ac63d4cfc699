"""The harness launcher as a Hydra launcher: Hydra's own launcher suites, then the harness's engine through it.

Hydra's LauncherTestSuite and IntegrationTestSuite run ordinary task functions and
Hydra's test apps through ``hydra/launcher=harness``, so it behaves as any launcher does
(job numbering, folders, overrides, errors). The tests after them run the harness's
sweeps through it and through hydra-submitit-launcher's ``submitit_local``.
"""

from __future__ import annotations

import csv
import os
import socket
from pathlib import Path

import pytest
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite

from harness.results.model import read_result
from harness.results.placement import overlaps
from harness.results.table import find_results


def test_discovery() -> None:
    assert "HarnessLauncher" in [x.__name__ for x in Plugins.instance().discover(Launcher)]


@pytest.mark.parametrize("launcher_name, overrides", [("harness", [])])
class TestHarnessLauncher(LauncherTestSuite):
    """Hydra's launcher suite: any task function, any config, through the harness launcher."""


@pytest.mark.slow
@pytest.mark.parametrize("task_launcher_cfg, extra_flags", [({}, ["-m", "hydra/launcher=harness"])])
class TestHarnessLauncherIntegration(IntegrationTestSuite):
    """Hydra's integration suite: apps started as scripts, with the harness launcher chosen on the command line."""


def rows(folder: Path) -> list[dict]:
    with open(folder / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


TINY = ["dataset.count=48", "dataset.width=96", "dataset.height=72", "batch.size=8", "batch.height=32", "batch.width=32"]
LAUNCHERS = ["harness", "submitit_local"]


def variants(folder: Path) -> list[tuple[str, ...]]:
    """(job, the swept value, status) of every trial row."""
    return sorted((r["job"], r["loader.shuffle"], r["status"]) for r in rows(folder) if r["kind"] == "trial")


@pytest.mark.slow
def test_submitit_local_runs_the_same_trials_and_rows_as_the_harness_launcher(cli, tmp_path):
    # the launcher is the subject: a loader that imports no framework keeps each trial's process start short
    sweep = ["loader=generator", "loader.shuffle=false,true", "trial.steps=8", "trial.warmup_steps=2", *TINY]
    for launcher in LAUNCHERS:
        done = cli("sweep", *sweep, f"hydra/launcher={launcher}", f"hydra.sweep.dir={launcher}")
        assert done.returncode == 0, done.stderr[-2000:]
    harness, submitit = (variants(tmp_path / name) for name in LAUNCHERS)
    assert len(harness) == 2 and harness == submitit and {row[-1] for row in harness} == {"ok"}
    assert (tmp_path / "submitit_local" / "report.html").exists() and (tmp_path / "submitit_local" / ".submitit").is_dir()
    warning = "hydra/launcher=submitit_local decides where and when each job runs"
    assert warning in done.stderr  # the last run: jobs of another launcher may share the machine
    # every row says where it ran; trials that did run at once (submitit_local's are concurrent) are flagged loudly
    assert {(r["host"], r["cores"]) for r in rows(tmp_path / "submitit_local")} == {
        (socket.gethostname(), str(len(os.sched_getaffinity(0))))
    }
    results = [read_result(path) for path in find_results(tmp_path / "submitit_local")]
    shared = "trials ran at the same time as another on the same machine"
    assert (shared in done.stderr) == bool(overlaps(results))
    assert (shared in (tmp_path / "submitit_local" / "report.html").read_text()) == bool(overlaps(results))
    assert shared not in (tmp_path / "harness" / "report.html").read_text()  # one trial at a time


@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_bad_value_in_the_last_job_is_refused_before_any_trial_by_either_launcher(cli, tmp_path, launcher):
    done = cli("sweep", "loader=synthetic", "loader.produce_ms=1,2,-5", "trial.steps=8", f"hydra/launcher={launcher}")
    assert done.returncode == 1 and "ERROR: loader.produce_ms=-5.0: must be >= 0" in done.stderr, done.stderr[-2000:]
    assert not list(tmp_path.glob("**/result.json")) and not (tmp_path / "reports").exists()


@pytest.mark.slow
def test_a_launcher_time_limit_below_the_trials_own_timeouts_is_refused_before_any_job(cli, tmp_path):
    done = cli(
        "sweep",
        "loader=synthetic",
        "loader.produce_ms=1,2",
        "trial.steps=8",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=5",
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "ERROR: hydra.launcher.timeout_min=5: a job runs up to trial.repeats=1 x trial.timeout_s=600 s" in done.stderr
    assert "raise hydra.launcher.timeout_min to 13 or lower trial.timeout_s" in done.stderr
    assert not list(tmp_path.glob("reports/*/*/repeat-0"))  # no job started


def test_a_launcher_key_that_needs_a_plus_is_named_with_the_override_that_adds_it(cli):
    done = cli("sweep", "loader=synthetic", "hydra/launcher=submitit_slurm", "hydra.launcher.additional_parameters.exclusive=true")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "ERROR: hydra.launcher.additional_parameters.exclusive: not in the config yet; "
        "add it with +hydra.launcher.additional_parameters.exclusive=true"
    )


def test_a_launcher_option_that_does_not_exist_lists_every_installed_one(cli):
    done = cli("sweep", "loader=synthetic", "hydra/launcher=rayy")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ERROR: hydra/launcher=rayy: no such option; choose one of: basic, harness, ")
    assert {"submitit_slurm", "harness"} <= set(last.split(": ")[-1].split(", "))


def test_a_sweep_whose_jobs_left_no_result_in_its_folder_fails_saying_so(tmp_path, capsys):
    from harness.commands.launch import finish
    from harness.commands.outputs import FAILED_TRIALS_EXIT

    (tmp_path / "multirun.yaml").write_text("{}")  # Hydra's record, and no job folder: the jobs wrote elsewhere
    assert finish(tmp_path) == FAILED_TRIALS_EXIT
    out = capsys.readouterr()
    assert f"ERROR: no trial left a result under {tmp_path}" in out.err and out.out.strip() == str(tmp_path)


def test_cfg_on_a_sweep_prints_its_first_jobs_config_with_the_launchers_settings(cli):
    done = cli("sweep", "loader=synthetic", "loader.produce_ms=1,2", "--cfg", "job", "-p", "loader.produce_ms")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "1.0" and "the first of 2 jobs: loader=synthetic loader.produce_ms=1" in done.stderr
    done = cli("sweep", "loader=synthetic", "hydra/launcher=submitit_slurm", "--cfg", "hydra", "-p", "hydra.launcher.additional_parameters")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "exclusive: true"  # harness asks SLURM for whole nodes


def test_one_trial_per_node_is_asked_for_where_harness_knows_the_node_and_left_to_the_user_otherwise(capsys, monkeypatch):
    from harness.commands import nodes
    from harness.commands.nodes import EXCLUSIVE, JOIN, exclusive_nodes

    # the clusters' answers (the real probe of a real cluster is tests/integration/test_ray.py's)
    answers = {"auto": {"none": "Could not find any running Ray instance."}, "head:6379": {"cpus": [16.0, 16.0]}}
    answers |= {"mixed:6379": {"cpus": [8.0, 32.0]}, "gone:6379": {"error": "no answer within 45 s"}}
    asked = []
    monkeypatch.setattr(nodes, "probe", lambda address: asked.append(address) or answers[address])

    assert exclusive_nodes(["hydra/launcher=submitit_slurm"]) == ["hydra/launcher=submitit_slurm", EXCLUSIVE]
    across = ["hydra/launcher=submitit_slurm", "consumer.ranks=3", "consumer.rank_placement=nodes"]  # a task per node and rank
    assert exclusive_nodes(across) == [*across, "hydra.launcher.nodes=3", "hydra.launcher.tasks_per_node=1", EXCLUSIVE]
    assert exclusive_nodes([*across, "hydra.launcher.nodes=4"]) == [*across, "hydra.launcher.nodes=4", EXCLUSIVE]  # theirs
    assert "each SLURM job runs on 3 nodes, one task each" in capsys.readouterr().err
    mine = ["hydra/launcher=submitit_slurm", "hydra.launcher.additional_parameters={}"]
    assert exclusive_nodes(mine) == mine
    local = ["hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=3"]
    assert exclusive_nodes(local) == [*local, "++hydra.launcher.ray.remote.num_cpus=3"]  # its own cluster: this machine's node
    assert asked == []  # num_cpus means a cluster of its own: nothing to ask
    head = ["hydra/launcher=ray", "hydra.launcher.ray.init.address=head:6379"]
    assert exclusive_nodes(head) == [*head, JOIN, "++hydra.launcher.ray.remote.num_cpus=16"]
    mixed = ["hydra/launcher=ray", "hydra.launcher.ray.init.address=mixed:6379"]
    assert exclusive_nodes(mixed) == [*mixed, JOIN, "++hydra.launcher.ray.remote.num_cpus=8"]  # the smallest node: never unschedulable
    said = capsys.readouterr().err
    assert "2 node(s) of the Ray cluster at head:6379: one trial per node" in said
    assert "a node of 32 CPUs can run 4 at once" in said
    gone = ["hydra/launcher=ray", "hydra.launcher.ray.init.address=gone:6379"]
    assert exclusive_nodes(gone) == [*gone, JOIN]  # the nodes unknown: Ray's 1 CPU a job, said so
    shared = ["hydra/launcher=ray", "hydra.launcher.ray.init.address=head:6379", "+hydra.launcher.ray.remote.num_cpus=1"]
    assert exclusive_nodes(shared) == [*shared, JOIN]  # the user chose
    assert exclusive_nodes(["hydra/launcher=ray", "+hydra.launcher.ray.remote.num_cpus=1"]) == [
        "hydra/launcher=ray",
        "+hydra.launcher.ray.remote.num_cpus=1",
    ]
    assert "could not ask the Ray cluster at gone:6379 for its nodes (no answer within 45 s)" in capsys.readouterr().err
    from harness.trial.cores import usable

    assert exclusive_nodes(["hydra/launcher=ray"]) == ["hydra/launcher=ray", f"++hydra.launcher.ray.remote.num_cpus={usable()}"]
    assert asked[-1] == "auto"  # no address: Ray would join a running cluster, and there is none
    assert exclusive_nodes(["loader=synthetic"]) == ["loader=synthetic"]
    # nodes with a harness_node each: a job holds one; a job of ranks on nodes holds none, its trial reserves them all
    answers["marked:6379"] = {"cpus": [1.0, 2.0], "marked": [1.0, 1.0]}
    marked = ["hydra/launcher=ray", "hydra.launcher.ray.init.address=marked:6379"]
    assert exclusive_nodes(marked) == [
        *marked,
        JOIN,
        "++hydra.launcher.ray.remote.num_cpus=1",
        "++hydra.launcher.ray.remote.resources={harness_node:1}",
    ]
    ranked = [*marked, "consumer.ranks=2", "consumer.rank_placement=nodes"]
    assert exclusive_nodes(ranked) == [*ranked, JOIN, "++hydra.launcher.ray.remote.num_cpus=1"]
    assert "its trial for 2 harness_nodes on as many nodes at once, its own among them" in capsys.readouterr().err
    swept = [*marked, "consumer.ranks=1,2", "consumer.rank_placement=nodes"]  # ranks not known before the job: it holds its node
    assert exclusive_nodes(swept)[-1] == "++hydra.launcher.ray.remote.resources={harness_node:1}"


def test_the_launcher_takes_each_job_the_sweeper_composed_instead_of_composing_it_again():
    from omegaconf import OmegaConf

    from hydra_plugins.harness_launcher.harness_launcher import ComposedOnce

    class Loader:
        calls: list = []

        def load_sweep_config(self, master_config, sweep_overrides):
            self.calls.append(list(sweep_overrides))
            return OmegaConf.create({"overrides": list(sweep_overrides)})

        def list_groups(self, parent):
            return ["loader"]

    master = OmegaConf.create({})
    loader = ComposedOnce(Loader())
    checked = [loader.load_sweep_config(master_config=master, sweep_overrides=[f"a={i}"]) for i in range(3)]  # the sweeper
    taken = [loader.take(master, [f"a={i}"]) for i in range(3)]  # the launcher
    assert taken == checked and all(t is c for t, c in zip(taken, checked)) and len(Loader.calls) == 3
    again = loader.take(master, ["a=0"])  # taken once: composed anew, never a config another job changed
    assert again is not checked[0] and again == checked[0] and len(Loader.calls) == 4
    kept = loader.load_sweep_config(master_config=master, sweep_overrides=["a=5"])
    assert loader.take(OmegaConf.create({}), ["a=5"]) is not kept and len(Loader.calls) == 6  # another sweep's master config
    assert loader.take(master, ["a=5"]) is kept and len(Loader.calls) == 6
    assert loader.list_groups("") == ["loader"]  # every other call reaches Hydra's loader
