"""One variant's measured figures as the levers read them, and the arithmetic every prediction shares.

Every prediction is a **per-epoch rate**: an epoch of ``n`` samples takes ``n / steady`` seconds of
steady state plus the cost of its restart (the new iterator's first batch beyond a typical
wait), so ``rate = 1 / (1 / steady + restart_s / n)``. It is what a long training run gets per
epoch, and exactly what a verification trial measures: a full epoch of warm-up, then one
measured epoch with its opening restart (:mod:`harness.advice.plan`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from harness.results.bounds import Bounds, steady


def per_epoch(steady_rate: float, restart_s: float, samples: int) -> float:
    """Samples/s over one epoch of ``samples`` at ``steady_rate`` plus one restart of ``restart_s`` seconds."""
    if steady_rate <= 0:
        return 0.0
    if samples <= 0:  # no epoch known: no restart to add
        return steady_rate
    return 1.0 / (1.0 / steady_rate + max(restart_s, 0.0) / samples)


@dataclass
class Subject:
    """A variant's measured figures (medians over its ok repeats) and the settings the levers turn."""

    job: int
    label: str
    overrides: list[str]  # the job's overrides as it ran
    config: dict[str, Any]  # its resolved config
    knobs: dict[str, Any]  # its family's Knobs, as the trial recorded them (result.json: loader.knobs)
    ops: list[str]  # its chain as built
    rate: float  # samples/s in the sweep's trials
    steady: float  # steady-state samples/s: epoch restarts left out
    restart_s: float | None  # its own measured cost per epoch restart, s; None where no restart fell in its trials
    cpu_ms: float | None  # CPU of its process tree per sample, ms
    cpu_pct: float | None  # mean CPU of its process tree, % of one core
    cores: int | None  # usable cores
    step_ms: float  # the accelerator's step: measured compute + copy per batch, ms
    bounds: Bounds | None
    work: Any = None  # its Work (harness.results.ceilings), or None where it decodes nothing the calibration knows
    device: str = "emulated"  # the consumer's device
    augmented: bool = False  # an augment pipeline runs in the loader
    cached: bool = False  # its chain caches decoded images: after the first epoch it neither reads nor decodes
    random_light: bool = False  # random light ops (flip, brightness) run per sample
    notes: list[str] = field(default_factory=list)

    @property
    def loader(self) -> dict[str, Any]:
        return self.config.get("loader", {})

    @property
    def batch(self) -> int:
        return int(self.config.get("batch", {}).get("size") or 1)

    epoch_samples: int = 0  # samples a whole epoch delivered in its trials (0: none completed)

    @property
    def samples_per_epoch(self) -> int:
        """Samples one epoch delivers: as its trials counted them, else the dataset's count in whole batches (drop_last)."""
        return self.epoch_samples

    def knob(self, name: str) -> str | None:
        """The override key of one of the family's knobs (``loader.num_workers``), or None."""
        value = self.knobs.get(name)
        return value if isinstance(value, str) and value else None

    def value(self, key: str) -> Any:
        """The value of a dotted key in the resolved config (``loader.num_workers``)."""
        node: Any = self.config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    @property
    def cpu_ceiling(self) -> float | None:
        c = self.bounds.of("CPU") if self.bounds is not None else None
        return c.samples_per_s if c is not None else None

    @property
    def accelerator(self) -> float | None:
        c = self.bounds.of("accelerator") if self.bounds is not None else None
        return c.samples_per_s if c is not None else None

    def capped(self, rate: float) -> float:
        """``rate`` held under the accelerator's ceiling: no loader feeds faster than the step consumes."""
        acc = self.accelerator
        return min(rate, acc) if acc else rate


def restart_cost(trials: list) -> float | None:
    """The median cost of one epoch restart over ``trials`` (ok repeats), s; None where none had a restart."""
    costs = []
    for t in trials:
        s = t.summary
        count, pct, wall = s.get("epoch_restarts"), s.get("restart_pct"), s.get("wall_s")
        if isinstance(count, (int, float)) and count > 0 and isinstance(pct, (int, float)) and isinstance(wall, (int, float)):
            costs.append(pct / 100.0 * wall / count)
    return statistics.median(costs) if costs else None


def subject(v, cores: int | None) -> Subject | None:
    """The :class:`Subject` of a variant with ok repeats (a :class:`harness.results.sweep.Variant`), or None."""
    from harness.results.ceilings import caches_decoded, work_of

    if not v.ok:
        return None
    t = v.ok[0]
    cached = caches_decoded(t.loader)
    later = [r for r in (after_first_epoch(x) for x in v.ok) if r is not None] if cached else []
    rates = later or [r for r in (steady(x) for x in v.ok) if r is not None]
    m = v.metrics
    compute, copy = m.get("compute_ms") or 0.0, m.get("h2d_ms") or 0.0
    light = t.config.get("loader", {})
    return Subject(
        job=v.job,
        label=v.label,
        overrides=list(t.overrides),
        config=t.config,
        knobs=t.loader.get("family_knobs") or {},
        ops=[str(op) for op in t.loader.get("ops", [])],
        rate=v.samples_per_s,
        steady=statistics.median(rates) if rates else v.samples_per_s,
        restart_s=restart_cost(v.ok),
        cpu_ms=m.get("cpu_s_per_1000_samples"),
        cpu_pct=m.get("cpu_tree_mean_pct"),
        cores=cores,
        step_ms=compute + copy,
        bounds=v.bounds,
        work=work_of(t.config, t.loader, t.dataset, t.augment),
        device=str(t.consumer.get("device", "emulated")),
        augmented=bool(t.augment and t.augment.get("ops")),
        cached=cached,
        random_light=bool(light.get("random_flip")) or light.get("random_brightness") is not None,
        epoch_samples=_epoch_samples(v.ok) or _whole_batches(t.dataset.get("count"), int(t.config.get("batch", {}).get("size") or 1)),
    )


def _whole_batches(count, batch: int) -> int:
    """A dataset's samples in whole batches (drop_last, the loaders' default); 0 where the count is unknown."""
    return (int(count) // batch) * batch if isinstance(count, int) and count >= batch else 0


MIN_LATER_STEPS = 8  # steps after the first epoch that make a steady state of their own


def after_first_epoch(trial) -> float | None:
    """A repeat's samples/s over the epochs after its first, each epoch's opening step left out; None with too few steps.

    What a chain that caches decoded images runs at once its cache is full: its trial's own steady
    state mixes in the first epoch, which decodes everything.
    """
    st = trial.steps
    epoch, step, samples = st.get("epoch") or [], st.get("step_ms") or [], st.get("samples") or []
    if not epoch or len(step) != len(epoch) or len(samples) != len(epoch):
        return None
    first = min(epoch)
    keep = [i for i in range(1, len(epoch)) if epoch[i] > first and epoch[i] == epoch[i - 1]]
    span = sum(step[i] for i in keep) / 1000.0
    return sum(samples[i] for i in keep) / span if len(keep) >= MIN_LATER_STEPS and span > 0 else None


def _epoch_samples(trials: list) -> int:
    """The samples of a completed epoch, as the trials counted them (a loader's epoch need not be the dataset's count)."""
    counts = [int(n) for t in trials for e, n in (t.epochs.get("samples") or {}).items() if int(e) in (t.epochs.get("completed") or [])]
    return max(counts, default=0)
