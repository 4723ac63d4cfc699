"""Text helpers the report's sections share: Markdown escaping and number formats."""

from __future__ import annotations

import re

# HTML entities for what could open a tag or split a table cell; a backslash for what Markdown would format
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "&#124;"}
_MD_SPECIAL = re.compile(r"[&<>|\\`*\[\]]")


def md(text) -> str:
    """``text`` as literal Markdown: labels, overrides and error messages come from users and must not render.

    ``<img src=x onerror=...>`` stays text, a ``|`` does not split a table cell, backticks,
    asterisks and brackets do not format or link; a line break becomes a space.
    """
    flat = " ".join(str(text).split())
    return _MD_SPECIAL.sub(lambda m: _MD_ENTITIES.get(m.group(), "\\" + m.group()), flat)


def fmt(value, digits: int = 1, suffix: str = "") -> str:
    """A figure that is no metric of the registry (CV, speed-up, p): ``digits`` decimals; "–" for no value."""
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{suffix}"


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."
