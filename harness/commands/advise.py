"""``advise SWEEP_DIR``: predict what would make the sweep's best faster, run the top changes, and say what held.

1. The sweep is loaded with its ceilings (measured first where it has none: the CPU ceilings
   come from its chains run alone, the decoder costs from one thread);
2. every lever over every variant gives candidates, each a set of overrides with a predicted
   per-epoch samples/s (:mod:`harness.advice.plan`);
3. the best and the top ``--verify N`` candidates run in interleaved rounds (``--repeats``, 3
   by default) under the same conditions, a warm-up epoch and three measured epochs each (fewer in long epochs), into
   ``SWEEP_DIR/advice/``;
4. ``SWEEP_DIR/advice.json`` holds each change's prediction, its measurement per round against
   the best of that round, and the verdict; the report is written again with "Advice, checked",
   and its Recommendation takes the change that measured fastest.

``sweep ... report.verify=N`` does the same after the sweep's trials and calibration.
"""

from __future__ import annotations

import shutil
import statistics
import sys
from datetime import datetime
from pathlib import Path

from harness.advice.checked import ADVICE_DIR, ADVICE_FILE, Advice, Checked, verdict
from harness.errors import ConfigError, HarnessError

OPTION = "report.verify"  # on a sweep's command line: verify the top N changes after the trials (0: none)
VERIFY, REPEATS = 3, 3  # advise's defaults: changes verified, interleaved rounds


def take_option(args: list[str]) -> tuple[list[str], int]:
    """(the arguments without ``report.verify=N``, N; 0 where it is not given)."""
    rest, n = [], 0
    for arg in args:
        key, eq, value = arg.partition("=")
        if key.lstrip("+") != OPTION or not eq:
            rest.append(arg)
        elif value.strip().isdigit():
            n = int(value)
        else:
            raise ConfigError(f"{OPTION}={value}: give how many recommended changes to run and measure after the sweep (0: none)")
    return rest, n


def advise(args: list[str]) -> int:
    """The command: ``advise SWEEP_DIR [--verify N] [--repeats R] [--overwrite]``."""
    from harness.report.render import write_report
    from harness.trial import stop

    root, n, repeats, overwrite = _arguments(args)
    with stop.stopping_on_signals():
        try:
            found = verify(root, n, repeats=repeats, overwrite=overwrite)
        except stop.Interrupted as exc:
            print(f"interrupted: the running trial was stopped; no advice.json written (finished trials are in {root / ADVICE_DIR})")
            raise SystemExit(stop.exit_status(exc.signum)) from None

    for line in lines(found):
        print(line)
    write_report(root)
    print(f"report: {root / 'report.html'}")
    print(root / ADVICE_FILE)
    return 0


def _arguments(args: list[str]) -> tuple[Path, int, int, bool]:
    folders, n, repeats, overwrite, i = [], VERIFY, REPEATS, False, 0
    while i < len(args):
        flag, _, value = args[i].partition("=")
        if flag in ("--verify", "--repeats"):
            if not value:
                if i + 1 >= len(args):
                    raise ConfigError(f"{flag} needs a whole number: {flag} 3")
                value, i = args[i + 1], i + 1
            if not value.isdigit() or (flag == "--repeats" and int(value) < 2):
                raise ConfigError(f"{flag} {value}: give a whole number" + (" of at least 2 rounds" if flag == "--repeats" else ""))
            n, repeats = (int(value), repeats) if flag == "--verify" else (n, int(value))
        elif flag == "--overwrite":
            overwrite = True
        elif flag.startswith("-"):
            raise ConfigError(
                f"advise: unknown option {flag}; usage: python -m harness advise SWEEP_DIR [--verify N] [--repeats R] [--overwrite]"
            )
        else:
            folders.append(args[i])
        i += 1
    if len(folders) != 1 or not Path(folders[0]).is_dir():
        raise HarnessError("advise takes one sweep folder: python -m harness advise reports/<sweep> [--verify 3]")
    return Path(folders[0]), n, repeats, overwrite


def verify(root: Path, n: int, *, repeats: int = REPEATS, overwrite: bool = False) -> Advice:
    """Plan the sweep's advice, run the top ``n`` changes against its best, write ``advice.json``; what it holds."""
    from harness.advice.plan import plan

    sweep = _with_ceilings(root)
    found = plan(sweep)
    if found is None:
        raise HarnessError(f"{root}: no variant finished ok, so there is nothing to advise")
    chosen = found.top(n)
    conditions = found.conditions(chosen)
    record = Advice(
        datetime.now().isoformat(timespec="seconds"),
        {
            "job": found.best.job,
            "label": found.best.label,
            "overrides": found.best.overrides,
            "predicted": found.best_rate,
            "model": found.best_model,
            "measured": [],
        },
        conditions,
        repeats,
        untried=[_untried(c) for c in found.candidates[len(chosen) :]],
    )
    if not chosen:
        record.notes.append(f"no change is predicted to gain 5% or more over {found.best.label}: nothing to verify")
    else:
        _run(root, found, chosen, conditions, repeats, record, overwrite)
    del sweep
    record.write(Path(root) / ADVICE_FILE)
    return record


def _with_ceilings(root: Path):
    """The loaded sweep, calibrated first where it has no ceilings.json (its CPU ceilings and decoder costs feed the levers)."""
    from harness.results.ceilings import CEILINGS_FILE
    from harness.results.sweep import load

    if not (Path(root) / CEILINGS_FILE).is_file():
        from harness.commands.calibrate import after_sweep

        after_sweep(Path(root))
    return load(Path(root))


def _run(root: Path, found, chosen: list, conditions: list[str], repeats: int, record: Advice, overwrite: bool) -> None:
    from harness.config.compose import merge_overrides
    from harness.engine import run_jobs

    folder = Path(root) / ADVICE_DIR
    if folder.exists():
        if not overwrite:
            raise HarnessError(f"{folder} holds an earlier verification; add --overwrite to replace it (its advice.json too)")
        shutil.rmtree(folder)
    extra = [*conditions, f"trial.repeats={repeats}"]
    jobs = [merge_overrides(found.best.overrides, extra)] + [merge_overrides(c.run, extra) for c in chosen]
    print(f"advise: {found.best.label} and {len(chosen)} change(s) in {repeats} interleaved rounds -> {folder}", flush=True)
    for i, c in enumerate(chosen, start=1):
        print(f"  job {i}: {c.text}  (predicted {c.change.predicted:,.0f} samples/s, {c.gain:+.0%})", flush=True)
    results = run_jobs(jobs, folder)
    per_round = _rounds(results)
    best = per_round.get(0, {})
    record.best["measured"] = [best[r] for r in sorted(best)]
    for i, c in enumerate(chosen, start=1):
        mine = per_round.get(i, {})
        ratios = [mine[r] / best[r] for r in sorted(mine) if r in best and best[r] > 0]
        error = next((f"{t.status}: {t.error}" for t in results if t.job == i and t.status != "ok"), "")
        record.checked.append(
            Checked(
                c.change.lever,
                c.change.what,
                c.shown,
                jobs[i],
                c.base.job,
                c.base.label,
                round(c.change.predicted, 1),
                round(c.gain, 4),
                c.change.model,
                c.change.code,
                [round(mine[r], 1) for r in sorted(mine)],
                [round(x, 4) for x in ratios],
                verdict(c.gain, ratios),
                error if not ratios else "",
            )
        )


def _rounds(results) -> dict[int, dict[int, float]]:
    """job -> round -> samples/s of its ok trials (round r runs repeat r of every job)."""
    out: dict[int, dict[int, float]] = {}
    for t in results:
        if t.kind == "trial" and t.status == "ok":
            out.setdefault(t.job, {})[t.repeat] = float(t.summary["samples_per_s"])
    return out


def _untried(c) -> dict:
    return {
        "lever": c.change.lever,
        "what": c.change.what,
        "shown": c.shown,
        "predicted": round(c.change.predicted, 1),
        "gain": round(c.gain, 4),
        "model": c.change.model,
    }


def lines(found: Advice) -> list[str]:
    """The verification's table as the terminal shows it."""
    best = found.best
    measured = best.get("measured") or []
    out = [
        f"advice for {best['label']}: {statistics.median(measured):,.0f} samples/s measured" if measured else f"advice for {best['label']}:"
    ]
    for c in found.checked:
        got = f"measured {c.gain:+.0%} ({statistics.median(c.measured):,.0f} samples/s)" if c.gain is not None else f"failed: {c.error}"
        out.append(f"  {' '.join(c.shown)}: predicted {c.gain_predicted:+.0%}, {got}: {c.verdict}")
    out += [f"  note: {note}" for note in found.notes]
    winner = found.winner
    out.append(
        f"next step: {' '.join(winner.shown)} ({winner.gain:+.0%}, measured)"
        if winner
        else "next step: none of the verified changes measured faster"
    )
    return out


def after_sweep(root: Path, n: int) -> None:
    """``sweep ... report.verify=N``: verify after the trials and the calibration; a failure is a warning, not the sweep's."""
    print(f"verifying the top {n} recommended change(s) ({OPTION}=0 skips it)", flush=True)
    try:
        found = verify(root, n)
    except HarnessError as exc:
        print(f"WARNING: the advice was not verified: {exc}", file=sys.stderr, flush=True)
        return
    for line in lines(found):
        print(f"  {line}", flush=True)
