"""The report's variants, with known answers: spread and flags, the baseline, epoch restarts, and the bars.

Sweeps are hand-built result.json files in a temporary folder, read back by ``load`` as
a real report would; no loader runs.
"""

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.report import plots
from harness.report.diagnosis import diagnose
from harness.report.ranking import ranked_frame
from harness.report.render import markdown
from harness.results.model import TrialResult
from harness.results.sweep import cv, load, two_modes

LABELS = {  # the quickstart's four variants: long labels that agree in their first 38 characters
    0: ["loader.num_parallel_calls=none", "loader.prefetch=none"],
    1: ["loader.num_parallel_calls=none", "loader.prefetch=autotune"],
    2: ["loader.num_parallel_calls=autotune", "loader.prefetch=none"],
    3: ["loader.num_parallel_calls=autotune", "loader.prefetch=autotune"],
}


def write_sweep(root: Path, rates: dict, overrides: dict = None, status: dict = None, **summary) -> Path:
    """One job per key of ``rates``, one repeat per listed samples/s; ``summary`` adds keys to every trial."""
    for job, repeats in rates.items():
        for repeat, rate in enumerate(repeats):
            result = TrialResult(
                (status or {}).get(job, "ok"),
                {},
                (overrides or {}).get(job, [f"loader.produce_ms={job}"]),
                job,
                repeat,
                error="boom" if (status or {}).get(job) else None,
                steps={"step_ms": [10.0], "wait_ms": [3.0], "h2d_ms": [0.0], "compute_ms": [7.0]},
                summary={"samples_per_s": rate, "stall_pct": 30.0, "au_pct": 70.0, "ttfb_s": 0.1, **summary},
            )
            folder = root / str(job) / f"repeat-{repeat}"
            folder.mkdir(parents=True)
            result.write(folder)
    return root


# -- spread ------------------------------------------------------------------------------
def test_cv_is_the_sample_standard_deviation_over_the_mean():
    assert cv([90, 110]) == pytest.approx(0.1414, abs=1e-4)
    assert cv([1000, 1000, 1000]) == 0.0
    assert cv([1000]) is None and cv([]) is None


@pytest.mark.parametrize(
    "values, modes",
    [
        ([900, 910, 1500, 1520], ([900, 910], [1500, 1520])),
        ([1520, 900, 1500, 910], ([900, 910], [1500, 1520])),  # order of the repeats does not matter
        ([1000, 1010, 990, 1005], None),  # one cluster
        ([900, 1500, 1520], None),  # too few repeats to call two modes
        ([900, 1500, 1510, 1520], None),  # one slow outlier is not a second mode
        ([1000, 1001, 1040, 1041], None),  # a clean split, but 4% apart: noise, not two modes
        ([900, 1200, 1500, 1800], None),  # evenly spread: the gap is no bigger than the clusters' ranges
    ],
)
def test_two_modes_with_known_lists(values, modes):
    assert two_modes(values) == modes


def test_variants_carry_min_max_cv_and_their_flags_with_advice(tmp_path):
    sweep = load(write_sweep(tmp_path, {0: [1000, 1010, 990, 1005], 1: [90, 110], 2: [900, 910, 1500, 1520]}))
    steady, noisy, two = sweep.variants
    assert steady.spread == {"min": 990, "max": 1010, "repeats": 4}
    assert not steady.unstable and not steady.bimodal
    assert noisy.cv == pytest.approx(0.1414, abs=1e-4) and noisy.unstable and not noisy.bimodal
    said = {v.job: diagnose(v, sweep).text for v in sweep.variants}
    assert "trial.repeats" in said[1] and "trial.seconds" in said[1]
    assert two.bimodal and two.modes == (905, 1510) and two.unstable
    assert "Two speeds (905 and 1,510/s)" in said[2] and "pin num_parallel_calls" in said[2]
    frame = ranked_frame(sweep).set_index("variant")
    assert frame.loc["produce_ms=1", "CV"] == "14.1%" and frame.loc["produce_ms=1", "min–max"] == "90–110 (n=2)"
    assert frame.loc["produce_ms=1", "flags"].startswith("unstable")
    assert "bimodal" in frame.loc["produce_ms=2", "flags"] and "unstable" not in frame.loc["produce_ms=0", "flags"]


# -- baseline ----------------------------------------------------------------------------
def test_the_baseline_is_the_first_variant_unless_named(tmp_path):
    root = write_sweep(tmp_path, {0: [1000, 1000], 1: [500, 500], 2: [2000, 2000]})
    sweep = load(root)
    assert sweep.baseline.job == 0 and not sweep.baseline_given
    assert [v.speedup for v in sweep.variants] == [1.0, 0.5, 2.0]  # not against the slowest (job 1)
    text = markdown(sweep)
    assert "Speed-up vs job 0 (produce_ms=0), the sweep's first variant; choose another with report.baseline" in text
    assert "2.00x the baseline, job 0" in text
    named = load(root, baseline="produce_ms=2")
    assert named.baseline.job == 2 and named.baseline_given
    assert "Speed-up vs job 2 (produce_ms=2), chosen with report.baseline" in markdown(named)


def test_a_job_number_wins_over_an_override_value_every_variant_shares(tmp_path):
    overrides = {job: [f"loader.produce_ms={2 + 18 * job}", "trial.seconds=1"] for job in range(2)}
    root = write_sweep(tmp_path, {0: [1000], 1: [500]}, overrides=overrides)
    assert load(root, baseline="1").baseline.job == 1
    assert load(root, baseline="20").baseline.job == 1  # a value only job 1 has
    with pytest.raises(HarnessError, match="choose one of: 0 .produce_ms=2., 1 .produce_ms=20."):
        load(root, baseline="nine")


def test_a_failed_first_job_passes_the_baseline_to_the_next(tmp_path):
    sweep = load(write_sweep(tmp_path, {0: [0], 1: [500], 2: [2000]}, status={0: "failed"}))
    assert sweep.baseline.job == 1 and sweep.variants[2].speedup == 4.0


# -- steady state and epoch restarts -----------------------------------------------------
def test_steady_state_and_epoch_restarts_are_medians_and_explained_above_five_percent(tmp_path):
    sweep = load(
        write_sweep(
            tmp_path, {0: [1000, 1000, 1000]}, steady_samples_per_s=1200.0, epoch_restart_ms_p50=250.0, epoch_restarts=4, restart_pct=12.0
        )
    )
    v = sweep.variants[0]
    assert v.metrics["steady_samples_per_s"] == 1200.0 and v.metrics["restart_pct"] == 12.0
    said = diagnose(v, sweep).text
    assert "Epoch restarts cost 12% of its time (250 ms to each new epoch's first batch, 4 restarts)" in said
    assert "trial.epoch_mode=continuous" in said
    row = ranked_frame(sweep).iloc[0]
    assert row["steady-state samples/s"] == "1,200.0" and row["epoch restart (ms, % of time)"] == "250 ms (12.0%)"


def test_tf_data_restarts_with_autotuning_on_name_the_iterator_teardown(tmp_path):
    restarts = dict(steady_samples_per_s=1200.0, epoch_restart_ms_p50=700.0, epoch_restarts=2, restart_pct=15.0)
    tuned = load(write_sweep(tmp_path / "a", {0: [1000]}, **restarts))
    for trial in tuned.variants[0].trials:
        trial.config = {"loader": {"name": "tf_data", "autotune": None}}
    assert "loader.autotune=false" in diagnose(tuned.variants[0], tuned).text
    tuned.variants[0].trials[0].config["loader"]["autotune"] = False
    assert "loader.autotune=false" not in diagnose(tuned.variants[0], tuned).text


def test_results_without_the_epoch_keys_still_render(tmp_path):
    sweep = load(write_sweep(tmp_path, {0: [1000, 1000]}))
    assert sweep.variants[0].metrics["restart_pct"] is None and "restarts" not in diagnose(sweep.variants[0], sweep).text
    row = ranked_frame(sweep).iloc[0]
    assert row["steady-state samples/s"] == "–" and row["epoch restart (ms, % of time)"] == "–"
    none = load(write_sweep(tmp_path / "none", {0: [1000]}, restart_pct=0.0, epoch_restart_ms_p50=float("nan"), epoch_restarts=0))
    assert ranked_frame(none).iloc[0]["epoch restart (ms, % of time)"] == "no restart measured"
    small = load(write_sweep(tmp_path / "small", {0: [1000]}, restart_pct=3.0, epoch_restart_ms_p50=20.0))
    assert "restarts" not in diagnose(small.variants[0], small).text  # 3% is within the noise


# -- bars --------------------------------------------------------------------------------
def test_every_variant_has_its_own_bar_even_when_labels_share_a_long_prefix(tmp_path):
    sweep = load(write_sweep(tmp_path, {job: [1000 + 100 * job] for job in LABELS}, overrides=LABELS))
    assert len({v.label[:37] for v in sweep.variants}) == 3  # cut at 37 characters + "…", two of them were one bar
    for figure in (plots.throughput_figure(sweep), plots.breakdown_figure(sweep)):
        ax = figure.axes[0]
        ticks = [t.get_text() for t in ax.get_yticklabels()]
        assert len(set(ticks)) == 4 and all(len(line) <= 40 for t in ticks for line in t.splitlines())
        stacked = 1 if ax.get_xlabel().startswith("samples") else 3  # breakdown: compute, h2d, wait
        assert len(ax.patches) == 4 * stacked


@pytest.mark.parametrize("count", [1, 20])
def test_each_bar_shows_its_whole_label_and_ranking_number_inside_the_figure_and_apart_from_the_others(tmp_path, count):
    """A label was cut in the middle ("num_parallel_calls...otune prefetch=none"); now the whole of it is wrapped, numbered as
    in the ranking table, and its box lies inside the saved figure without touching another label's box."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    long = {
        job: [f"loader.num_parallel_calls={job}", "loader.prefetch=autotune", "loader.cache=memory", "augment.order=cheap"]
        for job in range(count)
    }
    sweep = load(write_sweep(tmp_path, {job: [1000 + 10 * job] for job in range(count)}, overrides=long))
    for figure in (plots.throughput_figure(sweep), plots.breakdown_figure(sweep)):
        FigureCanvasAgg(figure).draw()
        renderer = figure.canvas.get_renderer()
        labels = figure.axes[0].get_yticklabels()
        texts = {" ".join(t.get_text().split()) for t in labels}
        ranked = {f"{i}. {v.label}" for i, v in enumerate(sweep.ranked, 1)}
        assert texts == ranked  # every label whole, with its place in the ranking
        boxes = [t.get_window_extent(renderer) for t in labels]
        tight = figure.get_tightbbox(renderer).transformed(figure.dpi_scale_trans)  # what bbox_inches="tight" keeps
        assert all(b.x0 >= tight.x0 - 1 and b.y0 >= tight.y0 - 1 for b in boxes)
        rows = sorted(boxes, key=lambda b: b.y0)
        assert all(low.y1 <= high.y0 + 0.5 for low, high in zip(rows, rows[1:])), "two labels overlap"
    assert plots.throughput(sweep).startswith("data:image/png;base64,")


def test_labels_that_differ_only_in_the_middle_stay_whole_and_apart():
    class V:
        def __init__(self, job, label):
            self.job, self.label = job, label

    head, tail = "a" * 30, "z" * 30
    labels = plots.bar_labels([V(0, head + " 1 " + tail), V(1, head + " 2 " + tail), V(2, "short")], ranks={0: 2, 1: 1, 2: 3})
    assert [" ".join(x.split()) for x in labels] == [f"2. {head} 1 {tail}", f"1. {head} 2 {tail}", "3. short"]
    assert all(len(line) <= 38 for label in labels for line in label.splitlines())


def test_a_swept_value_that_hydra_escaped_reads_as_the_config_has_it():
    from harness.results.table import override_columns

    swept = ["loader.target=examples.my_pipeline\\:make_tf", "batch.size=8", "+x.y=a\\,b", "dataset.path=C:\\data"]
    assert override_columns(swept) == {
        "loader.target": "examples.my_pipeline:make_tf",
        "batch.size": "8",
        "x.y": "a,b",
        "dataset.path": "C:\\data",
    }
