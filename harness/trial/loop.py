"""The measured trial loop: warm-up, time to first batch, then a bounded measured phase.

Each step is timed as ``wait`` (blocked in the loader's ``next``), then the consumer's
own ``h2d`` and ``compute``. The loop is pure apart from the clock it is given, so its
bookkeeping is tested with a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass, field
from typing import TypeVar

from harness.errors import HarnessError


@dataclass
class Steps:
    """Per-step arrays of the measured phase, all the same length."""

    t_ms: list[float] = field(default_factory=list)  # step start, ms since the measured phase began
    wait_ms: list[float] = field(default_factory=list)  # blocked on the loader
    h2d_ms: list[float] = field(default_factory=list)  # host-to-device copy (or its stand-in)
    compute_ms: list[float] = field(default_factory=list)  # accelerator compute
    step_ms: list[float] = field(default_factory=list)  # whole step, wait to end of compute
    samples: list[int] = field(default_factory=list)  # samples in the batch
    epoch: list[int] = field(default_factory=list)  # epoch the batch belongs to
    sync_ms: list[float] = field(default_factory=list)  # data-parallel ranks only: at the step's all-reduce, waiting for peers

    def __len__(self) -> int:
        return len(self.step_ms)


@dataclass
class LoopResult:
    steps: Steps
    ttfb_s: float  # loop start to first batch in hand
    warmup_steps: int  # steps consumed before measuring
    wall_s: float  # measured phase: first measured step's start to last step's end
    epochs_started: int  # epochs entered, warm-up included
    stopped_by: str  # steps | seconds | epochs
    epoch_samples: dict[int, int] = field(default_factory=dict)  # samples delivered per epoch, warm-up included
    completed: list[int] = field(default_factory=list)  # epochs the loader ran to their end
    measure_start: float | None = None  # clock() at the first measured step's start (aligns monitor samples)


B = TypeVar("B", bound=Sized)  # a batch: len() is its number of samples
Stream = Iterator[tuple[int, B | None]]  # (epoch, batch), and (epoch, None) once an epoch has ended


def epoch_stream(epoch_iter: Callable[[int], Iterator[B]]) -> Stream[B]:
    """``trial.epoch_mode=restart``: a fresh iterator per epoch, as Keras ``fit`` and a PyTorch epoch loop run one."""
    epoch = 0
    while True:
        delivered = 0
        for batch in epoch_iter(epoch):
            delivered += 1
            yield epoch, batch
        if delivered == 0:
            raise HarnessError(f"the loader yielded no batch in epoch {epoch}; is the dataset smaller than one batch?")
        yield epoch, None
        epoch += 1


def run_loop(
    source: Callable[[int], Iterator[B]] | Stream[B],
    consume: Callable[[B, Callable[[], None] | None], tuple[float, float]],
    bound: dict[str, float],
    warmup_steps: int,
    *,
    clock: Callable[[], float] = time.perf_counter,
    on_batch: Callable[[int, B], None] | None = None,
    during_compute: Callable[[int, B], None] | None = None,
    on_measure: Callable[[], None] | None = None,
    agree: Callable[[bool], bool] | None = None,
) -> LoopResult:
    """Drive the loader into the consumer until the first bound is reached.

    Args:
        source: ``epoch_iter(i)``, returning an iterator over epoch ``i``'s batches (a
            fresh iterator per epoch), or a :data:`Stream` of ``(epoch, batch)`` with
            ``(epoch, None)`` at each epoch's end (one iterator across epochs).
        consume: takes a batch and a callable to run while the device computes,
            returns ``(h2d_ms, compute_ms)``.
        bound: any of ``steps``, ``seconds``, ``epochs``; the first reached ends the phase.
        warmup_steps: steps consumed first and left out of ``steps``.
        clock: seconds, monotonic.
        on_batch: called with ``(epoch, batch)`` for every batch before it is consumed,
            warm-up included (contract checks).
        during_compute: called with ``(epoch, batch)`` while the device computes that batch
            (bookkeeping that a real training loop would overlap with the GPU).
        on_measure: called once, after the last warm-up step, when the measured phase begins.
        agree: data-parallel ranks: called at the end of every step (warm-up included) with
            whether this rank would stop now; it is the step's all-reduce, so it returns
            once every rank has called it, with whether any would stop. Ranks stop together
            (a rank that left alone would leave its peers waiting at the next collective),
            and the time spent in it (waiting for the slowest rank) is recorded as ``sync_ms``.
    """
    stream = epoch_stream(source) if callable(source) else source
    steps = Steps()
    epoch_samples: dict[int, int] = {}
    completed: list[int] = []
    begin = clock()
    # Each step is timed from the end of the previous one, so time spent between
    # batches (an epoch ending, a new iterator starting its workers) counts as waiting
    # on the loader, which is what the accelerator does meanwhile.
    ttfb, measure_start, warm, epoch, last_end = None, None, 0, 0, begin
    stopped_by = None
    if warmup_steps == 0 and on_measure is not None:
        on_measure()
    for epoch, batch in stream:
        if batch is None:
            completed.append(epoch)
            stopped_by = _reached(bound, None, None, epoch + 1)
            if stopped_by:
                break
            continue
        t0, t1 = last_end, clock()
        ttfb = t1 - begin if ttfb is None else ttfb
        n = len(batch)
        epoch_samples[epoch] = epoch_samples.get(epoch, 0) + n
        if on_batch is not None:
            on_batch(epoch, batch)
        during = None if during_compute is None else (lambda e=epoch, b=batch: during_compute(e, b))
        h2d, compute = consume(batch, during)
        mine, peers = None, False
        if agree is not None:
            measuring = warm >= warmup_steps
            start = t0 if measure_start is None else measure_start
            mine = _reached(bound, len(steps) + 1, clock() - start, None) if measuring else None
            t_sync = clock()
            peers = agree(mine is not None)
            synced = (clock() - t_sync) * 1e3
        last_end = t2 = clock()
        if warm < warmup_steps:
            warm += 1
            if warm == warmup_steps and on_measure is not None:
                on_measure()
            continue
        measure_start = t0 if measure_start is None else measure_start
        _record(steps, t0 - measure_start, t0, t1, t2, h2d, compute, n, epoch)
        if agree is not None:
            steps.sync_ms.append(synced)
            stopped_by = mine or ("peer" if peers else None)
        else:
            stopped_by = _reached(bound, len(steps), t2 - measure_start, None)
        if stopped_by:
            break
    wall = (steps.t_ms[-1] + steps.step_ms[-1]) / 1e3 if len(steps) else 0.0
    return LoopResult(steps, ttfb or 0.0, warm, wall, epoch + 1, stopped_by or "exhausted", epoch_samples, completed, measure_start)


def _record(steps: Steps, rel: float, t0, t1, t2, h2d, compute, n, epoch) -> None:
    steps.t_ms.append(rel * 1e3)
    steps.wait_ms.append((t1 - t0) * 1e3)
    steps.h2d_ms.append(h2d)
    steps.compute_ms.append(compute)
    steps.step_ms.append((t2 - t0) * 1e3)
    steps.samples.append(n)
    steps.epoch.append(epoch)


def _reached(bound: dict[str, float], n_steps, elapsed_s, epochs_done) -> str | None:
    if n_steps is not None and "steps" in bound and n_steps >= bound["steps"]:
        return "steps"
    if elapsed_s is not None and "seconds" in bound and elapsed_s >= bound["seconds"]:
        return "seconds"
    if epochs_done is not None and "epochs" in bound and epochs_done >= bound["epochs"]:
        return "epochs"
    return None
