"""The report on hostile folders: several sweeps, huge trees, malformed files, user strings that are markup,
trials that were too short or interrupted, and sweeps that did not finish.

Sweeps are hand-built result.json files (no loader runs); :func:`trial` and :func:`write_sweep`
are shared with the check's hostile tests.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.report.diagnosis import diagnose
from harness.report.ranking import ranked_frame
from harness.report.render import markdown, md, write_report
from harness.results import table
from harness.results.model import TrialResult
from harness.results.sweep import load
from harness.results.table import find_results, no_results, rows, scan

XSS = "<img src=x onerror=alert(1)>"


def trial(
    job: int,
    repeat: int,
    *,
    rate: float = 1000.0,
    seconds: float = 2.0,
    status: str = "ok",
    error: str | None = None,
    overrides: list[str] | None = None,
    jitter: float = 0.02,
) -> TrialResult:
    """One trial of ``seconds`` measured at about ``rate`` samples/s (8 per step, 20% wait), with a CPU sampler."""
    rng = random.Random(job * 1000 + repeat)
    steps = {k: [] for k in ("t_ms", "step_ms", "wait_ms", "h2d_ms", "compute_ms", "samples", "epoch")}
    t = 0.0
    while status == "ok" and t < seconds * 1000:
        step = 8 / rate * 1000 * (1 + rng.uniform(-jitter, jitter))
        for key, value in zip(steps, (t, step, 0.2 * step, 0.0, 0.8 * step, 8, 0)):
            steps[key].append(value)
        t += step
    ticks = [i / 10 for i in range(int(seconds * 10) + 2)]  # half a core busy throughout
    ok = status == "ok"
    return TrialResult(
        status,
        {},
        overrides or [f"loader.produce_ms={job}"],
        job,
        repeat,
        error=error,
        steps=steps,
        summary={"samples_per_s": rate, "stall_pct": 20.0, "au_pct": 80.0, "ttfb_s": 0.1} if ok else {},
        timing={"round": repeat, "measure_start_clock": 0.0},
        monitor={
            "t": ticks,
            "series": {"tree_cpu_s": [0.5 * x for x in ticks], "tree_cpu_pct": [50.0] * len(ticks), "tree_rss_mb": [100.0] * len(ticks)},
        }
        if ok
        else {},
    )


def write_sweep(root: Path, trials: list[TrialResult], rounds: list[list[int]] | None = None) -> Path:
    """The trials as SWEEP/JOB/repeat-N/result.json, as a sweep writes them; ``rounds`` makes schedule.json."""
    for t in trials:
        t.write(_folder(root, t))
    if rounds is not None:
        (root / "schedule.json").write_text(json.dumps({"seed": 0, "rounds": rounds}))
    return root


def _folder(root: Path, t: TrialResult) -> Path:
    folder = root / str(t.job) / f"repeat-{t.repeat}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def two_variants(root: Path, **kw) -> Path:
    return write_sweep(root, [trial(j, r, rate=1000 + 500 * j, **kw) for j in (0, 1) for r in (0, 1)], [[0, 1], [1, 0]])


# -- which folders count -----------------------------------------------------------------
def test_a_folder_of_several_sweeps_is_refused_with_one_line_naming_them_never_merged(tmp_path):
    two_variants(tmp_path / "2026-01-01_a")
    two_variants(tmp_path / "2026-01-02_b")
    (tmp_path / "runs" / "r1" / "repeat-0").mkdir(parents=True)  # a run: repeat-N/ at its top
    trial(0, 0).write(tmp_path / "runs" / "r1" / "repeat-0")
    assert find_results(tmp_path) == [] and rows(tmp_path) == []  # before: eight trials, two per job and repeat
    message = str(no_results(tmp_path))
    assert "holds 2 sweeps" in message and "2026-01-01_a, 2026-01-02_b" in message
    assert f"python -m harness report {tmp_path / '2026-01-01_a'}" in message and "\n" not in message
    assert str(no_results(tmp_path / "runs")).endswith(f"holds one: python -m harness report {tmp_path / 'runs' / 'r1'}")
    with pytest.raises(HarnessError, match="holds 2 sweeps"):
        table.write_table(tmp_path)


def test_results_are_found_where_the_harness_writes_them_and_nowhere_deeper(tmp_path):
    sweep = two_variants(tmp_path / "s")
    for where in ("augbench/torchvision_cheap", "0/repeat-0/nested/deeper", "notes/0/repeat-0"):
        (sweep / where).mkdir(parents=True)
    trial(5, 0).write(sweep / "augbench" / "torchvision_cheap")
    trial(6, 0).write(sweep / "0" / "repeat-0" / "nested" / "deeper")  # a copy inside a trial folder
    trial(7, 0).write(sweep / "notes" / "0" / "repeat-0")  # someone's folder beside the jobs
    found = [p.relative_to(sweep).as_posix() for p in find_results(sweep)]
    assert found == [
        "0/repeat-0/result.json",
        "0/repeat-1/result.json",
        "1/repeat-0/result.json",
        "1/repeat-1/result.json",
        "augbench/torchvision_cheap/result.json",
    ]


def test_the_search_of_a_huge_folder_stops_at_its_bound_and_says_so(tmp_path, monkeypatch):
    for i in range(40):
        (tmp_path / "huge" / str(i) / "x").mkdir(parents=True)
    monkeypatch.setattr(table, "MAX_FOLDERS", 10)
    listings = []
    real = table.os.scandir
    monkeypatch.setattr(table.os, "scandir", lambda folder: listings.append(folder) or real(folder))
    assert find_results(tmp_path / "huge") == [] and len(listings) <= 10
    assert "stopped after listing 10 folders" in str(no_results(tmp_path / "huge"))
    big = write_sweep(tmp_path / "big", [trial(j, 0) for j in range(12)])  # a sweep past the bound loses trials visibly
    found = scan(big)
    assert len(found.results) < 12 and found.skipped_lines()[-1].startswith("stopped looking after listing 10 folders")


def test_an_empty_or_unrelated_folder_says_there_is_nothing_in_one_line(tmp_path):
    (tmp_path / "data" / "images").mkdir(parents=True)
    assert str(no_results(tmp_path)).startswith(f"no harness results under {tmp_path}")
    (tmp_path / "schedule.json").write_text("{}")
    assert "no trial of this sweep has finished yet" in str(no_results(tmp_path))


# -- malformed files ---------------------------------------------------------------------
MALFORMED = {
    "bad json": "{not json",
    "a list": "[1, 2]",
    "job a string": {"job": "zero"},
    "no status": {"status": None},
    "status unknown": {"status": "great"},
    "steps a list": {"steps": [1, 2]},
    "ok without samples_per_s": {"summary": {"stall_pct": 3.0}},
    "ok with text for a figure": {"summary": {"samples_per_s": "fast", "stall_pct": 3.0}},
    "ragged steps": {"steps": {"t_ms": [0.0, 1.0], "step_ms": [1.0]}},
}


def _break(path: Path, how) -> None:
    if isinstance(how, str):
        path.write_text(how)
        return
    data = json.loads(path.read_text())
    for key, value in how.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_result_is_skipped_with_a_line_naming_it_and_the_rest_still_reports(tmp_path, name):
    sweep = two_variants(tmp_path)
    broken = sweep / "1" / "repeat-1" / "result.json"
    _break(broken, MALFORMED[name])
    found = scan(sweep)
    assert len(found.results) == 3 and [p for p, _ in found.skipped] == [broken]
    assert str(broken) in found.skipped_lines()[0] and "\n" not in found.skipped_lines()[0]
    loaded = load(sweep)
    assert [len(v.trials) for v in loaded.variants] == [2, 1] and loaded.skipped == found.skipped_lines()
    assert loaded.incomplete == "3 of 4 planned trials finished (some result files are unreadable)"
    unreadable = [r for r in rows(sweep) if r["status"] == "unreadable"]
    assert [(r["job"], r["repeat"], r["result"]) for r in unreadable] == [(1, 1, "1/repeat-1/result.json")]
    html = write_report(sweep).read_text()
    assert str(broken) in html and str(broken) in (sweep / "summary.md").read_text()


# -- user strings ------------------------------------------------------------------------
def hostile(root: Path) -> Path:
    """A sweep whose override values and error text are markup."""
    labels = [f"loader.name={XSS}", "loader.name=a|b `tick` **bold** [link](http://x)"]
    trials = [trial(j, 0, rate=1000 + 100 * j, overrides=[labels[j]]) for j in (0, 1)]
    trials.append(trial(1, 1, status="failed", error=f"boom {XSS} | `x`", overrides=[labels[1]]))
    return write_sweep(root, trials)


def test_markdown_escapes_tags_pipes_backticks_and_links():
    pytest.importorskip("markdown_it")
    from markdown_it import MarkdownIt

    text = f"| {md(XSS)} | {md('a|b `c` *d* [e](http://f)')} |\n| --- | --- |\n| {md('x|y')} | z |\n"
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    assert "<img" not in html and "<code>" not in html and "<em>" not in html and "<a " not in html
    assert html.count("<td>") == 2 and html.count("<th>") == 2  # the pipes split no cell
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "a|b `c` *d* [e](http://f)" in html


def test_summary_md_escapes_labels_and_errors_and_report_html_stays_escaped(tmp_path):
    pytest.importorskip("markdown_it")
    from markdown_it import MarkdownIt

    sweep = hostile(tmp_path)
    html = write_report(sweep).read_text()
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    summary = (sweep / "summary.md").read_text()
    assert XSS not in summary
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(summary)
    assert "<img" not in rendered and "<code>" not in rendered and "<strong>bold" not in rendered
    header = [line for line in summary.splitlines() if line.startswith("| #")][0]
    for line in summary.splitlines():
        if line.startswith("| ") and "---" not in line:
            assert line.count(" | ") == header.count(" | "), line  # no label adds a column
    assert "boom &lt;img" in summary  # the error message too


# -- statuses and completeness ------------------------------------------------------------
def test_too_short_and_interrupted_trials_are_shown_as_such_not_as_failures(tmp_path):
    sweep = write_sweep(
        tmp_path,
        [
            trial(0, 0),
            trial(0, 1, status="too_short", error="measured 2 steps in 0.1 s"),
            trial(1, 0),
            trial(1, 1, status="interrupted", error="SIGTERM"),
        ],
        [[0, 1], [1, 0]],
    )
    loaded = load(sweep)
    frame = ranked_frame(loaded).set_index("variant")
    assert frame.loc["produce_ms=0", "status"] == "1/2 ok, 1 too short"
    assert frame.loc["produce_ms=1", "status"] == "1/2 ok, 1 interrupted"
    csv_rows = {(r["job"], r["repeat"]): r for r in rows(sweep)}
    assert csv_rows[(0, 1)]["status"] == "too_short" and "measured too little" in csv_rows[(0, 1)]["notes"]
    assert csv_rows[(0, 1)]["error"] == "measured 2 steps in 0.1 s"
    assert csv_rows[(1, 1)]["status"] == "interrupted" and "SIGTERM / SIGINT" in csv_rows[(1, 1)]["notes"]
    html = write_report(sweep).read_text()
    assert '<tr class="too_short">' in html and '<tr class="interrupted">' in html
    assert "too short</td>" in html and "measured 2 steps in 0.1 s" in html and "2 ok, 1 too short, 1 interrupted" in html
    summary = (sweep / "summary.md").read_text()
    assert "- produce_ms=0 repeat 1: too short: measured 2 steps in 0.1 s" in summary
    assert "- produce_ms=1 repeat 1: interrupted: SIGTERM" in summary


def test_a_variant_with_only_a_too_short_trial_says_why_in_its_diagnosis(tmp_path):
    sweep = write_sweep(tmp_path, [trial(0, 0), trial(1, 0, status="too_short", error="measured 2 windows")])
    loaded = load(sweep)
    assert diagnose(loaded.variants[1], loaded).lines == ["No repeat finished ok (0/1 ok, 1 too short): too short: measured 2 windows."]


def test_a_sweep_with_planned_trials_missing_or_interrupted_is_marked_incomplete(tmp_path):
    rounds = [[0, 1, 2, 3], [3, 2, 1, 0]]  # eight planned trials
    stopped = write_sweep(tmp_path / "stopped", [trial(0, 0), trial(1, 0), trial(2, 0)], rounds)
    loaded = load(stopped)
    assert loaded.incomplete == "3 of 8 planned trials finished (the sweep was stopped, crashed, or is still running)"
    interrupted = write_sweep(
        tmp_path / "int", [trial(0, 0), trial(1, 0), trial(2, 0), trial(3, 0, status="interrupted", error="SIGINT")], rounds
    )
    text = "3 of 8 planned trials finished (the sweep was interrupted)"
    assert load(interrupted).incomplete == text
    html = write_report(interrupted).read_text()
    assert f"<b>INCOMPLETE:</b> {text}" in html and "(INCOMPLETE)</h1>" in html
    summary = (interrupted / "summary.md").read_text()
    assert summary.startswith("## harness: int (INCOMPLETE)") and f"**INCOMPLETE:** {text}" in summary


def test_a_complete_sweep_is_not_marked_and_an_unplanned_one_only_when_interrupted(tmp_path):
    complete = two_variants(tmp_path / "complete")
    assert load(complete).incomplete is None
    assert "INCOMPLETE" not in markdown(load(complete))
    unplanned = write_sweep(tmp_path / "unplanned", [trial(0, 0), trial(1, 0, status="interrupted", error="SIGTERM")])
    assert load(unplanned).incomplete == "1 trial(s) were interrupted (the sweep was stopped)"
    (unplanned / "schedule.json").write_text('{"rounds": "soon"}')
    loaded = load(unplanned)
    assert any("schedule.json: not a readable schedule" in line for line in loaded.skipped)


def test_the_report_names_the_files_a_folder_dataset_skipped_converted_and_left_out(tmp_path):
    trials = [trial(0, 0), trial(1, 0)]
    for t in trials:
        t.dataset = {
            "count": 22,
            "source": "/photos",
            "root": "/cache/folder-1",
            "skipped": [{"file": "cat/<b>empty</b>.jpg", "reason": "empty (0 bytes)"}],
            "converted": [{"file": "dog/x.bmp.png", "reason": "BMP format"}],
            "ignored": {"nested folders": {"count": 1, "first": ["dog/more"]}},
        }
    sweep = write_sweep(tmp_path / "sweep", trials)
    html = write_report(sweep).read_text()
    assert "1 file skipped: cat/&lt;b&gt;empty&lt;/b&gt;.jpg (empty (0 bytes))" in html
    assert "1 file converted to 8-bit PNG: dog/x.bmp.png (BMP format)" in html and "from /photos" in html
    summary = (sweep / "summary.md").read_text()
    assert summary.count("file skipped") == 1 and "<b>" not in summary  # once for the sweep, escaped
    assert "left out by rule: 1 nested folders (e.g. dog/more)" in summary
