"""The docs' reference pages are built from the code: every command, config key, metric and exit code is in them."""

import dataclasses

from harness.__main__ import COMMANDS
from harness.config import group_schemas
from harness.reference import PAGES
from harness.results.metrics import REGISTRY


def test_every_config_key_has_its_type_default_and_a_meaning():
    page = PAGES["reference/config.md"]()
    rows = {line.split("|")[1].strip().strip("`"): line for line in page.splitlines() if line.startswith("| `")}
    for group, options in group_schemas().items():
        for cls in options.values():
            for f in dataclasses.fields(cls):
                row = rows[f"{group}.{f.name}"]
                assert row.count("|") == 5 and row.split("|")[4].strip(), f"{group}.{f.name} has no meaning: add a comment on its line"


def test_every_command_metric_and_exit_code_is_in_the_reference():
    commands, metrics, codes = PAGES["reference/commands.md"](), PAGES["reference/metrics.md"](), PAGES["reference/exit-codes.md"]()
    assert all(f"## `{name}`" in commands for name in COMMANDS)
    assert all(f"| `{name}` |" in metrics for name in REGISTRY)
    assert [line.split("|")[1].strip() for line in codes.splitlines()[6:]] == ["0", "1", "2", "3", "130 / 143"]
