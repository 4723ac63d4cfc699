"""The gate's statistics with known answers: the rank test, windows, thresholds, direction."""

import random

import pytest

from harness.check import compare, mann_whitney_p, windows


def doc(**variants):
    """A baseline-shaped document: variant -> list of repeats, each a list of samples/s windows."""
    return {
        "variants": {
            name: {
                "repeats": [{"windows": {"samples_per_s": list(w), "stall_pct": [100 - x / 10 for x in w]}, "summary": {}} for w in repeats]
            }
            for name, repeats in variants.items()
        }
    }


def noisy(center, n, spread, seed):
    rng = random.Random(seed)
    return [center * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


def test_rank_test_matches_known_values():
    scipy_stats = pytest.importorskip("scipy.stats")
    a, b = noisy(100, 20, 0.1, 1), noisy(92, 20, 0.1, 2)
    expected = scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue
    assert mann_whitney_p(a, b) == pytest.approx(expected, rel=1e-6)
    assert mann_whitney_p([1, 1, 1], [1, 1, 1]) == 1.0
    assert mann_whitney_p([], [1, 2]) == 1.0


def test_identical_samples_pass():
    base = doc(a=[noisy(100, 10, 0.05, 3)] * 3)
    verdicts = compare(base, base, metrics=["samples_per_s", "stall_pct"], thresholds={}, alpha=0.01, ratio_to=None)
    assert {v.verdict for v in verdicts} == {"ok"}


@pytest.mark.parametrize("seed", range(20))
def test_ten_percent_noise_on_unchanged_runs_never_fails(seed):
    base = doc(a=[noisy(100, 8, 0.10, seed * 2 + r) for r in range(3)])
    current = doc(a=[noisy(100, 8, 0.10, 1000 + seed * 2 + r) for r in range(3)])
    verdicts = compare(base, current, metrics=["samples_per_s"], thresholds={}, alpha=0.01, ratio_to=None)
    assert verdicts[0].verdict != "regressed", verdicts[0]


def test_a_real_slowdown_beyond_the_threshold_regresses_and_a_small_one_does_not():
    base = doc(a=[noisy(100, 8, 0.03, r) for r in range(3)])
    slow = doc(a=[noisy(80, 8, 0.03, 10 + r) for r in range(3)])
    slight = doc(a=[noisy(95, 8, 0.03, 20 + r) for r in range(3)])
    assert compare(base, slow, metrics=["samples_per_s"], thresholds={}, alpha=0.01, ratio_to=None)[0].verdict == "regressed"
    # significant, but within the 10% threshold: not a regression; with a 3% threshold it is
    assert compare(base, slight, metrics=["samples_per_s"], thresholds={}, alpha=0.01, ratio_to=None)[0].verdict == "ok"
    tight = compare(base, slight, metrics=["samples_per_s"], thresholds={"samples_per_s": 0.03}, alpha=0.01, ratio_to=None)
    assert tight[0].verdict == "regressed"


def test_direction_is_honoured_for_lower_is_better_metrics():
    base = doc(a=[noisy(100, 8, 0.03, r) for r in range(3)])
    faster = doc(a=[noisy(130, 8, 0.03, 10 + r) for r in range(3)])  # stall_pct = 100 - x/10 goes down: better
    verdicts = {
        v.metric: v.verdict for v in compare(base, faster, metrics=["samples_per_s", "stall_pct"], thresholds={}, alpha=0.01, ratio_to=None)
    }
    assert verdicts == {"samples_per_s": "improved", "stall_pct": "ok"}  # 3 points < the 5-point threshold
    worse = doc(a=[noisy(40, 8, 0.03, 10 + r) for r in range(3)])  # stall up by 6 points
    stall = [v for v in compare(base, worse, metrics=["stall_pct"], thresholds={}, alpha=0.01, ratio_to=None)][0]
    assert stall.verdict == "regressed" and stall.change > 5


def test_ratio_mode_cancels_a_uniformly_slower_machine():
    base = doc(ref=[noisy(100, 8, 0.03, r) for r in range(3)], fast=[noisy(200, 8, 0.03, 5 + r) for r in range(3)])
    slower_machine = doc(ref=[noisy(60, 8, 0.03, 20 + r) for r in range(3)], fast=[noisy(120, 8, 0.03, 30 + r) for r in range(3)])
    absolute = compare(base, slower_machine, metrics=["samples_per_s"], thresholds={}, alpha=0.01, ratio_to=None)
    assert {v.verdict for v in absolute} == {"regressed"}
    ratio = compare(base, slower_machine, metrics=["samples_per_s"], thresholds={}, alpha=0.01, ratio_to="ref")
    assert [v.variant for v in ratio] == ["fast"] and ratio[0].verdict == "ok"


def steady_steps():
    """40 steps of 25 ms with 8 samples each: 320 samples/s; a 5 ms wait in each: 20% stall."""
    return {
        "t_ms": [25.0 * i for i in range(40)],
        "step_ms": [25.0] * 40,
        "samples": [8] * 40,
        "wait_ms": [5.0] * 40,
        "compute_ms": [20.0] * 40,
    }


def test_windows_of_the_step_timeline_have_known_rates():
    w = windows(steady_steps())
    assert len(w["samples_per_s"]) == 2
    assert w["samples_per_s"] == pytest.approx([320.0, 320.0])
    assert w["stall_pct"] == pytest.approx([20.0, 20.0]) and w["au_pct"] == pytest.approx([80.0, 80.0])
    assert w["cpu_ms_per_sample"] == []  # no sampler, no CPU windows


def test_cpu_windows_divide_the_tree_cpu_by_the_samples():
    # 320 samples/s while the process tree burns half a core: 0.5 s CPU / 160 samples a second
    w = windows(steady_steps(), cpu=lambda when: 0.5 * when)
    assert w["cpu_ms_per_sample"] == pytest.approx([0.5 * 1e3 / 320] * 2)


def test_detectable_change_from_the_spread_of_repeats():
    from harness.check import DETECT_Z, detectable

    # medians 98, 100, 102 on both sides: pooled sd 2, standard error 2 * sqrt(2/3)
    assert detectable([98, 100, 102], [98, 100, 102]) == pytest.approx(DETECT_Z * 2 * (2 / 3) ** 0.5 / 100)
    assert detectable([100], [90, 91]) is None


def test_a_slowdown_within_the_run_to_run_noise_is_not_called_a_regression_nor_a_pass():
    quiet = doc(a=[noisy(100, 8, 0.01, r) for r in range(3)])
    slower = doc(a=[noisy(88, 8, 0.01, 10 + r) for r in range(3)])
    # the same 12% slowdown, but the repeats themselves scatter by +-15%: no repeat can be told from noise
    scattered_base = doc(a=[noisy(c, 8, 0.01, 20 + r) for r, c in enumerate((85, 100, 115))])
    scattered = doc(a=[noisy(c * 0.88, 8, 0.01, 30 + r) for r, c in enumerate((85, 100, 115))])
    clear = compare(quiet, slower, metrics=["samples_per_s"], thresholds={}, alpha=0.01, ratio_to=None)[0]
    assert clear.verdict == "regressed" and clear.detectable < 0.05
    noisy_verdict = compare(scattered_base, scattered, metrics=["samples_per_s"], thresholds={}, alpha=0.01, ratio_to=None)[0]
    # "no change beyond 10%" is not a claim repeats that scatter by 15% can make: could not judge (exit 2), never ok
    assert noisy_verdict.verdict == "could not judge" and noisy_verdict.detectable > 0.12
    assert "more than the 10% threshold" in noisy_verdict.reason and "baseline with more rounds" in noisy_verdict.reason
    assert "a side would: with check --ab, trial.repeats=" in noisy_verdict.reason
    assert noisy_verdict.change == pytest.approx(-0.12, abs=0.02)  # the figures stay in the table


def test_a_large_change_counts_even_when_the_repeats_are_too_noisy_for_the_threshold():
    base = doc(a=[noisy(c, 8, 0.01, r) for r, c in enumerate((95, 100, 105))])  # +-5% between repeats
    halved = doc(a=[noisy(c / 2, 8, 0.01, 10 + r) for r, c in enumerate((95, 100, 105))])
    verdict = compare(base, halved, metrics=["samples_per_s"], thresholds={"samples_per_s": 0.02}, alpha=0.01, ratio_to=None)[0]
    assert verdict.detectable > 0.02 and verdict.verdict == "regressed"


def test_rounds_needed_brings_the_detectable_change_down_to_the_threshold():
    from harness.check import DETECT_Z, detectable, rounds_a_side, rounds_needed

    medians = [98, 100, 102]  # sd 2 around 100
    # z*2*sqrt(1/3 + 1/n)/100 <= 3% holds from n = 13 on, not at 12
    assert rounds_needed(medians, medians, 0.03) == 13
    assert DETECT_Z * 2 * (1 / 3 + 1 / 13) ** 0.5 / 100 <= 0.03 < DETECT_Z * 2 * (1 / 3 + 1 / 12) ** 0.5 / 100
    assert rounds_needed(medians, medians, 0.05) == 2  # already enough: never fewer than two
    assert rounds_needed(medians, medians, 0.02) is None  # three baseline rounds are too few for any number here
    # both sides growing (a new baseline, or check --ab): z*2*sqrt(2/n)/100 is 2.94% at n = 5, 3.29% at n = 4
    assert rounds_a_side(medians, medians, 0.03) == 5
    assert detectable(medians, [98, 100, 102] * 4 + [100]) <= 0.03 + 1e-9


def test_a_variants_own_threshold_applies_to_it_alone():
    base = doc(a=[noisy(100, 8, 0.01, r) for r in range(3)], b=[noisy(100, 8, 0.01, 5 + r) for r in range(3)])
    slight = doc(a=[noisy(95, 8, 0.01, 10 + r) for r in range(3)], b=[noisy(95, 8, 0.01, 15 + r) for r in range(3)])
    verdicts = compare(base, slight, metrics=["samples_per_s"], thresholds={"a:samples_per_s": 0.03}, alpha=0.01, ratio_to=None)
    assert {v.variant: (v.verdict, v.threshold) for v in verdicts} == {"a": ("regressed", 0.03), "b": ("ok", 0.10)}


def test_plan_sizes_the_rounds_from_the_baselines_own_noise():
    from harness.check import plan

    base = doc(a=[noisy(c, 8, 0.0, r) for r, c in enumerate((98, 100, 102, 98, 100, 102))])
    (row,) = plan(base, metrics=["samples_per_s"], thresholds={"samples_per_s": 0.03}, ratio_to=None)
    assert row["noise"] == pytest.approx(0.01789, abs=1e-4) and row["repeats"] == 6
    # sd 1.79 (pooled over both copies): z*s*sqrt(1/6 + 1/n) is 2.94 at n = 3, 3.40 at n = 2
    assert row["rounds"] == 3


def test_ratio_mode_divides_by_the_reference_of_the_same_round():
    """Round 2 of the current run ran on a busy machine: both variants lost 30% in that round only."""
    base = doc(ref=[noisy(100, 8, 0.01, r) for r in range(3)], fast=[noisy(200, 8, 0.01, 5 + r) for r in range(3)])
    load = (1.0, 1.0, 0.7)
    busy = doc(
        ref=[noisy(100 * f, 8, 0.01, 20 + r) for r, f in enumerate(load)],
        fast=[noisy(200 * f, 8, 0.01, 30 + r) for r, f in enumerate(load)],
    )
    for d in (base, busy):
        for v in d["variants"].values():
            for r, repeat in enumerate(v["repeats"]):
                repeat["round"] = r
    verdict = compare(base, busy, metrics=["samples_per_s"], thresholds={}, alpha=0.01, ratio_to="ref")[0]
    assert verdict.verdict == "ok" and abs(verdict.change) < 0.03
    # the busy round, divided by its own reference, reads as 2.0 like the others (1.4 against the pooled median)
    assert 1.9 < verdict.current_min and verdict.current_max < 2.1


def test_ratio_mode_without_the_references_cpu_says_so_instead_of_comparing_absolute_figures():
    base = doc(ref=[noisy(100, 8, 0.01, r) for r in range(3)], fast=[noisy(200, 8, 0.01, 5 + r) for r in range(3)])
    for v in base["variants"].values():
        for repeat in v["repeats"]:
            repeat["windows"]["cpu_ms_per_sample"] = [1.0] * 8
    for repeat in base["variants"]["ref"]["repeats"]:
        repeat["windows"]["cpu_ms_per_sample"] = []  # the reference ran without the sampler
    verdict = compare(base, base, metrics=["cpu_ms_per_sample"], thresholds={}, alpha=0.01, ratio_to="ref")[0]
    assert verdict.verdict == "could not judge" and verdict.current is None
    assert verdict.reason == "no cpu_ms_per_sample of ref to divide by"


def test_paired_rounds_cancel_what_moved_a_whole_round():
    """Both sides in the same rounds: a round 10% slower for both is no noise of their difference; unpaired it is."""
    from harness.check import detectable, paired_detectable

    base = [100.0, 90.0, 100.0, 90.0]
    current = [99.0, 89.0, 99.5, 89.5]  # 1% slower in every round, the rounds themselves 10% apart
    assert detectable(base, current) > 0.1
    assert paired_detectable(list(zip(base, current)), 95.0) == pytest.approx(2.326 * 0.0030 / 2, abs=0.001)
    assert paired_detectable([(100.0, 99.0)], 100.0) is None  # one round: the noise is unknown


def test_a_second_sweep_pools_after_the_first_and_runs_only_the_variants_it_could_not_judge():
    from harness.commands.ab import ROUND_OFFSET, more_rounds, pool

    first = {"variants": {"a": {"overrides": {"+experiment/g": "a", "trial.code": "/b"}, "repeats": [{"round": 0}, {"round": 1}]}}}
    second = {"variants": {"a": {"overrides": {}, "repeats": [{"round": 0}]}, "new": {"overrides": {}, "repeats": [{"round": 0}]}}}
    pooled = pool(first, second)
    assert [r["round"] for r in pooled["variants"]["a"]["repeats"]] == [0, 1, ROUND_OFFSET] and "new" not in pooled["variants"]
    assert len(first["variants"]["a"]["repeats"]) == 2  # the first sweep's document is not changed
    args = ["experiment=g", "+experiment/g=a,b,c", "trial.repeats=6", "loader.x=1", "hydra.sweep.dir=d"]
    assert more_rounds(args, first, ["a"], 4) == ["experiment=g", "+experiment/g=a", "loader.x=1", "trial.repeats=4"]
