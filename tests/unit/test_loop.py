"""The measured loop against a fake clock: every figure has a known answer."""

import pytest

from harness.errors import HarnessError
from harness.results.stats import summarize
from harness.trial.loop import run_loop


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Fake:
    """A loader that costs ``produce`` s per batch and a consumer that costs ``h2d + compute``."""

    def __init__(self, clock, produce=0.005, h2d=0.001, compute=0.010, per_epoch=10, batch=4, epoch_start=0.0):
        self.clock, self.produce, self.h2d, self.compute = clock, produce, h2d, compute
        self.per_epoch, self.batch, self.epoch_start = per_epoch, batch, epoch_start
        self.consumed = 0

    def epoch(self, index):
        self.clock.now += self.epoch_start
        for _ in range(self.per_epoch):
            self.clock.now += self.produce
            yield [0] * self.batch

    def consume(self, batch, during=None):
        self.clock.now += self.h2d
        if during is not None:
            during()
        self.clock.now += self.compute
        self.consumed += 1
        return self.h2d * 1e3, self.compute * 1e3


def run(fake, clock, bound, warmup=0):
    return run_loop(fake.epoch, fake.consume, bound, warmup, clock=clock)


def test_serial_step_is_produce_plus_consume():
    clock = FakeClock()
    fake = Fake(clock)
    result = run(fake, clock, {"steps": 20}, warmup=3)
    s = summarize(result.steps, result.wall_s, result.ttfb_s)
    assert s["steps"] == 20 and fake.consumed == 23
    assert s["batches_per_s"] == pytest.approx(1 / 0.016)
    assert s["samples_per_s"] == pytest.approx(4 / 0.016)
    assert s["stall_pct"] == pytest.approx(100 * 5 / 16)
    assert s["au_pct"] == pytest.approx(100 * 10 / 16)
    assert s["h2d_pct"] == pytest.approx(100 * 1 / 16)
    assert s["bookkeeping_pct"] == pytest.approx(0, abs=1e-9)
    assert result.ttfb_s == pytest.approx(0.005)
    assert result.stopped_by == "steps"


def test_warmup_is_excluded_and_timeline_starts_at_zero():
    clock = FakeClock()
    result = run(Fake(clock), clock, {"steps": 5}, warmup=4)
    assert len(result.steps) == 5
    assert result.steps.t_ms[0] == 0
    assert result.steps.t_ms[1] == pytest.approx(16)
    assert result.warmup_steps == 4


def test_seconds_bound_stops_at_first_step_past_it():
    clock = FakeClock()
    result = run(Fake(clock, per_epoch=1000), clock, {"seconds": 1.0})
    assert result.stopped_by == "seconds"
    assert result.wall_s == pytest.approx(63 * 0.016)  # first multiple of 16 ms >= 1 s


def test_epochs_bound_counts_whole_epochs_and_deliveries():
    clock = FakeClock()
    result = run(Fake(clock, per_epoch=7), clock, {"epochs": 3}, warmup=2)
    assert result.stopped_by == "epochs"
    assert result.epochs_started == 3
    assert result.epoch_samples == {0: 28, 1: 28, 2: 28}
    assert len(result.steps) == 3 * 7 - 2
    assert result.steps.epoch[0] == 0 and result.steps.epoch[-1] == 2


def test_first_bound_reached_wins():
    clock = FakeClock()
    result = run(Fake(clock, per_epoch=5), clock, {"steps": 100, "epochs": 2})
    assert result.stopped_by == "epochs" and len(result.steps) == 10


def test_time_between_epochs_counts_as_waiting_on_the_loader():
    clock = FakeClock()
    result = run(Fake(clock, per_epoch=4, epoch_start=0.100), clock, {"epochs": 3})
    s = summarize(result.steps, result.wall_s, result.ttfb_s)
    # each epoch: 0.1 s start + 4 x 16 ms; all of the start shows as wait on its first batch
    assert result.wall_s == pytest.approx(3 * (0.1 + 4 * 0.016))
    assert result.steps.wait_ms[4] == pytest.approx(105)
    assert s["bookkeeping_pct"] == pytest.approx(0, abs=1e-9)


def test_empty_epoch_is_an_error_not_a_hang():
    clock = FakeClock()
    with pytest.raises(HarnessError, match="no batch"):
        run(Fake(clock, per_epoch=0), clock, {"steps": 1})


def test_on_batch_sees_warmup_batches_too():
    clock = FakeClock()
    fake, seen = Fake(clock), []
    run_loop(fake.epoch, fake.consume, {"steps": 2}, 3, clock=clock, on_batch=lambda e, b: seen.append(e))
    assert len(seen) == 5


def test_bookkeeping_during_compute_is_hidden_unless_it_outlasts_the_step():
    clock = FakeClock()
    fake, seen = Fake(clock), []
    result = run_loop(fake.epoch, fake.consume, {"steps": 3}, 0, clock=clock, during_compute=lambda e, b: seen.append(e))
    assert len(seen) == 3 and result.steps.step_ms[0] == pytest.approx(16)


@pytest.mark.parametrize("warmup", [0, 3])
def test_on_measure_fires_once_where_the_measured_phase_begins(warmup):
    clock = FakeClock()
    fake = Fake(clock)
    fired = []
    result = run_loop(
        fake.epoch, fake.consume, {"steps": 5}, warmup, clock=clock, on_measure=lambda: fired.append((clock.now, fake.consumed))
    )
    assert len(fired) == 1
    assert fired[0][1] == warmup  # after the warm-up steps, before the first measured one
    assert result.measure_start == pytest.approx(fired[0][0]) if warmup else result.measure_start <= fired[0][0]


def test_epoch_restarts_are_measured_apart_from_the_steady_state():
    """Serial: every step costs 5 + 11 ms; each new epoch's first batch waits 100 ms more."""
    clock = FakeClock()
    fake = Fake(clock, epoch_start=0.100, per_epoch=10)
    result = run(fake, clock, {"steps": 40}, warmup=2)
    s = summarize(result.steps, result.wall_s, result.ttfb_s)
    # 40 measured steps from step 2 (epoch 0) to step 41 (epoch 4): boundaries at epochs 1, 2, 3, 4
    assert s["epoch_restarts"] == 4
    assert s["epoch_restart_ms_p50"] == pytest.approx(105.0)
    assert s["restart_pct"] == pytest.approx(100 * 0.4 / (40 * 0.016 + 0.4))
    assert s["steady_samples_per_s"] == pytest.approx(4 / 0.016)
    assert s["samples_per_s"] == pytest.approx(160 / (40 * 0.016 + 0.4))


def test_a_continuous_stream_pays_no_restart():
    clock = FakeClock()
    fake = Fake(clock, epoch_start=0.100, per_epoch=10)

    def stream():  # one iterator: the start-up cost is paid once, before the first batch
        clock.now += fake.epoch_start
        for epoch in range(100):
            for _ in range(fake.per_epoch):
                clock.now += fake.produce
                yield epoch, [0] * fake.batch
            yield epoch, None

    result = run_loop(stream(), fake.consume, {"epochs": 3}, 2, clock=clock)
    s = summarize(result.steps, result.wall_s, result.ttfb_s)
    assert result.stopped_by == "epochs" and result.completed == [0, 1, 2] and s["steps"] == 28
    assert s["epoch_restarts"] == 2 and s["restart_pct"] == pytest.approx(0.0)
    assert s["samples_per_s"] == pytest.approx(4 / 0.016)


def test_an_empty_epoch_in_a_stream_of_epochs_is_an_error():
    clock = FakeClock()
    fake = Fake(clock, per_epoch=0)
    with pytest.raises(HarnessError, match="no batch in epoch 0"):
        run(fake, clock, {"steps": 5})
