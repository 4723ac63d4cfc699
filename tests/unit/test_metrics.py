"""The metric registry is the one place metrics are described, and every consumer reads it."""

from harness import check
from harness.results import metrics, table
from harness.results import sweep as data


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


def test_a_metric_names_its_column_and_formats_its_values():
    m = metrics.REGISTRY
    assert [m[k].header for k in ("samples_per_s", "stall_pct", "ttfb_s", "cpu_s_per_1000_samples", "peak_rss_mb")] == [
        "samples/s",
        "wait %",
        "TTFB s",
        "CPU s / 1k samples",
        "peak RSS MB",
    ]
    assert m["step_ms_p50"].header == "step_ms_p50 ms"  # no label: the name stands in
    assert m["samples_per_s"].text(1234.5) == "1,234.5" and m["ttfb_s"].text(0.1) == "0.10" and m["peak_rss_mb"].text(511.6) == "512"
    assert m["samples_per_s"].text(None) == "–"
    assert m["stall_pct"].unit == "% of step time"  # check's exports keep the full unit; only a column header is short
