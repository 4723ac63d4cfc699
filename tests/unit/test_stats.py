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


def test_restarts_over_five_percent_are_called_out_in_plain_words():
    from harness.results.table import restart_note

    summary = {"restart_pct": 12.3, "epoch_restarts": 4, "epoch_restart_ms_p50": 105.0, "steady_samples_per_s": 1840.0}
    note = restart_note(summary)
    assert note.startswith("epoch restarts cost 12% of the time (4 restarts, 105 ms") and "1840 samples/s" in note
    assert restart_note({**summary, "restart_pct": 4.9}) == ""
    assert restart_note({}) == ""  # results from before the restart figures existed
