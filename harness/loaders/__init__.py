"""Loader families behind one interface; see :mod:`harness.loaders.base`."""

from harness.loaders.base import (
    Batch,
    Loader,
    LoaderConf,
    Needs,
    discover,
    get_loader,
    list_loaders,
    loader_schemas,
    register_loader,
)

__all__ = ["Batch", "Loader", "LoaderConf", "Needs", "discover", "get_loader", "list_loaders", "loader_schemas", "register_loader"]
