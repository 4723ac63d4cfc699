"""Config schemas, where the YAML lives, and their registration with Hydra.

The repository keeps ``conf/`` (config groups) and ``experiments/`` (presets) at its top;
a wheel ships both inside the package as ``harness/conf`` and ``harness/experiments``
(see pyproject.toml), so an installed harness finds them from any folder. Experiments
are registered in Hydra's ConfigStore as the group ``experiment`` (package ``_global_``)
rather than found through a ``conf/experiment`` link, and a user's own folder of
experiments (``--config-dir DIR``) joins them the same way.

The loader group's schemas are not listed here: each loader family keeps its config
dataclass in its own module, and :func:`group_schemas` asks the loader registry, which
finds the families (:func:`harness.loaders.base.discover`). Composing a config, typing one
read back from disk (the trial's child process) and registering with Hydra all go
through :func:`group_schemas`, so no entry point can see the loader group half-filled.
"""

from __future__ import annotations

from pathlib import Path

from harness.config.schema import GROUP_SCHEMAS, Config

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout, when harness runs from one
_PACKAGE = Path(__file__).resolve().parents[1]


def _data_dir(name: str) -> Path:
    """``harness/<name>`` in an installed wheel, else ``<checkout>/<name>``."""
    packaged = _PACKAGE / name
    return packaged if packaged.is_dir() else PROJECT_ROOT / name


CONF_DIR = _data_dir("conf")
EXPERIMENTS_DIR = _data_dir("experiments")
EXPERIMENT_GROUP = "experiment"
SCHEMA_GROUPS = ("dataset", "loader", "augment", "consumer", "monitor", "trial", "storage")  # groups with a schema per option

_registered = False
_stored: set[tuple[str, str]] = set()  # (group, option) schemas already in Hydra's ConfigStore
_experiments: dict[str, Path] = {}  # experiment name -> its file (the user's folders after the shipped one)
_user_options: dict[str, set[str]] = {}  # group -> options a --config-dir added (loader/mine.yaml)


def group_schemas() -> dict[str, dict[str, type]]:
    """Every schema group's options: group -> option name -> dataclass, loader families included."""
    from harness.loaders.base import loader_schemas  # the families own their schemas; this finds them

    return {group: loader_schemas() if group == "loader" else GROUP_SCHEMAS[group] for group in SCHEMA_GROUPS}


def register_configs() -> None:
    """Store the schemas as ``config_schema`` and ``schema/<group>/<option>``, and the experiments.

    The YAML options under ``conf/<group>/`` name their schema in their defaults list,
    so every composed node is typed. Idempotent; a loader family registered after the
    first call is stored by the next.
    """
    global _registered
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for group, options in group_schemas().items():
        for option, schema in options.items():
            if (group, option) not in _stored:
                cs.store(group=f"schema/{group}", name=option, node=schema)
                _stored.add((group, option))
    if _registered:
        return
    cs.store(name="config_schema", node=Config)
    _registered = True
    add_experiment_dir(EXPERIMENTS_DIR)


def add_experiment_dir(folder: Path) -> list[str]:
    """Register every ``NAME.yaml`` of ``folder`` as ``experiment=NAME`` (and ``sub/NAME.yaml`` as
    ``+experiment/sub=NAME``); a later folder's experiment replaces a shipped one of the same name.

    ``loader/NAME.yaml`` (any schema group's folder) adds the option ``loader=NAME``, e.g. a
    user's pipeline as ``loader=custom`` with its target set, to sweep beside built-in loaders.

    A folder laid out as a Hydra config dir (``folder/experiment/NAME.yaml``) works too.

    Returns:
        the experiment names found.
    """
    from hydra.core.config_store import ConfigStore

    from harness.errors import ConfigError

    register_configs()
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"--config-dir {folder}: not a folder; point it at a folder of experiment YAML files")
    root = folder / EXPERIMENT_GROUP if (folder / EXPERIMENT_GROUP).is_dir() else folder
    names = []
    for path in sorted(root.rglob("*.yaml")):
        relative = path.relative_to(root).with_suffix("")
        if relative.name.startswith("_") or len(relative.parts) > 2:
            continue
        node = _load(path)
        if len(relative.parts) == 2 and relative.parts[0] in SCHEMA_GROUPS:  # loader/mine.yaml: loader=mine
            _store_option(relative.parts[0], relative.name, node)
            continue
        group = "/".join([EXPERIMENT_GROUP, *relative.parts[:-1]])
        ConfigStore.instance().store(group=group, name=relative.name, node=node, package="_global_")
        if len(relative.parts) == 1:
            _experiments[relative.name] = path
            names.append(relative.name)
    for group in SCHEMA_GROUPS:  # a Hydra-style config dir keeps its group folders beside experiment/
        if root != folder and (folder / group).is_dir():
            for path in sorted((folder / group).glob("*.yaml")):
                _store_option(group, path.stem, _load(path))
    return names


def _store_option(group: str, name: str, node) -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group=group, name=name, node=node)
    _user_options.setdefault(group, set()).add(name)


def user_options(group: str) -> list[str]:
    """The options of ``group`` that a ``--config-dir`` added."""
    return sorted(_user_options.get(group, ()))


def _load(path: Path):
    """A YAML file as an OmegaConf node; a syntax error is one line naming the file."""
    from omegaconf import OmegaConf

    from harness.errors import ConfigError

    try:
        return OmegaConf.load(path)
    except Exception as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc


def experiment_names() -> list[str]:
    """Every registered experiment, shipped and the user's."""
    register_configs()
    return sorted(_experiments)
