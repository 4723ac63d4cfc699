"""``tune``: search a loader family's knobs for the highest throughput at the user's step time.

Two phases, both on the sweep engine (one process per trial):

1. **search**: Hydra's Optuna sweeper (TPE, seeded) proposes ``--trials`` configurations from the
   family's search space below, one trial each, into ``<tune>/search/``;
2. **confirm**: the best configuration found, the same with AUTOTUNE choosing what it can (tf.data:
   parallel calls and prefetch, TF's rewrites on; a cache stays), the family's defaults and, with
   ``--against SWEEP``, the fastest variant of an earlier sweep, run again
   in interleaved rounds (``trial.repeats``, 3 by default) into ``<tune>/confirm/``, so the gaps
   are measured in one run rather than read off trials that ran minutes apart.

``<tune>/tune.json`` and ``tune.md`` say what was found and by how much it beats the defaults.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

from harness.errors import ConfigError, HarnessError

# Each family's knobs and the values the search may pick; every combination must be a valid config.
# tf_data: 5 x 4 x 2 x 2 x 2 = 160 configurations; 20 trials of TPE (10 random, then guided) cover the ones that matter.
SPACES: dict[str, dict[str, str]] = {
    "tf_data": {
        "loader.num_parallel_calls": "none,1,2,4,autotune",
        "loader.prefetch": "none,1,2,autotune",
        "loader.cache": "none,memory",
        # TF's graph rewrites (on by default) re-parallelize a sequential map and add a prefetch; with a
        # cache, turning them off avoided slow epoch restarts here (experiments/idg_vs_tfdata/e_cache)
        "loader.map_parallelization": "true,false",
        "loader.inject_prefetch": "true,false",
    },
    "torch": {"loader.num_workers": "0,1,2,3,4", "loader.decoder": "pil,torchvision", "loader.collate": "default,numpy_stack"},
    "keras_sequence": {"loader.workers": "1,2,4", "loader.use_multiprocessing": "false,true", "loader.max_queue_size": "4,10,32"},
}
# The knobs AUTOTUNE sets itself, with TF's graph rewrites left at TF's defaults: "AUTOTUNE" in the confirmation
AUTOTUNED: dict[str, dict[str, str]] = {
    "tf_data": {
        "loader.num_parallel_calls": "loader.num_parallel_calls=autotune",
        "loader.prefetch": "loader.prefetch=autotune",
        "loader.map_parallelization": "loader.map_parallelization=true",
        "loader.inject_prefetch": "loader.inject_prefetch=true",
    }
}
TRIALS_FLAG, AGAINST_FLAG = "--trials", "--against"


def tune(args: Sequence[str]) -> int:
    from harness.commands.launch import new_result_dir

    overrides, trials, against = _options(list(args))
    family = _family(overrides)
    root = new_result_dir(f"tune-{family}", True)
    search = _search(overrides, family, trials, root / "search")
    best = _best(search)
    jobs = {"best found": [*overrides, *best]}
    if family in AUTOTUNED:  # what AUTOTUNE picks where the search fixed numbers, the rest as found (a cache stays)
        kept = [o for o in best if o.split("=")[0] not in AUTOTUNED[family]]
        jobs["AUTOTUNE"] = [*overrides, *kept, *AUTOTUNED[family].values()]
    jobs["defaults"] = [*overrides]
    if against is not None:
        jobs[f"best of {against.name}"] = _fastest_of(against)
    confirmed = _confirm(jobs, overrides, root / "confirm")
    report = _summary(family, trials, best, confirmed, root)
    print(report)
    (root / "tune.md").write_text(report + "\n")
    print(root)
    return 0


def _options(args: list[str]) -> tuple[list[str], int, Path | None]:
    """(overrides, the search's trial budget, an earlier sweep to beat) from the command line."""
    trials, against, rest, i = 20, None, [], 0
    while i < len(args):
        flag, _, value = args[i].partition("=")
        if flag in (TRIALS_FLAG, AGAINST_FLAG):
            if not value:
                if i + 1 >= len(args):
                    raise ConfigError(f"{flag} needs a value: {TRIALS_FLAG} 20, {AGAINST_FLAG} reports/<sweep>")
                value, i = args[i + 1], i + 1
            if flag == TRIALS_FLAG:
                if not value.isdigit() or int(value) < 2:
                    raise ConfigError(f"{TRIALS_FLAG} {value}: give a whole number of trials, at least 2")
                trials = int(value)
            else:
                against = Path(value)
                if not (against / "results.csv").is_file():
                    raise ConfigError(f"{AGAINST_FLAG} {value}: no results.csv there; give a sweep folder")
        else:
            rest.append(args[i])
        i += 1
    return rest, trials, against


def _family(overrides: list[str]) -> str:
    from harness.config.compose import compose, to_typed

    name = to_typed(compose(overrides)).loader.name
    if name not in SPACES:
        raise ConfigError(f"tune: loader={name} has no search space; tune one of: {', '.join(f'loader={f}' for f in SPACES)}")
    fixed = [key for key in SPACES[name] if any(o.lstrip("+").startswith(key + "=") for o in overrides)]
    if fixed:
        raise ConfigError(f"tune searches {', '.join(fixed)} itself; leave {'it' if len(fixed) == 1 else 'them'} off the command line")
    return name


def _search(overrides: list[str], family: str, trials: int, folder: Path) -> Path:
    """Phase 1: Hydra's Optuna sweeper over the family's space, one trial per proposal."""
    from harness.commands.launch import launch

    space = [f"{key}=choice({values})" for key, values in SPACES[family].items()]
    sweeper = ["hydra/sweeper=optuna", f"hydra.sweeper.n_trials={trials}", "hydra.sweeper.n_jobs=1"]
    sweeper += ["hydra.sweeper.direction=maximize", "hydra.sweeper.sampler.seed=0", f"hydra.sweep.dir={folder}"]
    sweeper += (
        [] if any(o.startswith("report.ceilings=") for o in overrides) else ["report.ceilings=false"]
    )  # each proposal: one trial, no more
    print(f"tune: searching {', '.join(SPACES[family])} in {trials} trials (Optuna TPE, seed 0)", flush=True)
    launch([*overrides, *space, *sweeper], multirun=True)
    return folder


def _best(search: Path) -> list[str]:
    """The overrides of the best configuration Optuna found (its optimization_results.yaml)."""
    from omegaconf import OmegaConf

    found = search / "optimization_results.yaml"
    if not found.is_file():
        raise HarnessError(f"{search}: the search left no optimization_results.yaml (did every trial fail?)")
    params = OmegaConf.to_container(OmegaConf.load(found)).get("best_params", {})  # type: ignore[union-attr]
    return [f"{key}={_text(value)}" for key, value in params.items()]


def _text(value) -> str:
    return {True: "true", False: "false", None: "none"}.get(value, str(value)) if isinstance(value, bool) or value is None else str(value)


def _fastest_of(sweep: Path) -> list[str]:
    """The overrides of an earlier sweep's fastest job (median samples/s over its ok trials)."""
    from harness.results.model import read_result
    from harness.results.table import rows

    speeds: dict[str, list[float]] = {}
    paths: dict[str, Path] = {}
    for row in rows(sweep):
        if row["status"] == "ok" and row["kind"] == "trial":
            speeds.setdefault(str(row["job"]), []).append(float(row["samples_per_s"]))
            paths[str(row["job"])] = sweep / row["result"]
    if not speeds:
        raise HarnessError(f"{AGAINST_FLAG} {sweep}: no ok trial to compare against")
    job = max(speeds, key=lambda j: statistics.median(speeds[j]))
    return list(read_result(paths[job]).overrides)


def _confirm(jobs: dict[str, list[str]], overrides: list[str], folder: Path) -> dict[str, dict]:
    """Phase 2: the candidates again, in interleaved rounds; each one's median samples/s and overrides."""
    from harness.commands.launch import _write_outputs
    from harness.engine import outcomes, run_jobs

    repeats = [] if any(o.startswith("trial.repeats=") for o in overrides) else ["trial.repeats=3"]
    names = list(jobs)
    print(f"tune: confirming {', '.join(names)} in interleaved rounds", flush=True)
    results = run_jobs([[*jobs[name], *repeats] for name in names], folder)
    _write_outputs(folder, True, trace=False)
    found = outcomes(results)
    out = {}
    for i, name in enumerate(names):
        ok = found[i].statuses.count("ok") if i in found else 0
        out[name] = {"overrides": jobs[name], "samples_per_s": found[i].samples_per_s if ok else None, "trials": ok}
    return out


def _summary(family: str, trials: int, best: list[str], confirmed: dict[str, dict], root: Path) -> str:
    """tune.md's text (and tune.json beside it): the best configuration and its gaps, measured in one run."""
    (root / "tune.json").write_text(json.dumps({"family": family, "trials": trials, "best": best, "confirmed": confirmed}, indent=1))
    found = confirmed["best found"]["samples_per_s"]
    lines = [f"## tune: loader={family}, {trials} search trials", "", f"Best configuration: `{' '.join(best)}`", ""]
    lines += ["| candidate | samples/s (median) | vs best found |", "| --- | ---: | ---: |"]
    for name, c in confirmed.items():
        speed = c["samples_per_s"]
        gap = f"{speed / found - 1:+.1%}" if speed and found else "–"
        lines.append(f"| {name} | {speed:.1f} | {gap} |" if speed else f"| {name} | failed | – |")
    return "\n".join(lines)
