"""Interleaved repeats: every round runs each job once, in a seeded shuffled order."""

from pathlib import Path

from harness.engine import JobPlan, schedule


def plans(*repeats):
    return [JobPlan(job, Path("."), Path("."), Path("t.yaml"), {}, [], n, 60.0, 0) for job, n in enumerate(repeats)]


def test_each_round_runs_every_job_once_in_a_new_order():
    rounds = schedule(plans(*[5] * 6), seed=3)
    assert len(rounds) == 5
    orders = [[p.job for p in r] for r in rounds]
    assert all(sorted(o) == list(range(6)) for o in orders)
    assert len({tuple(o) for o in orders}) > 1  # not the same order every round (A A B B or A B A B)


def test_the_order_follows_the_seed():
    same = [[p.job for p in r] for r in schedule(plans(4, 4, 4, 4), seed=1)]
    assert same == [[p.job for p in r] for r in schedule(plans(4, 4, 4, 4), seed=1)]
    assert same != [[p.job for p in r] for r in schedule(plans(4, 4, 4, 4), seed=2)]


def test_jobs_with_fewer_repeats_drop_out_of_later_rounds():
    rounds = schedule(plans(1, 3), seed=0)
    assert [sorted(p.job for p in r) for r in rounds] == [[0, 1], [1], [1]]
