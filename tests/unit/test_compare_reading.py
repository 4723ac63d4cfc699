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
