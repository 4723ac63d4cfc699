"""The harness must not be what it measures: a pipeline in a bare loop vs through the harness.

For each pipeline, the same work runs as a user would write it (a bare loop: build the
pipeline, then per batch copy it into a preallocated buffer and sleep ``STEP_MS``, the
emulated accelerator) and through ``python -m harness run`` (fresh process, sampler,
checks, result.json), alternating ``--rounds`` times in one run, each in a process of
its own. It prints samples/s of both, and their ratio (target: harness / bare >= 0.98).

    python benchmarks/overhead.py                    # tf_data and torch, 5 rounds each
    python benchmarks/overhead.py --pipelines tf_data --rounds 8
    python benchmarks/overhead.py --pipelines seed000 --seconds 3 --warmup 3 --rounds 6   # the quickstart's trials
    python benchmarks/overhead.py --pipelines tf_data seed000 --continuous --rounds 6     # one repeating iterator each

With a fresh iterator per epoch, tf.data's AUTOTUNE makes each restart cost anything from 0.05 to
2 s (deleting an iterator waits for its model thread), which swamps a few percent either way in
3 s runs; ``--continuous`` (``dataset.repeat()`` in the bare loop, ``trial.epoch_mode=continuous``
through the harness) compares the per-batch path alone.

``tf_data`` is the quickstart's fastest variant, seed 000's chain: one map reading,
decoding (decode_jpeg) and resizing, AUTOTUNE parallel calls, AUTOTUNE prefetch, fed by
``from_tensor_slices((paths, labels))``; ``seed000`` is the same chain written as seed 000
writes it, ``list_files`` over the class folders and a map of ``parse_file_to_img`` returning
the image alone, against the quickstart's own variant (``experiment=quickstart``); ``torch`` is
a map-style Dataset decoding with PIL (resize bilinear) in a DataLoader with 2 workers.
Both read the same 2,048 generated 500x375 JPEGs into 32 x 150 x 150 x 3 uint8 batches,
with a fresh iterator each epoch (as Keras fit and a PyTorch epoch loop do).
Numbers, not pass/fail: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEP_MS = 10.0
REPEAT = False  # --continuous: the tf.data chains repeat (one iterator), in the bare loop's child
SECONDS = 6.0
WARMUP = 3
COUNT = 2048
HARNESS = {
    "tf_data": [
        "loader=tf_data",
        "loader.num_parallel_calls=autotune",
        "loader.prefetch=autotune",
        "loader.map_parallelization=false",
        "loader.inject_prefetch=false",
    ],
    "torch": ["loader=torch", "loader.num_workers=2"],
    "seed000": ["experiment=quickstart", "loader.num_parallel_calls=autotune", "loader.prefetch=autotune", "trial.repeats=1"],
}


def bare_tf_data(paths, labels):
    import tensorflow as tf

    def parse(path, label):  # seed 000's parse_file_to_img, with the harness's uint8 output
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        image = tf.image.resize(image, [150, 150])
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label

    ds = _batched(tf, tf.data.Dataset.from_tensor_slices((paths, labels)).map(parse, num_parallel_calls=tf.data.AUTOTUNE))
    return lambda: ((images.numpy(), label) for images, label in ds)


def _batched(tf, ds):
    """Batches of 32, repeated with --continuous, AUTOTUNE prefetch; TF's rewrites off, as the quickstart sets them."""
    ds = ds.batch(32, drop_remainder=True)
    ds = (ds.repeat() if REPEAT else ds).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = False
    options.experimental_optimization.inject_prefetch = False
    return ds.with_options(options)


def bare_seed000(paths, labels):
    import tensorflow as tf

    folder = str(Path(paths[0]).parents[1])

    def parse_file_to_img(filename):  # seed 000, with the harness's uint8 output
        img_bytes = tf.io.read_file(filename)
        img = tf.io.decode_jpeg(img_bytes, channels=3)
        img = tf.image.resize(img, [150, 150])
        return tf.cast(tf.clip_by_value(tf.round(img), 0, 255), tf.uint8)

    files = tf.data.Dataset.list_files(folder + "/*/*", shuffle=False)
    ds = _batched(tf, files.map(parse_file_to_img, num_parallel_calls=tf.data.AUTOTUNE))
    return lambda: ((images.numpy(), None) for images in ds)


def bare_torch(paths, labels):
    import numpy as np
    import torch
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset

    class Files(Dataset):
        def __len__(self):
            return len(paths)

        def __getitem__(self, i):
            with Image.open(paths[i]) as image:
                array = np.array(image.convert("RGB").resize((150, 150), Image.BILINEAR), dtype=np.uint8)
            return torch.from_numpy(array), labels[i]

    loader = DataLoader(Files(), batch_size=32, num_workers=2, drop_last=True)
    return lambda: ((images.numpy(), label) for images, label in loader)


def bare(pipeline: str, dataset: str, seconds: float = SECONDS, warmup: int = WARMUP) -> None:
    """Child process: the bare loop; prints samples/s as JSON."""
    import csv

    import numpy as np

    folder = Path(dataset)
    with open(folder / "manifest.csv") as handle:
        rows = list(csv.DictReader(handle))
    paths = [str(folder / "images" / r["filename"]) for r in rows]
    labels = [int(r["label"]) for r in rows]
    epoch = {"tf_data": bare_tf_data, "seed000": bare_seed000, "torch": bare_torch}[pipeline](paths, labels)
    buffer = np.empty((32, 150, 150, 3), np.uint8)
    samples, start, warm = 0, None, 0
    while True:
        for images, _ in epoch():
            np.copyto(buffer, images)
            time.sleep(STEP_MS / 1e3)
            if warm < warmup:
                warm += 1
                start = time.perf_counter() if warm == warmup else None
                continue
            samples += len(images)
            if time.perf_counter() - start >= seconds:
                print(json.dumps({"samples_per_s": samples / (time.perf_counter() - start)}))
                return


def through_harness(
    pipeline: str, cache: str, seconds: float = SECONDS, warmup: int = WARMUP, continuous: bool = False
) -> tuple[float, float]:
    """(samples/s, the sampler's own CPU in the measured phase, % of one core) of one ``harness run``."""
    with tempfile.TemporaryDirectory() as out:
        args = [
            sys.executable,
            "-m",
            "harness",
            "run",
            *HARNESS[pipeline],
            f"dataset.count={COUNT}",
            f"consumer.step_ms={STEP_MS}",
            "consumer.device=emulated",
            f"trial.seconds={seconds}",
            f"trial.warmup_steps={warmup}",
            f"hydra.run.dir={out}/run",
            *(["trial.epoch_mode=continuous"] if continuous else []),
        ]
        done = subprocess.run(args, cwd=ROOT, env=dict(os.environ, HARNESS_CACHE=cache), capture_output=True, text=True)
        result = next(Path(out, "run").rglob("result.json"), None)
        if done.returncode != 0 or result is None:
            raise SystemExit(f"harness run failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")
        supervisor = json.loads((result.parent / "supervisor.json").read_text())
        sampler_pct = supervisor["monitor"]["overhead"]["measured_phase_cpu_pct_of_core"]
        return json.loads(result.read_text())["summary"]["samples_per_s"], sampler_pct


def in_bare_loop(pipeline: str, dataset: str, seconds: float = SECONDS, warmup: int = WARMUP, continuous: bool = False) -> float:
    command = [sys.executable, __file__, "--child", pipeline, dataset, "--seconds", str(seconds), "--warmup", str(warmup)]
    command += ["--continuous"] if continuous else []
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bare loop failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["samples_per_s"]


def dataset_folder(cache: str) -> str:
    sys.path.insert(0, str(ROOT))
    os.environ["HARNESS_CACHE"] = cache
    from harness.config.compose import compose, to_typed
    from harness.data.build import prepare

    return str(prepare(to_typed(compose([f"dataset.count={COUNT}"])).dataset).root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipelines", nargs="+", default=["tf_data", "torch"], choices=list(HARNESS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=SECONDS, help="measured seconds per run (the quickstart's: 3)")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="warm-up steps per run (the quickstart's: 3)")
    parser.add_argument("--continuous", action="store_true", help="one repeating iterator in both (tf.data pipelines only)")
    parser.add_argument("--child", nargs=2, metavar=("PIPELINE", "DATASET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.continuous and "torch" in args.pipelines and not args.child:
        parser.error("--continuous: the torch pipeline has no repeating iterator (its DataLoader starts one per epoch)")
    global REPEAT
    REPEAT = args.continuous
    if args.child:
        bare(*args.child, seconds=args.seconds, warmup=args.warmup)
        return
    cache = os.environ.get("HARNESS_CACHE", str(Path.home() / ".cache" / "harness" / "datasets"))
    dataset = dataset_folder(cache)
    for pipeline in args.pipelines:
        figures: dict[str, list[float]] = {"bare": [], "harness": []}
        sampler_pct: list[float] = []  # the sampler's own CPU in each harness run's measured phase, % of one core
        for r in range(args.rounds):  # alternate, starting with each side in turn
            for side in ("bare", "harness") if r % 2 == 0 else ("harness", "bare"):
                if side == "bare":
                    value = in_bare_loop(pipeline, dataset, args.seconds, args.warmup, args.continuous)
                else:
                    value, pct = through_harness(pipeline, cache, args.seconds, args.warmup, args.continuous)
                    sampler_pct.append(pct)
                figures[side].append(value)
                print(f"  {pipeline} round {r} {side:<8} {value:8.1f} samples/s", flush=True)
        b, h = statistics.median(figures["bare"]), statistics.median(figures["harness"])
        paired = sorted(x / y for x, y in zip(figures["harness"], figures["bare"]))  # each round's own ratio: drift cancels
        print(f"{pipeline}: per-round harness / bare {', '.join(f'{r:.3f}' for r in paired)}; median {statistics.median(paired):.3f}")
        print(
            f"{pipeline}: bare loop {b:.1f} samples/s (range {min(figures['bare']):.0f}-{max(figures['bare']):.0f}), "
            f"harness {h:.1f} (range {min(figures['harness']):.0f}-{max(figures['harness']):.0f}); "
            f"harness / bare = {h / b:.3f} (target >= 0.98)",
            flush=True,
        )
        print(f"{pipeline}: the sampler's own CPU in the measured phase, median {statistics.median(sampler_pct):.2f}% of a core")


if __name__ == "__main__":
    main()
