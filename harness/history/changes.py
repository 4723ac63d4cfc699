"""Change points in one metric's history: where its level stepped, at which commit, by how much.

The segmentation is ruptures' PELT (a maintained library: Truong, Oudre & Vayatis, "Selective
review of offline change point detection methods", 2020) on the series divided by its median,
with a squared-error cost. Its penalty grows with the series' own noise, estimated from
successive differences (robust to the steps themselves), so a history whose runs scatter by
2% needs a larger step to show a change than one that scatters by 0.5%. MongoDB's E-Divisive
(signal-processing-algorithms) and Apache Otava were the first candidates: both pin NumPy
below the 2.x that TensorFlow 2.21 needs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

PENALTY = 8.0  # x noise variance x ln(n): about BIC's 2 ln(n) with margin; no change found in 300 step-free histories
MIN_SEGMENT = 3  # commits on each side of a change: one odd run is noise, not a level


@dataclass(frozen=True)
class Change:
    """A step in the level of a series, at ``index`` (the first point of the new level)."""

    index: int
    before: float  # median of the segment before
    after: float  # median of the segment from index on

    @property
    def step(self) -> float:
        """The relative size of the step: +0.08 for 8% higher."""
        return self.after / self.before - 1 if self.before else math.inf


def noise(values: Sequence[float]) -> float:
    """The series' point-to-point scatter as a standard deviation, from the median absolute successive difference.

    A difference of two points on one level has twice the variance of one point; a step
    between levels is one difference among many and barely moves the median.
    """
    if len(values) < 3:
        return 0.0
    diffs = [b - a for a, b in zip(values, values[1:])]
    center = statistics.median(diffs)
    return 1.4826 * statistics.median(abs(d - center) for d in diffs) / math.sqrt(2)


def change_points(values: Sequence[float], *, min_segment: int = MIN_SEGMENT, penalty: float = PENALTY) -> list[Change]:
    """The steps in ``values`` (oldest first), each with the medians on either side.

    Args:
        values: one metric of one variant, a point per commit (a run's median), all positive.
        min_segment: the fewest points a level may have.
        penalty: the cost of one more change, in units of the noise variance x ln(len(values)).
    """
    import numpy as np
    import ruptures

    if len(values) < 2 * min_segment:
        return []
    scale = statistics.median(values)
    x = np.asarray(values, dtype=float) / scale
    sigma = noise(list(x))
    if sigma == 0.0:  # identical runs: any difference is a step
        sigma = 1e-6
    ends = ruptures.Pelt(model="l2", min_size=min_segment, jump=1).fit(x.reshape(-1, 1)).predict(pen=penalty * sigma**2 * math.log(len(x)))
    bounds = [0, *ends]
    out = []
    for start, at, end in zip(bounds, bounds[1:], bounds[2:]):
        out.append(Change(at, statistics.median(values[start:at]), statistics.median(values[at:end])))
    return out


def newest(values: Sequence[float], *, min_segment: int = MIN_SEGMENT, penalty: float = PENALTY) -> Change | None:
    """A change that the newest point makes visible, or None: what a gate that keeps a history asks after each run.

    Either the newest point alone stands off its level (the same search with levels of one
    point, so only a step of several noise deviations counts at once), or a change of
    ``min_segment`` points has just become visible, naming the commit that started it.
    A change found once is not found again by later runs: its level has grown past ``min_segment``.
    """
    if len(values) < min_segment + 1:
        return None
    alone = [c for c in change_points(values, min_segment=1, penalty=penalty) if c.index == len(values) - 1]
    if alone:
        return Change(alone[0].index, alone[0].before, values[-1])
    seen = [c for c in change_points(values, min_segment=min_segment, penalty=penalty) if c.index == len(values) - min_segment]
    return seen[0] if seen else None
