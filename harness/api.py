"""The Python entry points, for notebooks and tests: :func:`measure` and :func:`sweep`.

Both run the command line's engine: every trial in a process of its own, sampled,
written under ``reports/`` like any run or sweep, so a number from a notebook means what
the same number in a report means.

    import harness
    result = harness.measure("my_pipelines:make_loader", steps=50, step_ms=10)
    result.summary["samples_per_s"], result.row["stall_pct"]
    table = harness.sweep(["loader=tf_data", "loader.num_parallel_calls=1,autotune"])
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.results.model import TrialResult


@dataclass
class Measurement(TrialResult):
    """A trial's ``result.json``, plus where it lies and its ``results.csv`` row (a pandas Series)."""

    folder: Path | None = None  # the run's folder (repeat-N/result.json, results.csv)
    row: Any = None  # pandas.Series: the row results.csv holds for this trial


def measure(
    pipeline: str | Callable | Iterable,
    *overrides: str,
    steps: int | None = None,
    seconds: float | None = None,
    step_ms: float | None = None,
    kwargs: Mapping[str, Any] | None = None,
    folder: str | Path | None = None,
) -> Measurement:
    """Measure one pipeline in an isolated trial (``loader=custom``) and return its result.

    Args:
        pipeline: ``"module:function"``; a function (called with the dataset's files and the
            batch spec, see :mod:`harness.loaders.custom`); or a pipeline object itself (a
            DataLoader, a PyDataset, any iterable of batches). A function or object that the
            trial's process cannot import (defined in a notebook) is pickled for it.
        overrides: any other setting, as on the command line (``"dataset.count=512"``).
        steps, seconds: the measured phase's bound (``trial.steps``, ``trial.seconds``).
        step_ms: the accelerator's step time (``consumer.step_ms``).
        kwargs: keyword arguments for the function (``loader.kwargs.*``).
        folder: the run's folder (``hydra.run.dir``); a new one under ``reports/runs/`` by default.

    Raises:
        HarnessError: a configuration mistake (one line), or a pipeline that cannot be sent
            to the trial's process. A trial that fails is returned with ``status`` and ``error``.
    """
    with tempfile.TemporaryDirectory(prefix="harness-measure-") as scratch:
        target = _target(pipeline, Path(scratch))
        args = ["loader=custom", f"loader.target={target}", *_kwargs_overrides(kwargs), *_bounds(steps, seconds, step_ms)]
        args += [*overrides, *([f"hydra.run.dir={folder}"] if folder is not None else [])]
        root = _launch(args, multirun=False)
    return _measurement(root)


def sweep(overrides: Sequence[str], *, config_dir: str | Path | None = None, folder: str | Path | None = None):
    """Run a sweep (the command line's ``harness sweep``) and return its results table as a pandas DataFrame.

    Args:
        overrides: as on the command line (``"loader.workers=0,2"``, ``"experiment=quickstart"``).
        config_dir: a folder of the user's experiments and loader options (``--config-dir``).
        folder: the sweep's folder (``hydra.sweep.dir``); a new one under ``reports/`` by default.

    ``table.attrs["folder"]`` is the sweep's folder (report.html, summary.md).
    """
    import pandas as pd

    if config_dir is not None:
        from harness.config import add_experiment_dir

        add_experiment_dir(Path(config_dir))
    root = _launch([*overrides, *([f"hydra.sweep.dir={folder}"] if folder is not None else [])], multirun=True)
    table = pd.read_csv(root / "results.csv")
    table.attrs["folder"] = root
    return table


def _launch(args: list[str], *, multirun: bool) -> Path:
    from harness.commands.launch import launch

    root = launch(args, multirun=multirun)
    if root is None:
        raise HarnessError("nothing ran: a Hydra flag (--cfg, --info) only prints; drop it to measure")
    return root


def _bounds(steps, seconds, step_ms) -> list[str]:
    named = {"trial.steps": steps, "trial.seconds": seconds, "consumer.step_ms": step_ms}
    return [f"{key}={value}" for key, value in named.items() if value is not None]


def _kwargs_overrides(kwargs: Mapping[str, Any] | None) -> list[str]:
    return [f"++loader.kwargs.{name}={_value(value)}" for name, value in (kwargs or {}).items()]


def _value(value: Any) -> str:
    """A Python value as a Hydra override's value (strings quoted, so '1,2' is not a sweep)."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value)


def _target(pipeline, scratch: Path) -> str:
    """``loader.target`` for ``pipeline``: its import path, or a file it was pickled into."""
    if isinstance(pipeline, str):
        return pipeline
    path = _import_path(pipeline)
    if path is not None:
        return path
    try:
        import cloudpickle as pickler  # functions and classes defined in a notebook, by value
    except ImportError:
        import pickle as pickler
    file = scratch / "pipeline.pkl"
    try:
        file.write_bytes(pickler.dumps(pipeline))
    except Exception as exc:  # a tf.data.Dataset, an open iterator: bound to this process
        raise HarnessError(
            f"cannot send this {type(pipeline).__name__} to the trial's process ({type(exc).__name__}: {exc}); "
            "pass the function that builds it, or its import path 'module:function'"
        ) from exc
    return str(file)


def _import_path(obj) -> str | None:
    """``module:qualname`` when the trial's process can import ``obj`` by that name."""
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not name or module == "__main__" or "<" in name:
        return None
    try:
        found: Any = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    return f"{module}:{name}" if found is obj else None


def _measurement(root: Path) -> Measurement:
    """The run's first trial as a :class:`Measurement`, with its results.csv row."""
    import pandas as pd

    from harness.results.model import RESULT_FILE, read_result

    files = sorted(root.glob(f"repeat-*/{RESULT_FILE}"))
    if not files:
        raise HarnessError(f"{root}: the run left no {RESULT_FILE}")
    result = read_result(files[0])
    table = pd.read_csv(root / "results.csv")
    row = table[(table["job"] == result.job) & (table["repeat"] == result.repeat)].iloc[0]
    values = {f.name: getattr(result, f.name) for f in fields(TrialResult)}
    return Measurement(**values, folder=root, row=row)
