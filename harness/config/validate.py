"""Checks of meaning that dataclass types cannot express.

Run on every job of a sweep before the first trial starts (parent side), and again by
the trial's own process on the config it reads back.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from harness.config.schema import choice
from harness.errors import ConfigError

AUTOTUNE = "autotune"


def parse_tuning(key: str, value) -> None | int | str:
    """Parse a parallelism or buffer knob: ``none``/null, a positive integer, or ``autotune``.

    Returns:
        ``None``, a positive ``int``, or the string ``"autotune"``.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
        return None
    if isinstance(value, str) and value.strip().lower() == AUTOTUNE:
        return AUTOTUNE
    if isinstance(value, bool):
        raise ConfigError(f"{key}={value}: expected none, autotune or a positive integer")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
        raise ConfigError(f"{key}={value!r}: expected none, autotune or a positive integer") from None
    if number != value and str(number) != str(value).strip():
        raise ConfigError(f"{key}={value!r}: expected none, autotune or a positive integer")
    if number < 1:
        raise ConfigError(f"{key}={value}: must be a positive integer (or none / autotune)")
    return number


def check_positive(key: str, value, *, allow_zero: bool = False, optional: bool = False) -> None:
    if value is None and optional:
        return
    check_finite_value(key, value)
    if value is None or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{key}={value}: must be {bound}")


def validate(cfg) -> None:
    """Raise :class:`ConfigError` naming the first value that makes no sense.

    Args:
        cfg: a composed ``DictConfig`` or the typed :class:`~harness.config.schema.Config`.
    """
    if isinstance(cfg, DictConfig):
        from harness.config.compose import to_typed

        cfg = to_typed(cfg)
    check_finite(cfg)
    _validate_batch(cfg.batch)
    _validate_dataset(cfg.dataset)
    _validate_trial(cfg.trial)
    _validate_runtime(cfg)
    from harness.loaders import get_loader

    loader = get_loader(cfg.loader.name)
    loader.check(cfg.loader)
    loader.check_batch(cfg.loader, cfg.batch)
    if choice(cfg.trial.epoch_mode) == "continuous" and not loader.continuous:
        raise ConfigError(
            f"trial.epoch_mode=continuous: loader={cfg.loader.name} has no repeating iterator "
            f"({loader.continuous_hint}); use trial.epoch_mode=restart"
        )
    loader.check_augment(cfg.loader, augment_spec(cfg))
    _validate_ranks(cfg, loader)
    _validate_storage(cfg)


def _validate_storage(cfg) -> None:
    s = cfg.storage
    for key in ("open_ms", "read_ms", "jitter_pct"):
        if getattr(s, key) < 0:
            raise ConfigError(f"storage.{key}={getattr(s, key)}: a latency or its spread cannot be negative; use 0 for none")
    if s.mb_per_s is not None and s.mb_per_s <= 0:
        raise ConfigError(f"storage.mb_per_s={s.mb_per_s}: the link's bandwidth must be positive; null for no cap")
    if s.jitter_pct > 100:
        raise ConfigError(f"storage.jitter_pct={s.jitter_pct}: a latency drawn below zero; keep it at most 100")
    if choice(s.kind) == "http" and cfg.loader.name != "webdataset":
        raise ConfigError(
            f"storage=http serves the dataset by URL, and loader={cfg.loader.name} reads files by path; "
            "loader=webdataset reads its shards by URL, or use storage=throttled (a FUSE mount) for any loader"
        )


def check_finite(cfg) -> None:
    """Refuse nan and inf anywhere in the config, naming the key.

    Every range check is a comparison, and every comparison with nan is false: without
    this, ``trial.timeout_s=nan`` passed ``> 0`` and switched the timeout off. One walk
    over the whole tree also covers fields added later and numbers inside lists
    (``augment.ops``).
    """
    for key, value in _numbers(cfg, ""):
        check_finite_value(key, value)


def check_finite_value(key: str, value) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}={value}: must be a finite number, not nan or inf (an optional key takes null for none)")


def _numbers(node: Any, key: str) -> Iterator[tuple[str, float]]:
    """(dotted key, value) for every float in a typed config, lists and dicts included."""
    children: Iterable[tuple[object, Any]]  # (name, child): a field name, a dict key or "[i]"
    if dataclasses.is_dataclass(node):
        children = ((f.name, getattr(node, f.name)) for f in dataclasses.fields(node))
    elif isinstance(node, dict):
        children = node.items()
    elif isinstance(node, (list, tuple)):
        children = ((f"[{i}]", v) for i, v in enumerate(node))
    else:
        if isinstance(node, float):
            yield key, node
        return
    for name, child in children:
        joined = f"{key}{name}" if not key or str(name).startswith("[") else f"{key}.{name}"  # ops[1].degrees
        yield from _numbers(child, joined)


def augment_spec(cfg):
    """The trial's validated augment pipeline, or ``None`` when ``augment.ops`` is empty."""
    from harness.augment.spec import check_against_batch, parse

    a = cfg.augment
    check_positive("augment.bench_images", a.bench_images)
    check_positive("augment.bench_passes", a.bench_passes)
    check_positive("augment.bench_warmup", a.bench_warmup, allow_zero=True)
    check_positive("augment.bench_cv", a.bench_cv)
    check_positive("augment.preview", a.preview, allow_zero=True)
    spec = parse(a, cfg.loader.name)
    if not spec.active:
        return None
    check_against_batch(spec, cfg.batch)
    return spec


def _validate_batch(batch) -> None:
    for key in ("size", "height", "width", "channels"):
        check_positive(f"batch.{key}", getattr(batch, key))
    if batch.channels not in (1, 3):
        raise ConfigError(f"batch.channels={batch.channels}: must be 1 or 3")


def _validate_dataset(ds) -> None:
    check_positive("dataset.shards", ds.shards)
    if ds.name in ("synthetic", "photos"):  # images the harness makes
        check_positive("dataset.count", ds.count)
        check_positive("dataset.width", ds.width)
        check_positive("dataset.height", ds.height)
        if not 1 <= ds.jpeg_quality <= 100:
            raise ConfigError(f"dataset.jpeg_quality={ds.jpeg_quality}: must be between 1 and 100")
        # photos may leave classes empty: one class per source photograph
        if (not ds.classes and ds.name == "synthetic") or len(set(ds.classes)) != len(ds.classes):
            raise ConfigError(f"dataset.classes={list(ds.classes)}: need one or more distinct names")
        check_positive("dataset.seed", ds.seed, allow_zero=True)
    elif ds.name == "folder":
        _validate_folder(ds.path)


def _validate_folder(path: str) -> None:
    # Path("") is ".", which is a folder: an empty value would quietly benchmark the current folder.
    if not str(path).strip():
        raise ConfigError("dataset.path is empty; set dataset.path=/some/folder (a folder with one sub-folder of images per class)")
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ConfigError(f"dataset.path={path}: no such folder; point it at a folder of class sub-folders")
    if not folder.is_dir():
        raise ConfigError(f"dataset.path={path}: a file, not a folder; point it at a folder of class sub-folders")


def _validate_trial(trial) -> None:
    check_positive("trial.warmup_steps", trial.warmup_steps, allow_zero=True)
    for key in ("steps", "seconds", "epochs"):
        check_positive(f"trial.{key}", getattr(trial, key), optional=True)
    check_positive("trial.repeats", trial.repeats)
    check_positive("trial.timeout_s", trial.timeout_s)
    check_positive("trial.default_seconds", trial.default_seconds)
    check_positive("trial.seed", trial.seed, allow_zero=True)  # numpy's generators refuse negative seeds
    from harness.trial.cores import check as check_cpus  # counts this machine's cores: the ones the trials inherit

    check_cpus(trial.cpus)
    if trial.code is not None and not Path(trial.code).is_dir():
        raise ConfigError(f"trial.code={trial.code}: no such folder; give a checkout of the code to run (check --ab makes one), or null")


def _validate_runtime(cfg) -> None:
    """The consumer, the monitor and the thread pools."""
    check_positive("consumer.step_ms", cfg.consumer.step_ms, allow_zero=True)
    check_positive("consumer.matmul_size", cfg.consumer.matmul_size)
    check_positive("consumer.gpu_index", cfg.consumer.gpu_index, allow_zero=True)
    check_positive("monitor.interval_ms", cfg.monitor.interval_ms)
    check_positive("monitor.uss_interval_ms", cfg.monitor.uss_interval_ms, allow_zero=True)
    for key in ("tf_inter_op", "tf_intra_op", "torch", "opencv"):  # 0 means the library's default
        check_positive(f"threads.{key}", getattr(cfg.threads, key), allow_zero=True)


PLACEMENTS = ("machine", "nodes")  # consumer.rank_placement


def _validate_ranks(cfg, loader) -> None:
    """``consumer.ranks`` and what it needs: a family that can shard, torch.distributed, the cores per rank."""
    c, ranks = cfg.consumer, cfg.consumer.ranks
    check_positive("consumer.ranks", ranks)
    check_positive("consumer.slow_rank_ms", c.slow_rank_ms, allow_zero=True)
    check_positive("trial.cpus_per_rank", cfg.trial.cpus_per_rank, optional=True)
    if c.slow_rank is not None and not 0 <= c.slow_rank < ranks:
        raise ConfigError(f"consumer.slow_rank={c.slow_rank}: there are ranks 0..{ranks - 1} (consumer.ranks={ranks})")
    if c.rank_placement not in PLACEMENTS:
        raise ConfigError(f"consumer.rank_placement={c.rank_placement}: one of {', '.join(PLACEMENTS)}")
    if ranks == 1:
        if c.rank_placement != "machine":
            raise ConfigError(f"consumer.rank_placement={c.rank_placement} places ranks: set consumer.ranks > 1 too")
        if cfg.trial.cpus_per_rank is not None:
            raise ConfigError(f"trial.cpus_per_rank={cfg.trial.cpus_per_rank} needs consumer.ranks > 1; for one process use trial.cpus")
        return
    if loader.rank_sharding is None:
        from harness.loaders import get_loader, list_loaders

        able = ", ".join(n for n in list_loaders() if get_loader(n).rank_sharding is not None)
        raise ConfigError(
            f"consumer.ranks={ranks}: loader={cfg.loader.name} cannot split its data between ranks in harness; use one of {able}"
        )
    loader.check_ranks(cfg.loader, ranks)
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise ConfigError(
            f"consumer.ranks={ranks}: ranks meet through torch.distributed, and torch is not installed; pip install -e '.[torch]'"
        )
    if cfg.trial.cpus is not None and cfg.trial.cpus_per_rank is not None:
        raise ConfigError("trial.cpus and trial.cpus_per_rank both set: with ranks, give the cores per rank only")
    from harness.trial.cores import check_per_rank

    if c.rank_placement == "machine":  # on nodes, each rank has its node's cores to itself
        check_per_rank(cfg.trial.cpus_per_rank, ranks)


def trial_bound(trial) -> dict:
    """The measured phase's bounds, with ``default_seconds`` when none is given."""
    bound = {k: getattr(trial, k) for k in ("steps", "seconds", "epochs") if getattr(trial, k) is not None}
    return bound or {"seconds": trial.default_seconds}
