"""Compose configs with Hydra, expand sweeps, and turn Hydra's errors into one line.

The sweep command composes every job of the grid here before any trial runs, so a bad
value in the last job fails as early as one in the first.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, List, Sequence

from omegaconf import DictConfig, OmegaConf

from harness.config import CONF_DIR, register_configs
from harness.config.schema import GROUP_SCHEMAS, Config
from harness.errors import ConfigError, HarnessError

GROUPS = tuple(GROUP_SCHEMAS) + ("experiment",)


def list_options(group: str) -> List[str]:
    """Option names of a config group, from the YAML files under ``conf/<group>/``."""
    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml") if not p.name.startswith("_"))


def compose(overrides: Sequence[str], *, with_hydra: bool = False) -> DictConfig:
    """Compose the config for one job; raise :class:`HarnessError` with a one-line reason."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return hydra_compose("config", overrides=list(overrides), return_hydra_config=with_hydra)
    except HarnessError:
        raise
    except Exception as exc:  # Hydra raises several unrelated types for user errors
        raise HarnessError(explain(exc, overrides)) from exc
    finally:
        GlobalHydra.instance().clear()


def expand_sweep(overrides: Sequence[str]) -> List[List[str]]:
    """The per-job override lists of a multirun, as Hydra's BasicSweeper builds them.

    Sweep parameters that an experiment sets in ``hydra.sweeper.params`` come first,
    then the command line, exactly as the sweeper orders them.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    fixed = [o for o in overrides if not _is_sweep(o)]
    hydra_cfg = compose(fixed, with_hydra=True).hydra
    params = hydra_cfg.sweeper.get("params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + list(overrides)
    try:
        parsed = OverridesParser.create().parse_overrides(arguments)
    except Exception as exc:
        raise HarnessError(explain(exc, overrides)) from exc
    batches = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return [list(job) for batch in batches for job in batch]


def _is_sweep(override: str) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_override(override).is_sweep_override()
    except Exception:
        return False


def explain(exc: BaseException, overrides: Iterable[str] = ()) -> str:
    """One line that names the offending key or choice and what would be valid."""
    text = str(exc)
    missing = re.search(r"Could not find '([^/']+)/([^']+)'", text)
    if missing:
        group, choice = missing.groups()
        return f"{group}={choice}: no such option; choose one of: {', '.join(list_options(group))}"
    unknown = re.search(r"Could not override '([^']+)'", text)
    if unknown:
        return _unknown_key(unknown.group(1), overrides)
    merging = re.search(r"Error merging override (\S+)", text)
    if merging and exc.__cause__ is not None:
        reason = str(exc.__cause__).splitlines()[0]
        return f"{merging.group(1)}: {reason}"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _unknown_key(key: str, overrides: Iterable[str]) -> str:
    parent, _, leaf = key.rpartition(".")
    choices = [o for o in overrides if "=" in o and "." not in o.split("=")[0] and not _is_sweep(o)]
    try:
        base = compose(choices)
        node = OmegaConf.select(base, parent) if parent else base
    except HarnessError:
        node = None
    if isinstance(node, DictConfig):
        valid = ", ".join(str(k) for k in node.keys())
        where = f"'{parent}'" if parent else "the top level"
        return f"{key}: unknown key '{leaf}'; valid keys in {where}: {valid}"
    return f"{key}: unknown key"


def to_typed(raw: DictConfig) -> Config:
    """Merge a composed or reloaded config onto the schemas and return typed dataclasses.

    Each group node is merged onto the schema its ``name`` selects, so types are
    enforced again wherever a config is read back from disk.
    """
    typed = OmegaConf.structured(Config)
    for group, options in GROUP_SCHEMAS.items():
        if len(options) > 1:
            name = raw[group].name
            if name not in options:
                raise ConfigError(f"{group}.name={name!r} is not one of {sorted(options)}")
            typed[group] = OmegaConf.structured(options[name])
    plain = OmegaConf.masked_copy(raw, [k for k in raw.keys() if k != "hydra"])
    return OmegaConf.to_object(OmegaConf.merge(typed, plain))


def load_trial_config(path: Path) -> Config:
    """Read a job's saved ``config.yaml`` back into typed dataclasses.

    The child process of a trial gets nothing but this file.
    """
    try:
        return to_typed(OmegaConf.load(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
