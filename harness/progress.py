"""Progress bars on a terminal: dataset builds (files/s, ETA) and sweeps (trial i/N, variant, ETA).

A bar is drawn only when stderr is a terminal, ``--quiet`` was not given (:func:`quiet`)
and ``HARNESS_PROGRESS`` is not ``0``; ``HARNESS_PROGRESS=1`` draws it on any stderr (tests,
terminals that do not say they are one). Otherwise :func:`counted` and :func:`sweep` hand
out bars that draw nothing, so a log keeps exactly its one line per trial.

Bars go to stderr, never stdout: scripts read stdout (its last line is the result folder).
When stdout is the same terminal, lines printed while a bar shows are written above it.
A bar lives in the parent process; a trial runs in a child process that never draws one,
and rich's refresh thread in the parent wakes :data:`REFRESH_PER_SECOND` times a second.
Any error while drawing turns the bar off: a bar never fails the build or sweep it shows.
rich is imported only once a bar is drawn. Import this module as ``import harness.progress as
progress``: ``from harness import progress`` also names the package's ``__init__`` (the public API,
above everything) as a dependency of the importer.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

ENV = "HARNESS_PROGRESS"  # 0: never draw a bar; 1: draw it even when stderr is not a terminal
# Redraws a second of rich's refresh thread, in the parent while a trial runs in its child: enough for
# a ticking ETA. Measured once by hand on 2 loaded cores: 0.7 ms of CPU a redraw, 3 ms a second (0.3% of
# one core) for a sweep bar. tests/unit/test_progress.py keeps the rate at 4 or less.
REFRESH_PER_SECOND = 2
TRACK_S = 0.1  # a counted bar moves at most this often, s (a pool's results arrive a chunk at a time)
VARIANT_WIDTH = 60  # characters of the running variant's overrides a sweep bar shows; the rest is cut

T = TypeVar("T")


@dataclass
class _State:
    quiet: bool = False  # --quiet: no bar, whatever the terminal


_STATE = _State()


@contextlib.contextmanager
def quiet(on: bool = True) -> Iterator[None]:
    """No bar inside this block when ``on`` (``--quiet``)."""
    before, _STATE.quiet = _STATE.quiet, on
    try:
        yield
    finally:
        _STATE.quiet = before


def interactive() -> bool:
    """Whether bars are drawn now: see the module's docstring."""
    setting = os.environ.get(ENV, "").strip()
    if _STATE.quiet or setting == "0":
        return False
    if setting == "1":
        return True
    try:
        return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # stderr replaced by an object without isatty, or closed
        return False


class _Drawn:
    """A started rich Progress that turns itself off at its first error instead of raising."""

    def __init__(self, progress: Any) -> None:
        self.progress: Any = progress

    def call(self, method: str, *args: Any, **kwargs: Any) -> None:
        progress = self.progress
        if progress is None:
            return
        if progress.failed:  # drawing failed in the refresh thread
            self.close()
            return
        try:
            getattr(progress, method)(*args, **kwargs)
        except Exception:  # a bar must never fail what it shows
            self.close()

    def close(self) -> None:
        progress, self.progress = self.progress, None
        if progress is not None:
            with contextlib.suppress(Exception):
                progress.stop()


class Counter:
    """The bar of a counted job (images written, files scanned, records written)."""

    def __init__(self, drawn: _Drawn | None = None, task: Any = None) -> None:
        self._drawn, self._task = drawn, task

    def advance(self, n: int = 1) -> None:
        if self._drawn is not None:
            self._drawn.call("advance", self._task, n)

    def update(self, completed: int, total: int | None = None) -> None:
        if self._drawn is not None:
            self._drawn.call("update", self._task, completed=completed, total=total)

    def track(self, items: Iterable[T]) -> Iterator[T]:
        """Each item of ``items``, advancing the bar as they go.

        A process pool hands results over a chunk at a time; counted one by one, a chunk would
        arrive in microseconds and rich's rate would read hundreds of thousands of files/s. The
        bar moves at most every :data:`TRACK_S` instead, so its rate spans real time.
        """
        pending, last = 0, time.monotonic()
        for item in items:
            yield item
            pending += 1
            now = time.monotonic()
            if now - last >= TRACK_S:
                self.advance(pending)
                pending, last = 0, now
        if pending:
            self.advance(pending)


@contextlib.contextmanager
def counted(what: str, total: int | None, unit: str = "files", *, console: Any = None) -> Iterator[Counter]:
    """A bar for ``total`` items: count, files/s and ETA (rich's estimate over the last 30 s).

    Args:
        what: the bar's description (``writing images``).
        total: how many items the job has (``None``: not known yet, see :meth:`Counter.update`).
        unit: what an item is, in the rate (``files/s``).
        console: a rich Console to draw on instead of stderr (tests); drawn whatever the terminal.
    """
    with _drawing(lambda: _count_columns(unit), console, transient=False) as drawn:
        if drawn is None:
            yield Counter()
            return
        task = None
        with contextlib.suppress(Exception):
            task = drawn.progress.add_task(what, total=total)
        yield Counter(drawn if task is not None else None, task)


def eta_s(durations: Sequence[float], total: int, running_s: float | None = None) -> float | None:
    """Seconds left in a sweep: the mean duration of the finished trials times the trials not finished,
    less the time the running trial has had (up to one mean); ``None`` before any trial finished."""
    if not durations:
        return None
    mean = sum(durations) / len(durations)
    left = max(0, total - len(durations))
    return max(0.0, mean * left - min(running_s or 0.0, mean))


class Sweep:
    """A sweep's bar: ``with bar.trial(overrides, round_, rounds):`` around each trial."""

    def __init__(self, total: int, variants: Sequence[Sequence[str]], clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.clock = clock  # s
        self.durations: list[float] = []  # of the finished trials, s
        self.running_since: float | None = None  # clock() at the running trial's start
        self._common = set.intersection(*(set(v) for v in variants)) if variants else set()
        self._drawn: _Drawn | None = None
        self._task: Any = None

    @contextlib.contextmanager
    def trial(self, overrides: Sequence[str], round_: int = 0, rounds: int = 1) -> Iterator[None]:
        """Show the trial as running; count it as finished when the block ends without an exception.

        Args:
            overrides: the trial's job's overrides.
            round_: its round, from 0; ``rounds`` and above: the augbench that ends a sweep.
            rounds: how many rounds the sweep has.
        """
        self.running_since = self.clock()
        note = "augbench" if round_ >= rounds else f"round {round_ + 1}/{rounds}" if rounds > 1 else ""
        self._show(self.label(overrides, note))
        yield
        self.durations.append(self.clock() - self.running_since)
        self.running_since = None
        if self._drawn is not None:
            self._drawn.call("update", self._task, completed=len(self.durations))

    def label(self, overrides: Sequence[str], note: str = "") -> str:
        """``trial i/N``, the overrides that set this variant apart from the others, and the note."""
        variant = " ".join(o for o in overrides if o not in self._common)
        if len(variant) > VARIANT_WIDTH:
            variant = variant[: VARIANT_WIDTH - 3] + "..."
        return " ".join(part for part in (f"trial {len(self.durations) + 1}/{self.total}", variant, f"({note})" if note else "") if part)

    def eta_line(self) -> str:
        running = None if self.running_since is None else self.clock() - self.running_since
        left = eta_s(self.durations, self.total, running)
        return "ETA -:--" if left is None else f"ETA {hms(left)}"  # -:-- until a trial has finished

    def _show(self, label: str) -> None:
        if self._drawn is not None:  # drawn now, not when the refresh thread next wakes: a trial starts
            self._drawn.call("update", self._task, description=label, refresh=True)


@contextlib.contextmanager
def sweep(
    total: int, variants: Sequence[Sequence[str]], *, console: Any = None, clock: Callable[[], float] = time.monotonic
) -> Iterator[Sweep]:
    """A bar over a sweep's ``total`` trials; nothing is drawn for a single trial.

    Args:
        total: trials the sweep runs.
        variants: every job's overrides; the bar shows those that differ between jobs.
        console: a rich Console to draw on instead of stderr (tests); drawn whatever the terminal.
        clock: seconds, for the trials' durations (tests pass a fake one).
    """
    bar = Sweep(total, variants, clock)
    if total < 2:
        yield bar
        return
    with _drawing(lambda: _sweep_columns(bar), console, transient=True) as drawn:
        with contextlib.suppress(Exception):
            if drawn is not None:
                bar._drawn, bar._task = drawn, drawn.progress.add_task(f"trial 1/{total}", total=total)
        yield bar


def hms(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# -- drawing with rich ---------------------------------------------------------------------------
@contextlib.contextmanager
def _drawing(columns: Any, console: Any, *, transient: bool) -> Iterator[_Drawn | None]:
    """A started rich Progress (``None`` when no bar is drawn or it could not start), stopped at the end."""
    if _STATE.quiet or (console is None and not interactive()):
        yield None
        return
    streams = contextlib.ExitStack()
    try:
        drawn: _Drawn | None = _Drawn(_start(columns(), console, streams, transient))
    except Exception:
        streams.close()
        drawn = None
    with streams:  # sys.stdout and sys.stderr back as they were, after the bar stopped
        try:
            yield drawn
        finally:
            if drawn is not None:
                drawn.close()


def _start(columns: list, console: Any, streams: contextlib.ExitStack, transient: bool) -> Any:
    """Start a Progress on ``console``, or on stderr with what is printed meanwhile written above the bar."""
    from rich.console import Console
    from rich.file_proxy import FileProxy

    if console is None:
        forced = os.environ.get(ENV, "").strip() == "1"
        # soft_wrap: a printed line longer than the terminal is wrapped by the terminal, not cut by newlines
        console = Console(file=sys.stderr, force_terminal=True if forced else None, soft_wrap=True)
        # rich writes a printed line above the bar; stdout only when it is this terminal, else it stays stdout's
        if _same_terminal(sys.stdout, sys.stderr):
            streams.enter_context(contextlib.redirect_stdout(FileProxy(console, sys.stdout)))
        streams.enter_context(contextlib.redirect_stderr(FileProxy(console, sys.stderr)))
    progress = _progress_type()(
        *columns, console=console, transient=transient, refresh_per_second=REFRESH_PER_SECOND, redirect_stdout=False, redirect_stderr=False
    )
    progress.start()
    return progress


def _same_terminal(a: Any, b: Any) -> bool:
    try:
        return bool(a.isatty()) and os.path.samestat(os.fstat(a.fileno()), os.fstat(b.fileno()))
    except (AttributeError, OSError, ValueError):
        return False


def _progress_type() -> type:
    """rich's Progress, drawing nothing (and marking itself failed) where a column raises."""
    from rich.progress import Progress

    class SafeProgress(Progress):
        failed = False  # a column raised, maybe in the refresh thread: the next call stops the bar

        def get_renderable(self):
            try:
                return super().get_renderable()
            except Exception:
                self.failed = True
                return ""

    return SafeProgress


def _description():
    """The description's column: cut with an ellipsis on a narrow terminal, so the bar stays one line."""
    from rich.progress import TextColumn
    from rich.table import Column

    return TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis", min_width=12))


def _count_columns(unit: str) -> list:
    from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} {unit}/s" if speed else f"- {unit}/s")

    return [_description(), BarColumn(), MofNCompleteColumn(), Rate(), TextColumn("ETA"), TimeRemainingColumn()]


def _sweep_columns(bar: Sweep) -> list:
    from rich.progress import BarColumn, ProgressColumn
    from rich.text import Text

    class Eta(ProgressColumn):
        def render(self, task):
            return Text(bar.eta_line(), no_wrap=True)

    return [_description(), BarColumn(bar_width=20), Eta()]
