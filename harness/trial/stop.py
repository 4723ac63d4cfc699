"""SIGTERM and SIGINT during a run or sweep: stop the running trial with its workers, keep what finished.

SLURM, CI runners and ``timeout`` send SIGTERM; a terminal sends SIGINT. Python's default
for SIGTERM ends the parent at once, and the trial (in a session of its own, so that a
terminal's Ctrl-C reaches it only through the parent) would keep running with its
workers. Under :func:`stopping_on_signals` a signal instead:

* while a trial runs, only marks the stop: :func:`harness.trial.spawn.run_trial` sees the
  mark, kills the trial's process group and records the trial as ``interrupted``. A
  second signal then changes nothing, so the kill is never cut short (no orphans);
* anywhere else (composing jobs, building a dataset, between trials, writing the
  report) raises :class:`Interrupted`, which the sweep catches to write what finished.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):
    """A stop asked for by a signal. A BaseException, as KeyboardInterrupt is, so ``except Exception`` lets it by."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class _State:
    signum: int | None = None  # the first signal received; the exit status is 128 + it
    in_trial: bool = False  # a trial process is running: the signal only marks the stop


_STATE = _State()


def requested() -> int | None:
    """The signal that asked the sweep to stop, or ``None``."""
    return _STATE.signum


def check() -> None:
    """Raise :class:`Interrupted` if a signal asked to stop: called before starting anything new."""
    if _STATE.signum is not None:
        raise Interrupted(_STATE.signum)


def exit_status(signum: int) -> int:
    """What a shell reports for a process ended by ``signum`` (143 for SIGTERM, 130 for SIGINT)."""
    return 128 + signum


def _handler(signum: int, frame) -> None:
    if _STATE.signum is None:
        _STATE.signum = signum
    if not _STATE.in_trial:
        raise Interrupted(_STATE.signum)


@contextmanager
def stopping_on_signals() -> Iterator[None]:
    """Install the handlers for a run or sweep; restore the previous ones afterwards."""
    previous = {sig: signal.signal(sig, _handler) for sig in SIGNALS}
    _STATE.signum, _STATE.in_trial = None, False
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def trial_running() -> Iterator[None]:
    """While a trial process lives, signals only mark the stop; the caller polls :func:`requested` and kills it."""
    _STATE.in_trial = True
    try:
        yield
    finally:
        _STATE.in_trial = False
