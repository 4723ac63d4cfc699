import pytest

from harness.results.stats import window_throughput


def test_windows_of_constant_rate_all_equal_that_rate():
    t = [i * 10.0 for i in range(200)]  # 10 ms steps of 8 samples: 800 samples/s
    rates = window_throughput(t, [10.0] * 200, [8] * 200, window_s=0.5)
    assert len(rates) == 4
    assert rates == pytest.approx([800.0] * 4)


def test_short_trial_gives_one_window():
    assert window_throughput([0.0, 10.0], [10.0, 10.0], [4, 4], window_s=5) == pytest.approx([400.0])


def test_slow_half_shows_in_its_window():
    t, step = [], []
    now = 0.0
    for i in range(100):
        d = 10.0 if i < 50 else 20.0
        t.append(now)
        step.append(d)
        now += d
    rates = window_throughput(t, step, [1] * 100, window_s=0.5)
    assert rates[0] == pytest.approx(100.0) and rates[-1] == pytest.approx(50.0)
