"""``run`` and ``sweep``: Hydra composes the jobs, the harness launcher runs them (:mod:`harness.engine`).

Hydra's own runtime (``@hydra.main``, its multirun and a launcher plugin) drives the jobs,
so ``hydra.sweep.dir=...``, ``--cfg job``, ``hydra.sweeper.params`` in experiment files and
``hydra/launcher=...`` all work as Hydra users expect. The default launcher,
``hydra_plugins/harness_launcher``, checks every job before the first trial and runs the
trials of all jobs in interleaved rounds; another launcher runs :func:`harness.engine.task`
per job. This module claims the result folder, and when the jobs are done writes
results.csv, the merged trace and the report. A ``hydra.sweep.dir`` that already holds
results is refused unless ``--overwrite`` is given. SIGTERM and SIGINT stop the sweep
cleanly (:mod:`harness.trial.stop`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.advice.checked import ADVICE_DIR, ADVICE_FILE
from harness.commands.advise import take_option as take_verify_option
from harness.commands.calibrate import take_option as take_ceilings_option
from harness.commands.nodes import exclusive_nodes, override_value, say
from harness.commands.outputs import FAILED_TRIALS_EXIT, new_result_dir
from harness.config import CONF_DIR, register_configs
from harness.config.compose import compose, expand_sweep
from harness.engine import BENCH_DIR, SCHEDULE_FILE, chains_alone, check_job, receiving, task
from harness.errors import HarnessError
from harness.results.ceilings import CEILINGS_FILE
from harness.results.model import RESULT_FILE
from harness.results.table import TABLE_FILE, write_table
from harness.trial import preflight, stop
from harness.trial.alone import ALONE_DIR


def launch(overrides: Sequence[str], *, multirun: bool) -> Path | None:
    """Run the jobs through Hydra and return the result folder.

    A SIGTERM or SIGINT stops the running trial with its workers and records it as
    ``interrupted``; results.csv and the report are written for what finished, then
    :class:`SystemExit` carries 128 + the signal's number (143, 130), as a shell reports it.
    """
    overrides, overwrite = take_overwrite(overrides)
    overrides, ceilings = take_ceilings_option(overrides)  # report.ceilings=false: no calibration after the trials
    overrides, verify = take_verify_option(overrides)  # report.verify=N: run the top N recommended changes after the trials
    overrides, flags = split_flags(overrides)
    overrides = exclusive_nodes([open_kwargs(o) for o in overrides])
    if flags:  # --cfg job, --info ...: Hydra answers and runs nothing
        if multirun:  # Hydra takes --cfg / --info without --multirun, so one job at a time: the first
            jobs = expand_sweep(overrides)
            if len(jobs) > 1:
                print(f"harness: the first of {len(jobs)} jobs: {' '.join(jobs[0])}", file=sys.stderr, flush=True)
            overrides = jobs[0] + [o for o in overrides if o.lstrip("+~").startswith("hydra") and o not in jobs[0]]
        _run_hydra([sys.argv[0]] + flags + overrides)
        return None
    jobs = expand_sweep(overrides) if multirun else [overrides]
    first = check_job(compose(jobs[0], typed=False))  # names the folder; the launcher (or Preflight) checks every job
    if not multirun:  # a sweep's launcher warns for all its jobs at once; a run has no launcher of harness's own
        preflight.tell([first])
    dir_key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    given = [o.split("=", 1)[1] for o in overrides if o.startswith(dir_key + "=")]
    root = Path(given[0]) if given else new_result_dir(_folder_name(first), multirun)
    claim_folder(root, dir_key, overwrite, "sweep" if multirun else "run")  # here, not in a job: once, before any trial
    # Hydra gets the folder as an absolute path: a launcher may start its jobs elsewhere (Ray's working_dir), where a
    # relative one would put the results out of the sweep's sight
    kept = [o for o in overrides if not o.startswith(dir_key + "=")]
    argv = [sys.argv[0], *(["--multirun"] if multirun else []), *kept, f"{dir_key}={root.absolute()}"]
    sweeper = override_value(overrides, "hydra/sweeper", "basic")
    count = f"{len(jobs)} job(s)" if sweeper == "basic" else f"hydra/sweeper={sweeper} picks the jobs"
    print(f"harness: {count} -> {root}", flush=True)
    made = _first_missing(root)  # the folder this sweep will create first (None: root exists)
    with stop.stopping_on_signals(), receiving() as arrived, chains_alone(ceilings if multirun else None):
        try:
            _run_hydra(argv)
        except stop.Interrupted:
            pass  # every finished trial keeps its result.json, the stopped one says interrupted: write what there is
        except HarnessError:  # a job refused before any trial: leave no folder that a rerun would have to --overwrite
            if made is not None:
                _remove_if_only_hydra(root, made)
            raise
        _bring_back(root, arrived)
        _write_outputs(root, multirun, trace=first.monitor.trace, ceilings=ceilings)
        if multirun and verify and stop.requested() is None and (root / TABLE_FILE).exists():
            _verify(root, verify)
    signum = stop.requested()
    if signum is not None:
        _exit_interrupted(root, signum)
    return root if root.exists() else None


def _bring_back(root: Path, arrived: list) -> None:
    """Write the files jobs on other machines sent back that the sweep folder lacks (its folder was not theirs)."""
    from harness.results.records import unpack

    written, left_out = [], []
    for outcome in arrived:
        written += unpack(outcome.files, root)
        left_out += outcome.left_out
        outcome.files = {}  # Hydra's sweeper keeps the outcomes: let the copies go
    if any(name.endswith(RESULT_FILE) for name in written):
        say(
            f"{len(written)} files of the jobs came back with their results and were written under {root}: the jobs' machines do not see it"
        )
    if left_out:
        say(f"{len(left_out)} files too large to carry back stayed on the jobs' machines, e.g. {left_out[0]}")


def _first_missing(root: Path) -> Path | None:
    """The highest folder of ``root``'s path that does not exist yet, or ``None``."""
    if root.exists():
        return None
    top = root.absolute()
    while not top.parent.exists():
        top = top.parent
    return top


def _remove_if_only_hydra(root: Path, made: Path) -> None:
    """Delete the folders this sweep created, if they hold nothing but what Hydra writes before the first job."""
    if not root.is_dir() or {entry.name for entry in root.iterdir()} - {"multirun.yaml", ".submitit"}:
        return
    shutil.rmtree(root)
    for folder in root.absolute().parents:  # reports/, if this sweep made it and it is empty now
        if not folder.is_relative_to(made) or any(folder.iterdir()):
            break
        folder.rmdir()


def _folder_name(typed) -> str:
    """The result folder's name after the time: the experiment's name (``augbench`` for an augbench of no experiment)."""
    from harness.config.schema import choice

    return "augbench" if choice(typed.trial.kind) == "augbench" and typed.name == "default" else typed.name


def _write_outputs(root: Path, multirun: bool, *, trace: bool, ceilings: str | None = None) -> None:
    """results.csv, and for a sweep the merged trace, the ceilings (``ceilings``) and the report, over every trial that finished."""
    if not root.exists() or not any(root.glob(f"**/{RESULT_FILE}")):
        return  # stopped before any trial ended
    try:
        write_table(root)
        if multirun and trace:
            from harness.monitor.trace import write_sweep_trace

            write_sweep_trace(root)
        if multirun and ceilings and stop.requested() is None:  # after the trials, in a process of its own
            from harness.commands.calibrate import after_sweep

            after_sweep(root, ceilings)
        if multirun:
            from harness.report.render import write_report

            write_report(root)
    except stop.Interrupted:  # a second signal: the trials are already stopped, so leave at once
        print(f"stopped while writing the report; python -m harness report {root} writes it", file=sys.stderr, flush=True)


def _verify(root: Path, n: int) -> None:
    """Run the top ``n`` recommended changes against the sweep's best, then write the report again with what they measured."""
    from harness.commands.advise import after_sweep
    from harness.report.render import write_report

    try:
        after_sweep(root, n)
        write_report(root)
    except stop.Interrupted:  # a signal during the verification: its finished trials stay under advice/
        print(f"stopped while verifying the advice; python -m harness advise {root} runs it again", file=sys.stderr, flush=True)


def _exit_interrupted(root: Path, signum: int) -> None:
    """Print what finished and leave with the status a shell gives a process ended by ``signum``."""
    name = signal.Signals(signum).name
    if (root / TABLE_FILE).exists():
        print(f"interrupted by {name}: the running trial was stopped with its workers; finished trials are kept", flush=True)
        finish(root)
    else:
        print(f"interrupted by {name} before any trial finished", flush=True)
    raise SystemExit(stop.exit_status(signum))


# Free-form keys: a user's pipeline takes any keyword (loader=custom), so no schema lists them.
OPEN_KEYS = ("loader.kwargs.",)


def open_kwargs(override: str) -> str:
    """``loader.kwargs.workers=0,2`` -> ``++loader.kwargs.workers=0,2``: Hydra adds or sets a free-form key only when told to."""
    return f"++{override}" if override.startswith(OPEN_KEYS) else override


OVERWRITE_FLAG = "--overwrite"  # the harness's own flag, taken out before Hydra sees the command line
# What a run or sweep writes at the top of its folder; --overwrite deletes these and nothing else.
OUTPUT_FILES = (
    TABLE_FILE,
    "report.html",
    "summary.md",
    SCHEDULE_FILE,
    "trace.json",
    "multirun.yaml",
    "trial.yaml",
    CEILINGS_FILE,
    ADVICE_FILE,
)


def take_overwrite(args: Sequence[str]):
    """(the arguments without ``--overwrite``, whether it was given)."""
    rest = [a for a in args if a != OVERWRITE_FLAG]
    return rest, len(rest) != len(args)


def claim_folder(root: Path, dir_key: str, overwrite: bool, what: str = "sweep") -> None:
    """Refuse a folder that holds an earlier run's results, or clear them under ``--overwrite``.

    An earlier sweep's jobs would otherwise sit beside the new ones, in the table and the
    report, as if this sweep had run them.
    """
    if not root.is_dir():
        return
    results = len(list(root.glob(f"**/{RESULT_FILE}")))
    # Hydra writes multirun.yaml and the job folders' trial.yaml before the first trial
    planned = any((root / name).exists() for name in (SCHEDULE_FILE, "multirun.yaml", "trial.yaml")) or any(root.glob("*/trial.yaml"))
    if not results and not planned:
        return
    if not overwrite:
        raise HarnessError(
            f"{dir_key}={root} already holds a {what} ({results} results); choose another folder, or add "
            f"{OVERWRITE_FLAG} to delete them first (python -m harness {what} {OVERWRITE_FLAG} ...)"
        )
    made = [entry for entry in root.iterdir() if _made_here(entry)]
    for entry in made:
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    print(f"{OVERWRITE_FLAG}: deleted the earlier {what} in {root} ({results} results, {len(made)} entries)", flush=True)


def _made_here(entry: Path) -> bool:
    """Whether a run or sweep writes this entry of its folder (job and repeat folders, tables, report)."""
    if entry.is_symlink() or not entry.is_dir():
        return entry.name in OUTPUT_FILES
    job = entry.name.isdigit() and ((entry / "trial.yaml").exists() or (entry / ".hydra").exists())
    made = (".hydra", ".submitit", BENCH_DIR, ALONE_DIR, ADVICE_DIR)
    return job or entry.name in made or re.fullmatch(r"repeat-\d+", entry.name) is not None


# Hydra's own flags that take a value
_FLAGS_WITH_VALUE = ("--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")


def split_flags(args: Sequence[str]):
    """(overrides, Hydra flags such as ``--cfg job``) from a command line."""
    overrides, flags, take = [], [], False
    for arg in args:
        if take:
            flags.append(arg)
            take = False
        elif arg.startswith("-"):
            flags.append(arg)
            take = arg in _FLAGS_WITH_VALUE
        else:
            overrides.append(arg)
    return overrides, flags


def _run_hydra(argv: list[str]) -> None:
    import hydra

    register_configs()
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # a failure past validation is a bug: keep its traceback
    saved = sys.argv
    sys.argv = argv
    try:
        hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(task)()
    finally:
        sys.argv = saved


def _warn_placement(root: Path) -> None:
    """Loudly, on stderr: trials that shared a machine at the same time, or ran on different machines."""
    from harness.results.placement import concurrency_warning, machines_warning
    from harness.results.table import scan

    results = [result for _, result in scan(root).results]
    for line in (concurrency_warning(results), machines_warning(results)):
        if line:
            print(f"harness: WARNING: {line}", file=sys.stderr, flush=True)


def finish(root: Path | None) -> int:
    """Print the closing lines of a run or sweep, the folder last.

    Returns:
        0 when every trial was ok, :data:`FAILED_TRIALS_EXIT` when some were not (failed, timeout,
        too_short; an interrupted sweep leaves through :class:`SystemExit` with 128 + the signal).
    """
    if root is None:
        return 0
    from harness.report.orders import order_summary
    from harness.results.table import rows

    table = rows(root)
    if not table:  # every job ran and none left a result here: they wrote elsewhere, or never started a trial
        print(f"ERROR: no trial left a result under {root}; see the jobs' own logs (.submitit/, Ray's) for where they ran", file=sys.stderr)
        print(root)
        return FAILED_TRIALS_EXIT
    for line in order_summary(root):
        print(line)
    failed = [r for r in table if r["status"] != "ok"]
    print(f"{len(table)} trial(s): {len(table) - len(failed)} ok, {len(failed)} not ok")
    for row in failed:
        print(f"  job {row['job']} repeat {row['repeat']}: {row['status']}: {row['error']}  ({root / row['result']})")
    _warn_placement(root)
    print(f"table: {root / 'results.csv'}")
    if (root / "report.html").exists():
        print(f"report: {root / 'report.html'} (and summary.md)")
    print(root)
    return FAILED_TRIALS_EXIT if failed else 0
