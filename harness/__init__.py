"""harness: which way of feeding a model is fastest on your data and machine, and why.

The command line is ``python -m harness`` (see ``--help``). From Python, :func:`measure`
times one pipeline and :func:`sweep` runs a sweep (:mod:`harness.api`); they are imported
on first use, so ``import harness`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Measurement", "measure", "sweep"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from harness import api

        return getattr(api, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
