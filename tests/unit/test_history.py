"""The history store and its change points, on synthetic histories with known steps."""

import json
import random

import pytest

from harness.errors import HarnessError
from harness.history.changes import change_points, newest, noise
from harness.history.store import SCHEMA, Record, append, read, series, summarize

MACHINE = {"cpu_model": "test", "cores": 2}


def history(seed: int, n: int = 60, cv: float = 0.02, steps: dict[int, float] | None = None) -> list[float]:
    """``n`` commits of a metric at 1,000 with Gaussian noise of ``cv``, its level times (1 + step) from each step's commit on."""
    rng = random.Random(seed)
    level, out = 1000.0, []
    for i in range(n):
        level *= 1 + (steps or {}).get(i, 0.0)
        out.append(level * (1 + rng.gauss(0, cv)))
    return out


def test_both_steps_of_a_noisy_history_are_found_at_their_commits_and_nothing_else():
    # the known answer: 60 commits, 2% noise, +8% at commit 20 and -15% at commit 45
    exact, stray = 0, []
    for seed in range(20):
        found = change_points(history(seed, steps={20: 0.08, 45: -0.15}))
        exact += [c.index for c in found] == [20, 45]
        stray += [c.index for c in found if min(abs(c.index - 20), abs(c.index - 45)) > 1]
    # a point at a boundary sometimes sits nearer the other level (2% noise against an 8% step): one commit off
    assert exact >= 18 and stray == []
    first = change_points(history(0, steps={20: 0.08, 45: -0.15}))
    assert [c.index for c in first] == [20, 45]
    assert first[0].step == pytest.approx(0.08, abs=0.02) and first[1].step == pytest.approx(-0.15, abs=0.02)


def test_a_history_without_steps_has_no_change_point():
    assert sum(len(change_points(history(100 + seed))) for seed in range(30)) == 0


def test_the_noise_estimate_ignores_the_steps_and_short_histories_have_no_change():
    assert noise([v / 1000 for v in history(7, cv=0.02, steps={30: 0.5})]) == pytest.approx(0.02, rel=0.3)
    assert change_points([1.0, 2.0, 1.0, 2.0, 1.0]) == []  # fewer than two segments of three
    assert [c.index for c in change_points([100.0] * 10 + [110.0] * 10)] == [10]  # no noise at all


def record(commit, value, machine=MACHINE):
    return Record(commit, "2026-12-05T00:00:00+00:00", machine, {"a": {"samples_per_s": summarize([value, value * 1.01])}})


def test_the_store_appends_lines_and_reads_them_back_per_machine(tmp_path):
    store = tmp_path / "ci" / "history.jsonl"
    for i, v in enumerate([100.0, 101.0, 99.0]):
        append(store, record(f"c{i}", v))
    append(store, record("elsewhere", 50.0, {"cpu_model": "other", "cores": 8}))
    append(store, record("c3", 102.0))
    lines = store.read_text().splitlines()
    assert len(lines) == 5 and all(json.loads(line)["harness_history"] == SCHEMA for line in lines)
    runs = series(read(store), "a", "samples_per_s")
    assert [r.commit for r, _ in runs] == ["c0", "c1", "c2", "c3"]  # the other machine's run is another series
    assert runs[0][1] == {"median": 100.5, "low": 100.0, "high": 101.0, "n": 2}


def test_a_store_line_it_cannot_read_is_named(tmp_path):
    store = tmp_path / "history.jsonl"
    with pytest.raises(HarnessError, match="no history store there"):
        read(store)
    append(store, record("c0", 1.0))
    store.write_text(store.read_text() + "\n{not json\n")
    with pytest.raises(HarnessError, match=r"history.jsonl:3: not a JSON line"):
        read(store)
    store.write_text(json.dumps({"harness_history": SCHEMA + 1, "commit": "x"}) + "\n")
    with pytest.raises(HarnessError, match=r":1: history schema 2, this harness reads 1; upgrade harness"):
        read(store)


def test_the_command_writes_history_html_and_prints_each_change_point(tmp_path, capsys):
    from harness.commands.history import history as command

    store = tmp_path / "history.jsonl"
    for i, value in enumerate(history(0, steps={20: 0.08, 45: -0.15})):
        append(store, record(f"{i:03d}" + "f" * 37, value))
    assert command(["--store", str(store)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in printed if line.startswith("change point: a samples_per_s")] == ["020fffffffff", "045fffffffff"]
    page = (tmp_path / "history.html").read_text()
    assert page.count("<tr><td>a</td><td>samples_per_s</td>") == 2 and page.count("<img ") == 1 and "+8." in page
    with pytest.raises(HarnessError, match="--add nowhere: no such sweep folder"):
        command(["--store", str(store), "--add", "nowhere"])


def test_a_gate_run_sees_a_large_step_at_once_and_a_smaller_one_when_its_level_has_three_runs():
    quiet = [history(300 + seed, n=30) for seed in range(20)]
    assert [newest(h) for h in quiet] == [None] * 20  # no false alarm on a step-free history
    big = history(7, n=30) + [700.0]  # -30% at the newest run: 15 noise deviations
    found = newest(big)
    assert found is not None and found.index == 30 and found.step == pytest.approx(-0.3, abs=0.02)
    smaller = history(8, n=33, steps={30: -0.10})  # 5 deviations: a single run is not enough, three are
    assert newest(smaller[:31]) is None or newest(smaller[:31]).index == 30
    seen = newest(smaller)
    assert seen is not None and seen.index == 30 and seen.step == pytest.approx(-0.10, abs=0.03)
    later = history(8, n=34, steps={30: -0.10})
    assert newest(later) is None  # found once, not again by the next run


def test_a_step_is_held_against_its_threshold_in_the_metrics_own_unit():
    """stall_pct's threshold is in points: a stall going from 10% to 16% is 6 points worse, not 60%;
    before this, the gate compared the relative step with the points and missed it against 5 pts."""
    from harness.commands.check import worse_step
    from harness.history.changes import Change

    assert worse_step(Change(30, 10.0, 16.0), "stall_pct") == pytest.approx(6.0)
    assert worse_step(Change(30, 1000.0, 900.0), "samples_per_s") == pytest.approx(0.10)
    assert worse_step(Change(30, 1.0, 1.1), "cpu_ms_per_sample") == pytest.approx(0.10)
    assert worse_step(Change(30, 16.0, 10.0), "stall_pct") < 0  # better
