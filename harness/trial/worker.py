"""The child side of a trial: ``python -m harness.trial.worker TRIAL_DIR``.

It reads ``TRIAL_DIR/trial.json`` (the parent's :class:`~harness.trial.protocol.Request`),
runs one trial and always leaves a ``result.json`` there, ``ok`` or ``failed`` with the
reason, written once. The measured phase's begin and end go to the parent over the
request's channel. Nothing is exchanged through stdout, which goes to ``trial.log``.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, cast

from harness.errors import HarnessError
from harness.results.model import TrialResult
from harness.trial.protocol import Channel, Request


def main(argv) -> int:
    if argv and argv[0] == "--join":  # a rank on another node: the trial comes from rank 0's store
        return join(argv[1], int(argv[2]), int(argv[3]), int(argv[5]) if argv[4:5] == ["--repeat"] else None)
    entered = time.time()
    trial_dir = Path(argv[0])
    peer = int(argv[2]) if len(argv) > 2 and argv[1] == "--rank" else None  # a data-parallel rank other than 0
    request = Request.read(trial_dir)
    # Thread-pool settings are read when a library loads; none has loaded yet (this module
    # imports no framework), and keeping them in the request lets trial.json alone rerun a trial.
    os.environ.update(request.env)
    channel = Channel.for_child(request) if peer is None else None
    result = TrialResult("failed", config={}, overrides=request.overrides, job=request.job, repeat=request.repeat, kind=request.kind)
    spawned_at = request.spawned_at or entered
    result.overhead["process_start_s"] = round(entered - spawned_at, 4)
    result.timing.update(request.schedule)  # round and position in the sweep's interleaved order
    result.timing["started_at"] = spawned_at
    cpus: dict = {}
    rank = None
    stopped = False
    try:
        settings = _settings(Path(request.config_file))
        rank = _rank(settings, trial_dir, peer, request.cluster)
        cpus = _confine(settings, rank)  # first: framework pools size themselves to it, workers inherit it
        if request.kind == "augbench":
            from harness.augment.bench import execute as execute_augbench

            execute_augbench(Path(request.config_file), request.repeat, result)
        else:
            execute(Path(request.config_file), request.repeat, result, channel=channel, rank=rank, storage=request.storage)
        result.status = judge(result)
    except HarnessError as exc:
        result.error = str(exc)
    except Exception as exc:  # a bug or a framework error: keep everything
        result.error = one_line(exc)
        result.traceback = traceback.format_exc()
    except BaseException:  # SystemExit from a signal (Ray's driver turns SIGTERM into one): the parent says why, not a blank "failed"
        stopped = result.status != "ok"
        raise
    finally:
        if rank is not None and peer is None:
            rank.stop_peers()
        if cpus:
            result.environment["cpus"] = cpus  # the cores allowed before trial.cpus and the ones the trial ran on
        result.timing["finished_at"] = time.time()
        result.timing["duration_s"] = round(result.timing["finished_at"] - spawned_at, 3)
        if stopped:
            pass  # no result: the parent writes timeout or interrupted, with how long the trial ran
        elif peer is None:
            result.write(trial_dir)
        else:  # a peer's result is rank 0's to merge, not a trial of its own
            from harness.trial.ranks import write_peer

            write_peer(trial_dir, peer, result, cpus)
    return 0 if result.status == "ok" else 1


def join(host: str, port: int, rank: int, repeat: int | None = None) -> int:
    """``--join HOST PORT RANK`` (consumer.rank_placement=nodes): run rank RANK of the trial whose rank 0 serves its store
    at HOST:PORT, in a scratch folder of this node, and put the result back in the store (:mod:`harness.trial.peer`)."""
    import shutil
    import tempfile

    from harness.trial import peer

    scratch = Path(tempfile.mkdtemp(prefix=f"harness-rank{rank}-"))
    store = None
    try:
        store = peer.fetch(host, port, rank, scratch, repeat)
        code = main([str(scratch), "--rank", str(rank)])
        peer.report(store, rank, scratch / f"rank-{rank}.json", f"rank {rank} wrote no result (exit {code})")
        return code
    except Exception as exc:
        if store is not None:
            peer.report(store, rank, None, one_line(exc))
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _settings(config_file: Path):
    """The trial.yaml as OmegaConf reads it (no framework, no harness schema): what must be known before anything runs."""
    from omegaconf import OmegaConf

    return OmegaConf.load(config_file)


def _rank(conf, trial_dir: Path, peer: int | None, cluster: dict | None = None):
    """This process's :class:`~harness.trial.ranks.Rank` where ``consumer.ranks`` > 1, else ``None``.

    Rank 0 starts its peers here, before it confines itself: they pick their own cores
    from the set it was given.
    """
    from omegaconf import OmegaConf

    ranks = OmegaConf.select(conf, "consumer.ranks", default=1) or 1
    if ranks <= 1 or OmegaConf.select(conf, "trial.kind", default="trial") != "trial":
        return None
    from harness.trial import cores
    from harness.trial.ranks import Rank

    placement = OmegaConf.select(conf, "consumer.rank_placement", default="machine")
    timeout_s = float(OmegaConf.select(conf, "trial.timeout_s", default=600.0))
    rank = Rank(peer or 0, ranks, trial_dir, timeout_s, placement=placement, cluster=dict(cluster or {}))
    if peer is None:
        if placement == "machine":  # on nodes, each rank has its node's cores
            cores.check_per_rank(OmegaConf.select(conf, "trial.cpus_per_rank", default=None), ranks)
        rank.start_peers()
    return rank


def _confine(conf, rank=None) -> dict:
    """Apply ``trial.cpus``, or a rank's ``trial.cpus_per_rank``, to this process first (see :mod:`harness.trial.cores`)."""
    from omegaconf import OmegaConf

    from harness.trial import cores

    if rank is not None:  # on nodes, each rank takes its node's first cores, as rank 0 does on one machine
        index = rank.index if rank.placement == "machine" else 0
        return cores.confine_rank(OmegaConf.select(conf, "trial.cpus_per_rank", default=None), index)
    return cores.confine(OmegaConf.select(conf, "trial.cpus", default=None))


def judge(result: TrialResult) -> str:
    """``too_short`` (why, in ``result.error``) when a trial measured too little to be a speed, else ``ok``.

    A trial that measured no step would otherwise read as ``ok`` at 0 samples/s.
    """
    from harness.results.stats import too_short

    if result.kind != "trial":
        return "ok"
    steps, warmup = result.summary["steps"], result.bound["warmup_steps"]
    delivered = (steps + warmup, sum(result.epochs["samples"].values()))
    result.error = too_short(steps, warmup, delivered, result.bound["asked"], result.bound["stopped_by"])
    return "ok" if result.error is None else "too_short"


def reference(loader) -> dict:
    """Checksum of the dataset's first sample after the family's deterministic steps."""
    import hashlib

    import numpy as np

    if loader.dataset is None:
        pixels, sample_id = loader.reference_pixels(""), "synthetic pool[0][0]"
    else:
        sample = loader.dataset.samples[0]
        pixels, sample_id = loader.reference_pixels(str(loader.dataset.images_dir / sample.filename)), sample.filename
    if pixels is None:
        return {"id": sample_id, "sha1": None}
    pixels = np.ascontiguousarray(pixels)
    return {
        "id": sample_id,
        "shape": list(pixels.shape),
        "dtype": str(pixels.dtype),
        "sha1": hashlib.sha1(pixels.tobytes()).hexdigest(),
        "mean": round(float(pixels.astype(np.float64).mean()), 4),
    }


def one_line(exc: BaseException) -> str:
    """The line of an exception that says what went wrong.

    Framework errors often open with context ("in user code:") and end with the cause,
    so the last non-empty line of the message is taken, prefixed with the type.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    name = type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}".rstrip(": ")


def execute(
    config_file: Path, repeat: int, result: TrialResult, channel: Channel | None = None, rank=None, storage: dict | None = None
) -> None:
    """Run one trial from a resolved config file and fill ``result`` in place.

    Args:
        channel: where the measured phase's begin and end are told (the parent's sampler).
        rank: this process's :class:`~harness.trial.ranks.Rank` when ``consumer.ranks`` > 1.
    """
    from omegaconf import OmegaConf

    from harness.config.compose import load_trial_config
    from harness.config.validate import augment_spec, trial_bound, validate
    from harness.trial import environment

    t = time.perf_counter()
    # to_container is typed as any container OmegaConf makes; a resolved trial.yaml is a mapping with str keys
    result.config = cast("dict[str, Any]", OmegaConf.to_container(OmegaConf.load(config_file), resolve=True))
    cfg = load_trial_config(config_file)
    validate(cfg)
    spec = augment_spec(cfg)
    result.environment = environment.collect()
    result.overhead["config_and_environment_s"] = round(time.perf_counter() - t, 4)
    loader, consumer = _build(cfg, repeat, result, config_file.parent, spec, rank, storage or {})
    bound = trial_bound(cfg.trial)
    try:
        if rank is not None:
            rank.cuda = consumer.device == "cuda"
            rank.gpu = consumer.dev.index if rank.cuda else None
            rank.join()
        _measure(cfg, loader, consumer, bound, result, channel, rank)
    except Exception as exc:
        if rank is not None and rank.index == 0:
            rank.blame(exc)  # a broken collective is a peer's failure: say which and why
        raise
    finally:
        loader.close()
        if rank is not None:
            rank.leave()
    if rank is not None and rank.index == 0:
        from harness.trial import ranks

        ranks.merge(result, rank.collect(), rank.backend)
    if spec is not None:
        result.augment = {**spec.describe(), "pipeline": loader.pipeline().describe()}
        if repeat == 0 and cfg.augment.preview:  # the job's sample grid, beside its trial.yaml (not timed)
            from harness.augment.preview import write_samples

            write_samples(spec, loader.dataset, cfg.batch.channels, cfg.augment.preview, cfg.trial.seed, config_file.parent)


def _build(cfg, repeat: int, result: TrialResult, workdir: Path, spec=None, rank=None, storage: dict | None = None):
    from harness.config.schema import choice
    from harness.data.build import prepare
    from harness.errors import require
    from harness.loaders import get_loader
    from harness.trial import preflight, threads
    from harness.trial.consumer import make_consumer

    loader_cls = get_loader(cfg.loader.name)
    needs = loader_cls.needs(cfg.loader)
    manifest = prepare(cfg.dataset, tfrecord=needs.tfrecord, webdataset=needs.webdataset) if needs.dataset else None
    result.dataset = manifest.describe() if manifest is not None else {"kind": "none", "reason": "loader generates its data"}
    if manifest is not None:  # before the loader exists, so outside the measured phase and alike for every family
        from harness.data import pagecache
        from harness.storage.mount import relocate

        result.dataset["page_cache"] = pagecache.apply(choice(cfg.dataset.page_cache), manifest)
        manifest = relocate(manifest, storage or {})  # storage=throttled / http: every file read where the parent serves it
        if rank is not None:  # this rank's share (families that shard themselves read its ``whole``)
            manifest = manifest.shard(rank.index, rank.ranks)
            result.dataset["rank"] = {"rank": rank.index, "ranks": rank.ranks, "samples": len(manifest)}
    result.environment["preflight"] = preflight.warnings(cfg, manifest)  # as the sweep warned, with this trial's cores
    if needs.framework:
        t = time.perf_counter()
        module, extra = needs.framework
        require(module, what=f"loader={cfg.loader.name}", extra=extra)
        result.overhead["framework_import_s"] = round(time.perf_counter() - t, 4)
    threads.configure(cfg.threads)  # before the loader runs its first framework op
    t = time.perf_counter()
    scratch = workdir / f"repeat-{repeat}" / (f"rank-{rank.index}" if rank is not None and rank.index else "")
    loader = loader_cls(cfg.loader, cfg.batch, manifest, seed=cfg.trial.seed + repeat, workdir=scratch, augment=spec)
    threads.configure(cfg.threads)  # again, for libraries the loader imported (OpenCV)
    result.timing["loader_build_s"] = round(time.perf_counter() - t, 4)
    t = time.perf_counter()
    consumer = make_consumer(_rank_consumer(cfg.consumer, rank), cfg.batch)
    result.timing["consumer_setup_s"] = round(time.perf_counter() - t, 4)
    result.consumer = consumer.describe()
    return loader, consumer


def _rank_consumer(conf, rank):
    """A rank's accelerator: GPU ``gpu_index + rank``; ``slow_rank`` computes ``slow_rank_ms`` longer per step."""
    if rank is None:
        return conf
    from dataclasses import replace

    slow = conf.slow_rank_ms if conf.slow_rank == rank.index else 0.0
    return replace(conf, gpu_index=conf.gpu_index + rank.index, step_ms=conf.step_ms + slow)


def _measure(cfg, loader, consumer, bound, result: TrialResult, channel: Channel | None = None, rank=None) -> None:
    from dataclasses import asdict

    from harness.config.schema import choice
    from harness.results.stats import boundaries, summarize, window_throughput
    from harness.trial import threads
    from harness.trial.checks import BatchChecks
    from harness.trial.loop import run_loop

    checks = BatchChecks(cfg.batch, loader.expected_ids())
    continuous = choice(cfg.trial.epoch_mode) == "continuous"
    loop = run_loop(
        loader.stream() if continuous else loader.epoch,
        lambda b, during: consumer.consume(b.images, during),
        bound,
        cfg.trial.warmup_steps,
        on_batch=checks.check_shape,
        during_compute=checks.account,
        on_measure=None if channel is None else channel.begin,
        agree=None if rank is None else rank.agree,
    )
    t = time.perf_counter()
    if channel is not None:
        channel.end()  # with the workers still alive, the sampler reads their memory (USS) before answering
    result.overhead["sampler_wait_s"] = round(time.perf_counter() - t, 4)  # after measuring: not in any metric
    steps = asdict(loop.steps)
    if rank is None:
        del steps["sync_ms"]  # only ranks meet at an all-reduce
    result.steps = {k: [round(v, 4) if isinstance(v, float) else v for v in values] for k, values in steps.items()}
    result.bound = {"asked": bound, "stopped_by": loop.stopped_by, "warmup_steps": loop.warmup_steps}
    result.timing["measure_start_clock"] = loop.measure_start  # perf_counter: the monitor's clock too
    result.epochs = {
        "started": loop.epochs_started,
        "completed": loop.completed,
        "mode": choice(cfg.trial.epoch_mode),
        "samples": {str(k): v for k, v in loop.epoch_samples.items()},
        "first_batch_ms": {str(loop.steps.epoch[i]): round(loop.steps.wait_ms[i], 3) for i in boundaries(loop.steps.epoch)},
    }
    result.same_data = checks.report(loader.random_ops(), loop.completed)
    result.same_data["reference"] = reference(loader)
    result.summary = {
        **summarize(loop.steps, loop.wall_s, loop.ttfb_s),
        "window_samples_per_s": window_throughput(loop.steps.t_ms, loop.steps.step_ms, loop.steps.samples),
    }
    result.loader = {**loader.describe(), "family_knobs": asdict(type(loader).knobs)}  # what the advice may turn (harness.advice)
    if rank is not None:
        result.loader["rank_sharding"] = loader.rank_sharding
    result.threads = threads.describe(cfg.threads)
    result.overhead["bookkeeping_pct"] = round(result.summary["bookkeeping_pct"], 4)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
