"""``list``: what can be chosen on the command line."""

from __future__ import annotations


def listing(args: list[str]) -> int:
    from harness.config.compose import GROUPS, list_options
    from harness.loaders import list_loaders

    for group in GROUPS:
        print(f"{group}: {', '.join(list_options(group)) or '(none)'}")
    print(f"loader families: {', '.join(list_loaders())}")
    return 0
