"""Augmentation through the CLI: order permutations in a sweep, augbench, sample grids."""

import itertools
import json

from tests.conftest import sweep_dir
from tests.integration.test_cli import TINY, read_rows

THREE_OPS = "augment.ops=[{op:resize,size:[32,32]},{op:rotate,degrees:20},{op:hflip}]"
SMALL_BENCH = ["augment.bench_images=4", "augment.bench_passes=2"]


def test_every_order_of_three_ops_runs_inside_the_loader_and_is_marked_as_different_output(cli, tmp_path):
    orders = ["-".join(p) for p in itertools.permutations(["resize", "rotate", "hflip"])]
    done = cli(
        "sweep",
        "loader=generator",
        *TINY,
        THREE_OPS,
        f"augment.order={','.join(orders)}",
        "trial.steps=3",
        "trial.warmup_steps=1",
        "augment.bench=false",  # augbench after a sweep: test_augbench_* and the augment_order preset (six processes here)
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    folder = sweep_dir(done, tmp_path)
    rows = read_rows(folder)
    trials = [r for r in rows if r["kind"] == "trial"]
    assert sorted(r["augment"] for r in trials) == sorted(f"albumentations: {o.replace('-', '>')}" for o in orders)
    assert all(r["status"] == "ok" and r["output"].startswith("32x32x3 uint8") for r in trials)
    assert all("different output" in r["notes"] for r in trials)
    assert all((folder / str(job) / "samples.png").stat().st_size > 1000 for job in range(6))
    assert [r for r in rows if r["kind"] == "augbench"] == []
    assert "augment orders" in done.stdout and "the slowest order in the loader" in done.stdout


def test_augbench_times_each_op_where_it_runs_in_the_pipeline(cli, tmp_path):
    done = cli(
        "augbench",
        *TINY,
        "augment=resize_rotate",
        "augment.ops.0.size=[64,64]",
        "augment.library=albumentations,torchvision",
        "augment.order=cheap,costly",
        *SMALL_BENCH,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    folder = sweep_dir(done, tmp_path)
    rows = read_rows(folder)
    assert len(rows) == 4 and {r["kind"] for r in rows} == {"augbench"}
    for job in range(4):
        result = json.loads((folder / str(job) / "result.json").read_text())
        bench = result["augment"]["bench"]
        ops = {o["name"]: o for o in bench["ops"]}
        rotate_input = ops["rotate"]["input_shape"][:2]
        # the stored images are 72x96: rotate sees them as stored when it runs first, 64x64 after the resize
        assert rotate_input == ([72, 96] if result["augment"]["order"] == "rotate>resize" else [64, 64])
        assert all(o["images_per_s"] > 0 and o["passes"] == 2 for o in bench["ops"])
        assert bench["pipeline"]["images_per_s"] > 0
        assert result["threads"]["asked"]["torch"] == 1
        assert (folder / str(job) / "samples.png").exists()


def test_augbench_refuses_an_empty_pipeline_and_a_library_its_loader_cannot_run_in_one_line(cli):
    done = cli("augbench", "augment=none", "augment.library=torchvision")
    assert done.returncode == 1 and "augment.ops is empty" in done.stderr
    done = cli("sweep", "loader=torch", "augment=resize_rotate", "augment.library=keras_idg")
    assert done.returncode == 1 and "keras_idg cannot run inside loader=torch" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_augbench_refuses_nan_before_any_job(cli):
    done = cli("augbench", *TINY, "augment=resize_rotate", "augment.library=albumentations", "augment.ops.1.degrees=nan")
    assert done.returncode == 1 and "ERROR: augment.ops[1].degrees=nan" in done.stderr, done.stderr
    assert "job(s)" not in done.stdout  # refused before the folder was announced


def test_augbench_stops_on_sigterm_and_keeps_what_finished(cache_dir, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    env = dict(os.environ, HARNESS_CACHE=str(cache_dir), PYTHONPATH=str(ROOT))
    folder = tmp_path / "bench"
    bench = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "augbench",
            *TINY,
            "augment=resize_rotate",
            "augment.library=albumentations,torchvision,albumentations,torchvision",
            "augment.bench_passes=50",
            f"hydra.sweep.dir={folder}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while not list(folder.glob("*/result.json")) and time.monotonic() < deadline and bench.poll() is None:
        time.sleep(0.2)
    bench.send_signal(signal.SIGTERM)
    out, err = bench.communicate(timeout=60)
    assert bench.returncode == 143, out + err
    statuses = sorted(json.loads(p.read_text())["status"] for p in folder.glob("*/result.json"))
    assert "ok" in statuses and len(statuses) < 4, statuses
    assert (folder / "results.csv").exists() and "interrupted by SIGTERM" in out


def test_augbench_alone_means_resize_rotate_in_every_library_that_can_run_it(capsys):
    from harness.commands.augbench import with_defaults

    args = with_defaults([])
    assert args == ["augment=resize_rotate", "augment.library=torchvision,albumentations,tf_image,keras_idg"]
    assert "every library that can run the pipeline" in capsys.readouterr().out
    # given choices are kept; keras_idg cannot express train_basic's ops, so it is left out
    assert with_defaults(["augment.library=tf_image"]) == ["augment.library=tf_image", "augment=resize_rotate"]
    assert with_defaults(["augment=train_basic"]) == ["augment=train_basic", "augment.library=torchvision,albumentations,tf_image"]
