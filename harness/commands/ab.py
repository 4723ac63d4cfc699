"""``check --ab REF``: the pipeline at a base revision and at the working tree, interleaved in one sweep.

asv's ``continuous`` compares two commits in one run; so does this. The base revision is
checked out into a temporary git worktree (removed afterwards, also on failure or Ctrl-C);
the sweep gets one more axis, ``trial.code`` = that checkout or null (the working tree), so
every round runs each variant at both revisions in a shuffled order on the same machine,
and no baseline from another day or machine is needed. A trial with ``trial.code`` set runs
in that checkout with it first on ``PYTHONPATH``: the user's modules are the base
revision's, and where the repository is harness itself, so is harness's own loader code.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from harness.check import CheckError

CODE_KEY = "trial.code"
AB_DIR = Path("reports") / "ab"  # where an A/B sweep goes unless hydra.sweep.dir says otherwise


def _git(args: Sequence[str], cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise CheckError(f"git {' '.join(args)}: {(done.stderr or done.stdout).strip().splitlines()[-1:] or ['failed']}"[:300])
    return done.stdout.strip()


def resolve(ref: str, cwd: Path) -> tuple[Path, str]:
    """The repository's top folder and ``ref``'s commit, or one line saying what is wrong."""
    if shutil.which("git") is None:
        raise CheckError("--ab needs git on PATH")
    try:
        top = Path(_git(["rev-parse", "--show-toplevel"], cwd))
    except CheckError:
        raise CheckError(f"--ab {ref}: {cwd} is not inside a git repository; run it from your pipeline's repository") from None
    try:
        commit = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], top)
    except CheckError:
        raise CheckError(f"--ab {ref}: no such commit in {top} (a branch, tag, HEAD~1 or a hash)") from None
    return top, commit


@contextmanager
def worktree(top: Path, commit: str):
    """A detached checkout of ``commit`` in a temporary folder, removed with its git bookkeeping on the way out."""
    scratch = Path(tempfile.mkdtemp(prefix="harness-ab-"))
    path = scratch / "base"
    # SIGTERM (a CI job cancelled) unwinds like Ctrl-C, so the checkout never outlives the command
    before = signal.signal(signal.SIGTERM, _exit_on_term)
    try:
        _git(["worktree", "add", "--detach", "--quiet", str(path), commit], top)
        yield path
    finally:
        signal.signal(signal.SIGTERM, before)
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=top, capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=top, capture_output=True)


def _exit_on_term(signum, frame):
    raise SystemExit(128 + signum)


def refuse_code_override(overrides: Sequence[str]) -> None:
    """Before any checkout: the A/B sweep's code axis is --ab's own."""
    if any(o.split("=", 1)[0].lstrip("+~") == CODE_KEY for o in overrides):
        raise CheckError(f"--ab sets {CODE_KEY} itself (the base checkout and the working tree); drop it from the overrides")


def sweep(overrides: Sequence[str], base: Path, top: Path, root: Path | None = None) -> Path:
    """Run the A/B sweep (both revisions in every round) into ``root`` (else hydra.sweep.dir, else a new folder); its folder.

    A ``root`` given here is the check's own (its second sweep): what an earlier check left there is replaced.
    """
    given = [o.split("=", 1)[1] for o in overrides if o.startswith("hydra.sweep.dir=")]
    given_root = root is not None
    root = root or (Path(given[0]) if given else AB_DIR / datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    kept = [o for o in overrides if not o.startswith("hydra.sweep.dir=")]
    # a gate compares the pipeline's speed, not its ceilings: no chains run alone unless asked
    ceilings = [] if any(o.startswith("report.ceilings=") for o in kept) else ["report.ceilings=false"]
    flags = ["--overwrite"] if given_root else []
    argv = [sys.executable, "-m", "harness", "sweep", *flags, *kept, *ceilings, f"{CODE_KEY}={base},null", f"hydra.sweep.dir={root}"]
    print(f"harness: A/B of {base.name} ({_short(base)}) and the working tree of {top}", flush=True)
    proc = subprocess.Popen(argv)
    try:
        code = proc.wait()
    except BaseException:  # Ctrl-C or SIGTERM (see worktree): the sweep stops its trial cleanly and records it
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        raise
    if code not in (0, 1):  # 1: some trial failed; check says which comparisons it could not judge
        raise CheckError(f"the A/B sweep into {root} stopped (exit {code}); its output is above")
    return root


def more_rounds(overrides: Sequence[str], doc: dict, names: Sequence[str], rounds: int) -> list[str]:
    """The overrides of a second A/B sweep: ``rounds`` more rounds of just the variants ``names`` (labels of ``doc``).

    Each swept key the user gave on the command line is cut to the values those variants have
    (their combinations, where several keys were swept); an experiment's own sweep axes stay
    whole. ``trial.repeats`` is replaced, as is hydra.sweep.dir (the caller gives the folder).
    """
    values: dict[str, list[str]] = {}
    for name in names:
        for key, value in doc["variants"][name]["overrides"].items():
            if key != CODE_KEY and value not in values.setdefault(key.lstrip("+~"), []):
                values[key.lstrip("+~")].append(value)
    out = []
    for o in overrides:
        key = o.split("=", 1)[0]
        bare = key.lstrip("+~")
        if bare == "trial.repeats" or o.startswith("hydra.sweep.dir="):
            continue
        out.append(f"{key}={','.join(values[bare])}" if bare in values and "," in o.split("=", 1)[-1] else o)
    return [*out, f"trial.repeats={rounds}"]


def pool(first: dict, second: dict) -> dict:
    """One side's variants with the second sweep's repeats after the first's, its rounds numbered on (1000 + round)."""
    variants = {name: dict(v, repeats=list(v["repeats"])) for name, v in first["variants"].items()}
    for name, v in second["variants"].items():
        if name in variants:
            more = [dict(r, round=ROUND_OFFSET + r["round"]) if isinstance(r.get("round"), int) else r for r in v["repeats"]]
            variants[name]["repeats"] += more
            variants[name]["problems"] = list(variants[name].get("problems", [])) + list(v.get("problems", []))
    return {**first, "variants": variants}


ROUND_OFFSET = 1000  # a second sweep's round r pools as round 1000 + r: still paired with the other side's round r


def _short(path: Path) -> str:
    try:
        return _git(["rev-parse", "--short", "HEAD"], path)
    except CheckError:
        return "?"


def split(data: dict, base: Path) -> tuple[dict, dict]:
    """The A/B sweep's collected variants as (base, head) documents, paired by their label without the code axis."""
    sides: tuple[dict, dict] = ({"variants": {}}, {"variants": {}})
    for label, variant in data["variants"].items():
        code = variant["overrides"].get(CODE_KEY)
        is_base = code not in (None, "null") and Path(code) == base
        # the label without this axis's own part (code=VALUE): a user's axis ending in .code stays
        name = " ".join(part for part in label.split() if part != f"code={code}") or "pipeline"
        sides[0 if is_base else 1]["variants"][name] = variant
    for side in sides:
        side["fingerprint"], side["commit"] = data["fingerprint"], data.get("commit")
    if not sides[0]["variants"] or not sides[1]["variants"]:
        raise CheckError("the A/B sweep has no results at one of the revisions; see its trials' errors in the report")
    return sides
