"""Compose configs with Hydra, expand sweeps, and turn Hydra's errors into one line.

The sweep command composes every job of the grid here before any trial runs, so a bad
value in the last job fails as early as one in the first.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, ValidationError

from harness.config import CONF_DIR, EXPERIMENT_GROUP, SCHEMA_GROUPS, experiment_names, group_schemas, register_configs, user_options
from harness.config.schema import Config
from harness.errors import ConfigError, HarnessError

GROUPS = SCHEMA_GROUPS + (EXPERIMENT_GROUP,)


def list_options(group: str) -> list[str]:
    """Option names of a config group, from the YAML files under ``conf/<group>/`` (experiments: all registered)."""
    if group == EXPERIMENT_GROUP:
        return experiment_names()
    folder = CONF_DIR / group
    return sorted({p.stem for p in folder.glob("*.yaml") if not p.name.startswith("_")} | set(user_options(group)))


def compose(overrides: Sequence[str], *, with_hydra: bool = False, typed: bool = True) -> DictConfig:
    """Compose the config for one job; raise :class:`HarnessError` with a one-line reason.

    The result is also merged onto the schemas once, so a key that ``+`` or ``++`` added
    and a required value left unset (``dataset=folder`` without ``dataset.path``) fail
    here, in one line, instead of later as an OmegaConf traceback. ``typed=False`` leaves
    that to a caller that merges it itself (:func:`to_typed`, 0.3 s on 2 cores).
    """
    try:
        cfg = _hydra_compose(overrides, with_hydra)
    except Exception as exc:  # Hydra raises several unrelated types for user errors
        raise HarnessError(explain(exc, overrides)) from exc
    if typed:
        to_typed(cfg)
    return cfg


def _hydra_compose(overrides: Sequence[str], with_hydra: bool = False) -> DictConfig:
    """Hydra's compose, errors untouched: :func:`explain` calls this, so it must not call ``explain``.

    Hydra's global state is put back afterwards: a launcher's callback composes jobs
    while Hydra's own app is running, and a launcher such as submitit ships that state
    to its jobs.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton

    register_configs()
    # Scan the plugins before saving the state: a launcher that stores its configs in a module Hydra's scan
    # imports only once (hydra_ray_launcher/_config.py) would lose them when the state is put back
    Plugins.instance()
    saved = Singleton.get_state()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return hydra_compose("config", overrides=list(overrides), return_hydra_config=with_hydra)
    finally:
        Singleton.set_state(saved)


def expand_sweep(overrides: Sequence[str], params: dict | None = None) -> list[list[str]]:
    """The per-job override lists of a grid sweep, in the order Hydra's basic sweeper runs them.

    Sweep parameters that an experiment sets in ``hydra.sweeper.params`` come first, then
    the command line; a key given twice keeps its place and takes the later value. Built
    on Hydra's public override parser, so it does not depend on one sweeper's internals;
    an axis that is not a list (``interval(0,1)``, for a sweeper such as Optuna) stays as
    written and is checked by the launcher when the sweeper picks its values.

    Args:
        params: ``hydra.sweeper.params`` when the caller has the composed Hydra node;
            composed here from the fixed overrides otherwise.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if params is None:
        fixed = [o for o in overrides if not _is_sweep(o)]
        params = dict(compose(fixed, with_hydra=True).hydra.sweeper.get("params") or {})
    arguments = [f"{k}={v}" for k, v in params.items()] + list(overrides)
    try:
        parsed = OverridesParser.create().parse_overrides(arguments)
    except Exception as exc:
        raise HarnessError(explain(exc, overrides)) from exc
    axes: dict[str, list[str]] = {}
    for override in parsed:
        key = override.get_key_element()
        if override.is_discrete_sweep():
            axes[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        elif override.is_sweep_override():
            axes[key] = [override.input_line or f"{key}={override.get_value_element_as_str()}"]
        else:
            axes[key] = [f"{key}={override.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*axes.values())]


def override_key(override: str) -> str:
    """``+experiment/x=a`` -> ``experiment/x``; ``++loader.kwargs.n=2`` -> ``loader.kwargs.n``: what an override sets."""
    return override.split("=", 1)[0].lstrip("+~")


def merge_overrides(base: Sequence[str], changes: Sequence[str]) -> list[str]:
    """``base`` with ``changes`` applied: a change replaces the base's override of the same key, else comes last.

    Hydra refuses a key given twice, so a job's overrides and the changes made to it (the
    CPU ceiling's run alone, an advised change) become one list before composing.
    """
    keys = {override_key(c) for c in changes}
    return [o for o in base if override_key(o) not in keys] + list(changes)


def _is_sweep(override: str) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_override(override).is_sweep_override()
    except Exception:
        return False


def explain(exc: BaseException, overrides: Iterable[str] = ()) -> str:
    """One line that names the offending key or choice and what would be valid."""
    text = str(exc)
    missing = re.search(r"Could not find '([^']+)/([^'/]+)'", text)  # the group may nest: hydra/launcher/ray
    if missing:
        group, choice = missing.groups()
        listed = re.search(r"Available options in '[^']+':\n((?:\t.*\n?)+)", text)  # Hydra's own list, plugins' options included
        options = listed.group(1).split() if listed else list_options(group)
        return f"{group}={choice}: no such option; choose one of: {', '.join(options)}"
    unknown = re.search(r"Could not override '([^']+)'", text)
    append = re.search(r"To append to your config use (\S+)", text)
    if unknown and append and unknown.group(1).startswith("hydra."):  # a launcher's free-form dicts (additional_parameters, ray.init)
        return f"{unknown.group(1)}: not in the config yet; add it with {append.group(1)}"
    if unknown:
        return _unknown_key(unknown.group(1), overrides)
    merging = re.search(r"Error merging override (\S+)", text)
    if merging and exc.__cause__ is not None:
        reason = str(exc.__cause__).splitlines()[0]
        return f"{merging.group(1)}: {reason}"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _unknown_key(key: str, overrides: Iterable[str]) -> str:
    """The message for a key Hydra could not override, listing the keys that exist there."""
    return unknown_key(key, _base_config(overrides))


def _base_config(overrides: Iterable[str]) -> DictConfig | None:
    """The config that the group choices alone compose, to list real keys from; ``None`` if none composes.

    Only ``group=option`` overrides are kept: the others may be the very override that
    failed, and composing it again (through :func:`compose`, which explains failures
    with this function) once recursed without end.
    """
    choices = [o for o in overrides if o.split("=", 1)[0] in GROUPS and not _is_sweep(o)]
    try:
        return _hydra_compose(choices)
    except Exception:  # a bad group choice: the caller still names the key, without the list
        return None


def unknown_key(key: str, base: DictConfig | None) -> str:
    """One line for a key that is not in the schema: where it was looked for, what is there, what is close.

    Args:
        key: the dotted key, e.g. ``"seconds"`` or ``"loader.produce_msx"``.
        base: a composed or schema config to list valid keys from; ``None`` lists nothing.
    """
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(base, parent) if (base is not None and parent) else base
    owners = _other_options(key)
    close = _close_keys(key, base) if base is not None else []
    hint = f"it needs {' or '.join(owners)}; " if owners else f"did you mean {' or '.join(close)}? " if close else ""
    if not isinstance(node, DictConfig):
        return f"{key}: unknown key; {hint}python -m harness list shows the groups, --cfg job the keys"
    valid = ", ".join(str(k) for k in node.keys() if k != "hydra")
    where = f"'{parent}'" if parent else "the top level"
    groups = f" (config groups: {', '.join(GROUPS)})" if not parent else ""
    return f"{key}: unknown key '{leaf}'; {hint}valid keys in {where}: {valid}{groups}"


def _close_keys(key: str, base: DictConfig, limit: int = 3) -> list[str]:
    """Existing dotted keys that ``key`` probably meant: the same last part elsewhere, else a near spelling.

    Only last parts are compared: whole dotted keys share their prefix, which made
    ``dataset.path`` look like ``dataset.width``.
    """
    by_leaf: dict[str, list[str]] = {}
    for known in _dotted_keys(base) + [g for g in GROUPS if g not in base]:
        by_leaf.setdefault(known.rpartition(".")[2], []).append(known)
    leaf = key.rpartition(".")[2]
    near = [leaf] if leaf in by_leaf else difflib.get_close_matches(leaf, list(by_leaf), n=limit, cutoff=0.8)
    return [k for m in near for k in by_leaf[m] if k != key][:limit]


def _other_options(key: str) -> list[str]:
    """``group=option`` choices whose schema has ``key`` (``dataset.path`` -> ``dataset=folder``)."""
    group, _, leaf = key.partition(".")
    options = group_schemas().get(group, {})
    return [f"{group}={name}" for name, schema in options.items() if leaf in {f.name for f in dataclasses.fields(schema)}]


def _dotted_keys(node: DictConfig) -> list[str]:
    plain = OmegaConf.to_container(node, resolve=False)  # unresolved: a MISSING or ${...} value must not raise here
    return list(_walk_keys(plain, "")) if isinstance(plain, dict) else []


def _walk_keys(tree: dict, prefix: str) -> Iterator[str]:
    for name, child in tree.items():
        if name == "hydra":
            continue
        yield f"{prefix}{name}"
        if isinstance(child, dict):
            yield from _walk_keys(child, f"{prefix}{name}.")


def _schema(raw: DictConfig) -> DictConfig:
    """The structured schema for ``raw``: each group's node the option its ``name`` selects."""
    typed = OmegaConf.structured(Config)
    for group, options in group_schemas().items():
        if len(options) > 1:
            name = raw[group].name
            if name not in options:
                raise ConfigError(f"{group}.name={name!r} is not one of {sorted(options)}")
            typed[group] = OmegaConf.structured(options[name])
    return typed


def without_newer_keys(raw: DictConfig) -> tuple[DictConfig, list[str]]:
    """``raw`` without the keys this revision's schemas lack, and those keys (dotted).

    check --ab runs a trial of the base revision from the working tree's trial.yaml; a key the
    working tree added since would make the older harness refuse the whole trial. Only where a
    schema node is a dataclass: a free mapping's own keys (a user's options) stay.
    """
    plain = OmegaConf.to_container(raw, resolve=False)
    assert isinstance(plain, dict)
    dropped: list[str] = []

    def prune(tree: dict, node: DictConfig, prefix: str) -> None:
        for key in [k for k in tree if k != "hydra"]:
            if key not in node:
                dropped.append(f"{prefix}{key}")
                del tree[key]
            elif isinstance(tree[key], dict) and isinstance(node[key], DictConfig) and OmegaConf.get_type(node[key]) is not dict:
                prune(tree[key], node[key], f"{prefix}{key}.")

    prune(plain, _schema(raw), "")
    return OmegaConf.create(plain), dropped


def to_typed(raw: DictConfig) -> Config:
    """Merge a composed or reloaded config onto the schemas and return typed dataclasses.

    Each group node is merged onto the schema its ``name`` selects, so types are
    enforced again wherever a config is read back from disk.
    """
    typed = _schema(raw)
    # Through plain containers: a node that Hydra's '+' opened keeps that flag through a
    # merge, and OmegaConf then drops the added key without a word instead of refusing it.
    plain = OmegaConf.create(OmegaConf.to_container(raw, resolve=False))
    if not isinstance(plain, DictConfig):
        raise ConfigError("a config must be a mapping of groups and keys, not a list")
    plain.pop("hydra", None)
    try:
        config = OmegaConf.to_object(OmegaConf.merge(typed, plain))
    except ConfigKeyError as exc:  # a key '+'/'++' added, or a hand-edited trial.yaml
        raise ConfigError(unknown_key(exc.full_key or "", typed)) from exc
    except MissingMandatoryValue as exc:
        raise ConfigError(_missing(exc.full_key or "")) from exc
    except ValidationError as exc:
        raise ConfigError(f"{exc.full_key}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(config, Config):
        raise ConfigError(f"the config did not become a {Config.__name__}")
    return config


# What to put in a required key that a group option leaves unset.
_REQUIRED_HINTS = {"dataset.path": "/some/folder (a folder with one sub-folder of images per class)"}


def _missing(key: str) -> str:
    example = _REQUIRED_HINTS.get(key, "VALUE")
    return f"{key} is required and not set; add {key}={example} to the command line"


NEWER_KEYS = "HARNESS_NEWER_KEYS"  # "drop": set by harness.trial.spawn for a trial of another revision (trial.code)


def load_trial_config(path: Path) -> Config:
    """Read a job's saved ``config.yaml`` back into typed dataclasses.

    The child process of a trial gets nothing but this file.
    """
    try:
        loaded = OmegaConf.load(path)
        if not isinstance(loaded, DictConfig):
            raise ConfigError("not a mapping of groups and keys")
        if os.environ.get(NEWER_KEYS) == "drop":  # check --ab's base side: a newer parent wrote this file
            loaded, dropped = without_newer_keys(loaded)
            if dropped:
                print(f"harness: this revision does not know {', '.join(dropped)}; its trial runs without them", file=sys.stderr)
        return to_typed(loaded)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
