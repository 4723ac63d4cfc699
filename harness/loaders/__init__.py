"""Loader families behind one interface; see :mod:`harness.loaders.base`."""

from harness.loaders.base import (
    Batch,
    Loader,
    Needs,
    get_loader,
    list_loaders,
    register_loader,
)

__all__ = ["Batch", "Loader", "Needs", "get_loader", "list_loaders", "register_loader"]
