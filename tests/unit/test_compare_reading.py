"""harness compare's reading of one matched figure: it never calls a change past the noise bound 'within the noise'."""

from harness.commands.compare import _reading
from harness.results.verdicts import Verdict


def verdict(change, p, verdict="ok", detectable=0.05):
    return Verdict("v", "samples_per_s", 1000.0, 1000.0 * (1 + change), change, p, verdict, 0.0, "relative", detectable=detectable)


def test_a_change_past_the_bound_that_the_rank_test_does_not_carry_is_not_significant_not_within_the_noise():
    assert _reading(verdict(0.084, 0.19))["said"] == "not significant (p 0.19)"  # two quickstart sweeps: +8.4%, bound 4.8%
    assert _reading(verdict(0.02, 0.6))["said"] == "within the noise"
    assert _reading(verdict(-0.3, 0.001, "regressed"))["said"] == "beyond the noise: worse (p 0.001)"
    assert _reading(verdict(0.1, None, "could not judge", detectable=None))["said"].startswith("cannot tell")


def test_the_page_keeps_figures_metric_names_and_p_values_on_one_line():
    """Two quickstart sweeps' page cut "1,073" into "1,07 / 3" and "cpu_ms_per_sample" at its last letter (every cell
    could wrap anywhere); figures and metric names now never wrap, and a reading's "(p 3.6e-05)" stays whole."""
    import re

    from harness.commands.compare import render

    row = {"variant": "num_parallel_calls=autotune prefetch=autotune", "metric": "cpu_ms_per_sample", "a": 1073.0, "b": 1183.0}
    side = {"variants": {row["variant"]: {}}}
    page = render("A", "B", side, side, [{**row, **_reading(verdict(0.103, 3.6e-05, "improved"))}])
    style = re.search(r"<style>(.*)</style>", page, re.S).group(1)
    assert re.search(r"td,th\{[^}]*white-space:nowrap", style) and re.search(r"\.m\{white-space:nowrap\}", style)
    assert '<td class="l m">cpu_ms_per_sample</td><td>1,073</td>' in page
    assert '<span class="m">(p 3.6e-05)</span>' in page
