"""The documentation's reference pages, built from the code: commands, configuration, metrics, exit codes.

``docs/gen_ref.py`` writes them into the site at every ``make docs`` (mkdocs-gen-files), so the
reference cannot drift from what the code does: commands and their options from the text ``--help``
prints, every config group's keys with type, default and meaning from the dataclass schemas (the
comment on each field's line), the metrics from the metric registry, the exit codes from the usage
text. Imports every loader family's schema module, no framework.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re

FIELD = re.compile(r"^\s{4}(\w+):\s*([^=#]+?)\s*(?:=\s*(.+?))?\s*(?:#\s*(.*))?$")


def commands() -> str:
    from harness.__main__ import COMMAND_HELP, USAGE

    lines = [
        "# Commands",
        "",
        "Generated from `python -m harness --help` and each command's own `--help`.",
        "",
        "```text",
        USAGE.rstrip(),
        "```",
        "",
    ]
    for name, text in COMMAND_HELP.items():
        lines += [f"## `{name}`", "", "```text", text.rstrip(), "```", ""]
    return "\n".join(lines)


def exit_codes() -> str:
    from harness.__main__ import USAGE

    block = USAGE[USAGE.index("exit codes:") :].replace("exit codes:", "").strip()
    items = re.split(r",\s*(?=\d)", " ".join(block.split()))  # "0 ok, 1 usage ..., 130 / 143 stopped ..."
    codes = [re.match(r"(\d+(?: / \d+)?) (.*)", item).groups() for item in items]  # type: ignore[union-attr]
    lines = ["# Exit codes", "", "Generated from the usage text (`python -m harness --help`).", "", "| code | meaning |", "| --- | --- |"]
    lines += [f"| {code} | {meaning.strip()} |" for code, meaning in codes]
    return "\n".join(lines) + "\n"


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    if isinstance(value, enum.Enum):
        value = value.value
    if value == "???":  # OmegaConf's MISSING
        return "(required)"
    return "null" if value is None else f"`{value!r}`" if not isinstance(value, str) else f"`{value}`"


def _type(annotation: str, cls: type) -> str:
    """A field's type as a table cell: an enum's choices spelled out; no '|' (it would split the row)."""
    import sys

    found = getattr(sys.modules[cls.__module__], annotation.strip(), None)
    if isinstance(found, type) and issubclass(found, enum.Enum):
        return " / ".join(f"`{member.value}`" for member in found)
    return "`" + annotation.replace(" | None", "").replace("|", " or ").strip() + "`" + (" or null" if "| None" in annotation else "")


def _comments(cls: type) -> dict[str, tuple[str, str]]:
    """Per field of ``cls`` (and its bases): its annotation and the comment on its line."""
    found: dict[str, tuple[str, str]] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        for line in inspect.getsource(klass).splitlines():
            m = FIELD.match(line)
            if m:
                found[m.group(1)] = (m.group(2), (m.group(4) or "").strip())
    return found


def config() -> str:
    from harness.config import group_schemas

    lines = [
        "# Configuration",
        "",
        "Every config group and option, with each key's type, default and meaning, generated from the dataclass schemas",
        "(`harness/config/schema.py`, and each loader family's module). Set a key on the command line: `group.key=value`;",
        "pick an option: `group=option`.",
        "",
    ]
    for group, options in group_schemas().items():
        lines += [f"## `{group}`", ""]
        for option, cls in sorted(options.items()):
            if len(options) > 1:
                lines += [f"### `{group}={option}`", ""]
            doc = inspect.getdoc(cls) or ""
            if doc and not doc.startswith(cls.__name__ + "("):
                lines += [doc.splitlines()[0], ""]
            notes = _comments(cls)
            lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
            for f in dataclasses.fields(cls):
                kind, meaning = notes.get(f.name, (str(f.type), ""))
                if f.name == "name" and not meaning:
                    meaning = f"the option, as `{group}=...` picks it"
                lines.append(f"| `{group}.{f.name}` | {_type(kind, cls)} | {_default(f)} | {meaning.replace('|', '/')} |")
            lines.append("")
    return "\n".join(lines)


def metrics() -> str:
    from harness.results.metrics import REGISTRY

    lines = [
        "# Metrics",
        "",
        "Every metric a trial records (`result.json`'s summary, `results.csv`'s columns), from the metric registry",
        "(`harness/results/metrics.py`). *gate*: the default threshold of `check` for the metrics it can gate.",
        "",
        "| metric | unit | better | gate | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m in REGISTRY.values():
        gate = "" if m.gate is None else f"{m.gate[0]:.0%}" if m.gate[1] == "relative" else f"{m.gate[0]:g} points"
        lines.append(f"| `{m.name}` | {m.unit} | {m.better or '–'} | {gate} | {m.meaning.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


PAGES = {
    "reference/commands.md": commands,
    "reference/config.md": config,
    "reference/metrics.md": metrics,
    "reference/exit-codes.md": exit_codes,
}
