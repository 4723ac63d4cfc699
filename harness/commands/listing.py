"""``list``: what can be chosen on the command line."""

from __future__ import annotations

import dataclasses
from enum import Enum


def listing(args: list[str]) -> int:
    from harness.config.compose import GROUPS, list_options
    from harness.loaders import list_loaders, loader_schemas

    for group in GROUPS:
        print(f"{group}: {', '.join(list_options(group)) or '(none)'}")
    print(f"loader families: {', '.join(list_loaders())}")
    for choices, families in enum_choices(loader_schemas(), "decoder").items():
        print(f"loader.decoder ({', '.join(families)}): {choices}")
    return 0


def enum_choices(schemas: dict[str, type], key: str) -> dict[str, list[str]]:
    """The choices of field ``key`` (an enum) -> the families whose schema has them, e.g. for ``loader.decoder``."""
    grouped: dict[str, list[str]] = {}
    for name, schema in schemas.items():
        default = next((f.default for f in dataclasses.fields(schema) if f.name == key), None)
        if isinstance(default, Enum):
            grouped.setdefault(", ".join(str(m.value) for m in type(default)), []).append(name)
    return grouped
