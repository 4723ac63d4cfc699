"""What check writes for dashboards: github-action-benchmark and Bencher JSON, in absolute and ratio mode."""

import pytest

from harness.check import compare
from harness.commands.check import bencher, github_benchmark
from harness.results.verdicts import Verdict


def doc(**variants):
    """A baseline-shaped document: variant -> repeats, each a list of samples/s windows (stall 20% throughout)."""
    return {
        "variants": {
            name: {"repeats": [{"windows": {"samples_per_s": list(w), "stall_pct": [20.0] * len(w)}, "summary": {}} for w in repeats]}
            for name, repeats in variants.items()
        }
    }


BASE = doc(ref=[[100, 100, 100]] * 2, fast=[[200, 200, 200]] * 2)
CURRENT = doc(ref=[[50, 50, 50]] * 2, fast=[[90, 100, 110], [95, 100, 105]])  # a machine at half speed


def test_ratio_mode_exports_a_ratio_with_its_reference_and_its_spread():
    verdicts = compare(BASE, CURRENT, metrics=["samples_per_s", "stall_pct"], thresholds={}, alpha=0.01, ratio_to="ref")
    ratio = next(v for v in verdicts if v.metric == "samples_per_s")
    assert (ratio.current, ratio.current_min, ratio.current_max) == pytest.approx((2.0, 1.8, 2.2))
    gh = github_benchmark(verdicts, ratio_to="ref")
    assert gh["bigger"] == [{"name": "fast samples_per_s_ratio", "unit": "x ref", "value": 2.0, "range": "± 0.2"}]
    assert gh["smaller"] == [{"name": "fast stall_pct", "unit": "% of step time", "value": 20.0, "range": "± 0"}]
    bmf = bencher(verdicts, ratio_to="ref")
    assert bmf["fast"]["samples-per-s-ratio"] == {"value": 2.0, "lower_value": 1.8, "upper_value": 2.2}
    assert "samples-per-s" not in bmf["fast"] and bmf["fast"]["stall-pct"]["value"] == 20.0


def test_absolute_mode_exports_samples_per_s_with_the_current_samples_spread():
    verdicts = compare(CURRENT, CURRENT, metrics=["samples_per_s"], thresholds={}, alpha=0.01, ratio_to=None)
    fast = next(v for v in verdicts if v.variant == "fast")
    gh = github_benchmark(verdicts)
    assert {"name": "fast samples_per_s", "unit": "samples/s", "value": 100.0, "range": "± 10.0"} in gh["bigger"]
    assert bencher(verdicts)["fast"]["samples-per-s"] == {"value": 100.0, "lower_value": 90.0, "upper_value": 110.0}
    assert (fast.current_min, fast.current_max) == (90, 110)


def test_verdicts_without_a_spread_still_export_and_old_check_files_still_load():
    old = {
        "variant": "a",
        "metric": "samples_per_s",
        "baseline": 1.0,
        "current": 1.1,
        "change": 0.1,
        "p": 0.5,
        "verdict": "ok",
        "threshold": 0.1,
        "kind": "relative",
    }  # check.json written before the spread fields
    v = Verdict(**old)
    assert github_benchmark([v])["bigger"] == [{"name": "a samples_per_s", "unit": "samples/s", "value": 1.1}]
    assert bencher([v]) == {"a": {"samples-per-s": {"value": 1.1}}}
