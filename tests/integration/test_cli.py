"""The CLI as a user runs it, in a subprocess, on tiny datasets."""

import csv
import json
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, sweep_dir

TINY = ["dataset.count=48", "dataset.width=96", "dataset.height=72", "batch.size=8", "batch.height=32", "batch.width=32"]


def read_rows(folder):
    with open(folder / "results.csv") as handle:
        return list(csv.DictReader(handle))


def test_hydra_flags_pass_through(cli):
    done = cli("run", "loader=torch", "--cfg", "job")
    assert done.returncode == 0, done.stderr
    assert "name: torch" in done.stdout and "augment:" in done.stdout


def test_help_is_one_screen_and_imports_no_framework():
    code = (
        "import sys, io, contextlib\n"
        "from harness.__main__ import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf): main(['--help'])\n"
        "heavy = [m for m in ('tensorflow', 'torch', 'keras', 'hydra', 'pandas') if m in sys.modules]\n"
        "print(len(buf.getvalue().splitlines()), heavy)\n"
        "print(buf.getvalue())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    lines, heavy = out.splitlines()[0].split(" ", 1)
    assert int(lines) <= 30 and heavy == "[]"
    for command in ("run", "sweep", "augbench", "datagen", "report", "check", "list"):
        assert f"  {command} " in out


def test_unknown_command_and_bad_override_exit_nonzero_with_one_line(cli):
    done = cli("frobnicate")
    assert done.returncode == 1 and "unknown command" in done.stderr
    done = cli("run", "loader.produce_msx=3")
    assert done.returncode == 1
    assert done.stderr.startswith("ERROR: loader.produce_msx: unknown key") and "produce_ms" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_value_in_the_last_job_fails_before_any_trial(cli, tmp_path):
    done = cli("sweep", "loader=tf_data", "loader.num_parallel_calls=1,2,bogus", *TINY)
    assert done.returncode == 1 and "loader.num_parallel_calls='bogus'" in done.stderr
    assert not (tmp_path / "reports").exists()


def test_known_answer_sweep_matches_the_analytic_throughput(cli, tmp_path):
    done = cli(
        "sweep",
        "loader=synthetic",
        "loader.produce_ms=5,20",
        "consumer.step_ms=10",
        "trial.seconds=3",
        "trial.warmup_steps=5",
    )
    assert done.returncode == 0, done.stderr
    folder = sweep_dir(done, tmp_path)
    rows = {float(r["loader.produce_ms"]): r for r in read_rows(folder)}
    assert set(rows) == {5.0, 20.0} and all(r["status"] == "ok" for r in rows.values())
    for produce, analytic, stall in ((5.0, 100.0, 0.0), (20.0, 50.0, 50.0)):
        row = rows[produce]
        result = json.loads((folder / row["result"]).read_text())
        s = result["summary"]
        # the consumer's own ceiling includes its real host-to-device copy
        model = 1000.0 / max(produce, s["compute_ms_p50"] + s["h2d_ms_p50"])
        assert float(row["batches_per_s"]) == pytest.approx(model, rel=0.08)
        assert float(row["batches_per_s"]) == pytest.approx(analytic, rel=0.10)
        assert float(row["stall_pct"]) == pytest.approx(stall, abs=10)


def test_repeats_run_in_interleaved_shuffled_rounds(cli, tmp_path):
    done = cli(
        "sweep",
        "loader=synthetic",
        "loader.produce_ms=1,2,3",
        "consumer.step_ms=1",
        "trial.steps=3",
        "trial.warmup_steps=1",
        "trial.repeats=3",
        "monitor.enabled=false",
        "trial.seed=7",
    )
    assert done.returncode == 0, done.stderr
    folder = sweep_dir(done, tmp_path)
    schedule = json.loads((folder / "schedule.json").read_text())
    assert schedule["seed"] == 7 and [sorted(r) for r in schedule["rounds"]] == [[0, 1, 2]] * 3
    rows = read_rows(folder)
    for row in rows:  # repeat r ran in round r, at the position schedule.json gives its job
        assert row["round"] == row["repeat"] and schedule["rounds"][int(row["round"])][int(row["position"])] == int(row["job"])
    started = sorted(rows, key=lambda r: json.loads((folder / r["result"]).read_text())["timing"]["started_at"])
    assert [r["round"] for r in started] == ["0"] * 3 + ["1"] * 3 + ["2"] * 3  # no job ran its repeats back to back


def test_serial_producer_adds_produce_and_step(cli, tmp_path):
    done = cli("run", "loader.workers=0", "loader.produce_ms=10", "consumer.step_ms=10", "trial.seconds=2")
    assert done.returncode == 0, done.stderr
    row = read_rows(sweep_dir(done, tmp_path))[0]
    assert float(row["batches_per_s"]) == pytest.approx(1000 / 20, rel=0.10)
    assert float(row["stall_pct"]) == pytest.approx(50, abs=10)


def test_a_run_warns_before_its_trial_as_a_sweep_does(cli, tmp_path):
    # run printed no machine-fit warning (only a sweep's launcher did): three busy workers on trial.cpus=1 ran silently
    done = cli("run", "loader.busy=true", "loader.workers=3", "loader.produce_ms=1", "consumer.step_ms=1", "trial.cpus=1", "trial.steps=5")
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "WARNING" in line]
    assert line.startswith("harness: WARNING: loader.workers=3 but trial.cpus=1 gives the trial 1 core")
    result = json.loads(next(sweep_dir(done, tmp_path).glob("**/result.json")).read_text())
    assert result["environment"]["preflight"] == [line.removeprefix("harness: WARNING: ")]  # the trial recorded the same


def test_result_file_carries_config_environment_steps_and_overhead(cli, tmp_path):
    done = cli("run", "loader.produce_ms=1", "consumer.step_ms=2", "trial.steps=30", "trial.repeats=2")
    assert done.returncode == 0, done.stderr
    folder = sweep_dir(done, tmp_path)
    rows = read_rows(folder)
    assert [r["repeat"] for r in rows] == ["0", "1"]
    result = json.loads((folder / rows[0]["result"]).read_text())
    assert result["schema_version"] == 1 and result["status"] == "ok"
    assert result["config"]["loader"]["produce_ms"] == 1
    assert "loader.produce_ms=1" in result["overrides"]
    env = result["environment"]
    assert env["cpu_logical"] >= 1 and env["ram_bytes"] > 0 and env["packages"]["hydra-core"]
    assert "gpu" in env and ("reason" in env["gpu"])
    lengths = {len(v) for v in result["steps"].values()}
    assert lengths == {30}
    assert result["bound"]["stopped_by"] == "steps"
    assert result["overhead"]["process_start_s"] >= 0 and "bookkeeping_pct" in result["overhead"]
    assert (folder / ".hydra" / "config.yaml").exists() and (folder / "trial.yaml").exists()


@pytest.mark.slow
def test_tf_data_trial_runs_on_a_generated_dataset(cli, tmp_path):
    done = cli("run", "loader=tf_data", "loader.num_parallel_calls=2", "loader.prefetch=1", *TINY, "trial.epochs=2", "trial.warmup_steps=1")
    assert done.returncode == 0, done.stdout + done.stderr
    folder = sweep_dir(done, tmp_path)
    result = json.loads((folder / read_rows(folder)[0]["result"]).read_text())
    assert result["status"] == "ok", result["error"]
    assert result["epochs"]["samples"] == {"0": 48, "1": 48}  # 6 full batches of 8 per epoch
    assert result["summary"]["steps"] == 11
    assert any("num_parallel_calls=2" in op for op in result["loader"]["ops"])
    assert result["dataset"]["count"] == 48 and result["overhead"]["framework_import_s"] > 0


@pytest.mark.slow
def test_failing_trial_is_recorded_and_the_sweep_completes(cli, tmp_path):
    from harness.data import synth

    pets = tmp_path / "pets"
    for label in ("cat", "dog"):
        (pets / label).mkdir(parents=True)
        for i in range(8):
            (pets / label / f"{i}.jpg").write_bytes(synth.encode(synth.render(0, i, 40, 30), "jpeg", 80))
    (pets / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    # skipped and named by default (tests/contract/test_odd_folder.py); refused on request
    done = cli(
        "sweep",
        "dataset=folder",
        f"dataset.path={pets}",
        "dataset.on_bad_file=fail",
        "loader=tf_data,synthetic",
        "batch.size=4",
        "trial.epochs=2",
        "trial.warmup_steps=0",
    )
    assert done.returncode == 3, done.stdout + done.stderr
    folder = sweep_dir(done, tmp_path)
    rows = {r["loader"]: r for r in read_rows(folder)}
    assert rows["synthetic"]["status"] == "ok"
    assert rows["tf_data"]["status"] == "failed" and "cat/broken.jpg (not an image)" in rows["tf_data"]["error"]
    assert "1 not ok" in done.stdout


def test_timeout_kills_the_trial_and_is_recorded(cli, tmp_path):
    start = time.monotonic()
    done = cli("run", "trial.seconds=120", "trial.timeout_s=4")
    assert time.monotonic() - start < 60
    assert done.returncode == 3
    row = read_rows(sweep_dir(done, tmp_path))[0]
    assert row["status"] == "timeout" and "trial.timeout_s=4" in row["error"]


def test_datagen_report_check_and_list(cli, tmp_path):
    done = cli("datagen", *TINY[:3])
    assert done.returncode == 0, done.stderr
    assert "48 images in 2 classes" in done.stdout
    done = cli("run", "trial.steps=5")
    folder = sweep_dir(done, tmp_path)
    (folder / "results.csv").unlink()
    report = cli("report", str(folder))
    assert report.returncode == 0 and (folder / "results.csv").exists()
    assert cli("report", str(tmp_path / "nowhere")).returncode == 1
    assert cli("check", str(folder)).returncode == 2
    listing = cli("list")
    from harness.config import EXPERIMENTS_DIR
    from harness.loaders import list_loaders

    # every family and shipped experiment found, whichever were added since (the lists grow with each one); the
    # shipped folder, not this process's list, which a test that ran examples/ in it (harness.measure with
    # config_dir) has grown by the user's experiments
    shipped = sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml") if not p.name.startswith("_"))
    assert f"loader: {', '.join(list_loaders())}" in listing.stdout
    assert f"experiment: {', '.join(shipped)}" in listing.stdout
    assert "augment: none, resize_rotate, train_basic" in listing.stdout


def _experiments():
    from harness.config.compose import list_options

    return list_options("experiment")


def _narrowed_axes(name):
    """The preset's own sweep axes cut short: the first axis to its first and last values (``a,b,c`` -> ``a,c``), the others
    to their last, so every preset runs at most two jobs and each family or group its first axis names runs."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from harness.config.compose import compose

    params = compose([f"experiment={name}"], with_hydra=True).hydra.sweeper.get("params") or {}
    narrowed = []
    for key, value in params.items():
        override = OverridesParser.create().parse_override(f"{key}={value}")
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [str(value)]
        ends = [values[0], values[-1]] if not narrowed else [values[-1]]
        narrowed.append(f"{key}=" + ",".join(dict.fromkeys(ends)))
    return narrowed


# The presets whose sweep also calibrates and checks that no trial beats a ceiling: one per kind of ceiling (CPU per
# decoder, I/O from the local disk, from shards, from a storage profile). The quick calibration runs each chain alone
# once more, doubling a preset's processes; test_calibrate checks the ceilings of other loaders.
CALIBRATED = {"quickstart", "tfrecord", "remote_storage"}


@pytest.mark.slow
@pytest.mark.parametrize("name", _experiments())
def test_every_experiment_preset_runs(cli, tmp_path, name):
    """Every job of every preset composes and validates; the ends of its first axis run end to end (the other axes at
    their last value), and, for the presets in CALIBRATED, no ceiling their calibration measured lies below a steady
    state any of their trials measured.

    Running every job (46) took 5 of the suite's 14 minutes on 2 cores, and both ends of every axis (25 jobs, each
    with its chain alone) 515 of 2,200 test-seconds on a slower machine; the jobs left out differ from those run
    only in config values, which the first part checks. The calibration is the quick one (each chain alone once,
    for 1 s, in the sweep's rounds).
    """
    from harness.config.compose import compose, expand_sweep
    from harness.config.validate import validate
    from harness.storage.mount import available

    if name == "remote_storage" and available():
        pytest.skip(f"experiment=remote_storage reads through FUSE, and there is none here: {available()} (make fuse)")
    shrink = [
        *TINY,
        "dataset.shards=2",
        "trial.seconds=null",
        "trial.epochs=null",
        "trial.steps=4",
        "trial.warmup_steps=1",
        "augment.bench=false",
        "trial.repeats=1",
    ]  # the sweep's closing augbench: tests/integration/test_augment.py
    for job in expand_sweep([f"experiment={name}", *shrink]):
        validate(compose(job))
    ends = _narrowed_axes(name)
    ceilings = "quick" if name in CALIBRATED else "false"
    done = cli("sweep", f"experiment={name}", *ends, *shrink, f"report.ceilings={ceilings}", timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    root = sweep_dir(done, tmp_path)
    rows = read_rows(root)
    assert len([r for r in rows if r["kind"] == "trial"]) == len(expand_sweep([f"experiment={name}", *ends, *shrink]))
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    if name in CALIBRATED:
        _ceilings_hold(root)
    if name == "quickstart":  # the README's screenshot: no label cut, one ceiling row per kind (one decoder, one dataset)
        _reads_at_a_glance(root)


def _reads_at_a_glance(root):
    import html
    import json

    from tests.integration.test_report import ARTIFACTS, body_data, browse

    dom, console = browse(root / "report.html", ARTIFACTS / "quickstart.png")
    data = body_data(dom)
    assert console == [] and (data["cut-text"], data["overlaps"], data["page-overflow"]) == ("0", "0", "0"), data
    kinds = json.loads(html.unescape(data["ceiling-kinds"]))
    assert set(kinds) <= {"accelerator", "CPU", "I/O"} and all(n == 1 for n in kinds.values()), kinds


def _ceilings_hold(root):
    """No ceiling of the sweep lies below a steady state it applies to, and the file-reading variants have a CPU ceiling."""
    from harness.results.bounds import steady
    from harness.results.sweep import load

    sweep = load(root)
    assert sweep.incomplete is None  # the chains run alone in its rounds are no trials of its schedule
    assert sweep.ceilings is not None and not sweep.mismeasured, sweep.mismeasured
    assert sweep.ceilings.costs == []  # quick: no framework's process timed one core's decoding
    for v in sweep.variants:
        for c in v.bounds.ceilings:
            assert all(steady(t) <= c.samples_per_s for t in v.ok), (v.label, c)
    decoding = [v for v in sweep.variants if v.ok[0].dataset.get("count") and v.bounds.skipped == []]
    assert all(v.bounds.of("CPU") is not None for v in decoding if v.ok[0].config["loader"]["name"] != "custom"), [
        (v.label, v.bounds) for v in decoding
    ]
