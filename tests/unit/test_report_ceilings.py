"""The report's ceilings with known answers: which bound the diagnosis names, which ceiling held, the knee, the recommendation.

Sweeps are hand-built result.json files plus a hand-written ceilings.json, read back by
``load`` as a real report reads them; no loader runs and nothing is calibrated. On these
fixtures: 2 usable cores, PIL's chain alone 1,000 samples/s (2 ms of core time a sample: CPU
ceiling 1,000), tf.image's 2,000 (1 ms), the disk 200 MB/s over 50,000-byte files (I/O ceiling
4,000), and a batch of 32 every 10 ms (accelerator ceiling 3,200).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.report import knee, recommend, sections
from harness.report.diagnosis import diagnose
from harness.report.render import write
from harness.results import bounds
from harness.results.ceilings import CEILINGS_FILE, Ceilings, Cost, Disk, Pipeline, Work, decode_library, read, work_of
from harness.results.model import TrialResult
from harness.results.sweep import load

DATASET = "/cache/synthetic-0"
PIL = Work("pil", DATASET, 150, 150, 3)
TF = Work("tf_image", DATASET, 150, 150, 3)
TORCH_OPS = ["MapDataset: per sample read+PIL open+convert+resize(bilinear) to 150x150", "DataLoader(batch_size=32, num_workers=2)"]
TF_OPS = ["from_tensor_slices(manifest, n=100)", "map(read_file+decode_jpeg+resize+to_dtype, num_parallel_calls=2)", "batch(32)"]
CACHED_OPS = TF_OPS[:2] + ["cache(memory, after_resize)", "batch(32)"]


def ceilings(mb_per_s: float = 200.0, **kw) -> Ceilings:
    def cost(work: Work, ms: float) -> Cost:
        return Cost(work, ms * 1.1, ms, ms * 1.3, 0.05, False, 24, 5, 2 * 1000 / ms, "hand-written")

    def alone(work: Work, ms: float) -> Pipeline:
        return Pipeline(work, 0, [], 1000 / ms * 0.98, [1000 / ms * 0.98], ms, 2 * 1000 / ms, 0.1, "hand-written")

    disk = Disk(DATASET, 50_000.0, 100, 5_000_000, 0.025, mb_per_s, mb_per_s * 1e6 / 50_000, "evicted", 1.0, "hand-written")
    costs, pipes = [cost(PIL, 2.0), cost(TF, 1.0)], [alone(PIL, 2.0), alone(TF, 1.0)]
    return Ceilings("2026-11-30T10:00:00", 3.2, "vm", "Xeon", 2.0, "CPU affinity 2", costs, [disk], pipes, **kw)


def result(job: int, rate: float, stall: float, cpu: float, *, step_ms: float = 10.0, ops=None, decoder="pil", overrides=None):
    loader = {"ops": ops or TORCH_OPS} | ({"decoder": decoder} if decoder else {})
    return TrialResult(
        "ok",
        {"batch": {"size": 32, "height": 150, "width": 150, "channels": 3}, "consumer": {"step_ms": step_ms}, "loader": {"name": "x"}},
        overrides or [f"loader.variant={job}"],
        job,
        0,
        environment={"cpu_affinity": 2, "cpu_logical": 2},
        dataset={"root": DATASET, "count": 100, "mean_bytes": 50_000},
        loader=loader,
        steps={
            "step_ms": [step_ms / (1 - stall / 100)],
            "wait_ms": [step_ms * stall / (100 - stall)],
            "h2d_ms": [0.0],
            "compute_ms": [step_ms],
        },
        summary={
            "samples_per_s": rate,
            "stall_pct": stall,
            "au_pct": 100 - stall,
            "cpu_tree_mean_pct": cpu,
            "cpu_s_per_1000_samples": cpu / rate,
        },
    )


def write_sweep(root: Path, trials: list[TrialResult], found: Ceilings | None = None) -> Path:
    for t in trials:
        folder = root / str(t.job) / "repeat-0"
        folder.mkdir(parents=True)
        t.write(folder)
    if found is not None:
        found.write(root / CEILINGS_FILE)
    return root


def knee_sweep(root: Path) -> Path:
    """Two loaders at four step times: PIL's waits cross 20% between 5 and 10 ms, tf.image's between 2 and 5 ms."""
    trials, job = [], 0
    for loader, ops, decoder, stalls in (("torch", TORCH_OPS, "pil", (70, 40, 10, 1)), ("tf_data", TF_OPS, None, (45, 12, 2, 1))):
        for step, stall in zip((2, 5, 10, 20), stalls):
            rate = min(32_000 / step, 1000 if decoder else 2000) * 0.95
            over = [f"loader={loader}", f"consumer.step_ms={step}"]
            trials.append(result(job, rate, stall, 150.0, step_ms=step, ops=ops, decoder=decoder, overrides=over))
            job += 1
    return write_sweep(root, trials, ceilings())


# -- the file --------------------------------------------------------------------------------
def test_ceilings_json_reads_back_and_a_newer_or_broken_one_is_refused_with_its_name(tmp_path):
    path = ceilings().write(tmp_path / CEILINGS_FILE)
    again = read(path)
    assert again == ceilings() and again.cpu(PIL)[0] == 1000 and again.disk(DATASET).io_samples_per_s == 4000
    path.write_text(path.read_text().replace('"schema_version": 2', '"schema_version": 99'))
    with pytest.raises(HarnessError, match="newer than this harness reads"):
        read(path)
    path.write_text("{not json")
    with pytest.raises(HarnessError, match=f"{CEILINGS_FILE}: not a readable ceilings file"):
        read(path)


@pytest.mark.parametrize(
    "loader, library",
    [
        ({"decoder": "opencv", "ops": ["..."]}, "opencv"),
        ({"ops": TF_OPS}, "tf_image"),
        ({"ops": ["map(read_file+decode+resize+to_dtype, num_parallel_calls=2)"]}, "tf_image"),  # yardstick
        ({"ops": ["flow_from_directory(...): load_img (PIL open+convert+resize(bilinear)), np.stack"]}, "pil"),  # keras_idg
        ({"decoder": "as the pipeline does", "ops": ["make_tf(...)"]}, None),  # loader=custom
        ({"ops": ["sleep(produce_ms=5)"]}, None),  # loader=synthetic
    ],
)
def test_the_decode_library_comes_from_what_the_family_described(loader, library):
    assert decode_library(loader) == library


def test_an_augmenting_variant_is_a_work_of_its_own():
    config = {"batch": {"height": 150, "width": 150, "channels": 3}}
    dataset = {"root": DATASET, "count": 100}
    plain = work_of(config, {"decoder": "pil"}, dataset, {})
    augmented = work_of(config, {"decoder": "pil"}, dataset, {"library": "albumentations", "signature": "abc", "ops": [{"op": "rotate"}]})
    assert plain == PIL and augmented != plain and augmented.augment == "albumentations:abc"
    assert work_of(config, {"decoder": "pil"}, {"kind": "none"}, {}) is None  # reads no files


# -- the diagnosis names the bound -------------------------------------------------------------
def test_the_diagnosis_names_cpu_accelerator_fetch_and_serial_bounds(tmp_path):
    trials = [
        result(0, 950, 70.0, 190.0),  # PIL at 95% of its 1,000 samples/s CPU ceiling
        result(1, 2900, 9.0, 60.0, ops=CACHED_OPS, decoder=None),  # a cache: only the accelerator's 3,200 applies
        result(2, 300, 90.0, 55.0),  # 30% of its lowest ceiling, cores idle
        result(3, 1700, 45.0, 120.0, ops=TF_OPS, decoder=None),  # tf.image at 85% of 2,000
    ]
    sweep = load(write_sweep(tmp_path, trials, ceilings()))
    cpu, cached, serial, tf = sweep.variants
    said = {v.job: diagnose(v, sweep) for v in sweep.variants}
    assert cpu.bounds.bound == "CPU" and cpu.bounds.fraction == pytest.approx(0.95)
    assert "CPU-bound, at 95% of its CPU ceiling (1,000/s)" in said[0].lines[0]
    assert cached.bounds.bound == "accelerator" and [c.kind for c in cached.bounds.ceilings] == ["accelerator"]
    assert "accelerator-bound, at 91% of its accelerator ceiling" in said[1].lines[0]
    assert any("neither reads nor decodes files" in line for line in said[1].details)
    assert serial.bounds.bound is None and "at 30% of its CPU ceiling (1,000/s) with cores idle" in said[2].lines[0]
    assert "something serial holds it" in said[2].lines[0]
    assert tf.bounds.lowest.samples_per_s == 2000 and "CPU-bound, at 85% of its CPU ceiling (2,000/s)" in said[3].lines[0]
    assert all(len(d.lines) <= 3 for d in said.values())


def test_a_slow_disk_makes_the_variant_fetch_bound(tmp_path):
    sweep = load(write_sweep(tmp_path, [result(0, 760, 60.0, 80.0)], ceilings(mb_per_s=40.0)))  # I/O ceiling 800
    v = sweep.variants[0]
    assert v.bounds.bound == "I/O" and "fetch-bound, at 95% of its I/O ceiling" in diagnose(v, sweep).lines[0]


def test_a_variant_whose_files_were_in_the_page_cache_has_no_io_ceiling(tmp_path):
    warm = result(0, 760, 60.0, 80.0)
    warm.dataset["page_cache"] = {"mode": "as_is", "resident_before": 1.0}
    sweep = load(write_sweep(tmp_path, [warm], ceilings(mb_per_s=40.0)))
    v = sweep.variants[0]
    assert v.bounds.of("I/O") is None and "100% of the dataset's pages were in the page cache" in diagnose(v, sweep).text


def test_busy_cores_far_below_the_ceiling_are_cpu_bound_not_serial(tmp_path):
    sweep = load(write_sweep(tmp_path, [result(0, 400, 80.0, 190.0)], ceilings()))
    line = diagnose(sweep.variants[0], sweep).lines[0]
    assert "all 2 cores busy, yet at 40% of its CPU ceiling" in line and "serial" not in line


def test_without_ceilings_json_the_diagnosis_keeps_the_accelerator_alone(tmp_path):
    sweep = load(write_sweep(tmp_path, [result(0, 300, 90.0, 55.0)]))
    v = sweep.variants[0]
    assert [c.kind for c in v.bounds.ceilings] == ["accelerator"] and not v.bounds.measured
    assert "python -m harness calibrate SWEEP_DIR" in diagnose(v, sweep).text


def test_a_ceiling_a_steady_state_beats_is_named_mis_measured_and_bounds_nothing(tmp_path):
    fast = result(1, 1100, 60.0, 190.0)  # PIL's CPU ceiling is 1,000: this repeat beat it
    sweep = load(write_sweep(tmp_path, [result(0, 950, 70.0, 190.0), fast], ceilings()))
    assert len(sweep.mismeasured) == 1 and "the CPU ceiling (1,000 samples/s" in sweep.mismeasured[0]
    assert "variant=1 repeat 0 reached 1,100 samples/s in its steady state (+10%)" in sweep.mismeasured[0]
    for v in sweep.variants:  # the same ceiling on both: neither reasons from it
        assert v.bounds.of("CPU") is None and v.bounds.lowest.kind == "accelerator"
        assert any("was mis-measured" in line for line in diagnose(v, sweep).details)
    rows = recommend.ceiling_rows(sweep)
    assert [(kind, held.split(":")[0]) for kind, _, _, held in rows] == [("CPU", "mis-measured"), ("accelerator", "held"), ("I/O", "held")]


def test_no_shown_ceiling_lies_below_a_measured_steady_state(tmp_path):
    """The invariant as the report states it, over a sweep with a ceiling beaten and others not."""
    trials = [result(0, 950, 70.0, 190.0), result(1, 1100, 60.0, 190.0), result(2, 1700, 45.0, 120.0, ops=TF_OPS, decoder=None)]
    sweep = load(write_sweep(tmp_path, trials, ceilings()))
    for v in sweep.variants:
        for c in v.bounds.holding:
            assert all(bounds.steady(t) <= c.samples_per_s for u in sweep.variants if c in u.bounds.ceilings for t in u.ok)


# -- the ranking and the plot --------------------------------------------------------------------
def test_the_ranking_shows_the_share_of_the_lowest_ceiling(tmp_path):
    from harness.report.ranking import ranked_frame

    frame = ranked_frame(load(write_sweep(tmp_path, [result(0, 950, 70.0, 190.0), result(1, 300, 90.0, 55.0)], ceilings())))
    assert frame["of lowest ceiling"].tolist() == ["95% CPU", "30% CPU"]


def test_the_throughput_plot_draws_each_kind_of_ceiling(tmp_path):
    from harness.report import plots

    sweep = load(write_sweep(tmp_path, [result(0, 950, 70.0, 190.0), result(1, 1700, 45.0, 120.0, ops=TF_OPS, decoder=None)], ceilings()))
    ax = plots.throughput_figure(sweep).axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "accelerator ceiling 3,200" in legend and "I/O ceiling 4,000" in legend
    assert "CPU ceiling 1,000-2,000" in legend  # PIL's and tf.image's: a tick on each bar, not one line
    ticks = [c for c in ax.collections if len(c.get_offsets()) == 2]
    assert sorted(x for c in ticks for x, _ in c.get_offsets()) == [1000, 2000]


# -- knee ---------------------------------------------------------------------------------------
def test_the_knee_is_where_the_wait_crosses_20_percent(tmp_path):
    found = {c.name: c for c in knee.curves(load(knee_sweep(tmp_path)))}
    assert set(found) == {"loader=torch", "loader=tf_data"}
    assert found["loader=torch"].knee_ms == pytest.approx(5 + (40 - 20) / (40 - 10) * 5)  # 8.33 ms
    assert found["loader=tf_data"].knee_ms == pytest.approx(2 + (45 - 20) / (45 - 12) * 3)  # 4.27 ms
    assert "becomes the bottleneck below about 8.3 ms per step" in found["loader=torch"].text


@pytest.mark.parametrize(
    "steps, stalls, ms, words",
    [
        ((2, 10, 20), (3, 2, 1), None, "keeps up at every step time measured, down to 2 ms"),
        ((2, 10, 20), (80, 60, 30), None, "is the bottleneck at every step time measured, up to 20 ms"),
        # noisy: scanning down from the slowest step, the first crossing counts (30% at 20 ms, 5% at 40 ms)
        ((5, 10, 20, 40), (50, 10, 30, 5), 20 + (30 - 20) / (30 - 5) * 20, "below about 28.0 ms"),
    ],
)
def test_the_knee_says_so_when_it_lies_outside_the_step_times_measured(steps, stalls, ms, words):
    found, text = knee.knee([(s, 100.0, w) for s, w in zip(steps, stalls)])
    assert found == (None if ms is None else pytest.approx(ms)) and words in text


def test_no_knee_section_without_a_step_time_axis(tmp_path):
    assert knee.section(load(write_sweep(tmp_path, [result(0, 950, 70.0, 190.0), result(1, 300, 90.0, 55.0)], ceilings()))) is None


# -- recommendation --------------------------------------------------------------------------
def test_the_recommendation_is_one_predicted_step_marked_unverified(tmp_path):
    trials = [
        result(0, 300, 90.0, 55.0, overrides=["loader.num_workers=0"]),
        result(1, 600, 70.0, 190.0, overrides=["loader.num_workers=2"]),
    ]
    for t in trials:
        t.config["loader"] = {"name": "torch", "num_workers": int(t.overrides[0][-1]), "persistent_workers": False, "decoder": "pil"}
        t.loader["family_knobs"] = {"parallel": "loader.num_workers", "decoder": "loader.decoder", "decoders": ["pil", "simplejpeg"]}
    found = ceilings()
    found.costs.append(Cost(Work("simplejpeg", DATASET, 150, 150, 3), 1.0, 1.0, 1.0, 0.01, False, 24, 5, 2000, "hand-written"))
    data = recommend.build(load(write_sweep(tmp_path, trials, found)))
    text = data["paragraph"]
    assert text.startswith("From num_workers=2 (600 samples/s), next: loader.decoder=simplejpeg (decoder=simplejpeg).")
    assert "simplejpeg decode+resize to 150x150 took 1.00 ms a sample on one core against 2.20" in text  # measured, not guessed
    assert "Not verified: python -m harness advise" in text
    assert [row[0] for row in data["ceilings"]] == ["CPU", "accelerator", "I/O"]
    assert [row[3] for row in data["ceilings"]] == ["held"] * 3


def test_the_page_shows_recommendation_ceilings_and_knee(tmp_path):
    sweep = load(knee_sweep(tmp_path))
    html = write(sweep).read_text()
    assert "<h2>Recommendation</h2>" in html and 'id="ceilings"' in html and "<h2>Where each loader stops keeping up</h2>" in html
    assert html.index("<h2>Recommendation</h2>") < html.index('id="ranking"')
    summary = (tmp_path / "summary.md").read_text()
    assert "**Recommendation**" in summary and "becomes the bottleneck below about 8.3 ms per step" in summary
    assert {"recommendation", "knee"} <= {b.section.id for b in sections.build(sweep)}


def test_an_unreadable_ceilings_json_is_named_in_the_report_and_check_still_judges(tmp_path):
    root = write_sweep(tmp_path, [result(0, 950, 70.0, 190.0)])
    (root / CEILINGS_FILE).write_text("{broken")
    sweep = load(root)
    assert sweep.ceilings is None and sweep.skipped == []  # advice only: check must not refuse the sweep for it
    assert f"Not read: {root / CEILINGS_FILE}: not a readable ceilings file" in write(sweep).read_text()


def test_bounds_of_a_trial_are_pure():
    t = result(0, 950, 70.0, 190.0)
    b = bounds.of_trial(t, 950.0, 0.0, ceilings())
    assert [(c.kind, round(c.samples_per_s)) for c in b.ceilings] == [("accelerator", 3200), ("CPU", 1000), ("I/O", 4000)]
    v1 = ceilings()
    v1.pipelines, v1.schema_version = [], 1  # a schema 1 file: one thread's fastest pass times the cores
    assert [c.what for c in bounds.of_trial(t, 950.0, 0.0, v1).ceilings if c.kind == "CPU"] == [
        "PIL decode+resize to 150x150: one thread's fastest pass times 2 CPUs"
    ]
    assert b.lowest.kind == "CPU" and b.bound == "CPU" and bounds.of_trial(t, 950.0, 0.0, None).ceilings[0].kind == "accelerator"
