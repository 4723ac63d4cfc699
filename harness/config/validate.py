"""Checks of meaning that dataclass types cannot express.

Run on every job of a sweep before the first trial starts (parent side), and again by
the trial's own process on the config it reads back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from omegaconf import DictConfig

from harness.config.schema import choice
from harness.errors import ConfigError

AUTOTUNE = "autotune"


def parse_tuning(key: str, value) -> Union[None, int, str]:
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
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r}: expected none, autotune or a positive integer") from None
    if number != value and str(number) != str(value).strip():
        raise ConfigError(f"{key}={value!r}: expected none, autotune or a positive integer")
    if number < 1:
        raise ConfigError(f"{key}={value}: must be a positive integer (or none / autotune)")
    return number


def check_positive(key: str, value, *, allow_zero: bool = False, optional: bool = False) -> None:
    if value is None and optional:
        return
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
    _validate_batch(cfg.batch)
    _validate_dataset(cfg.dataset)
    _validate_trial(cfg.trial)
    check_positive("consumer.step_ms", cfg.consumer.step_ms, allow_zero=True)
    check_positive("consumer.matmul_size", cfg.consumer.matmul_size)
    check_positive("monitor.interval_ms", cfg.monitor.interval_ms)
    check_positive("monitor.uss_interval_ms", cfg.monitor.uss_interval_ms, allow_zero=True)
    from harness.loaders import get_loader

    loader = get_loader(cfg.loader.name)
    loader.check(cfg.loader)
    loader.check_batch(cfg.loader, cfg.batch)
    if choice(cfg.trial.epoch_mode) == "continuous" and not loader.continuous:
        raise ConfigError(f"trial.epoch_mode=continuous: loader={cfg.loader.name} has no repeating iterator "
                          f"({loader.continuous_hint}); use trial.epoch_mode=restart")
    loader.check_augment(cfg.loader, augment_spec(cfg))


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
    if ds.name == "synthetic":
        check_positive("dataset.count", ds.count)
        check_positive("dataset.width", ds.width)
        check_positive("dataset.height", ds.height)
        if not 1 <= ds.jpeg_quality <= 100:
            raise ConfigError(f"dataset.jpeg_quality={ds.jpeg_quality}: must be between 1 and 100")
        if not ds.classes or len(set(ds.classes)) != len(ds.classes):
            raise ConfigError(f"dataset.classes={list(ds.classes)}: need one or more distinct names")
    elif ds.name == "folder":
        if not Path(ds.path).expanduser().is_dir():
            raise ConfigError(f"dataset.path={ds.path}: not a folder; point it at a folder of class sub-folders")


def _validate_trial(trial) -> None:
    check_positive("trial.warmup_steps", trial.warmup_steps, allow_zero=True)
    for key in ("steps", "seconds", "epochs"):
        check_positive(f"trial.{key}", getattr(trial, key), optional=True)
    check_positive("trial.repeats", trial.repeats)
    check_positive("trial.timeout_s", trial.timeout_s)
    check_positive("trial.default_seconds", trial.default_seconds)


def trial_bound(trial) -> dict:
    """The measured phase's bounds, with ``default_seconds`` when none is given."""
    bound = {k: getattr(trial, k) for k in ("steps", "seconds", "epochs") if getattr(trial, k) is not None}
    return bound or {"seconds": trial.default_seconds}

