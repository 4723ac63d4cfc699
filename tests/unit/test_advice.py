"""The advice's models with known answers: each lever's prediction, the ranking, the verification's verdicts.

Sweeps are hand-built result.json files (and a ceilings.json) read back by ``load`` as a real
report reads them; every expected figure follows from the numbers written here by the per-epoch
model, rate = 1 / (1 / steady + restart_s / samples_per_epoch).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.advice import checked, levers
from harness.advice.plan import MIN_GAIN, plan
from harness.advice.subject import per_epoch
from harness.results.ceilings import CEILINGS_FILE, Ceilings, Cost, Pipeline, Work
from harness.results.model import TrialResult
from harness.results.sweep import load

DATASET = "/cache/synthetic-0"
N = 2048  # samples per epoch
TF_KNOBS = {
    "parallel": "loader.num_parallel_calls",
    "parallel_auto": "autotune",
    "prefetch": "loader.prefetch",
    "cache": "loader.cache",
    "autotune": "loader.autotune",
    "shards": ["loader.source=tfrecord", "loader.interleave=true"],
    "continuous": True,
}
TORCH_KNOBS = {
    "parallel": "loader.num_workers",
    "persistent": "loader.persistent_workers",
    "decoder": "loader.decoder",
    "decoders": ["pil", "simplejpeg"],
}


def trial(
    job: int,
    steady: float,
    *,
    loader: dict,
    knobs: dict,
    restart_s: float = 0.0,
    cpu_ms: float = 2.0,
    repeat: int = 0,
    ops=None,
    copy_ms=0.0,
):
    """One ok repeat: a 4 s measured phase at ``steady`` with one restart of ``restart_s`` (none where 0)."""
    wall = 4.0
    samples = steady * (wall - restart_s)
    summary = {
        "samples_per_s": samples / wall,
        "steady_samples_per_s": steady,
        "stall_pct": 50.0,
        "wall_s": wall,
        "epoch_restarts": 1 if restart_s else 0,
        "restart_pct": 100 * restart_s / wall,
        "cpu_s_per_1000_samples": cpu_ms,
        "cpu_tree_mean_pct": 100.0,
    }
    config = {
        "batch": {"size": 32, "height": 150, "width": 150, "channels": 3},
        "consumer": {"step_ms": 10.0},
        "dataset": {"count": N},
        "trial": {"epoch_mode": "restart"},
        "loader": loader,
    }
    overrides = [f"{k}={v}" for k, v in (("loader", loader["name"]),) + tuple((f"loader.{k}", v) for k, v in loader.items() if k != "name")]
    return TrialResult(
        "ok",
        config,
        overrides,
        job,
        repeat,
        environment={"cpu_affinity": 2, "cpu_logical": 2, "ram_bytes": 24 * 2**30},
        dataset={"root": DATASET, "count": N, "mean_bytes": 50_000},
        loader={"ops": ops or ["map(read_file+decode_jpeg+resize+to_dtype)"], "family_knobs": knobs}
        | ({"decoder": loader["decoder"]} if "decoder" in loader else {}),
        steps={"step_ms": [12.0 + copy_ms], "wait_ms": [2.0], "h2d_ms": [copy_ms], "compute_ms": [10.0]},
        epochs={"completed": [0], "samples": {"0": N}},
        summary=summary,
    )


def tf(job, steady, *, calls="autotune", prefetch="autotune", cache="none", **kw):
    return trial(
        job, steady, loader={"name": "tf_data", "num_parallel_calls": calls, "prefetch": prefetch, "cache": cache}, knobs=TF_KNOBS, **kw
    )


def torch(job, steady, *, workers=2, persistent=False, decoder="pil", **kw):
    loader = {"name": "torch", "num_workers": workers, "persistent_workers": persistent, "decoder": decoder}
    return trial(job, steady, loader=loader, knobs=TORCH_KNOBS, **kw)


def sweep_of(root: Path, trials: list, ceilings: Ceilings | None = None):
    for t in trials:
        folder = root / str(t.job) / f"repeat-{t.repeat}"
        folder.mkdir(parents=True)
        t.write(folder)
    if ceilings is not None:
        ceilings.write(root / CEILINGS_FILE)
    return load(root)


def ceilings(*, cpu: float | None = None, costs: dict[str, float] | None = None, decoder: str = "pil") -> Ceilings:
    work = Work(decoder, DATASET, 150, 150, 3)
    pipes = [Pipeline(work, 0, [], cpu, [cpu], 2000 / cpu, cpu, 0.1, "hand-written")] if cpu else []
    found = [
        Cost(Work(name, DATASET, 150, 150, 3), ms, ms, ms, 0.01, False, 24, 5, 2000 / ms, "hand-written")
        for name, ms in (costs or {}).items()
    ]
    return Ceilings("2026-12-05T10:00:00", 1.0, "vm", "cpu", 2.0, "CPU affinity 2", found, [], pipes)


def only(found, what: str):
    matches = [c for c in found.candidates if c.change.what == what]
    assert matches, [c.change.what for c in found.candidates]
    return matches[0]


# -- the arithmetic -------------------------------------------------------------------------------
def test_per_epoch_adds_one_restart_to_an_epoch_at_the_steady_rate():
    assert per_epoch(1000.0, 0.5, 1000) == pytest.approx(1000 / 1.5)
    assert per_epoch(1000.0, 0.0, 1000) == pytest.approx(1000.0)


# -- each lever's known answer --------------------------------------------------------------------
def test_a_repeating_iterator_predicts_the_steady_state_and_beats_a_best_that_pays_restarts(tmp_path):
    sweep = sweep_of(tmp_path, [tf(0, 800.0, restart_s=1.0)])
    found = plan(sweep)
    c = only(found, "one repeating iterator")
    assert c.change.changes == ["trial.epoch_mode=continuous"] and c.change.predicted == pytest.approx(800.0)
    best = per_epoch(800.0, 1.0, N)
    assert found.best_rate == pytest.approx(best) and c.gain == pytest.approx(800.0 / best - 1)


def test_autotuning_off_keeps_a_refill_of_the_calls_and_two_batches(tmp_path):
    c = only(plan(sweep_of(tmp_path, [tf(0, 800.0, restart_s=1.0)])), "autotuning off, fixed parallelism")
    assert c.change.changes == ["loader.autotune=false", "loader.num_parallel_calls=2", "loader.prefetch=2"]
    assert c.change.predicted == pytest.approx(per_epoch(800.0, (2 + 64) / 800.0, N))


def test_persistent_workers_leave_one_workers_first_batch_per_epoch(tmp_path):
    c = only(plan(sweep_of(tmp_path, [torch(0, 600.0, restart_s=1.5)])), "persistent workers")
    assert c.change.changes == ["loader.persistent_workers=true"]
    assert c.change.predicted == pytest.approx(per_epoch(600.0, 2 * 32 / 600.0, N))


def test_more_workers_scale_with_the_cores_up_to_the_cpu_ceiling(tmp_path):
    found = plan(sweep_of(tmp_path, [torch(0, 300.0, workers=0, restart_s=0.1)], ceilings(cpu=500.0)))
    c = only(found, "num_workers=2")
    # 300 x 2 = 600, held at the ceiling 500; the restart refills at the new rate: 0.1 s x 300 / 500
    assert c.change.predicted == pytest.approx(per_epoch(500.0, 0.1 * 300 / 500, N))
    uncapped = plan(sweep_of(tmp_path / "more", [torch(0, 200.0, workers=0, restart_s=0.1)], ceilings(cpu=500.0)))
    assert only(uncapped, "num_workers=2").change.predicted == pytest.approx(per_epoch(400.0, 0.1 * 200 / 400, N))


def test_prefetch_makes_a_step_the_longer_of_loading_and_computing(tmp_path):
    # 32 samples in 30 ms: 20 ms loading then the 10 ms step; prefetched, a step takes 20 ms: 1,600 samples/s
    c = only(plan(sweep_of(tmp_path, [tf(0, 32 / 0.030, calls="2", prefetch="none")])), "prefetch=autotune")
    assert c.change.predicted == pytest.approx(1600.0)


def test_a_cache_predicts_the_accelerators_ceiling_with_the_restarts_kept(tmp_path):
    c = only(plan(sweep_of(tmp_path, [tf(0, 800.0, restart_s=0.2)])), "cache decoded images in memory")
    assert c.change.changes == ["loader.cache=memory"] and c.change.first_epoch
    assert c.change.predicted == pytest.approx(per_epoch(3200.0, 0.2, N))  # batch 32 every 10 ms step, no copy


def test_a_cached_chain_restarts_as_fast_as_a_fresh_iterator_starts(tmp_path):
    found = ceilings(cpu=1000.0, decoder="tf_image")  # its chain ran alone: a fresh iterator's first batch after 0.1 s
    c = only(plan(sweep_of(tmp_path, [tf(0, 800.0, restart_s=0.6)], found)), "cache decoded images in memory")
    assert c.change.predicted == pytest.approx(per_epoch(3200.0, 0.1, N)) and "a fresh iterator's start" in c.change.model


def test_a_cached_variant_is_judged_by_its_epochs_after_the_first_and_offers_no_decode_levers(tmp_path):
    t = tf(0, 900.0, cache="memory", ops=["map(read_file+decode_jpeg+resize+to_dtype)", "cache(memory, after_resize)"])
    # epoch 0 decodes at 32 samples per 40 ms; epoch 1, from the cache, at 32 per 12 ms (its first step waits for the restart)
    t.steps = {
        "epoch": [0] * 10 + [1] * 10,
        "step_ms": [40.0] * 10 + [300.0] + [12.0] * 9,
        "samples": [32] * 20,
        "wait_ms": [28.0] * 10 + [288.0] + [0.5] * 9,
        "h2d_ms": [0.0] * 20,
        "compute_ms": [10.0] * 20,
    }
    found = ceilings(costs={"tf_image": 3.0, "pil": 1.0})
    found.open_ms = 1.0
    s = plan(sweep_of(tmp_path, [t], found)).best
    assert s.cached and s.steady == pytest.approx(32 / 0.012)
    whats = {c.change.what for c in plan(sweep_of(tmp_path / "again", [t], found)).candidates}
    assert not whats & {"TFRecord shards, interleaved", "num_parallel_calls=autotune"}


def test_a_cheaper_decoder_takes_its_saving_off_each_lane(tmp_path):
    found = plan(sweep_of(tmp_path, [torch(0, 600.0, workers=2, persistent=True)], ceilings(costs={"pil": 3.0, "simplejpeg": 2.0})))
    c = only(found, "decoder=simplejpeg")
    assert c.change.changes == ["loader.decoder=simplejpeg"]
    assert c.change.predicted == pytest.approx(1 / (1 / 600.0 - 1.0 / 1000 / 2))  # 1 ms less on each of 2 workers: 857


def test_a_gpu_decoder_is_offered_on_a_cuda_consumer_only_with_its_bound_stated(tmp_path):
    knobs = {**TORCH_KNOBS, "gpu_decoders": ["nvjpeg"]}
    costs = ceilings(costs={"pil": 1.0})
    cpu = trial(0, 600.0, loader={"name": "torch", "num_workers": 2, "persistent_workers": True, "decoder": "pil"}, knobs=knobs)
    assert not [c for c in plan(sweep_of(tmp_path / "cpu", [cpu], costs)).candidates if c.change.what == "decoder=nvjpeg"]
    gpu = trial(0, 600.0, loader={"name": "torch", "num_workers": 2, "persistent_workers": True, "decoder": "pil"}, knobs=knobs)
    gpu.consumer = {"device": "cuda"}
    c = only(plan(sweep_of(tmp_path / "gpu", [gpu], costs)), "decoder=nvjpeg")
    assert c.change.predicted == pytest.approx(1 / (1 / 600.0 - 1.0 / 1000 / 2)) and "not measured" in c.change.model


def test_vectorized_light_ops_save_the_measured_map_call_on_each_lane(tmp_path):
    found = ceilings()
    found.map_ms = 0.5  # tf.data's per-element map call, ms of one core (a slow machine's: big enough to pass MIN_GAIN)
    light = tf(0, 800.0)
    light.config["loader"]["rescale"] = 1 / 255
    light.loader["family_knobs"] = {**TF_KNOBS, "vectorize": "loader.vectorized"}
    c = only(plan(sweep_of(tmp_path, [light], found)), "light ops on whole batches")
    saved = 0.5 * (1 - 1 / 32)  # paid once per batch of 32 instead of once per sample
    assert c.change.changes == ["loader.vectorized=true"] and c.change.predicted == pytest.approx(1 / (1 / 800.0 - saved / 1000 / 2))


def test_tfrecord_shards_save_the_measured_open_of_each_file(tmp_path):
    found = ceilings()
    found.open_ms = 0.4
    c = only(plan(sweep_of(tmp_path, [tf(0, 800.0)], found)), "TFRecord shards, interleaved")
    assert c.change.changes == ["loader.source=tfrecord", "loader.interleave=true"]
    assert c.change.predicted == pytest.approx(1 / (1 / 800.0 - 0.4 / 1000 / 2))


def test_pinned_memory_halves_the_copy_on_a_cuda_consumer_only(tmp_path):
    knobs = {**TORCH_KNOBS, "pin_memory": "loader.pin_memory"}
    loader = {"name": "torch", "num_workers": 2, "persistent_workers": True, "decoder": "pil", "pin_memory": False}
    emulated = trial(0, 2500.0, loader=loader, knobs=knobs, copy_ms=2.0)
    assert not [c for c in plan(sweep_of(tmp_path / "cpu", [emulated])).candidates if c.change.lever == "pin_memory"]
    gpu = trial(0, 2500.0, loader=loader, knobs=knobs, copy_ms=2.0)
    gpu.consumer = {"device": "cuda"}
    c = only(plan(sweep_of(tmp_path / "gpu", [gpu])), "pin_memory=true")
    faster, now = 32 / 0.011, 32 / 0.012  # a 10 ms step with a 1 ms copy instead of 2 ms
    assert c.change.predicted == pytest.approx(min(2500.0 * faster / now, faster))


# -- the plan -------------------------------------------------------------------------------------
def test_a_change_the_sweep_measured_is_no_advice_and_the_best_rank_first(tmp_path):
    sweep = sweep_of(tmp_path, [tf(0, 400.0, calls="none"), tf(1, 790.0, calls="autotune")])
    found = plan(sweep)
    assert not [c for c in found.candidates if c.change.what == "num_parallel_calls=autotune"]  # job 1 is that change
    assert any("measured as" in line for line in found.measured)
    predicted = [c.change.predicted for c in found.candidates]
    assert predicted == sorted(predicted, reverse=True) and all(c.gain >= MIN_GAIN for c in found.candidates)


def test_a_change_to_another_variant_shows_what_differs_from_the_best(tmp_path):
    # the serial best paid no restart in its trials; the parallel variant's 2.5 s restarts are borrowed for it (same family,
    # autotune on), and that variant, 800 between restarts, beats it on one repeating iterator
    sweep = sweep_of(tmp_path, [tf(0, 500.0, calls="none"), tf(1, 800.0, restart_s=2.5)])
    assert sweep.best.job == 0  # 500 against 800 x 1.5 s / 4 s = 300
    found = plan(sweep)
    c = only(found, "one repeating iterator")
    assert c.base.job == 1 and c.shown == ["loader.num_parallel_calls=autotune", "trial.epoch_mode=continuous"]
    assert found.best_rate == pytest.approx(per_epoch(500.0, 2.5, N)) and c.gain == pytest.approx(800.0 / found.best_rate - 1)


def test_verification_runs_a_warm_up_epoch_then_three_measured_epochs_or_as_many_as_fit(tmp_path):
    found = plan(sweep_of(tmp_path, [tf(0, 800.0, restart_s=1.0)]))  # 575 samples/s an epoch: 3.6 s
    assert found.conditions(found.top(2)) == ["trial.warmup_steps=64", "trial.epochs=4", "trial.seconds=null", "trial.steps=null"]
    fewer = plan(sweep_of(tmp_path / "fewer", [tf(0, 250.0, restart_s=1.0)]))  # its trials' 188/s: 10.9 s an epoch, 3 fit in 40 s
    assert fewer.conditions(fewer.top(2))[1] == "trial.epochs=3"
    slow = plan(sweep_of(tmp_path / "slow", [tf(0, 80.0, restart_s=1.0)]))  # two epochs would take 53 s
    assert slow.conditions(slow.top(2)) == []


# -- verdicts -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "predicted, ratios, expected",
    [
        (0.30, [1.28, 1.33, 1.25], "confirmed"),
        (0.30, [1.10, 1.12, 1.08], "smaller than predicted"),
        (0.30, [1.60, 1.55, 1.58], "larger than predicted"),
        (0.30, [1.01, 0.99, 1.02], "no gain"),
        (0.30, [0.90, 0.95, 0.93], "slower"),
        (0.30, [], "failed"),
    ],
)
def test_a_verdict_sets_the_measured_gain_against_the_prediction(predicted, ratios, expected):
    assert checked.verdict(predicted, ratios) == expected


def test_a_change_that_measured_slower_is_never_the_next_step():
    def one(verdict, ratios):
        return checked.Checked("l", verdict, [verdict], [], 0, "v", 1.0, 0.3, "m", "", [1.0] * len(ratios), ratios, verdict)

    advice = checked.Advice("now", {}, [], 3, [one("slower", [0.8, 0.8, 0.8]), one("smaller than predicted", [1.1, 1.1, 1.1])])
    assert advice.winner.what == "smaller than predicted"
    advice.checked = [one("slower", [0.8, 0.8, 0.8]), one("no gain", [1.0, 1.0, 1.0])]
    assert advice.winner is None


def test_advice_json_reads_back_and_a_newer_one_is_refused(tmp_path):
    advice = checked.Advice("now", {"job": 0}, ["trial.epochs=2"], 3, notes=["n"])
    path = advice.write(tmp_path / checked.ADVICE_FILE)
    assert checked.read(path) == advice
    path.write_text(path.read_text().replace('"schema_version": 1', '"schema_version": 9'))
    with pytest.raises(Exception, match="newer than this harness reads"):
        checked.read(path)


def test_every_lever_is_registered_and_says_its_model():
    assert set(levers.LEVERS) >= {
        "one repeating iterator",
        "persistent workers",
        "autotuning off",
        "parallelism",
        "prefetch",
        "cache",
        "decoder",
        "GPU decoder",
        "vectorize",
        "shards",
        "pin_memory",
    }


def test_advice_never_moves_the_data_to_another_storage(tmp_path):
    """Where the data lives is the user's situation: a variant on slower storage lends the best no change that would
    run on that storage (remote_storage's report advised 'storage=object_store ... loader.cache=memory' from local)."""
    remote = tf(1, 30.0, calls="none", prefetch="none", restart_s=1.0)
    remote.overrides = [*remote.overrides, "storage=object_store"]
    found = plan(sweep_of(tmp_path, [tf(0, 1000.0, cache="memory"), remote]))
    assert found.candidates and all(not any(o.startswith("storage") for o in c.run) for c in found.candidates), [
        c.run for c in found.candidates
    ]
