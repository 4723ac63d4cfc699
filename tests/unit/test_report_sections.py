"""The report's sections come from one registry, and the ranking's metric columns from the metric registry.

Every registered section builds and renders on a sweep it applies to; one that does not apply
leaves no heading; a section registered at runtime appears in its place in report.html and
summary.md; a label changed in the metric registry changes the ranking's header. Sweeps are
hand-built result.json files (:mod:`tests.unit.test_hostile_report`); no loader runs.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import zlib
from pathlib import Path

import pytest
from markupsafe import escape

from harness.advice.checked import Advice, Checked
from harness.errors import HarnessError
from harness.report import ranking, sections
from harness.report.render import write, write_report
from harness.results import metrics
from harness.results.model import TrialResult
from harness.results.sweep import load
from tests.unit.test_hostile_report import trial, two_variants, write_sweep
from tests.unit.test_report_ceilings import knee_sweep


def png() -> bytes:
    """A valid one-pixel PNG, as a sample grid."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")


def full_sweep(root: Path) -> Path:
    """A sweep every section but "unsampled" applies to: numeric parameter, ops, orders, GPU series, a failure,
    an unreadable file, a missing trial, a check record, augbench timings and a sample grid."""
    trials = [trial(j, r, rate=1000 + 300 * j, overrides=[f"loader.num_workers={j}"]) for j, r in ((0, 0), (0, 1), (1, 0))]
    trials.append(trial(2, 0, status="failed", error="boom", overrides=["loader.num_workers=2"]))
    for t in trials:
        order = "flip_first" if t.job == 0 else "resize_first"
        t.config = {"loader": {"name": "torch"}}
        t.loader = {"ops": ["decode", "flip", "resize"]}
        t.augment = {"signature": order, "library": "torchvision", "order": order, "ops": [{"name": "flip"}, {"name": "resize"}]}
    for i, t in enumerate(trials):  # trials 2 and 3 ran at the same time on node1 (another launcher's doing); job 0's
        t.environment["hostname"] = "node2" if i == 1 else "node1"  # second repeat on node2: the per-machine table
        t.timing.update(started_at=100.0 * i, finished_at=100.0 * i + (150.0 if i == 2 else 50.0))
    line = {
        "rank": 0,
        "samples_per_s": 500.0,
        "stall_pct": 1.0,
        "au_pct": 90.0,
        "straggler_pct": 3.0,
        "cores": [0],
        "same_data": "complete",
    }
    trials[2].ranks = {
        "ranks": 2,
        "backend": "gloo",
        "sharding": "DistributedSampler",
        "slowest": 1,
        "per_rank": [line, {**line, "rank": 1}],
    }
    trials[2].summary.update(straggler_pct=3.0, allreduce_pct=1.0)
    served = {"profile": "nfs_lan", "open_ms": 1.0, "read_ms": 0.3, "mb_per_s": 110.0, "jitter_pct": 20.0, "opens": 96, "reads": 96}
    trials[1].overhead["storage"] = {**served, "serving_cpu_s": 0.04, "cpu_us_per_request": 208.3}  # read through throttled storage
    trials[1].timing["duration_s"] = 8.0
    trials[1].config["storage"] = {"kind": "throttled", "source": "1 GbE line rate"}
    ticks = len(trials[0].monitor["t"])
    trials[0].monitor["gpu"] = {"series": {"gpu_util_pct": [50.0] * ticks, "gpu_mem_used_mb": [900.0] * ticks}}
    write_sweep(root, trials, [[0, 1, 2], [2, 1, 0]])
    bench = TrialResult(
        "ok",
        {},
        ["augment=cheap"],
        0,
        0,
        kind="augbench",
        summary={"samples_per_s": 123.0},
        augment={
            "library": "torchvision",
            "order": "flip_first",
            "ops": [{"name": "flip"}, {"name": "resize"}],
            "bench": {
                "ops": [{"name": "flip", "input_shape": [64, 64, 3], "images_per_s": 1234.5, "cv": 0.02, "unstable": False}],
                "pipeline": {"images_per_s": 999.0, "cv": 0.2, "unstable": True},
            },
        },
    )
    (root / "augbench" / "cheap").mkdir(parents=True)
    bench.write(root / "augbench" / "cheap")
    (root / "3" / "repeat-0").mkdir(parents=True)
    (root / "3" / "repeat-0" / "result.json").write_text("{not json")
    (root / "0" / "samples.png").write_bytes(png())
    verdict = {"variant": "num_workers=0", "metric": "samples_per_s", "baseline": 1000.0, "current": 900.0, "change": -0.1}
    verdict |= {"p": 0.004, "verdict": "regressed", "threshold": 0.1, "kind": "relative"}
    (root / "check.json").write_text(json.dumps({"baseline": "base.json", "ratio_to": None, "regressions": 1, "verdicts": [verdict]}))
    change = Checked(
        "parallelism",
        "num_workers=3",
        ["loader.num_workers=3"],
        [],
        1,
        "num_workers=1",
        1500.0,
        0.15,
        "Amdahl",
        "",
        [1450.0, 1480.0],
        [1.12, 1.14],
        "confirmed",
    )
    untried = [
        {
            "lever": "decoder",
            "what": "decoder=simplejpeg",
            "shown": ["loader.decoder=simplejpeg"],
            "predicted": 1400.0,
            "gain": 0.08,
            "model": "m",
        }
    ]
    best = {"job": 1, "label": "num_workers=1", "overrides": [], "predicted": 1300.0, "model": "m", "measured": [1290.0, 1300.0]}
    Advice("2026-12-05T10:00:00", best, ["trial.epochs=2"], 2, [change], untried).write(root / "advice.json")
    return root


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> list[tuple[list[sections.Built], str, str]]:
    """(built sections, report.html, summary.md) of the full sweep, of a sweep whose trials were not sampled, and of
    one that sweeps consumer.step_ms with measured ceilings (the knee curves)."""
    unsampled = trial(0, 0)
    unsampled.monitor = {}
    roots = [full_sweep(tmp_path_factory.mktemp("full")), write_sweep(tmp_path_factory.mktemp("unsampled"), [unsampled])]
    roots.append(knee_sweep(tmp_path_factory.mktemp("knee")))
    out = []
    for root in roots:
        sweep = load(root)
        html = write(sweep).read_text()
        out.append((sections.build(sweep), html, (root / "summary.md").read_text()))
    return out


@pytest.mark.parametrize("section", sections.list_sections())
def test_every_registered_section_builds_and_renders_where_it_applies(reports, section):
    found = [(b, html, summary) for built, html, summary in reports for b in built if b.section.id == section]
    assert found, f"no test sweep has section {section}: make full_sweep cover it"
    b, html, summary = found[0]
    if b.section.html is not None:
        fragment = str(sections.fragment(b))
        assert fragment.strip() and fragment in html  # the page shows it as the fragment renders it
        title = b.section.heading(b.data)
        if title:
            anchor = f' id="{b.section.anchor}"' if b.section.anchor else ""
            assert f"<h2{anchor}>{escape(title)}</h2>" in html
    if b.section.markdown is not None:
        assert "\n".join(b.section.markdown(b.data)) in summary


def test_the_page_shows_the_sections_in_their_registered_order(reports):
    built, html, _ = reports[0]
    shown = [str(sections.fragment(b)) for b in built if b.section.html is not None]
    places = [html.index(fragment) for fragment in shown]
    assert places == sorted(places)


def test_a_section_that_does_not_apply_leaves_no_heading_and_no_markdown(tmp_path, monkeypatch):
    monkeypatch.setattr(sections, "_SECTIONS", list(sections._SECTIONS))
    sections.register_section(sections.Section("nothing", lambda sweep: None, "Never shown", markdown=lambda data: ["never"]))
    root = two_variants(tmp_path)  # no failures, no check record, no augbench, no samples
    html = write_report(root).read_text()
    summary = (root / "summary.md").read_text()
    assert "Never shown" not in html and "never" not in summary
    assert 'id="failed"' not in html and "Regression check" not in html and "augbench:" not in html
    assert "Trials that did not finish ok" not in summary and "<h2></h2>" not in html


def test_a_section_registered_at_runtime_appears_in_its_place(tmp_path, monkeypatch):
    monkeypatch.setattr(sections, "_SECTIONS", list(sections._SECTIONS))
    folder = tmp_path / "fragments"
    folder.mkdir()
    (folder / "extra.html.j2").write_text('{% macro extra(data) %}<p id="extra">{{ data }}</p>{% endmacro %}')
    extra = sections.Section(
        "extra",
        lambda sweep: f"{len(sweep.variants)} <b>variants</b>",
        "Extra",
        html="extra.html.j2",
        folder=folder,
        markdown=lambda d: [d],
    )
    sections.register_section(extra, after="ranking")
    assert sections.list_sections()[sections.list_sections().index("ranking") + 1] == "extra"
    root = two_variants(tmp_path / "sweep")
    html = write_report(root).read_text()
    assert html.index('id="ranking"') < html.index('<h2>Extra</h2>\n<p id="extra">2 &lt;b&gt;variants&lt;/b&gt;</p>')
    assert html.index('id="extra"') < html.index("<h2>Diagnosis</h2>")
    summary = (root / "summary.md").read_text()
    table_end = summary.index("Wait % bands")  # the ranking's block ends with the bands
    assert table_end < summary.index("\n2 <b>variants</b>\n")  # a new section's Markdown is its own to escape
    with pytest.raises(HarnessError, match="registered already"):
        sections.register_section(extra)
    with pytest.raises(HarnessError, match="no such section; choose one of: incomplete, concurrent, skipped, setup"):
        sections.register_section(dataclasses.replace(extra, id="other"), before="nowhere")


def test_the_ranking_headers_and_formats_come_from_the_metric_registry(tmp_path, monkeypatch):
    au = metrics.REGISTRY["au_pct"]
    monkeypatch.setitem(metrics.REGISTRY, "au_pct", dataclasses.replace(au, label="accelerator busy", digits=3))
    restart = metrics.REGISTRY["epoch_restart_ms_p50"]
    monkeypatch.setitem(metrics.REGISTRY, "epoch_restart_ms_p50", dataclasses.replace(restart, label="first batch"))
    root = two_variants(tmp_path)
    frame = ranking.ranked_frame(load(root))
    assert "accelerator busy %" in frame.columns and "AU %" not in frame.columns
    assert "first batch (ms, % of time)" in frame.columns
    assert frame["accelerator busy %"].tolist() == ["80.000", "80.000"]
    html = write_report(root).read_text()
    assert "<th>accelerator busy %</th>" in html.replace(' class=""', "")
    header = next(line for line in (root / "summary.md").read_text().splitlines() if line.startswith("| #"))
    assert "| accelerator busy % |" in header and "| first batch (ms, % of time) |" in header


def test_every_metric_column_of_the_ranking_is_a_metric_the_report_aggregates():
    named = [c.key for c in ranking.COLUMNS if c.key in metrics.REGISTRY]
    assert named and set(named) <= set(metrics.REPORT_METRICS)
    assert [c.header() for c in ranking.COLUMNS if c.key in named] == [metrics.REGISTRY[k].header for k in named]


def test_a_variant_that_ran_on_two_machines_has_a_figure_on_each_not_their_average(reports):
    built, html, summary = reports[0]
    (h,) = [b.data for b in built if b.section.id == "hosts"]
    assert [m["name"] for m in h["hosts"]] == ["node1", "node2"]
    first, second = h["rows"][0], h["rows"][1]  # job 0: repeat 0 on node1, repeat 1 on node2; job 1 on node1 only
    assert [c["n"] for c in first["cells"]] == [1, 1]  # one figure per machine, each its own repeat's
    assert [c["median"] for c in first["cells"]] == [pytest.approx(1000.0, rel=0.05)] * 2
    assert second["cells"][0]["n"] == 1 and second["cells"][1] is None
    assert "| variant | node1 | node2 |" in summary
    assert not [b for built_, _, _ in reports[1:] for b in built_ if b.section.id == "hosts"]  # one machine: no table
