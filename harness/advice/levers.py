"""The levers: each reads one variant's measured figures and returns the changes it suggests, each with a prediction.

A :class:`Change` is a set of overrides applied to that variant, a predicted per-epoch samples/s
(:func:`harness.advice.subject.per_epoch`) and the model behind it in words, with its numbers.
Every model starts from what was measured: the variant's steady state, its restart cost, its CPU
per sample, its ceilings (the CPU ceiling is its work's chain run alone at its most parallel),
one core's decode cost per decoder, and the accelerator's step. A lever that has no measurement
to stand on suggests nothing rather than guess.

The levers: epoch restarts (one repeating iterator, persistent workers, autotuning off with fixed
parallelism), parallelism against the usable cores, prefetch, a cache of decoded images, the
decoder, vectorized light ops, TFRecord shards instead of files, and pin_memory on a GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.advice.subject import Subject, per_epoch
from harness.results.ceilings import Ceilings

# what each decoder is in the user's own code (harness/loaders/decode.py runs them so); each differs from PIL's pixels a little
DECODER_CODE = {
    "pil": "PIL.Image.open(path).convert('RGB').resize(size, Image.BILINEAR)",
    "pil_draft": "PIL: image.draft('RGB', size) before convert and resize (the JPEG decoded at 1/2, 1/4 or 1/8 scale)",
    "opencv": "cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR), cv2.cvtColor(BGR2RGB), cv2.resize(INTER_LINEAR)",
    "simplejpeg": "simplejpeg.decode_jpeg(open(path, 'rb').read()), then PIL's resize",
    "torchvision": "torchvision.io.decode_image(read_file(path)), then transforms.v2.Resize(antialias=True)",
    "nvjpeg": "torchvision.io.decode_jpeg(list_of_bytes, device='cuda') on each batch",
}
MEMORY_SHARE = 0.25  # a cache of decoded images is suggested only where it takes at most this share of the RAM
PINNED_SPEEDUP = 2.0  # pinned host memory copies about twice as fast as pageable over PCIe (measured on GPUs by gpu_check)


@dataclass
class Change:
    """One suggested change to one variant, with its prediction."""

    lever: str  # the lever's name: "epoch restarts", "parallelism", ...
    what: str  # the change in a few words
    changes: list[str]  # the overrides applied to the variant
    job: int  # the variant (job) it is applied to
    predicted: float  # per-epoch samples/s predicted
    model: str  # the model behind the prediction, with its numbers
    code: str = ""  # what it means in the user's own code
    first_epoch: bool = False  # its gain shows after the first epoch only (a cache): verified after a full epoch of warm-up


@dataclass
class Context:
    """What the levers read beyond the variant: the sweep's ceilings and restart costs, the machine."""

    ceilings: Ceilings | None = None
    restarts: dict[str, float] | None = None  # a family's (and autotune setting's) median restart cost, s: for variants with none measured
    ram_bytes: int | None = None

    def restart_of(self, s: Subject) -> tuple[float, str]:
        """(the variant's cost per epoch restart, where the figure comes from)."""
        if s.restart_s is not None:
            return s.restart_s, "its own"
        borrowed = (self.restarts or {}).get(restart_key(s))
        if borrowed is not None:
            return borrowed, f"measured on other {s.loader.get('name')} variants"
        return 0.0, "none measured"


def restart_key(s: Subject) -> str:
    """Variants whose restarts cost alike: the same family, with autotuning on or off (tf.data's iterator waits for its model thread)."""
    return f"{s.loader.get('name')}:{s.loader.get('autotune') is not False}"


def _pe(s: Subject, ctx: Context, steady: float, restart: float | None = None, *, refills: bool = False) -> float:
    """The per-epoch rate at ``steady`` with one restart of ``restart`` s (the variant's own by default).

    ``refills``: the change makes each sample cheaper to produce, so a restart, which refills the
    pipeline, takes as much less time as the steady state gains (the variant's cost x its steady
    state / the new one); a DataLoader's persistent workers measured this (0.21 s with PIL, 0.02 s
    with OpenCV decoding, in the dataloader preset).
    """
    cost = ctx.restart_of(s)[0] if restart is None else restart
    if refills and steady > s.steady > 0:
        cost *= s.steady / steady
    return per_epoch(s.capped(steady), cost, s.samples_per_epoch)


def _restart_text(s: Subject, ctx: Context) -> str:
    cost, where = ctx.restart_of(s)
    return f"{cost:.2f} s per epoch restart ({where})"


# -- epoch restarts --------------------------------------------------------------------------------
def repeating(s: Subject, ctx: Context) -> list[Change]:
    """One repeating iterator (``dataset.repeat()`` with ``steps_per_epoch``): the restarts' measured cost gone."""
    cost, _ = ctx.restart_of(s)
    if not s.knobs.get("continuous") or s.value("trial.epoch_mode") == "continuous" or cost <= 0:
        return []
    n = s.samples_per_epoch
    steady, why = s.steady, f"its measured steady state, {s.steady:,.0f} samples/s"
    alone = ctx.ceilings.pipeline(s.work) if ctx.ceilings is not None and s.work is not None else None
    if alone is not None and alone.samples_per_s < steady:  # the chain ran alone on one repeating iterator: no faster than that
        steady = alone.samples_per_s
        why = f"its chain's rate on one repeating iterator, run alone ({steady:,.0f} samples/s, below its {s.steady:,.0f} between restarts)"
    return [
        Change(
            "epoch restarts",
            "one repeating iterator",
            ["trial.epoch_mode=continuous"],
            s.job,
            s.capped(steady),
            f"{why}, with no restart: {_restart_text(s, ctx)} gone",
            f"dataset.repeat() before prefetch, and model.fit(..., steps_per_epoch={n // s.batch})",
        )
    ]


def persistent(s: Subject, ctx: Context) -> list[Change]:
    """Workers kept across epochs: only the first batch of each epoch waits, one worker's batch."""
    key, parallel = s.knob("persistent"), s.knob("parallel")
    cost, _ = ctx.restart_of(s)
    if key is None or parallel is None or s.value(key) or cost <= 0 or str(s.value(parallel)) in ("0", "None", "none"):
        return []
    workers = _lanes(s.value(parallel))
    refill = workers * s.batch / s.steady  # the first batch of an epoch: one worker producing a whole batch
    return [
        Change(
            "epoch restarts",
            "persistent workers",
            [f"{key}=true"],
            s.job,
            _pe(s, ctx, s.steady, refill),
            f"its steady state, {s.steady:,.0f} samples/s, with each restart ({_restart_text(s, ctx)}) down to one worker's "
            f"first batch ({refill:.2f} s: {workers} workers x {s.batch} samples at the steady rate)",
            "DataLoader(..., persistent_workers=True)",
        )
    ]


def autotune_off(s: Subject, ctx: Context) -> list[Change]:
    """tf.data with autotuning off and fixed parallelism: no model thread to wait for when an iterator is deleted."""
    key, parallel, prefetch = s.knob("autotune"), s.knob("parallel"), s.knob("prefetch")
    cost, _ = ctx.restart_of(s)
    if key is None or s.value(key) is False or cost <= 0 or parallel is None:
        return []
    lanes = max(s.cores or 1, 1)
    changes = [f"{key}=false"]
    calls = str(s.value(parallel))
    if calls == s.knobs.get("parallel_auto"):
        changes.append(f"{parallel}={lanes}")
    if prefetch is not None and str(s.value(prefetch)) == s.knobs.get("parallel_auto"):
        changes.append(f"{prefetch}=2")
    buffered = lanes + 2 * s.batch  # what a fresh iterator fills before the first batch: the map's calls and two batches
    refill = buffered / s.steady
    return [
        Change(
            "epoch restarts",
            "autotuning off, fixed parallelism",
            changes,
            s.job,
            _pe(s, ctx, s.steady, refill),
            f"its steady state, {s.steady:,.0f} samples/s, with each restart ({_restart_text(s, ctx)}) down to refilling "
            f"{buffered} samples ({refill:.2f} s): deleting an iterator no longer waits for the autotuning model's thread",
            f"options.autotune.enabled = False; map(..., num_parallel_calls={lanes}); prefetch(2)",
        )
    ]


# -- parallelism and prefetch ----------------------------------------------------------------------
def parallelism(s: Subject, ctx: Context) -> list[Change]:
    """More map calls or workers, up to the usable cores: Amdahl, bounded by the CPU ceiling (its chain alone)."""
    key = s.knob("parallel")
    if key is None or not s.cores or s.cached:  # a cache: after the first epoch the parallel map does not run
        return []
    current, auto = s.value(key), s.knobs.get("parallel_auto")
    lanes = _lanes(current)
    if (auto is not None and str(current) == auto) or lanes >= s.cores:
        return []
    target = auto or str(s.cores)
    limit = s.cpu_ceiling
    scaled = s.steady * s.cores / max(lanes, 1)  # Amdahl with the serial part in the variant's own measured rate
    steady = min(scaled, limit) if limit else scaled
    why = f"its steady state {s.steady:,.0f} x {s.cores} cores / {max(lanes, 1)} lane(s) = {scaled:,.0f}"
    why += f", held at the CPU ceiling {limit:,.0f} (its work's chain alone at its most parallel)" if limit and limit < scaled else ""
    rate = _pe(s, ctx, _overlap(s, steady), refills=True)
    return [Change("parallelism", f"{key.split('.')[-1]}={target}", [f"{key}={target}"], s.job, rate, why)]


def _lanes(value) -> int:
    """How many parallel lanes a parallel knob's value gives: none and 0 are one (the consumer's own thread)."""
    try:
        return max(int(value), 1)
    except (TypeError, ValueError):
        return 1


def lanes(s: Subject) -> int:
    """The variant's parallel lanes on its cores: the framework's own choice is every core, a count at most the cores."""
    key, cores = s.knob("parallel"), max(s.cores or 1, 1)
    if key is None:
        return 1
    value = s.value(key)
    if s.knobs.get("parallel_auto") is not None and str(value) == s.knobs.get("parallel_auto"):
        return cores
    return min(_lanes(value), cores)


def _saving(s: Subject, saved_ms: float) -> tuple[float, int]:
    """(the steady state with ``saved_ms`` less CPU per sample, the lanes sharing it): 1/s' = 1/s - saved/lanes.

    ``k`` lanes each spending ``t`` ms a sample deliver ``k / t``; each spending ``t - saved``,
    ``k / (t - saved)``. With every core busy that is the CPU per sample falling by ``saved``.
    """
    k = lanes(s)
    per = 1.0 / s.steady - saved_ms / 1000.0 / k
    return (1.0 / per if per > 0 else s.steady * 20), k


def _overlap(s: Subject, loader_rate: float) -> float:
    """The consumer's rate fed by a loader of ``loader_rate``: overlapped where something prefetches, else one after the other."""
    if _prefetches(s):
        return loader_rate
    return s.batch / (s.batch / loader_rate + s.step_ms / 1000.0)


def _prefetches(s: Subject) -> bool:
    key = s.knob("prefetch")
    if key is None:  # workers fill their own queues (DataLoader, PyDataset)
        return True
    return str(s.value(key)).lower() not in ("none", "0", "null")


def prefetch(s: Subject, ctx: Context) -> list[Change]:
    """Batches prepared while the accelerator computes: the step becomes the longer of loading and computing."""
    key = s.knob("prefetch")
    if key is None or _prefetches(s) or not s.step_ms:
        return []
    per_batch = s.batch / s.steady * 1000.0  # ms, loading and computing one after the other
    loading = max(per_batch - s.step_ms, 1e-6)
    steady = s.batch / (max(loading, s.step_ms) / 1000.0)
    target = s.knobs.get("parallel_auto") or "2"
    why = (
        f"each step now loads ({loading:.1f} ms) then computes ({s.step_ms:.1f} ms); prefetched, it takes the longer of the two: "
        f"{s.batch} samples per {max(loading, s.step_ms):.1f} ms = {steady:,.0f}"
    )
    return [Change("prefetch", f"prefetch={target}", [f"{key}={target}"], s.job, _pe(s, ctx, steady), why, f"dataset.prefetch({target})")]


# -- cache and decoder ------------------------------------------------------------------------------
def cache(s: Subject, ctx: Context) -> list[Change]:
    """Decoded images held in memory after the first epoch: later epochs skip reading and decoding."""
    key = s.knob("cache")
    if key is None or str(s.value(key)) != "none" or s.augmented or not s.accelerator:
        return []
    b = s.config.get("batch", {})
    size = s.samples_per_epoch * int(b.get("height", 0)) * int(b.get("width", 0)) * int(b.get("channels", 3))
    if ctx.ram_bytes and size > MEMORY_SHARE * ctx.ram_bytes:
        return []
    steady = s.accelerator
    cost, where = ctx.restart_of(s)
    alone = ctx.ceilings.pipeline(s.work) if ctx.ceilings is not None and s.work is not None else None
    if alone is not None and alone.setup_s < cost:  # a restart refills the decoding map; a cached chain only starts its iterator
        cost, where = alone.setup_s, "a fresh iterator's start, timed when its chain ran alone"
    return [
        Change(
            "cache",
            "cache decoded images in memory",
            [f"{key}=memory"],
            s.job,
            _pe(s, ctx, steady, cost),
            f"after the first epoch nothing is read or decoded, so the accelerator's ceiling ({steady:,.0f} samples/s) is the "
            f"steady state, with {cost:.2f} s per epoch restart ({where}); {size / 2**20:,.0f} MB of uint8 images in memory",
            "dataset.map(decode_and_resize).cache() before shuffle and batch",
            first_epoch=True,
        )
    ]


def decoder(s: Subject, ctx: Context) -> list[Change]:
    """The cheapest decoder the calibration timed on the same files: the CPU per sample falls by the decode costs' gap."""
    key = s.knob("decoder")
    if key is None or ctx.ceilings is None or s.work is None or s.cached:
        return []
    from dataclasses import replace

    own = ctx.ceilings.cost(s.work)
    timed = [c for name in s.knobs.get("decoders") or [] for c in [ctx.ceilings.cost(replace(s.work, decoder=name))] if c is not None]
    best = min(timed, key=lambda c: c.ms_per_sample, default=None)
    if own is None or best is None or best.ms_per_sample >= 0.95 * own.ms_per_sample:
        return []
    saved = own.ms_per_sample - best.ms_per_sample
    steady, lanes = _saving(s, saved)
    how = f"with {saved:.2f} ms less per sample on each of {lanes} lane(s)"
    return [
        Change(
            "decoder",
            f"decoder={best.work.decoder}",
            [f"{key}={best.work.decoder}"],
            s.job,
            _pe(s, ctx, steady, refills=True),
            f"{best.work.label} took {best.ms_per_sample:.2f} ms a sample on one core against {own.ms_per_sample:.2f} "
            f"({own.work.label}): its steady state {s.steady:,.0f} {how} = {steady:,.0f}",
            DECODER_CODE.get(best.work.decoder, ""),
        )
    ]


def gpu_decoder(s: Subject, ctx: Context) -> list[Change]:
    """Decoding on a CUDA consumer's GPU (nvJPEG): the workers read bytes, the CPU's decode cost leaves them.

    The GPU's own decode time is not measured by the calibration, so the prediction is an upper
    bound on the CPU side: every lane freed of the measured decode cost, held at the accelerator's
    ceiling.
    """
    key, names = s.knob("decoder"), s.knobs.get("gpu_decoders") or []
    if key is None or not names or s.device != "cuda" or ctx.ceilings is None or s.work is None or s.cached:
        return []
    own = ctx.ceilings.cost(s.work)
    if own is None or str(s.value(key)) in names:
        return []
    steady, lanes = _saving(s, own.ms_per_sample)
    why = (
        f"{own.work.label} costs {own.ms_per_sample:.2f} ms a sample on one core; decoded on the GPU it leaves each of {lanes} "
        f"lane(s): {s.steady:,.0f} -> {steady:,.0f}, at most the accelerator's ceiling (the GPU's own decode time is not measured)"
    )
    return [
        Change(
            "decoder",
            f"decoder={names[0]}",
            [f"{key}={names[0]}"],
            s.job,
            _pe(s, ctx, steady, refills=True),
            why,
            DECODER_CODE.get(names[0], ""),
        )
    ]


# -- vectorized light ops, shards, pinned memory ---------------------------------------------------
def vectorize(s: Subject, ctx: Context) -> list[Change]:
    """Light per-sample ops (rescale, flip, brightness) on whole batches: one map call per batch instead of per sample."""
    key = s.knob("vectorize")
    map_ms = ctx.ceilings.map_ms if ctx.ceilings is not None else None
    light = s.loader.get("rescale") is not None or s.random_light
    if key is None or s.value(key) or not light or not map_ms:
        return []
    saved = map_ms * (1 - 1 / s.batch)  # the per-element call of the light map, paid once per batch instead
    steady, k = _saving(s, saved)
    why = (
        f"tf.data's per-element map call costs {map_ms:.3f} ms of one core (timed by the calibration); on whole batches it is paid "
        f"once per {s.batch}: {saved:.3f} ms less per sample on each of {k} lane(s), {s.steady:,.0f} -> {steady:,.0f}. The pixel "
        "work stays, so the gain shrinks as images grow"
    )
    return [
        Change(
            "vectorize",
            "light ops on whole batches",
            [f"{key}=true"],
            s.job,
            _pe(s, ctx, steady, refills=True),
            why,
            "map(light_ops) after batch()",
        )
    ]


def shards(s: Subject, ctx: Context) -> list[Change]:
    """Samples read from a few shard files (TFRecord) instead of one file each: the per-file open goes."""
    keys = s.knobs.get("shards") or []
    open_ms = ctx.ceilings.open_ms if ctx.ceilings is not None else None
    if not keys or str(s.value("loader.source")) == "tfrecord" or not open_ms or s.cached:  # a cache reads no file after epoch 1
        return []
    steady, k = _saving(s, open_ms)
    why = (
        f"opening, reading and closing one file cost {open_ms:.3f} ms of one core more than reading its bytes from one large "
        f"file (timed by the calibration): that much less per sample on each of {k} lane(s), {s.steady:,.0f} -> {steady:,.0f}; "
        "parsing a record costs about what tf.io.read_file's own op did. On slow storage the per-file latency it saves is larger"
    )
    return [
        Change(
            "shards",
            "TFRecord shards, interleaved",
            list(keys),
            s.job,
            _pe(s, ctx, steady, refills=True),
            why,
            "TFRecordDataset over shards with interleave(num_parallel_calls=AUTOTUNE)",
        )
    ]


def pin_memory(s: Subject, ctx: Context) -> list[Change]:
    """Page-locked batches on a CUDA consumer: the host-to-device copy about twice as fast."""
    key = s.knob("pin_memory")
    if key is None or s.value(key) or s.device != "cuda" or s.bounds is None:
        return []
    acc = s.bounds.of("accelerator")
    copy = s.step_ms - float(s.config.get("consumer", {}).get("step_ms") or 0.0)
    if acc is None or copy <= 0:
        return []
    faster = s.batch / ((s.step_ms - copy + copy / PINNED_SPEEDUP) / 1000.0)
    steady = min(s.steady * faster / acc.samples_per_s, faster)  # held at the new ceiling, not today's
    why = (
        f"the copy ({copy:.2f} ms a batch) about {PINNED_SPEEDUP:g}x faster from pinned memory: the accelerator's ceiling "
        f"{acc.samples_per_s:,.0f} -> {faster:,.0f}"
    )
    rate = per_epoch(steady, ctx.restart_of(s)[0], s.samples_per_epoch)
    return [Change("pin_memory", "pin_memory=true", [f"{key}=true"], s.job, rate, why, "DataLoader(..., pin_memory=True)")]


Lever = Callable[[Subject, Context], list[Change]]
LEVERS: dict[str, Lever] = {
    "one repeating iterator": repeating,
    "persistent workers": persistent,
    "autotuning off": autotune_off,
    "parallelism": parallelism,
    "prefetch": prefetch,
    "cache": cache,
    "decoder": decoder,
    "GPU decoder": gpu_decoder,
    "vectorize": vectorize,
    "shards": shards,
    "pin_memory": pin_memory,
}
