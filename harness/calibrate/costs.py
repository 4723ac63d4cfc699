"""One core's cost per sample of a :class:`~harness.results.ceilings.Work`, timed as augbench times ops.

The process runs every thread pool at one thread (:data:`harness.augment.bench.ONE_THREAD_ENV`,
set by the parent before any import). Each work is timed over the same few files: one
untimed pass (it also brings the files into the page cache, so reads cost what a warm epoch
pays), then timed passes until the work's time budget is spent (at least
:data:`MIN_PASSES`); the median pass gives ms per sample, with the fastest and slowest
pass and the coefficient of variation beside it.

The Python decoders are the loaders' own (:class:`harness.loaders.decode.ImageDecoder`,
PIL's :func:`~harness.loaders.images.load_pil` where that module is absent); ``tf_image`` runs
a one-thread ``tf.data`` map of read_file + decode + resize + cast, as loader=tf_data's
fused map does. With an augment pipeline, a sample costs its decode at the stored size plus
the pipeline on the decoded image (conversion to the library's type untimed, as augbench).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.augment.bench import figure
from harness.results.ceilings import Cost, Work

MIN_PASSES = 3  # timed passes at least, however long one takes
MAX_PASSES = 10  # and at most: more adds little to a median
CV_LIMIT = 0.10  # a coefficient of variation above this flags the cost unstable (augbench's default)


@dataclass(frozen=True)
class Shape:
    """What a decoder resizes to: the batch's height, width and channels."""

    height: int
    width: int
    channels: int


def timed(run_pass: Callable[[], object], count: int, budget_s: float) -> dict:
    """images/s of ``run_pass`` (one pass over ``count`` images): warm-up, then passes within ``budget_s``.

    Returns:
        :func:`harness.augment.bench.figure`'s dict: images_per_s (median), min, max, cv, unstable, passes.
    """
    run_pass()  # warm-up: imports, first-call set-up, the files into the page cache
    started = time.perf_counter()
    run_pass()
    seconds = [time.perf_counter() - started]
    passes = max(MIN_PASSES, min(MAX_PASSES, int(budget_s / max(seconds[0], 1e-6))))
    for _ in range(passes - 1):
        started = time.perf_counter()
        run_pass()
        seconds.append(time.perf_counter() - started)
    return figure(count, seconds, CV_LIMIT)


def measure(work: Work, paths: Sequence[str], cores: float, budget_s: float, augment=None) -> Cost:
    """Time ``work`` over ``paths`` and return its cost and CPU ceiling.

    Args:
        augment: the built augment :class:`~harness.augment.pipeline.Pipeline` when ``work.augment`` is set.
    """
    shape = Shape(work.height, work.width, work.channels)
    resize = augment is None
    decode, how = _decoder(work.decoder, paths, shape, resize)
    one_thread()
    share = budget_s / 2 if augment is not None else budget_s
    decoded = timed(decode, len(paths), share)
    ms, slow, fast = 1000 / decoded["images_per_s"], 1000 / decoded["min"], 1000 / decoded["max"]
    cv, unstable, passes = decoded["cv"], decoded["unstable"], decoded["passes"]
    if augment is not None:
        images = [_decode_one(work.decoder, p, shape) for p in paths]
        inputs = [augment.native(x) for x in images]  # conversion: not timed, as augbench
        aug = timed(lambda: [augment(x) for x in inputs], len(inputs), share)
        ms, slow, fast = ms + 1000 / aug["images_per_s"], slow + 1000 / aug["min"], fast + 1000 / aug["max"]
        cv, unstable = max(cv, aug["cv"]), unstable or aug["unstable"]
        how += f" + the augment pipeline on the decoded image ({1000 / aug['images_per_s']:.2f} ms, as augbench times it)"
    how += f"; one thread, {len(paths)} files from the page cache, median of {passes} passes"
    # the fastest pass: a ceiling is the most the machine can do; the median and the spread stand beside it
    return Cost(work, round(ms, 4), round(fast, 4), round(slow, 4), cv, unstable, len(paths), passes, round(cores * 1000 / fast, 1), how)


def one_thread() -> None:
    """Every framework imported so far at one thread, where it still can be set (the environment did it before import)."""
    import sys

    if "tensorflow" in sys.modules:
        threading = sys.modules["tensorflow"].config.threading
        for setter in (threading.set_inter_op_parallelism_threads, threading.set_intra_op_parallelism_threads):
            try:
                setter(1)
            except RuntimeError:  # TensorFlow's runtime already started: TF_NUM_*_THREADS=1 applied at its start
                pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(0)  # 0: OpenCV runs its functions in the calling thread


def _decoder(name: str, paths: Sequence[str], shape: Shape, resize: bool) -> tuple[Callable[[], object], str]:
    """(one pass over ``paths``, what it runs in words)."""
    if name == "tf_image":
        return _tf_pass(paths, shape, resize)
    one = _python_decoder(name)
    what = "read+decode" + ("+resize" if resize else " at the stored size")
    return (lambda: [one(p, shape, resize) for p in paths]), f"{what} with {name}"


def _decode_one(name: str, path: str, shape: Shape):
    """One image at its stored size, uint8 HWC numpy, for an augment pipeline's input."""
    if name == "tf_image":
        return _python_decoder("pil")(path, shape, False)  # the pipeline's input; its decode was timed in tf.data
    return _python_decoder(name)(path, shape, False)


def _python_decoder(name: str) -> Callable:
    try:
        from harness.loaders.decode import ImageDecoder
    except ImportError:  # the decoder axis is absent: PIL is every Python loader's decoder
        if name not in ("pil", "pil_draft"):
            raise
        from harness.loaders.images import load_pil

        return lambda path, shape, resize: load_pil(path, shape, resize, **({"draft": resize} if name == "pil_draft" else {}))
    decoder = ImageDecoder(name)
    decoder.require(what="calibrate")
    return lambda path, shape, resize: decoder(path, shape, resize)


def _tf_pass(paths: Sequence[str], shape: Shape, resize: bool) -> tuple[Callable[[], object], str]:
    """A one-thread tf.data pass: read_file + decode + resize + cast to uint8, one element at a time."""
    from harness.errors import require

    tf = require("tensorflow", what="calibrate decoder=tf_image", extra="tf")
    suffixes = {Path(p).suffix.lower() for p in paths}
    op = "decode_jpeg" if suffixes <= {".jpg", ".jpeg"} else "decode_png" if suffixes == {".png"} else "decode_image"

    def element(path):
        raw = tf.io.read_file(path)
        if op == "decode_image":
            image = tf.io.decode_image(raw, channels=shape.channels, expand_animations=False)
        else:
            image = getattr(tf.io, op)(raw, channels=shape.channels)
        if resize:
            image = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(image, [shape.height, shape.width])), 0, 255), tf.uint8)
        return image

    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = False
    dataset = tf.data.Dataset.from_tensor_slices(list(paths)).map(element)
    if resize:  # one element per pass: Python's per-element iteration cost is no part of a loader's work
        dataset = dataset.batch(len(paths))
    dataset = dataset.with_options(options)

    def run_pass():
        for _ in dataset:
            pass

    what = f"tf.data map(read_file+{op}" + ("+resize+cast" if resize else "") + ", one thread)"
    return run_pass, what


def map_call_ms(count: int = 20_000) -> float:
    """tf.data's cost of one per-element map call, ms of one core: a map of a trivial op against none, one thread.

    What vectorizing a light op saves per sample (it then runs once per batch): the call's
    dispatch, apart from the pixel work, which stays.
    """
    from harness.errors import require

    tf = require("tensorflow", what="the map call's cost", extra="tf")
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.autotune.enabled = False
    plain = tf.data.Dataset.range(count).with_options(options)
    mapped = tf.data.Dataset.range(count).map(lambda x: x + 1).with_options(options)

    def seconds(dataset) -> float:
        started = time.perf_counter()
        for _ in dataset.batch(256):  # batched: Python's per-element iteration is no part of either
            pass
        return time.perf_counter() - started

    seconds(plain), seconds(mapped)  # warm-up: tracing, the first iterators
    base = min(seconds(plain) for _ in range(3))
    with_map = min(seconds(mapped) for _ in range(3))
    return max(with_map - base, 0.0) / count * 1000


def open_ms(paths: Sequence[str], files: int = 200) -> float:
    """Opening, reading and closing one file, beyond reading its bytes from one open file, ms of one core.

    What reading samples from a few shard files saves per sample on this file system (the
    files are in the page cache: the figure is the system calls' cost, not a disk's latency).
    """
    chosen = list(paths[:files])
    blobs: list[bytes] = []
    started = time.perf_counter()
    for _ in range(2):  # the second pass is timed: the first brings the files into the page cache
        started = time.perf_counter()
        blobs = []
        for path in chosen:
            with open(path, "rb") as handle:
                blobs.append(handle.read())
    each = time.perf_counter() - started
    import tempfile

    with tempfile.TemporaryFile() as joined:
        joined.write(b"".join(blobs))
        joined.flush()
        joined.seek(0)
        started = time.perf_counter()
        for blob in blobs:
            joined.read(len(blob))
        one = time.perf_counter() - started
    return max(each - one, 0.0) / max(len(chosen), 1) * 1000
