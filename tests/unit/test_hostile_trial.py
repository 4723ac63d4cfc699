"""Issue 13 in the small: too-short trials, signals, reused sweep folders, notes said once."""

import os
import signal
import subprocess
import time

import numpy as np
import pytest

from harness.commands.launch import claim_folder, take_overwrite
from harness.config.schema import BatchConf
from harness.errors import HarnessError
from harness.loaders.base import Batch
from harness.results.model import TrialResult
from harness.results.stats import MIN_MEASURED_STEPS, too_short
from harness.trial import stop
from harness.trial.checks import BatchChecks, epoch_span
from harness.trial.spawn import kill_group, wait_for
from harness.trial.worker import judge

# --- too_short ---------------------------------------------------------------------------


def test_a_warm_up_that_ate_the_epoch_is_too_short_and_says_what_to_raise():
    reason = too_short(0, 2, (2, 64), {"epochs": 1}, "epochs")
    assert reason.startswith("trial.epochs=1 delivered 2 batches (64 samples)")
    assert "measured 0 steps" in reason and "raise trial.epochs" in reason and "lower trial.warmup_steps" in reason


def test_fewer_steps_than_the_minimum_are_too_short_unless_asked_for():
    assert "measured 2 steps" in too_short(2, 5, (7, 224), {"epochs": 1}, "epochs")
    assert "raise trial.seconds" in too_short(1, 5, (6, 192), {"seconds": 0.01}, "seconds")
    assert too_short(MIN_MEASURED_STEPS, 5, (10, 320), {"epochs": 1}, "epochs") is None
    assert too_short(3, 1, (4, 128), {"steps": 3}, "steps") is None  # a smoke test asked for 3: it got them


def _result(steps, warmup, samples, asked, stopped_by, kind="trial"):
    result = TrialResult("failed", {}, [], 0, 0, kind=kind)
    result.summary = {"steps": steps}
    result.bound = {"asked": asked, "stopped_by": stopped_by, "warmup_steps": warmup}
    result.epochs = {"samples": {"0": samples}}
    return result


def test_judge_gives_too_short_with_the_reason_in_error_and_ok_otherwise():
    result = _result(0, 2, 64, {"epochs": 1}, "epochs")
    assert judge(result) == "too_short" and "measured 0 steps" in result.error
    result = _result(30, 5, 1120, {"seconds": 1}, "seconds")
    assert judge(result) == "ok" and result.error is None
    assert judge(TrialResult("failed", {}, [], 0, 0, kind="augbench")) == "ok"


# --- notes said once ------------------------------------------------------------------------


def test_a_problem_of_every_epoch_is_one_note_naming_the_epochs():
    b = BatchConf(size=4, height=2, width=2)
    ids = [f"s{i}" for i in range(6)]
    checks = BatchChecks(b, ids)
    for epoch in range(4):  # 6 samples, batches of 4, remainder dropped: 2 missing every epoch
        checks(epoch, Batch(images=np.zeros((4, 2, 2, 3), np.uint8), labels=np.zeros(4), ids=ids[:4]))
    problems = checks.report(random_ops=False, completed=[0, 1, 2, 3])["problems"]
    assert problems == ["epochs 0-3: 2 samples never delivered (a dropped remainder?)"]


def test_epoch_spans():
    assert epoch_span([3]) == "epoch 3" and epoch_span([0, 1, 2]) == "epochs 0-2" and epoch_span([0, 2, 5]) == "epochs 0, 2, 5"


# --- signals --------------------------------------------------------------------------------


def test_outside_a_trial_a_signal_raises_interrupted_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(stop.Interrupted) as caught:
        with stop.stopping_on_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs here
    assert caught.value.signum == signal.SIGTERM and stop.exit_status(caught.value.signum) == 143
    assert signal.getsignal(signal.SIGTERM) is before


def test_during_a_trial_signals_only_mark_the_stop_and_the_wait_ends_at_once():
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        with stop.stopping_on_signals(), stop.trial_running():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)  # a second one changes nothing: the first is kept
            start = time.monotonic()
            assert wait_for(proc, timeout_s=60) == "interrupted"
            assert time.monotonic() - start < 2 and stop.requested() == signal.SIGINT
            with pytest.raises(stop.Interrupted):
                stop.check()  # and no new trial starts
    finally:
        kill_group(proc, grace_s=1)


def test_wait_for_times_out_and_sees_an_exit():
    with stop.stopping_on_signals():
        assert wait_for(subprocess.Popen(["true"]), timeout_s=10) == "exited"
        proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
        assert wait_for(proc, timeout_s=0.3) == "timeout"
        kill_group(proc, grace_s=1)


# --- sweep folders --------------------------------------------------------------------------


def _earlier_sweep(root):
    for job in ("0", "1", "2"):
        (root / job / "repeat-0").mkdir(parents=True)
        (root / job / "trial.yaml").write_text("name: x\n")
        (root / job / "repeat-0" / "result.json").write_text("{}")
    for name in ("results.csv", "report.html", "schedule.json", "multirun.yaml"):
        (root / name).write_text("")


def test_a_folder_with_results_is_refused_and_nothing_is_deleted(tmp_path):
    _earlier_sweep(tmp_path)
    with pytest.raises(HarnessError) as caught:
        claim_folder(tmp_path, "hydra.sweep.dir", overwrite=False)
    text = str(caught.value)
    assert f"hydra.sweep.dir={tmp_path} already holds a sweep (3 results)" in text and "--overwrite" in text
    assert len(list(tmp_path.glob("*/repeat-0/result.json"))) == 3


def test_overwrite_deletes_only_what_a_sweep_writes(tmp_path):
    _earlier_sweep(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "7").mkdir()  # a numbered folder that is no job's
    claim_folder(tmp_path, "hydra.sweep.dir", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["7", "notes.txt"]


def test_new_empty_or_unrelated_folders_are_fine(tmp_path):
    claim_folder(tmp_path / "new", "hydra.sweep.dir", overwrite=False)
    (tmp_path / "data.csv").write_text("")
    claim_folder(tmp_path, "hydra.sweep.dir", overwrite=False)


def test_overwrite_is_taken_out_before_hydra_sees_the_arguments():
    assert take_overwrite(["--overwrite", "loader=synthetic"]) == (["loader=synthetic"], True)
    assert take_overwrite(["loader=synthetic"]) == (["loader=synthetic"], False)
