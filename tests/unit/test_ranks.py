"""Data-parallel ranks' bookkeeping with known answers: the lockstep loop, the shares, the straggler split."""

from pathlib import Path

import pytest

from harness.data.manifest import DatasetManifest, Sample
from harness.errors import ConfigError
from harness.trial import cores
from harness.trial.loop import run_loop
from harness.trial.ranks import split_sync
from tests.unit.test_loop import Fake, FakeClock


def test_the_all_reduce_cost_is_the_least_any_rank_waited_and_the_rest_is_waiting_for_a_slower_rank():
    # step 0: rank 1 arrived last (waited only the collective, 1 ms); rank 0 waited 20 ms more for it
    cost, behind = split_sync([[21.0, 1.0, 5.0], [1.0, 1.0, 2.0]])
    assert cost == pytest.approx(1.0 + 1.0 + 2.0)
    assert behind == pytest.approx([20.0 + 0.0 + 3.0, 0.0])
    assert split_sync([[], []]) == (0.0, [0.0, 0.0])


def manifest(n: int) -> DatasetManifest:
    samples = [Sample(f"c/{i}.jpg", i % 2, 100, "x") for i in range(n)]
    return DatasetManifest(Path("/d"), Path("/d/images"), ["a", "b"], samples, {})


def test_shares_are_equal_disjoint_and_strided_with_the_remainder_dropped():
    whole = manifest(11)
    shares = [whole.shard(r, 3) for r in range(3)]
    assert [len(s) for s in shares] == [3, 3, 3]  # 11 // 3: every rank runs the same number of steps
    ids = [s.columns()[2] for s in shares]
    assert ids[1] == ["c/1.jpg", "c/4.jpg", "c/7.jpg"]  # DistributedSampler(drop_last=True)'s unshuffled indices
    assert sorted(sum(ids, [])) == sorted(whole.columns()[2][:9])
    assert all(s.whole is whole and s.rank == (r, 3) for r, s in enumerate(shares))
    assert shares[0].shard(2, 3).columns()[2] == ids[2]  # a share of a share is taken from the whole
    assert shares[2].describe()["rank"] == [2, 3] and shares[2].describe()["whole_count"] == 11


def test_ranks_stop_together_when_any_rank_reaches_its_bound():
    clock = FakeClock()
    fake = Fake(clock, per_epoch=100)
    asked = []

    def agree(stop):  # the peer wants to stop after its 4th measured step, whatever this rank's bound says
        asked.append(stop)
        clock.now += 0.002  # the wait at the all-reduce
        return len(asked) >= 2 + 4

    loop = run_loop(fake.epoch, fake.consume, {"steps": 50}, 2, clock=clock, agree=agree)
    assert loop.stopped_by == "peer" and len(loop.steps) == 4 and fake.consumed == 6
    assert loop.steps.sync_ms == pytest.approx([2.0] * 4)
    assert loop.steps.step_ms[0] == pytest.approx(5 + 1 + 10 + 2)  # the all-reduce ends the step
    assert asked == [False] * 6  # during warm-up and before its own bound this rank never asked to stop


def test_a_rank_that_reaches_its_own_bound_tells_the_others_through_the_all_reduce():
    clock = FakeClock()
    fake = Fake(clock, per_epoch=100)
    asked = []
    loop = run_loop(fake.epoch, fake.consume, {"steps": 3}, 0, clock=clock, agree=lambda stop: asked.append(stop) or stop)
    assert loop.stopped_by == "steps" and len(loop.steps) == 3 and asked == [False, False, True]


def test_a_core_budget_per_rank_gives_disjoint_cores_and_refuses_more_than_there_are():
    allowed = cores.allowed()
    assert cores.rank_cores(1, 0) == allowed[:1]
    if len(allowed) > 1:
        assert cores.rank_cores(1, 1) == allowed[1:2] and not set(cores.rank_cores(1, 0)) & set(cores.rank_cores(1, 1))
    with pytest.raises(ConfigError, match=rf"trial.cpus_per_rank={len(allowed)} x consumer.ranks=2 needs {2 * len(allowed)} cores"):
        cores.check_per_rank(len(allowed), 2)
    cores.check_per_rank(None, 64)  # ranks that share the cores: nothing to refuse


@pytest.mark.parametrize(
    "samples, shards, ranks, workers, batch, steps",
    [
        (48, 4, 2, 2, 8, [4, 4]),  # 12 a shard: each rank's two workers batch 12 each, 2 batches apiece
        (49, 4, 2, 2, 8, [4, 4]),  # shard 0 holds 13: rank 0's worker batches 13 in 2, as 12
        (51, 4, 2, 1, 5, [6, 5]),  # 13+13 against 13+12 in one worker: 26 samples need 6 batches of 5, 25 need 5
        (51, 4, 2, 0, 5, [6, 5]),  # no workers: the rank's process batches its shards as one worker does
    ],
)
def test_webdataset_ranks_steps_follow_from_whole_round_robin_shards(samples, shards, ranks, workers, batch, steps):
    from harness.loaders.webdataset_loader import rank_steps

    assert rank_steps(samples, shards, ranks, workers, batch) == steps


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["loader.shards=4", "consumer.ranks=3"], "loader.shards=4 does not divide among 3 ranks; set loader.shards to a multiple of 3"),
        (["loader.shards=4", "loader.num_workers=3", "consumer.ranks=2"], "a worker would get none; set loader.shards >= 6"),
    ],
)
def test_webdataset_ranks_need_whole_shards_for_every_rank_and_worker(overrides, message):
    from harness.config.compose import compose
    from harness.config.validate import validate

    with pytest.raises(ConfigError, match=message):
        validate(compose(["loader=webdataset", *overrides]))


def rank_run(wait_ms: float, steps: int = 40, compute_ms: float = 10.0, sync_ms: float = 1.0) -> tuple[dict, dict]:
    """One rank's per-step arrays and summary: each step waits ``wait_ms`` for data, computes, then meets at the all-reduce."""
    step = wait_ms + compute_ms + sync_ms
    arrays = {
        "t_ms": [i * step for i in range(steps)],
        "wait_ms": [wait_ms] * steps,
        "h2d_ms": [0.0] * steps,
        "compute_ms": [compute_ms] * steps,
        "step_ms": [step] * steps,
        "samples": [32] * steps,
        "sync_ms": [sync_ms] * steps,
    }
    wall_s = steps * step / 1e3
    summary = {"wall_s": wall_s, "samples": 32 * steps, "samples_per_s": 32 * steps / wall_s, "steps": steps}
    summary |= {"stall_pct": 100 * wait_ms / step, "au_pct": 100 * compute_ms / step, "h2d_pct": 0.0}
    return arrays, summary


def test_the_merged_step_arrays_are_the_trials_so_check_windows_say_what_the_row_says():
    # check's 0.5 s windows came from rank 0's arrays: a sweep whose row said 75% stall was gated on rank 0's 84%
    from harness.check import windows
    from harness.results.model import TrialResult
    from harness.trial.ranks import merge

    steps0, summary0 = rank_run(wait_ms=30.0)
    steps1, summary1 = rank_run(wait_ms=10.0, sync_ms=21.0)  # its loader is quicker: it waits at the all-reduce instead
    result = TrialResult("ok", {}, [], 0, 0, steps=steps0, summary=summary0)
    merge(result, [{"rank": 1, "summary": summary1, "steps": steps1, "cpus": None, "same_data": None}], "gloo")
    assert result.summary["stall_pct"] == pytest.approx((100 * 30 / 41 + 100 * 10 / 41) / 2)
    assert result.steps["wait_ms"] == [20.0] * 40 and result.steps["samples"] == [64] * 40
    assert result.steps["step_ms"] == steps0["step_ms"] and result.steps["sync_ms"] == steps0["sync_ms"]
    w = windows(result.steps)
    assert w["stall_pct"] and all(x == pytest.approx(result.summary["stall_pct"]) for x in w["stall_pct"])
    assert all(x == pytest.approx(result.summary["au_pct"]) for x in w["au_pct"])
    assert all(x == pytest.approx(result.summary["samples_per_s"]) for x in w["samples_per_s"])


def test_ranks_meet_over_tcp_at_the_address_rank_0_serves_as_torchrun_would_set_it(tmp_path):
    """Rank 0 serves a TCPStore on a port the OS picks (not a file in the trial's folder, which only one machine sees);
    a peer finds it through MASTER_ADDR and MASTER_PORT, and what one sets the other reads."""
    from datetime import timedelta

    import torch.distributed as dist

    from harness.trial.ranks import Rank

    zero = Rank(0, 2, tmp_path, timeout_s=30)
    zero._store = dist.TCPStore("127.0.0.1", 0, 2, is_master=True, timeout=timedelta(seconds=30), wait_for_workers=False)
    env = zero.environ(1, zero._store.port)
    assert env["MASTER_ADDR"] == "127.0.0.1" and int(env["MASTER_PORT"]) == zero._store.port > 0
    assert (env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"]) == ("1", "2", "1")
    peer = dist.TCPStore(env["MASTER_ADDR"], int(env["MASTER_PORT"]), 2, is_master=False, timeout=timedelta(seconds=30))
    peer.set("ready-1", "1")
    assert zero._store.check(["ready-1"]) and not list(tmp_path.iterdir())


def test_ranks_on_one_machine_meet_on_loopback_and_on_nodes_through_the_link_that_reaches_rank_0():
    import psutil

    from harness.trial.ranks import interface

    assert interface("127.0.0.1") == "lo"
    linked = [
        (name, a.address)
        for name, addresses in psutil.net_if_addrs().items()
        for a in addresses
        if a.family.name == "AF_INET" and not a.address.startswith("127.")
    ]
    for name, address in linked[:2]:  # an address of this machine is reached through the link that holds it
        assert interface(address) == name


def test_a_peer_waiting_for_a_repeat_that_rank_0_skipped_gives_up_at_once(tmp_path):
    """Rank 0 failed repeat 0 before serving it and serves repeat 1: the SLURM peer of repeat 0 ends at once, not after
    waiting out its connect time for a store that will never come."""
    import time
    from datetime import timedelta

    import torch.distributed as dist

    from harness.errors import HarnessError
    from harness.trial.peer import fetch

    zero = dist.TCPStore("127.0.0.1", 0, 2, is_master=True, timeout=timedelta(seconds=30), wait_for_workers=False)
    zero.set("repeat", "1")
    start = time.monotonic()
    with pytest.raises(HarnessError, match="rank 0 serves repeat 1, so repeat 0 ended without this rank"):
        fetch("127.0.0.1", zero.port, 1, tmp_path, repeat=0, wait_s=20)
    assert time.monotonic() - start < 10


@pytest.mark.parametrize(
    ("seconds", "keep", "timeout_s", "ended"), [(0.2, True, 30, "exited"), (30, False, 30, "stopped"), (30, True, 1.5, "timeout")]
)
def test_a_slurm_peers_repeat_ends_with_its_process_with_rank_0_or_at_its_timeout(seconds, keep, timeout_s, ended, monkeypatch):
    """``run_while``: a SLURM peer's repeat ends when its process does, when the job's first task (rank 0) has ended
    (nothing will be served any more), or at its timeout; the process is gone either way."""
    import subprocess
    import sys
    import time

    from harness.trial import spawn

    started = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(spawn.subprocess, "Popen", popen)
    t = time.monotonic()
    got = spawn.run_while([sys.executable, "-c", f"import time; time.sleep({seconds})"], lambda: keep, timeout_s)
    assert got == ended and started[0].poll() is not None
    assert time.monotonic() - t < 10
