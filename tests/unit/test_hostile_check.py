"""The gate never answers "ok" when it could not judge: too few windows, NaN, a zero reference, missing
or unfinished variants, a malformed baseline; and its Markdown cannot be made to render markup."""

import json
import math

import pytest

from harness.check import CheckError, compare, load_baseline, mann_whitney_p, smallest_p, windows_needed
from harness.commands.check import markdown
from harness.results.verdicts import CANNOT
from tests.unit.test_check import doc, noisy

ALPHA = 0.01


def judge(base, current, metrics=("samples_per_s",), ratio_to=None, alpha=ALPHA):
    return compare(base, current, metrics=list(metrics), thresholds={}, alpha=alpha, ratio_to=ratio_to)


@pytest.mark.parametrize("n_a, n_b", [(1, 1), (3, 3), (4, 4), (5, 5), (6, 6), (5, 50), (2, 40)])
def test_smallest_p_is_what_the_rank_test_gives_when_every_sample_moved(n_a, n_b):
    pytest.importorskip("scipy")
    separated = mann_whitney_p(list(range(n_a)), list(range(n_a, n_a + n_b)))
    assert smallest_p(n_a, n_b) == pytest.approx(separated, rel=1e-9)


def test_windows_needed_is_the_first_count_that_can_reach_alpha():
    assert windows_needed(4, 4, 0.01) == 6 and smallest_p(5, 5) >= 0.01 > smallest_p(6, 6)
    assert windows_needed(50, 2, 0.01) == 3  # the short side alone has to grow
    assert windows_needed(20, 20, 0.01) == 1  # already enough


def test_a_43_percent_slowdown_in_too_few_windows_cannot_be_judged_and_says_what_is_needed():
    """2-second trials, one repeat: four 0.5 s windows a side can never give p < 0.01 (at best 0.03)."""
    base = doc(a=[noisy(100, 4, 0.02, 1)])
    slow = doc(a=[noisy(57, 4, 0.02, 2)])
    verdict = judge(base, slow)[0]
    assert verdict.verdict == CANNOT  # before: "ok", exit 0
    assert "4 baseline and 4 current 0.5 s windows can never reach p < 0.01" in verdict.reason
    assert "at least 6 windows a side (3 s of measured time" in verdict.reason and "trial.seconds" in verdict.reason
    enough = judge(doc(a=[noisy(100, 6, 0.02, 1)]), doc(a=[noisy(57, 6, 0.02, 2)]))[0]
    assert enough.verdict == "regressed"


def test_nan_windows_cannot_be_judged():
    base = doc(a=[noisy(100, 8, 0.02, r) for r in range(3)])
    current = doc(a=[noisy(100, 8, 0.02, 10 + r) for r in range(3)])
    current["variants"]["a"]["repeats"][1]["windows"]["samples_per_s"][3] = math.nan
    verdict = judge(base, current)[0]
    assert verdict.verdict == CANNOT and "current samples_per_s samples include NaN" in verdict.reason
    base["variants"]["a"]["repeats"][0]["windows"]["samples_per_s"] = [math.inf] * 8
    assert "baseline samples_per_s samples include NaN" in judge(base, base)[0].reason


def test_a_reference_at_zero_in_ratio_mode_cannot_be_judged_instead_of_dividing_by_zero():
    base = doc(ref=[noisy(100, 8, 0.01, r) for r in range(3)], fast=[noisy(200, 8, 0.01, 5 + r) for r in range(3)])
    zero = doc(ref=[[0.0] * 8 for _ in range(3)], fast=[noisy(200, 8, 0.01, 5 + r) for r in range(3)])
    verdict = judge(base, zero, ratio_to="ref")[0]
    assert verdict.verdict == CANNOT and verdict.reason == "no samples_per_s of ref to divide by"


def test_unfinished_or_missing_variants_cannot_be_judged():
    base = doc(
        a=[noisy(100, 8, 0.02, r) for r in range(3)],
        b=[noisy(100, 8, 0.02, 5 + r) for r in range(3)],
        c=[noisy(100, 8, 0.02, 9 + r) for r in range(3)],
    )
    current = doc(a=[noisy(100, 8, 0.02, 20 + r) for r in range(3)], b=[noisy(100, 8, 0.02, 30 + r) for r in range(2)])
    current["variants"]["b"]["problems"] = ["repeat 2 too short: measured 2 steps"]
    verdicts = {v.variant: v for v in judge(base, current)}
    assert verdicts["a"].verdict == "ok"
    assert verdicts["b"].verdict == CANNOT and "repeat 2 too short: measured 2 steps" in verdicts["b"].reason
    assert verdicts["c"].verdict == CANNOT and "not in this sweep" in verdicts["c"].reason


def test_a_reference_with_interrupted_trials_blocks_the_ratios_but_not_the_rest():
    base = doc(ref=[noisy(100, 8, 0.01, r) for r in range(3)], fast=[noisy(200, 8, 0.01, 5 + r) for r in range(3)])
    current = json.loads(json.dumps(base))
    current["variants"]["ref"]["problems"] = ["repeat 1 interrupted: SIGTERM"]
    verdicts = {v.metric: v for v in judge(base, current, metrics=("samples_per_s", "stall_pct"), ratio_to="ref")}
    assert verdicts["samples_per_s"].verdict == CANNOT and "the reference ref" in verdicts["samples_per_s"].reason
    assert verdicts["stall_pct"].verdict == "ok"


def test_a_metric_neither_side_measured_cannot_be_judged():
    base = doc(a=[noisy(100, 8, 0.02, r) for r in range(3)])
    verdict = judge(base, base, metrics=("cpu_ms_per_sample",))[0]
    assert verdict.verdict == CANNOT and "neither the baseline nor this sweep has cpu_ms_per_sample" in verdict.reason


@pytest.mark.parametrize(
    "variants",
    [
        {"a": []},
        {"a": {"repeats": "x"}},
        {"a": {"repeats": [{"windows": []}]}},
        {"a": {"repeats": [{"windows": {"samples_per_s": ["fast"]}, "summary": {}}]}},
        {"a": {"repeats": [{"windows": {}, "summary": {"samples_per_s": [1]}}]}},
        {"a": {"repeats": [{"windows": {}, "summary": {}, "round": [0]}]}},
    ],
)
def test_a_malformed_baseline_is_refused_in_one_line(tmp_path, variants):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"harness_baseline": 1, "fingerprint": {}, "variants": variants}))
    with pytest.raises(CheckError, match=r"malformed baseline \(variant 'a': .*\); make it again") as info:
        load_baseline(path)
    assert "\n" not in str(info.value)


def test_check_markdown_escapes_variant_names_and_reasons():
    markdown_it = pytest.importorskip("markdown_it")
    name = "<img src=x onerror=alert(1)> a|b `c`"
    base = doc(**{name: [noisy(100, 4, 0.02, 1)]})
    text = markdown(judge(base, base), ratio=False, alpha=ALPHA)
    html = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    assert "<img" not in html and "<code>" not in html
    assert html.count("<td") == 8  # one row of eight cells: the pipe split nothing
    assert text.startswith("## harness check: could not judge 1 comparison(s)")


def test_a_baseline_with_nan_is_refused_when_saved_not_found_unjudgeable_later(tmp_path, monkeypatch):
    from harness import check

    data = doc(a=[noisy(100, 10, 0.05, 1)] * 2)
    data["variants"]["a"].update(problems=[], overrides=["loader.workers=1"])
    data["variants"]["a"]["repeats"][1]["windows"]["samples_per_s"][2] = math.nan
    data["fingerprint"] = {}
    monkeypatch.setattr(check, "collect", lambda root: data)
    with pytest.raises(CheckError, match="variant 'a' samples_per_s is NaN or infinite; run the sweep again"):
        check.save_baseline(tmp_path, tmp_path / "baseline.json")
    assert not (tmp_path / "baseline.json").exists()
    data["variants"]["a"]["repeats"][1]["windows"]["samples_per_s"][2] = 100.0
    data["variants"]["a"]["repeats"][0]["summary"]["epoch_restart_ms_p50"] = math.nan  # no epoch began: not gated
    assert check.save_baseline(tmp_path, tmp_path / "baseline.json").exists()


def test_new_options_refuse_what_they_cannot_do_in_one_line(tmp_path, capsys):
    """A variant threshold for a variant the baseline lacks would silently never apply; --plan needs the
    baseline's noise; --ab runs its own comparison; an odd --threshold names the form it wants."""
    from harness.commands.check import check

    baseline = tmp_path / "b.json"
    baseline.write_text(json.dumps({"harness_baseline": 1, "fingerprint": {}, "variants": doc(a=[[100.0] * 8] * 3)["variants"]}))
    cases = [
        (["--plan", "--baseline", str(baseline), "--threshold", "nosuch:samples_per_s=5%"], "no variant 'nosuch' in the baseline"),
        (["--plan"], "check --plan needs --baseline FILE"),
        (["--ab", "HEAD", "--baseline", str(baseline)], "--ab compares two revisions in one sweep"),
        (["x", "--baseline", str(baseline), "--threshold", "a:speed=5%"], "expected [VARIANT:]METRIC=VALUE"),
        ([], "check needs one sweep folder"),
    ]
    for args, said in cases:
        assert check(args) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1, err


def test_plan_prints_the_rounds_and_says_when_the_baseline_is_too_short(tmp_path, capsys):
    from harness.commands.check import check

    baseline = tmp_path / "b.json"
    steady = doc(a=[[c] * 8 for c in (98.0, 100.0, 102.0, 98.0, 100.0, 102.0)])["variants"]
    baseline.write_text(json.dumps({"harness_baseline": 1, "fingerprint": {}, "variants": steady}))
    assert check(["--plan", "--baseline", str(baseline), "--metric", "samples_per_s", "--threshold", "samples_per_s=3%"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("rounds: 3 (trial.repeats=3")
    assert check(["--plan", "--baseline", str(baseline), "--metric", "samples_per_s", "--threshold", "samples_per_s=1%"]) == 2
    assert "rounds: unknown" in capsys.readouterr().out


def test_the_projects_gate_options_parse_and_name_only_variants_the_gate_runs():
    import shlex

    from omegaconf import OmegaConf

    from harness.commands.check import _parser, _thresholds
    from tests.conftest import ROOT

    opts = _parser().parse_args(shlex.split((ROOT / "ci" / "gate.args").read_text()))
    ran = OmegaConf.load(ROOT / "experiments" / "ci_gate.yaml").hydra.sweeper.params["+experiment/ci_gate"].split(",")
    variants = {key.rpartition(":")[0] for key in _thresholds(opts.threshold)} - {""}
    assert variants <= set(ran) and opts.ratio_to in ran
    assert all((ROOT / "experiments" / "ci_gate" / f"{name}.yaml").is_file() for name in ran)
    assert "ci/gate.args" in (ROOT / "Makefile").read_text()


def test_the_projects_ab_gate_options_name_only_the_variants_make_gate_runs():
    """make gate's A/B design: per-variant thresholds for the two tiers it runs, no yardstick (both sides share each round)."""
    import re
    import shlex

    from harness.commands.check import _parser, _thresholds
    from tests.conftest import ROOT

    opts = _parser().parse_args(shlex.split((ROOT / "ci" / "gate-ab.args").read_text()))
    makefile = (ROOT / "Makefile").read_text()
    ran = re.search(r"\+experiment/ci_gate=(\S+)", makefile).group(1).split(",")  # type: ignore[union-attr]
    variants = {key.rpartition(":")[0] for key in _thresholds(opts.threshold)} - {""}
    assert variants <= set(ran) and opts.ratio_to is None and "ci/gate-ab.args" in makefile
    assert all((ROOT / "experiments" / "ci_gate" / f"{name}.yaml").is_file() for name in ran)
