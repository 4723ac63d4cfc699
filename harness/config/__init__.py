"""Config schemas and their registration with Hydra's ConfigStore."""

from pathlib import Path

from harness.config.schema import GROUP_SCHEMAS, Config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf"
EXPERIMENTS_DIR = PROJECT_ROOT / "experiments"

_registered = False


def register_configs() -> None:
    """Store the schemas as ``config_schema`` and ``schema/<group>/<option>``.

    The YAML options under ``conf/<group>/`` name their schema in their defaults list,
    so every composed node is typed. Idempotent.
    """
    global _registered
    if _registered:
        return
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    for group, options in GROUP_SCHEMAS.items():
        for option, schema in options.items():
            cs.store(group=f"schema/{group}", name=option, node=schema)
    _registered = True
