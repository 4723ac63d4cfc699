"""``python -m harness <command>``: the dispatch table.

User errors (:class:`~harness.errors.HarnessError`) print one ``ERROR:`` line and exit 1;
anything else is a bug and keeps its traceback. Frameworks are never imported here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

USAGE = """\
usage: python -m harness <command> [arguments]

Benchmark image input pipelines (tf.data, Keras, PyTorch DataLoader, ...) against one
synthetic accelerator; each trial runs in a fresh process.

commands:
  run     [overrides]      measure one configuration (trial.repeats trials)
  sweep   [overrides]      measure every combination of comma lists and ranges (Hydra multirun)
  augbench [overrides]     time each augment op per library on one thread (augment.library=a,b sweeps)
  tune [overrides]         search a loader's knobs (Optuna) and confirm the best against its defaults
  diagnose [overrides]     split a loader's data stall into prep (CPU) and fetch (I/O): cold vs warm vs from memory
  calibrate [overrides]    measure this machine's CPU and I/O ceilings (or calibrate SWEEP_DIR), write ceilings.json
  advise  SWEEP_DIR        predict what would speed the sweep's best up, run the top changes (--verify N), say what held
  datagen [overrides]      build the dataset a configuration describes, print its folder
  report  SWEEP_DIR        rebuild results.csv, write report.html and summary.md (sweeps do it themselves)
  check   SWEEP_DIR        CI regression gate: --save-baseline FILE, or --baseline FILE (exit 1 on a regression, 2 could not judge)
  history [--add SWEEP]    keep each gate run in a store (ci/history.jsonl), draw history.html with its change points
  compare A B              two sweeps side by side (matched variants, the change, beyond the noise or not): compare.html
  list                     config groups, their options, loaders and experiments

overrides are Hydra's: key=value, group=option, experiment=NAME, a,b,c lists, range(1,4).
run, sweep, augbench, tune, diagnose, datagen: --quiet (-q) draws no progress bar (drawn only when stderr is a terminal).
examples:
  python -m harness run loader=synthetic loader.produce_ms=5 consumer.step_ms=10 trial.seconds=5
  python -m harness sweep loader=tf_data loader.num_parallel_calls=1,2,autotune
  python -m harness sweep experiment=quickstart
  python -m harness <command> --help        more on one command

exit codes: 0 ok, 1 usage or configuration error (check: a regression), 2 check could not judge,
            3 some trials failed, timed out or were too short, 130 / 143 stopped by Ctrl-C / SIGTERM.
"""

COMMAND_HELP = {
    "run": "usage: python -m harness run [--overwrite] [--quiet] [overrides]\n\nRuns one configuration: trial.repeats trials, each in a "
    "fresh process, written to reports/runs/<time>_<name>/ (or hydra.run.dir=DIR; a DIR holding results is refused unless "
    "--overwrite deletes them first).\nHydra's flags pass through: --cfg job prints the composed config, --info shows the "
    "search path.\nOn a terminal a progress bar on stderr shows a dataset build (files/s, ETA) and, with trial.repeats above "
    "1, trial i/N and an ETA; --quiet (-q) or HARNESS_PROGRESS=0 turns it off.\n",
    "sweep": "usage: python -m harness sweep [--overwrite] [--quiet] [overrides]\n\nRuns the Cartesian product of comma lists and ranges "
    "(loader.workers=0,1,2 trial.repeats=3) plus any hydra.sweeper.params of the experiment, one trial process at a time, "
    "into reports/<time>_<name>/ (or hydra.sweep.dir=DIR), with results.csv rewritten after each trial.\n"
    "Every job is composed and validated before the first trial starts. hydra/launcher=harness (the default) runs the "
    "trials of all jobs in interleaved rounds; another Hydra launcher (hydra/launcher=submitit_local, submitit_slurm with "
    "the [slurm] extra) runs each job's trials where it puts the job. A hydra.sweep.dir that holds results is refused "
    "unless --overwrite deletes what an earlier sweep wrote there.\nCtrl-C or SIGTERM stops the "
    "running trial with its workers (status interrupted), keeps every finished result and writes the report of what "
    "finished; exit 130 / 143.\nOn a terminal a progress bar on stderr shows trial i/N, the running variant and an ETA from the "
    "finished trials (dataset builds: files/s and ETA); --quiet (-q) or HARNESS_PROGRESS=0 turns it off. A log gets one "
    "line per trial and no bar.\nAfter the trials: report.ceilings=true (the default; quick: shorter; false: none) measures "
    "the ceilings, each work's chain also running alone in the sweep's rounds; report.verify=N runs the top N recommended "
    "changes against the best in interleaved rounds (as python -m harness advise SWEEP_DIR does).\n",
    "datagen": "usage: python -m harness datagen [--quiet] [overrides] [+tfrecord=none,gzip] [+webdataset=N]\n\n"
    "Builds the dataset that the dataset.* "
    "settings describe (once; later calls reuse it) and prints its folder. tfrecord=none|gzip|both also writes TFRecord shards.\n"
    "On a terminal a progress bar on stderr shows files written, files/s and an ETA; --quiet (-q) or HARNESS_PROGRESS=0 turns it off.\n",
    "diagnose": "usage: python -m harness diagnose [overrides]\n\nWhere the loader's data stall comes from (DS-Analyzer's "
    "differential method, no root needed): the consumer fed from memory, the loader with a warm page cache and with its "
    "files evicted (dataset.page_cache=warm|cold) run in interleaved rounds (trial.repeats, default 3; one epoch each unless "
    "a bound is given); prints the data stall split into prep (CPU) and fetch (I/O) as shares of the step time, and writes "
    "diagnosis.md, diagnosis.json, results.csv and report.html into reports/<time>_diagnose-<loader>/.\n",
    "tune": "usage: python -m harness tune [--trials N] [--against SWEEP_DIR] [overrides]\n\nSearches the knobs of the loader "
    "family (loader=tf_data, torch or keras_sequence) for the highest samples/s at the given consumer.step_ms: Hydra's Optuna "
    "sweeper (TPE, seed 0) proposes N configurations (default 20), one trial each, into reports/<time>_tune-<family>/search/. "
    "Then the best one, the same with AUTOTUNE choosing what it can, the family defaults and, with --against, "
    "the fastest variant of an earlier "
    "sweep run again in interleaved rounds (confirm/), and tune.md says the gaps.\n",
    "calibrate": "usage: python -m harness calibrate [overrides]\n       python -m harness calibrate SWEEP_DIR\n\nMeasures what "
    "this machine could feed at most, in a process of its own with every thread pool at one thread: one core's cost per sample "
    "of each decode library the loaders use (decode + resize to batch.*, or decode + the augment pipeline; PIL for a loader that "
    "decodes nothing), timed over files in the page cache (warm-up, then passes for about a second; the median, fastest and "
    "slowest pass); the usable cores (affinity, cgroup quota); the dataset's read bandwidth (4 threads, after evicting the files "
    "from the page cache). For a SWEEP_DIR, each work's fastest chain also runs alone (consumer.step_ms=0, its family's most "
    "parallel settings, one repeating iterator where it has one, 2 runs of 2 s on the sweep's engine, into SWEEP_DIR/ceilings/): "
    "CPU ceiling = the larger of its steady state and the usable cores / its CPU per sample; I/O ceiling = bandwidth / mean file "
    "size; both in samples/s, printed beside the accelerator's (batch.size / consumer.step_ms). Overrides compose jobs as sweep does "
    "(comma "
    "lists give several) and write reports/<time>_calibrate/ceilings.json; a SWEEP_DIR is calibrated for its own trials' loaders "
    "into SWEEP_DIR/ceilings.json, which report then shows. Every sweep does that after its trials (10-20 s) unless "
    "report.ceilings=false or HARNESS_CEILINGS=0.\n",
    "advise": "usage: python -m harness advise SWEEP_DIR [--verify N] [--repeats R] [--overwrite]\n\nPredicts what would make the "
    "sweep's best variant faster and measures it. Every lever (epoch restarts: one repeating iterator, persistent workers, "
    "autotuning off; parallel calls or workers against the usable cores; prefetch; a cache of decoded images; the decoder; "
    "vectorized light ops; TFRecord shards; pin_memory on a GPU) over every variant gives a change, a set of overrides with a "
    "predicted samples/s per epoch and the model behind it (the variant's steady state and restart cost, its CPU per sample, the "
    "ceilings, one core's decode cost per decoder). The best and the top N changes (default 3) then run in R interleaved rounds "
    "(default 3), each a warm-up epoch and one measured epoch, into SWEEP_DIR/advice/; SWEEP_DIR/advice.json and the report's "
    '"Advice, checked" give each change\'s prediction, its measured gain against the best of the same round, and a verdict '
    "(confirmed, smaller or larger than predicted, no gain, slower). A change that measured slower is never advised. A sweep "
    "without ceilings.json is calibrated first. sweep ... report.verify=N does this after the sweep's trials.\n",
    "augbench": "usage: python -m harness augbench [--quiet] [overrides]\n\nTimes each op of the augment pipeline, and the whole "
    "pipeline, on one thread over decoded images in memory (no loader): warm-up, augment.bench_passes timed passes, median "
    "images/s with min, max and CV (flagged unstable above augment.bench_cv). Alone, it times augment=resize_rotate in every "
    "library that can run it; augment=... or augment.ops pick the pipeline, augment.library=a,b the libraries. "
    "One process per job of the grid, e.g.\n"
    "  python -m harness augbench augment=resize_rotate augment.library=torchvision,albumentations,tf_image "
    "augment.order=cheap,costly\nis a sweep of augbench trials (trial.kind=augbench) on the sweep's engine: result.json and "
    "samples.png per job, results.csv and report.html in reports/<time>_augbench/. Sweeps with augment.ops run it by "
    "themselves at the end (augment.bench=false skips it).\nOn a terminal a progress bar shows trial i/N and an ETA; "
    "--quiet (-q) turns it off.\n",
    "report": "usage: python -m harness report SWEEP_DIR [report.baseline=JOB_OR_LABEL]\n\nRebuilds SWEEP_DIR/results.csv from its "
    "result.json files, prints it, and writes SWEEP_DIR/report.html (one self-contained page: verdict, ranking, diagnosis, "
    "plots) and summary.md (the ranking in Markdown, for a pull request). Speed-ups are against the sweep's first variant unless "
    "report.baseline names a job number or variant label. Needs neither TensorFlow nor torch.\nReads SWEEP_DIR/JOB/repeat-N/"
    "result.json only; a folder holding several sweeps is refused with their names. An unreadable result.json is skipped "
    "with a warning naming it. Trials that were too short or interrupted are listed by status with their reason, and a "
    "sweep whose schedule.json lists trials without a result is marked INCOMPLETE.\n",
    "check": "usage: python -m harness check SWEEP_DIR (--save-baseline FILE | --baseline FILE) [--ratio-to VARIANT]\n"
    "       [--metric M ...] [--threshold M=5%] [--alpha 0.01] [--allow-env-change] [--markdown F] [--github-json PREFIX]\n"
    "       [--bencher-json F]\n\nA regression is a change that is significant (Mann-Whitney U on 0.5 s windows, p < alpha), "
    "beyond the metric's threshold (samples_per_s and cpu_ms_per_sample 10%, stall_pct 5 points by default) and beyond "
    "the smallest change the repeats can tell from noise (printed). --ratio-to divides every variant's per-sample rates by "
    "a reference variant's from the same round (machine-independent). Exit 0: no regression; "
    "1: a regression (even if other comparisons could not be judged); 2: could not judge: bad options (--alpha outside "
    "(0, 1), a NaN or negative threshold), a missing or malformed baseline or result.json (named), a folder holding several "
    "sweeps, another machine in absolute mode, or a comparison that cannot be judged (trials failed, too short, interrupted "
    "or missing; NaN samples; too few 0.5 s windows to ever reach p < alpha, with how many are needed), each in one line.\n",
    "history": "usage: python -m harness history [--store FILE] [--add SWEEP_DIR [--commit SHA]] [--out FILE]\n\n"
    "Keeps each gate run's figures in a store (JSON lines, default ci/history.jsonl): --add appends the sweep's commit, date, "
    "machine fingerprint and per-variant medians with their range. Then writes history.html beside the store (or --out): "
    "per variant and metric the trend over commits with the spread and the change points (ruptures' PELT), each printed "
    "with its first commit and step. check --history STORE does the append and fails on a step for the worse.\n",
    "compare": "usage: python -m harness compare A B [--out FILE] [--metric M ...] [--alpha 0.01]\n\n"
    "Two sweep folders (before and after a change, or two machines) side by side: per variant present in both (same "
    "label) and metric (default samples_per_s, cpu_ms_per_sample, stall_pct), A's and B's medians, the change, the "
    "smallest change their repeats can tell from noise, and whether the change is beyond it (p < alpha on the windows). "
    "Writes compare.html (or --out) and prints the table; variants only one sweep has are listed. No threshold, no "
    "verdict on the build: exit 0 (1 when a folder is not a readable sweep). Needs neither TensorFlow nor torch.\n",
    "list": "usage: python -m harness list\n\nLists config groups and their options, loader families and experiments.\n",
}


def _run(args: list[str]) -> int:
    from harness.commands.launch import finish, launch

    return finish(launch(args, multirun=False))


def _sweep(args: list[str]) -> int:
    from harness.commands.launch import finish, launch

    return finish(launch(args, multirun=True))


def _diagnose(args: list[str]) -> int:
    from harness.commands.diagnose import diagnose

    return diagnose(args)


def _tune(args: list[str]) -> int:
    from harness.commands.tune import tune

    return tune(args)


def _augbench(args: list[str]) -> int:
    from harness.commands.augbench import augbench

    return augbench(args)


def _advise(args: list[str]) -> int:
    from harness.commands.advise import advise

    return advise(args)


def _calibrate(args: list[str]) -> int:
    from harness.commands.calibrate import calibrate

    return calibrate(args)


def _datagen(args: list[str]) -> int:
    from harness.commands.datagen import datagen

    return datagen(args)


def _report(args: list[str]) -> int:
    from harness.commands.report import report

    return report(args)


def _check(args: list[str]) -> int:
    from harness.commands.check import check

    return check(args)


def _history(args: list[str]) -> int:
    from harness.commands.history import history

    return history(args)


def _compare(args: list[str]) -> int:
    from harness.commands.compare import compare

    return compare(args)


def _list(args: list[str]) -> int:
    from harness.commands.listing import listing

    return listing(args)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "run": _run,
    "sweep": _sweep,
    "augbench": _augbench,
    "tune": _tune,
    "diagnose": _diagnose,
    "calibrate": _calibrate,
    "advise": _advise,
    "datagen": _datagen,
    "report": _report,
    "check": _check,
    "history": _history,
    "compare": _compare,
    "list": _list,
}


CONFIG_COMMANDS = (
    "run",
    "sweep",
    "augbench",
    "tune",
    "diagnose",
    "calibrate",
    "advise",
    "datagen",
    "list",
)  # the commands that compose configs
_CONFIG_DIR_FLAGS = ("--config-dir", "-cd")


def take_config_dirs(args: list[str]) -> list[str]:
    """Register the experiments of each ``--config-dir DIR`` (or ``--config-dir=DIR``); the other arguments.

    Hydra would add DIR as a config root and look for DIR/experiment/NAME.yaml; a folder of
    experiments as the project keeps them (DIR/NAME.yaml) is what users have, and both work.
    """
    from harness.config import add_experiment_dir
    from harness.errors import ConfigError

    rest, i = [], 0
    while i < len(args):
        arg = args[i]
        flag, _, value = arg.partition("=")
        if flag in _CONFIG_DIR_FLAGS:
            if not value:
                if i + 1 >= len(args):
                    raise ConfigError(f"{flag} needs a folder: {flag} ./my_experiments")
                value, i = args[i + 1], i + 1
            add_experiment_dir(Path(value))
        else:
            rest.append(arg)
        i += 1
    return rest


QUIET_COMMANDS = ("run", "sweep", "augbench", "tune", "diagnose", "advise", "datagen")  # the commands that draw progress bars
_QUIET_FLAGS = ("--quiet", "-q")


def take_quiet(command: str, args: list[str]) -> tuple[list[str], bool]:
    """(the arguments without ``--quiet`` / ``-q``, whether it was given) for a command that draws bars."""
    if command not in QUIET_COMMANDS:
        return args, False
    rest = [a for a in args if a not in _QUIET_FLAGS]
    return rest, len(rest) != len(args)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"ERROR: unknown command {command!r}; choose one of: {', '.join(COMMANDS)} (python -m harness --help)", file=sys.stderr)
        return 1
    args, quiet = take_quiet(command, args)
    if args and args[0] in ("-h", "--help"):
        print(COMMAND_HELP[command], end="")
        return 0
    import harness.progress as progress
    from harness.errors import HarnessError, environment_error

    try:
        if command in CONFIG_COMMANDS:
            args = take_config_dirs(args)
        with progress.quiet(quiet):
            return COMMANDS[command](args)
    except HarnessError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full or read-only disk is the user's to fix; any other OSError is a bug
        line = environment_error(exc)
        if line is None:
            raise
        print(f"ERROR: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; trials already finished keep their result.json and results.csv", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
