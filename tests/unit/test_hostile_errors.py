"""An OSError that the user's disk or permissions caused is one ERROR line; any other stays a traceback."""

import errno
import os

import pytest

from harness import __main__ as cli
from harness.errors import environment_error

ENVIRONMENT = [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM] + ([errno.EDQUOT] if hasattr(errno, "EDQUOT") else [])


@pytest.mark.parametrize("number", ENVIRONMENT)
def test_environment_errors_name_the_file_and_what_to_do(number):
    line = environment_error(OSError(number, os.strerror(number), "/cache/datasets/x"))
    assert line.startswith(f"cannot write /cache/datasets/x: {os.strerror(number)};")
    assert "writable folder" in line and "dataset.cache_dir=" in line and "\n" not in line


def test_environment_error_without_a_filename():
    line = environment_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    assert line.startswith(f"cannot write: {os.strerror(errno.ENOSPC)};")


@pytest.mark.parametrize(
    "exc", [OSError(errno.EIO, "I/O error", "/x"), FileNotFoundError(errno.ENOENT, "gone", "/x"), OSError("no errno"), ValueError("bug")]
)
def test_other_errors_are_not_mapped(exc):
    assert environment_error(exc) is None


def _command_raising(exc):
    def command(args):
        raise exc

    return command


def test_main_prints_one_line_for_a_read_only_disk(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "run", _command_raising(OSError(errno.EROFS, os.strerror(errno.EROFS), "/ro/x")))
    assert cli.main(["run"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [err.strip()] and err.startswith("ERROR: cannot write /ro/x: ")


def test_main_keeps_the_traceback_of_other_os_errors(monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "run", _command_raising(OSError(errno.EIO, "I/O error", "/x")))
    with pytest.raises(OSError, match="I/O error"):
        cli.main(["run"])
