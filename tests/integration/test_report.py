"""report.html and summary.md from real sweeps, checked in headless Chromium.

The synthetic loader gives known answers: with a 10 ms consumer step, producing a
batch in 2 ms keeps the accelerator fed (not input-bound), in 20 ms it waits half the
time (highly input-bound) and runs at about half the speed.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, sweep_dir

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
ARTIFACTS = ROOT / "reports" / "test-artifacts"
KNOWN = ["loader=synthetic", "loader.produce_ms=2,20", "consumer.step_ms=10", "trial.seconds=1", "trial.repeats=2", "trial.warmup_steps=2"]


def browse(html: Path, screenshot: Path = None):
    """(DOM after load, console lines) of the page in headless Chromium."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make browser installs it; CI does)")
    done = subprocess.run(
        [CHROMIUM, *FLAGS, "--window-size=1300,2400", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom"]
        + [html.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [CHROMIUM, *FLAGS, "--window-size=1300,2400", f"--screenshot={screenshot}", html.as_uri()],
            capture_output=True,
            timeout=120,
            check=True,
        )
    return done.stdout, console


def body_data(dom: str) -> dict:
    body = re.search(r"<body([^>]*)>", dom).group(1)
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body))


def test_a_sweep_ends_with_a_report_that_ranks_diagnoses_and_renders(cli, tmp_path):
    done = cli("sweep", *KNOWN)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = sweep_dir(done, tmp_path)
    assert "report: " in done.stdout
    summary = (folder / "summary.md").read_text()
    table = [line for line in summary.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert "produce_ms=2 " in table[0] and "best" in table[0] and "baseline" in table[0]  # job 0: the first variant
    assert "produce_ms=20 " in table[1]
    speedup = float(re.search(r"\| ([\d.]+)x \|", table[1]).group(1))
    assert 0.45 < speedup < 0.59  # 50 vs 100 batches/s
    assert "Speed-up vs job 0 (produce_ms=2), the sweep's first variant; choose another with report.baseline" in summary
    html = (folder / "report.html").read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # self-contained
    assert "Not input-bound" in html and "Highly input-bound" in html
    assert "Fastest: produce_ms=2 at" in html and "Speed-up vs job 0 (produce_ms=2)" in html
    dom, console = browse(folder / "report.html", ARTIFACTS / "report.png")
    data = body_data(dom)
    assert console == [], console
    assert "errors" not in data
    assert int(data["images"]) >= 3 and data["broken-images"] == "0"
    assert data["ranking-rows"] == "3"  # header + two variants
    assert (ARTIFACTS / "report.png").stat().st_size > 20_000


def test_a_sweep_whose_trials_all_failed_still_reports_what_went_wrong(cli, tmp_path):
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    done = cli("sweep", "loader=torch", "dataset=folder", f"dataset.path={empty}", "loader.num_workers=0,1")
    assert done.returncode == 3, done.stdout + done.stderr
    folder = sweep_dir(done, tmp_path)
    html = (folder / "report.html").read_text()
    assert "No trial finished" in html and "Trials that did not finish ok" in html and str(empty) in html
    assert "No trial finished" in (folder / "summary.md").read_text()
    dom, console = browse(folder / "report.html")
    assert console == [] and body_data(dom)["broken-images"] == "0"


def test_one_trial_without_monitor_data_gives_a_readable_report_that_says_so(cli, tmp_path):
    done = cli("run", "loader=synthetic", "trial.steps=20", "monitor.enabled=false")
    assert done.returncode == 0, done.stdout + done.stderr
    folder = sweep_dir(done, tmp_path)
    report = cli("report", str(folder))
    assert report.returncode == 0, report.stderr
    html = (folder / "report.html").read_text()
    assert "One variant only" in html and "No utilization timelines" in html
    dom, console = browse(folder / "report.html")
    assert console == [] and body_data(dom)["ranking-rows"] == "2"


def test_report_baseline_option_and_its_errors(cli, tmp_path):
    done = cli("sweep", *KNOWN[:-2])
    folder = sweep_dir(done, tmp_path)
    chosen = cli("report", str(folder), "report.baseline=1")
    assert chosen.returncode == 0, chosen.stderr
    summary = (folder / "summary.md").read_text()
    assert re.search(r"produce_ms=20 \|[^\n]*\| 1.00x \|[^\n]*baseline", summary)
    assert "Speed-up vs job 1 (produce_ms=20), chosen with report.baseline" in summary
    wrong = cli("report", str(folder), "report.baseline=nine")
    assert wrong.returncode == 1 and "report.baseline=nine" in wrong.stderr and "choose one of" in wrong.stderr
    typo = cli("report", str(folder), "report.basline=0")
    assert typo.returncode == 1 and "unknown option" in typo.stderr


def test_history_html_draws_the_trend_and_lists_its_change_points_in_a_browser(cli, tmp_path):
    from harness.history.store import Record, append, summarize

    store = tmp_path / "ci" / "history.jsonl"
    for i in range(30):  # 2% run-to-run scatter, a 12% slowdown from commit 18 on
        level = 1000.0 * (0.88 if i >= 18 else 1.0) * (1 + 0.02 * ((i * 7) % 5 - 2) / 2)
        append(
            store, Record(f"commit{i:02d}", "2026-12-05T00:00:00+00:00", {"cores": 2}, {"b_tf_data": {"samples_per_s": summarize([level])}})
        )
    done = cli("history", "--store", str(store))
    assert done.returncode == 0, done.stderr
    assert "change point: b_tf_data samples_per_s -12.0% at commit18" in done.stdout
    dom, console = browse(store.with_name("history.html"), ARTIFACTS / "history.png")
    data = body_data(dom)
    assert console == [] and data["images"] == "1" and data["broken-images"] == "0" and data["change-rows"] == "1", (console, data)


@pytest.mark.parametrize("count", [1, 20])
def test_a_report_of_one_variant_or_twenty_cuts_and_overlaps_no_text(cli, tmp_path, count):
    """The page measures its own layout as it loads (text cut by its box, text boxes on top of each other, a page wider
    than the window); one variant and twenty with long labels both read well. Screenshots in reports/test-artifacts."""
    import html as markup
    import json

    from tests.unit.test_report_data import write_sweep

    knobs = ["loader.prefetch=autotune", "loader.cache=memory", "augment.order=cheap", "loader.deterministic=false"]
    labels = {job: [f"loader.num_parallel_calls={job + 1}", *knobs] for job in range(count)}
    root = write_sweep(tmp_path / "sweep", {job: [900 + 37 * job, 910 + 37 * job] for job in range(count)}, overrides=labels)
    done = cli("report", str(root))
    assert done.returncode == 0, done.stdout + done.stderr
    dom, console = browse(root / "report.html", ARTIFACTS / f"report-{count}-variants.png")
    data = body_data(dom)
    assert console == [] and data["broken-images"] == "0" and data["ranking-rows"] == str(count + 1)
    assert (data["cut-text"], data["overlaps"], data["page-overflow"]) == ("0", "0", "0"), (data["first-overlap"], data["first-wide"])
    assert json.loads(markup.unescape(data["ceiling-kinds"])) in ({}, {"accelerator": 1})  # one row per kind
