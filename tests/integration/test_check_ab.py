"""``check --ab HEAD~1`` in a test repository: both revisions of a user's pipeline in one interleaved sweep.

The pipeline sleeps per batch; between HEAD~1 and HEAD one part of it got twice as slow and
the other did not change, so the known answer is one regression (about -45% samples/s) and
no false alarm, with the base revision's code really run (its trials' cwd is the checkout).
"""

import json
import subprocess
from pathlib import Path

import pytest

PIPE = """
import time

import numpy as np

SLEEP_S = {{"fixed": 0.010, "changed": {changed}}}


def batches(data, batch, part="fixed"):
    while True:
        time.sleep(SLEEP_S[part])
        yield np.zeros((batch.size, batch.height, batch.width, batch.channels), np.uint8)
"""

SWEEP = [
    "loader=custom",
    "loader.target=pipe:batches",
    "loader.dataset=false",
    "loader.kwargs.part=fixed,changed",
    "batch.size=8",
    "batch.height=32",
    "batch.width=32",
    "consumer.step_ms=1",
    "trial.seconds=1.5",
    "trial.warmup_steps=2",
    "trial.repeats=3",
    "monitor.trace=false",
]


def git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "test@example.com")
    git(tmp_path, "config", "user.name", "test")
    for changed in ("0.010", "0.020"):
        (tmp_path / "pipe.py").write_text(PIPE.format(changed=changed))
        git(tmp_path, "add", "pipe.py")
        git(tmp_path, "commit", "-q", "-m", f"changed part sleeps {changed} s")
    return tmp_path


def worktrees(repo) -> list[str]:
    out = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.startswith("worktree ")]


@pytest.mark.slow
def test_ab_runs_both_revisions_interleaved_and_finds_the_one_that_slowed(cli, repo):
    folder = repo / "ab"
    done = cli("check", "--ab", "HEAD~1", "--metric", "samples_per_s", *SWEEP, f"hydra.sweep.dir={folder}", timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("part=")}
    assert "REGRESSED" in rows["part=changed"] and "REGRESSED" not in rows["part=fixed"], done.stdout
    verdicts = {v["variant"]: v for v in json.loads((folder / "check.json").read_text())["verdicts"]}
    assert verdicts["part=changed"]["change"] == pytest.approx(-0.45, abs=0.12)
    assert "HEAD~1" in json.loads((folder / "check.json").read_text())["baseline"]
    # the base trials ran in the checkout of HEAD~1; the worktree is gone afterwards
    overrides = [json.loads(p.read_text())["overrides"] for p in folder.glob("**/result.json")]
    codes = {o.split("=", 1)[1] for trial in overrides for o in trial if o.startswith("trial.code=")}
    base = [c for c in codes if c.endswith("/base")]
    assert "null" in codes and len(base) == 1 and len(overrides) == 12
    assert len(worktrees(repo)) == 1 and not Path(base[0]).exists()


def test_ab_outside_a_repository_or_with_an_unknown_revision_says_so_in_one_line(cli, tmp_path, repo):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    done = cli("check", "--ab", "no-such-ref", *SWEEP)
    assert done.returncode == 2 and done.stderr.startswith("ERROR: --ab no-such-ref: no such commit in ")
    assert len(done.stderr.strip().splitlines()) == 1 and len(worktrees(repo)) == 1


@pytest.mark.slow
def test_the_second_sweep_replaces_what_an_earlier_check_left_in_its_folder(repo, monkeypatch):
    """check --ab's second sweep (into ROOT-more) runs the real sweep command with --overwrite: a folder an
    earlier gate run left behind is replaced, not refused (CI's gate failed here: the flag came before 'sweep')."""
    from harness.commands import ab

    monkeypatch.chdir(repo)
    overrides = ab.more_rounds(SWEEP, {"variants": {"part=fixed": {"overrides": {"loader.kwargs.part": "fixed"}}}}, ["part=fixed"], 1)
    assert "loader.kwargs.part=fixed" in overrides and "trial.repeats=1" in overrides
    folder = repo / "ab-more"
    for _ in range(2):  # the second time the folder holds the first one's results
        ab.sweep([*overrides, "trial.seconds=0.5"], repo, repo, root=folder)
        schedule = json.loads((folder / "schedule.json").read_text())
        assert sum(len(r) for r in schedule["rounds"]) == 2  # part=fixed at both "revisions", one round
    assert len(list(folder.glob("*/repeat-0/result.json"))) == 2
