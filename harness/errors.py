"""User-facing errors.

A :class:`HarnessError` carries text meant for the person at the terminal: what was
wrong and what to do about it. ``__main__`` prints it as one ``ERROR:`` line and exits
non-zero. So does an OSError that the user's disk or permissions caused
(:func:`environment_error`). Anything else that escapes is a bug and keeps its traceback.
"""

import errno
import os

# OSError numbers that describe the user's disk or permissions, not a bug in the harness.
# EDQUOT does not exist on every platform.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, getattr(errno, "EDQUOT", errno.ENOSPC)}


class HarnessError(Exception):
    """A problem the user can fix: bad input, a missing extra, a missing file."""


class ConfigError(HarnessError):
    """A configuration value that the schema accepts by type but not by meaning."""


class MissingExtraError(HarnessError):
    """A framework that a component needs is not installed."""

    def __init__(self, what: str, module: str, extra: str):
        super().__init__(
            f"{what} needs the Python package '{module}', which is not installed: "
            f"pip install -e '.[{extra}]' (or 'make setup', which installs every extra)"
        )
        self.extra = extra


def require(module: str, *, what: str, extra: str):
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra to install.

    Args:
        module: importable module name, e.g. ``"tensorflow"``.
        what: the component that needs it, for the message (``"loader=tf_data"``).
        extra: the pyproject extra that provides it (``"tf"``).

    Returns:
        The imported module.
    """
    from harness.frameworks import import_module

    try:
        return import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == module.split(".")[0]:
            raise MissingExtraError(what, module, extra) from exc
        raise


def environment_error(exc: BaseException) -> str | None:
    """The one line for an OSError the user's environment caused (disk full, read-only, no permission).

    Args:
        exc: any exception that reached ``__main__``.

    Returns:
        The message without ``ERROR:``, or ``None`` when ``exc`` is anything else,
        which stays a bug with its traceback.
    """
    if not isinstance(exc, OSError) or exc.errno is None or exc.errno not in ENVIRONMENT_ERRNOS:
        return None
    where = f" {exc.filename}" if exc.filename is not None else ""
    reason = exc.strerror or os.strerror(exc.errno)
    return (
        f"cannot write{where}: {reason}; free space / choose a writable folder "
        "(dataset.cache_dir=..., hydra.sweep.dir=... or hydra.run.dir=...)"
    )
