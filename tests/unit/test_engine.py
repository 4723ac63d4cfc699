"""The sweep engine's pieces that need no trial: the job grid, the launcher's phase protocol, the callback's guard."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from harness.config.compose import expand_sweep
from harness.engine import LAUNCHER_TARGET, Preflight, task
from harness.errors import HarnessError


def basic_sweeper_jobs(arguments: list[str]) -> list[list[str]]:
    """Hydra's own grid (a private function, used here only as the oracle)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(arguments)
    return [list(job) for batch in BasicSweeper.split_arguments(parsed, max_batch_size=None) for job in batch]


@pytest.mark.parametrize(
    "overrides",
    [
        ["loader.produce_ms=5,20", "loader.workers=0,1,2"],
        ["loader=synthetic", "loader.produce_ms=range(1,4)", "trial.seed=1"],
        ["loader.workers=0,1", "loader.workers=2,3"],  # a key given twice: the later list wins, in its place
        ["loader=synthetic,tf_data", "batch.size=8", "trial.steps=choice(5,10)"],
        ["trial.repeats=2"],
    ],
)
def test_the_grid_is_the_one_hydras_basic_sweeper_runs(overrides):
    assert expand_sweep(overrides, params={}) == basic_sweeper_jobs(overrides)


def test_experiment_sweep_params_come_first_as_the_sweeper_orders_them():
    jobs = expand_sweep(["experiment=quickstart", "trial.steps=5"])
    assert len(jobs) == 4 and all(job[-2:] == ["experiment=quickstart", "trial.steps=5"] for job in jobs)
    assert [job[:2] for job in jobs] == [
        ["loader.num_parallel_calls=none", "loader.prefetch=none"],
        ["loader.num_parallel_calls=none", "loader.prefetch=autotune"],
        ["loader.num_parallel_calls=autotune", "loader.prefetch=none"],
        ["loader.num_parallel_calls=autotune", "loader.prefetch=autotune"],
    ]


def test_a_range_axis_for_another_sweeper_stays_as_written():
    assert expand_sweep(["trial.seed=interval(0,1)", "loader.workers=0,1"], params={}) == [
        ["trial.seed=interval(0,1)", "loader.workers=0"],
        ["trial.seed=interval(0,1)", "loader.workers=1"],
    ]


def test_the_task_function_carries_the_phases_the_harness_launcher_calls():
    from hydra_plugins.harness_launcher._core import _phases

    phases = _phases(task)
    assert phases is not None and set(phases) == {"check", "plan", "run", "outcomes"}
    assert _phases(lambda cfg: 100) is None  # any other task function runs as under Hydra's basic launcher
    from hydra_plugins.harness_launcher.harness_launcher import HarnessLauncherConf

    assert HarnessLauncherConf._target_ == LAUNCHER_TARGET


def hydra_node(launcher_target: str, overrides: list[str], choice: str = "other") -> OmegaConf:
    return OmegaConf.create(
        {
            "hydra": {
                "launcher": {"_target_": launcher_target},
                "overrides": {"task": overrides},
                "sweeper": {"params": None},
                "runtime": {"choices": {"hydra/launcher": choice}},
            }
        }
    )


def test_preflight_leaves_the_harness_launcher_alone_and_refuses_a_bad_job_for_another(capsys):
    Preflight().on_multirun_start(hydra_node(LAUNCHER_TARGET, ["loader.produce_ms=-5"]))  # the launcher checks its own jobs
    assert capsys.readouterr().err == ""
    with pytest.raises(SystemExit) as stopped:
        Preflight().on_multirun_start(hydra_node("x.Other", ["loader=synthetic", "loader.produce_ms=1,-5"], "other"))
    err = capsys.readouterr().err
    assert isinstance(stopped.value.__cause__, HarnessError) and stopped.value.code == 1
    assert "hydra/launcher=other decides where and when each job runs" in err
    assert "ERROR: loader.produce_ms=-5.0: must be >= 0" in err


def test_a_sweeper_that_launches_in_batches_extends_the_schedule_instead_of_replacing_it(tmp_path):
    import json
    from pathlib import Path

    from harness.engine import SCHEDULE_FILE, JobPlan, _schedule_record

    def plans(*jobs):
        return [JobPlan(j, Path("."), Path("."), Path("t.yaml"), {}, [], 1, 60.0, 0) for j in jobs]

    first = _schedule_record(tmp_path, 0, [plans(1, 0)], [])
    (tmp_path / SCHEDULE_FILE).write_text(json.dumps(first))
    assert _schedule_record(tmp_path, 0, [plans(2, 3), plans(3)], [])["rounds"] == [[1, 0, 2, 3], [3]]


def test_a_jobs_outcome_is_its_median_ok_throughput_for_an_optimizing_sweeper():
    from harness.engine import outcomes
    from harness.results.model import TrialResult

    def trial(job, status, speed):
        return TrialResult(status, {}, [], job, 0, summary={"samples_per_s": speed})

    out = outcomes([trial(0, "ok", 100.0), trial(0, "ok", 300.0), trial(0, "timeout", 0.0), trial(1, "failed", 0.0)])
    assert float(out[0]) == 200.0 and out[0].statuses == ["ok", "ok", "timeout"] and float(out[1]) == 0.0


def test_a_chain_run_alone_shares_the_rounds_but_not_the_jobs_outcomes_or_schedule(tmp_path, monkeypatch):
    """In a calibrating sweep each round runs the chain alone too; its trials are the calibration's, not a job's."""
    import json

    import harness.engine as engine
    from harness.engine import SCHEDULE_FILE, JobPlan, chains_alone, outcomes, run_planned
    from harness.results.model import TrialResult

    plans = [JobPlan(j, tmp_path / str(j), tmp_path, tmp_path / "t.yaml", {}, [f"loader.x={j}"], 2, 60.0, 0) for j in (0, 1)]
    alone = JobPlan(0, tmp_path / "ceilings" / "0", tmp_path / "ceilings", tmp_path / "t.yaml", {}, ["consumer.step_ms=0"], 2, 60.0, 0)
    ran = []

    def fake_run(p, repeat, where):
        ran.append((str(p.root), p.job, repeat))
        return TrialResult("ok", {}, p.overrides, p.job, repeat, summary={"samples_per_s": 1.0 if p.root == tmp_path else 999.0})

    monkeypatch.setattr(engine, "alone_plans", lambda plans: [alone])
    monkeypatch.setattr(engine, "bench_plans", lambda plans: [])  # no augment pipeline to time
    monkeypatch.setattr(engine, "run_one", fake_run)
    with chains_alone("full"):
        results = run_planned(plans)
    assert sorted(ran) == sorted([(str(tmp_path), j, r) for j in (0, 1) for r in (0, 1)] + [(str(alone.root), 0, r) for r in (0, 1)])
    assert len(results) == 4 and float(outcomes(results)[0]) == 1.0  # the run alone's 999 samples/s is no job's
    assert json.loads((tmp_path / SCHEDULE_FILE).read_text())["rounds"] in (
        [[0, 1], [1, 0]],
        [[1, 0], [0, 1]],
        [[0, 1], [0, 1]],
        [[1, 0], [1, 0]],
    )
    with chains_alone(None):
        ran.clear()
        run_planned(plans)
    assert {root for root, _, _ in ran} == {str(tmp_path)}  # report.ceilings=false: no run alone
