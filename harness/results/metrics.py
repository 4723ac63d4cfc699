"""Every metric a trial records, said once: name, unit, which way is better, what it means.

The results table takes its columns from here, the report the figures it aggregates per
variant and its ranking columns' headers and number formats, and ``check`` the metrics it
can gate with their default thresholds, so a new metric is one entry here (cf. pyperf's
metadata table, which carries a formatter beside each name).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str  # the key in result.json's summary and the results.csv column
    unit: str  # as shown beside a value
    better: str  # "higher", "lower", or "" where neither is better (a count)
    meaning: str  # one line, for help texts and tables
    table: bool = True  # a column of results.csv
    report: bool = False  # aggregated per variant in the report (median over repeats)
    gate: tuple[float, str] | None = None  # check's default threshold and its kind: relative fraction or absolute points
    label: str | None = None  # a table column's short name ("wait", "TTFB"); "" where the unit names it alone; None: the name
    column_unit: str = ""  # the unit in a column header where ``unit`` is too long for one ("%"); "": ``unit``
    digits: int = 1  # decimals a table shows

    @property
    def short_unit(self) -> str:
        """The unit as a table header or cell shows it: ``column_unit`` where given, else ``unit``."""
        return self.column_unit or self.unit

    @property
    def header(self) -> str:
        """A table column's header, the short label and unit: "wait %", "TTFB s", "samples/s"."""
        label = self.name if self.label is None else self.label
        return f"{label} {self.short_unit}".strip()

    def text(self, value: float | None) -> str:
        """``value`` as a table shows it: thousands separated, ``digits`` decimals; "–" for no value."""
        return "–" if value is None else f"{value:,.{self.digits}f}"


_ALL = (
    Metric("samples_per_s", "samples/s", "higher", "measured-phase throughput", report=True, gate=(0.10, "relative"), label=""),
    Metric(
        "steady_samples_per_s",
        "samples/s",
        "higher",
        "throughput with the epoch restarts' cost taken out",
        report=True,
        label="steady-state",
    ),
    Metric("batches_per_s", "batches/s", "higher", "measured-phase throughput in batches"),
    Metric(
        "stall_pct",
        "% of step time",
        "lower",
        "time blocked on the loader / wall time",
        report=True,
        gate=(5.0, "points"),
        label="wait",
        column_unit="%",
    ),
    Metric("au_pct", "%", "higher", "accelerator utilization: compute time / wall time", report=True, gate=(5.0, "points"), label="AU"),
    Metric("h2d_pct", "%", "lower", "host-to-device copy time / wall time", report=True),
    Metric("ranks", "ranks", "", "data-parallel ranks (consumer.ranks): figures above are all ranks' (throughput) or their mean", digits=0),
    Metric(
        "straggler_pct",
        "% of rank time",
        "lower",
        "ranks' mean time at the step's all-reduce waiting for a slower rank",
        report=True,
        label="straggler",
        column_unit="%",
    ),
    Metric("allreduce_pct", "% of wall time", "lower", "the step all-reduce's own cost (the least any rank waited in it)", column_unit="%"),
    Metric("slowest_rank_samples_per_s", "samples/s", "higher", "the slowest rank's own throughput (the one the others waited for)"),
    Metric("ttfb_s", "s", "lower", "trial start to first batch in hand", report=True, gate=(0.10, "relative"), label="TTFB", digits=2),
    Metric("step_ms_p50", "ms", "lower", "median step time"),
    Metric("step_ms_p95", "ms", "lower", "95th percentile step time"),
    Metric("wait_ms_p50", "ms", "lower", "median wait for a batch"),
    Metric("wait_ms_p95", "ms", "lower", "95th percentile wait for a batch"),
    Metric("steps", "steps", "", "measured steps"),
    Metric("wall_s", "s", "", "measured-phase wall time"),
    Metric("bookkeeping_pct", "%", "lower", "wall time in none of wait, copy, compute: the harness's own cost"),
    Metric("epoch_restarts", "restarts", "", "epoch boundaries in the measured phase", report=True),
    Metric(
        "epoch_restart_ms_p50", "ms", "lower", "median wait for each new epoch's first batch", report=True, label="epoch restart", digits=0
    ),
    Metric("restart_pct", "% of wall time", "lower", "what the epoch restarts cost", report=True, column_unit="% of time"),
    Metric("cpu_tree_mean_pct", "% of a core", "lower", "mean CPU of the trial's processes", report=True),
    Metric("cpu_tree_max_pct", "% of a core", "lower", "peak CPU of the trial's processes"),
    Metric(
        "cpu_s_per_1000_samples",
        "CPU s",
        "lower",
        "CPU seconds per 1000 samples",
        report=True,
        gate=(0.10, "relative"),
        label="CPU",
        column_unit="s / 1k samples",
        digits=2,
    ),
    Metric(
        "peak_rss_mb",
        "MB",
        "lower",
        "peak resident memory of the process tree",
        report=True,
        gate=(0.10, "relative"),
        label="peak RSS",
        digits=0,
    ),
    Metric("pss_mb", "MB", "lower", "proportional set size of the process tree"),
    Metric("disk_read_mb_s", "MB/s", "", "machine-wide disk reads"),
    Metric("gpu_util_mean_pct", "%", "higher", "NVML GPU utilization", report=True, label="GPU"),
    Metric("gpu_idle_pct", "%", "lower", "share of samples with the GPU idle"),
    Metric("gpu_power_mean_w", "W", "", "NVML mean power draw", report=True),
    # computed by check from the CPU series of each window; not a results.csv column
    Metric("cpu_ms_per_sample", "CPU ms/sample", "lower", "CPU time per sample", table=False, gate=(0.10, "relative")),
)
REGISTRY: dict[str, Metric] = {m.name: m for m in _ALL}

TABLE_METRICS = tuple(m.name for m in _ALL if m.table)  # results.csv's metric columns, in order
REPORT_METRICS = tuple(m.name for m in _ALL if m.report)  # what the report aggregates per variant
# check: metric -> (better, unit, default threshold, threshold kind)
GATE_METRICS = {m.name: (m.better, m.unit, *m.gate) for m in _ALL if m.gate is not None}
