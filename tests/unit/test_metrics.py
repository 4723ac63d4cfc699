"""The metric registry is the one place metrics are described, and every consumer reads it."""

from harness import check
from harness.report import data
from harness.results import metrics, table


def test_each_metric_is_described_once_with_a_direction_and_unit():
    names = [m.name for m in metrics._ALL]
    assert len(names) == len(set(names))
    for m in metrics._ALL:
        assert m.better in ("higher", "lower", "") and m.unit and m.meaning
        assert m.gate is None or (m.gate[0] > 0 and m.gate[1] in ("relative", "points"))
        assert m.gate is None or m.better, f"{m.name}: a gated metric needs a better direction"


def test_table_report_and_check_take_their_metrics_from_the_registry():
    assert table.METRICS == metrics.TABLE_METRICS and data.METRICS == metrics.REPORT_METRICS
    assert check.METRICS == metrics.GATE_METRICS
    assert set(check.DEFAULT_METRICS) <= set(check.METRICS) and set(check.RATIO_METRICS) <= set(check.METRICS)
    assert check.METRICS["samples_per_s"] == ("higher", "samples/s", 0.10, "relative")
    assert check.METRICS["stall_pct"] == ("lower", "% of step time", 5.0, "points")
