"""Summary metrics of a trial, from its per-step arrays. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def summarize(steps, wall_s: float, ttfb_s: float) -> dict[str, float]:
    """The headline metrics.

    ``stall_pct`` is time blocked on the loader as a share of wall time; ``au_pct`` is
    accelerator utilization, compute time as a share of wall time (MLPerf Storage's AU);
    ``bookkeeping_pct`` is wall time spent in none of wait / h2d / compute: the
    harness's own per-step cost.
    """
    n = len(steps.step_ms)
    wall = max(wall_s, 1e-12)
    samples = int(np.sum(steps.samples)) if n else 0
    wait = float(np.sum(steps.wait_ms)) / 1e3
    h2d = float(np.sum(steps.h2d_ms)) / 1e3
    compute = float(np.sum(steps.compute_ms)) / 1e3
    return {
        "steps": n,
        "samples": samples,
        "wall_s": wall_s,
        "samples_per_s": samples / wall if n else 0.0,
        "batches_per_s": n / wall if n else 0.0,
        "stall_pct": 100.0 * wait / wall,
        "au_pct": 100.0 * compute / wall,
        "h2d_pct": 100.0 * h2d / wall,
        "bookkeeping_pct": 100.0 * max(wall_s - wait - h2d - compute, 0.0) / wall,
        "ttfb_s": ttfb_s,
        "step_ms_p50": percentile(steps.step_ms, 50),
        "step_ms_p95": percentile(steps.step_ms, 95),
        "wait_ms_p50": percentile(steps.wait_ms, 50),
        "wait_ms_p95": percentile(steps.wait_ms, 95),
        "h2d_ms_p50": percentile(steps.h2d_ms, 50),
        "compute_ms_p50": percentile(steps.compute_ms, 50),
        **restart_summary(steps, wall_s),
    }


def boundaries(epoch: Sequence[int]) -> list[int]:
    """Indices of the measured steps that open a new epoch (the first batch of its iterator)."""
    return [i for i in range(1, len(epoch)) if epoch[i] != epoch[i - 1]]


def restart_summary(steps, wall_s: float) -> dict[str, float]:
    """Steady state apart from the cost of each new epoch.

    A step that opens an epoch waits for the new iterator (workers, buffers, a cache
    being read from the start); what it waits beyond the median wait of the other steps
    is the restart's cost. ``steady_samples_per_s`` is the throughput with that cost
    taken out: what an endless epoch, or a dataset many times larger, would give.
    """
    first = boundaries(steps.epoch)
    opening = set(first)
    typical = percentile([w for i, w in enumerate(steps.wait_ms) if i not in opening], 50) if len(steps.wait_ms) > len(first) else 0.0
    cost_s = sum(max(steps.wait_ms[i] - typical, 0.0) for i in first) / 1e3
    samples = float(np.sum(steps.samples)) if len(steps.samples) else 0.0
    steady_wall = wall_s - cost_s
    return {
        "epoch_restarts": len(first),
        "epoch_restart_ms_p50": percentile([steps.wait_ms[i] for i in first], 50),
        "restart_pct": 100.0 * cost_s / wall_s if wall_s > 0 else 0.0,
        "steady_samples_per_s": samples / steady_wall if steady_wall > 0 else 0.0,
    }


def windows(t_ms: Sequence[float], step_ms: Sequence[float], window_s: float = 0.5) -> list[tuple[int, int, float]]:
    """Consecutive windows of at least ``window_s`` of wall time over the step timeline.

    Returns:
        (first step, last step, span in ms) per window; a timeline shorter than one window
        is one window over all of it.
    """
    out, start_i, start_t = [], 0, (float(t_ms[0]) if len(t_ms) else 0.0)
    for i in range(len(t_ms)):
        end = float(t_ms[i]) + float(step_ms[i])
        if (end - start_t) / 1e3 >= window_s:
            out.append((start_i, i, end - start_t))
            start_i, start_t = i + 1, end
    if len(t_ms) and not out:
        out.append((0, len(t_ms) - 1, float(t_ms[-1]) + float(step_ms[-1]) - float(t_ms[0])))
    return out


def window_throughput(t_ms: Sequence[float], step_ms: Sequence[float], samples: Sequence[int], window_s: float = 0.5) -> list[float]:
    """Samples/s in consecutive windows of about ``window_s`` of wall time.

    These per-window figures are the samples a significance test compares; a trial
    shorter than two windows gives one figure.
    """
    return [float(sum(samples[a : b + 1]) / (span / 1e3)) if span > 0 else 0.0 for a, b, span in windows(t_ms, step_ms, window_s)]


# Fewer measured steps than this cannot be judged: one slow step (a GC pause, an epoch's
# first batch) moves the throughput of 4 steps by 25% or more, p95 is simply the slowest
# step, and no 0.5 s window is left for a significance test. A trial that asks for fewer
# steps itself (``trial.steps=3``, a smoke test) gets what it asked for.
MIN_MEASURED_STEPS = 5

_ADVICE = {
    "epochs": "raise trial.epochs or the dataset's size (dataset.count; loader.batches_per_epoch for loader=synthetic), "
    "or lower trial.warmup_steps",
    "seconds": "raise trial.seconds, or lower trial.warmup_steps",
    "steps": "raise trial.steps",
    "exhausted": "the loader ran out of batches: enlarge the dataset or lower trial.warmup_steps",
}


def too_short(measured: int, warmup: int, delivered: tuple[int, int], asked: dict[str, float], stopped_by: str) -> str | None:
    """Why a trial measured too little to be reported as a speed, or ``None`` when it measured enough.

    Args:
        measured: steps in the measured phase.
        warmup: warm-up steps consumed (fewer than asked when the loader ran dry first).
        delivered: (batches, samples) the loader delivered in all, warm-up included.
        asked: the trial's bounds (``steps``, ``seconds``, ``epochs``).
        stopped_by: the bound that ended the trial, or ``exhausted``.
    """
    need = max(1, min(MIN_MEASURED_STEPS, asked.get("steps", MIN_MEASURED_STEPS)))
    if measured >= need:
        return None
    cause = f"trial.{stopped_by}={asked[stopped_by]:g}" if stopped_by in asked else "the loader's end"
    batches, samples = delivered
    ate = "ate everything" if measured == 0 else "left too little"
    return (
        f"{cause} delivered {batches} batches ({samples} samples): warm-up ({warmup} steps) {ate}; measured {measured} "
        f"steps, fewer than the {need} a speed needs; {_ADVICE.get(stopped_by, _ADVICE['exhausted'])}"
    )
