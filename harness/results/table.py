"""``results.csv``: one row per trial of a sweep, rebuilt from the trials' result files.

The table is rewritten after every trial, so an interrupted sweep still has a table of
what it finished. Columns: job, repeat, status, one column per override key, the
summary metrics, the error text and the result file's path.
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.results.metrics import TABLE_METRICS
from harness.results.model import RESULT_FILE, TrialResult, read_result
from harness.results.placement import where

TABLE_FILE = "results.csv"
METRICS = TABLE_METRICS  # results.csv's metric columns (harness.results.metrics)


JOB_DIR = re.compile(r"\d+$")  # Hydra's sweep subdir, ${hydra.job.num} (conf/config.yaml)
REPEAT_DIR = re.compile(r"repeat-\d+$")  # one trial of a job (launch._trial_dir)
BENCH_DIR = "augbench"  # augbench runs after a sweep (augbench.BENCH_DIR)
# folders one search may list before it gives up: a sweep of 1,000 jobs lists about 1,000;
# without a bound, `report /` would walk the whole filesystem
MAX_FOLDERS = 10_000
# a sweep folder that has not written a result yet still has these
SWEEP_MARKERS = ("schedule.json", TABLE_FILE)


@dataclass
class Scan:
    """What a sweep folder holds: the result files the harness can read, and the ones it cannot."""

    results: list[tuple[Path, TrialResult]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # unreadable result files and why (a line naming the file)
    stopped: str | None = None  # the search hit MAX_FOLDERS: what it left unsearched

    def skipped_lines(self) -> list[str]:
        return [f"skipped {why}" for _, why in self.skipped] + ([self.stopped] if self.stopped else [])


class _Search:
    """Directory listings with a shared budget, so a search of a huge folder ends quickly."""

    def __init__(self, budget: int | None = None):
        self.left = MAX_FOLDERS if budget is None else budget
        self.stopped = False  # a listing was refused: what lies beyond was not looked at

    def subdirs(self, folder: Path) -> list[Path]:
        if self.left <= 0:
            self.stopped = True
            return []
        self.left -= 1
        try:
            with os.scandir(folder) as entries:
                # hidden folders (.hydra, .git) never hold results
                return sorted(Path(e.path) for e in entries if not e.name.startswith(".") and e.is_dir())
        except OSError:  # unreadable folders (permissions, /proc races) hold no results we could read
            return []


def _layout(root: Path, search: _Search) -> list[Path]:
    """Result files where the harness writes them, and nowhere deeper.

    ROOT/result.json (one trial), ROOT/repeat-N/ (a run), ROOT/JOB/ (augbench),
    ROOT/JOB/repeat-N/ (a sweep) and ROOT/augbench/NAME/ (augbench after a sweep). A folder
    that holds sweeps of its own is not one: its sweeps would merge by job number.
    """
    found = [root / RESULT_FILE]
    for sub in search.subdirs(root):
        if JOB_DIR.match(sub.name) or REPEAT_DIR.match(sub.name):
            found.append(sub / RESULT_FILE)
        if JOB_DIR.match(sub.name) or sub.name == BENCH_DIR:
            found += [d / RESULT_FILE for d in search.subdirs(sub) if sub.name == BENCH_DIR or REPEAT_DIR.match(d.name)]
    return [path for path in found if path.is_file()]


def _order(root: Path, paths: list[Path]) -> list[Path]:
    """Job folders in numeric order, then the rest (augbench/)."""

    def key(path: Path):
        return [(0, int(x), "") if x.isdigit() else (1, 0, x) for x in path.relative_to(root).parts]

    return sorted(paths, key=key)


def scan(root: Path) -> Scan:
    """Read every result file of the sweep at ``root``; unreadable ones are named in ``skipped``, not raised."""
    root = Path(root)
    out, search = Scan(), _Search()
    paths = _layout(root, search)
    if search.stopped:
        out.stopped = f"stopped looking after listing {MAX_FOLDERS:,} folders of {root}: results beyond them are left out"
    for path in _order(root, paths):
        try:
            result = read_result(path)
        except HarnessError as exc:
            out.skipped.append((path, str(exc)))
            continue
        why = _unusable(result)
        if why:
            out.skipped.append((path, f"{path}: {why}"))
        else:
            out.results.append((path, result))
    return out


def _unusable(result: TrialResult) -> str | None:
    """Why a readable result still cannot be ranked or checked (an ok trial without its figures), or None."""
    if result.status != "ok":
        return None  # nothing but the status and error of a trial that did not finish ok is read
    needed = ("samples_per_s",) if result.kind == "augbench" else ("samples_per_s", "stall_pct")
    missing = [k for k in needed if not _is_number(result.summary.get(k))]
    if missing:
        return f"an ok trial whose summary.{missing[0]} is {result.summary.get(missing[0])!r}, not a number"
    arrays = list(result.steps.values())
    if not all(map(_numbers, arrays)) or len({len(a) for a in arrays}) > 1:
        return "an ok trial whose steps are not arrays of numbers of one length"
    if result.augment and not all(isinstance(result.augment.get(k), str) for k in ("library", "order")):
        return "an ok trial whose augment has no library or order"
    if not _numbers(result.monitor.get("t", [])) or not isinstance(result.monitor.get("series", {}), dict):
        return "an ok trial whose monitor series are not arrays of numbers"
    return None


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _numbers(values) -> bool:
    return isinstance(values, list) and all(map(_is_number, values))


def find_results(root: Path) -> list[Path]:
    """The result files of the sweep at ``root`` that the harness can read, in job order.

    Unreadable ones are left out, so that callers that read them all keep going; the report
    and check name them (``scan(root).skipped``).
    """
    return [path for path, _ in scan(root).results]


def sweeps_under(root: Path, search: _Search | None = None) -> list[Path]:
    """Sub-folders of ``root`` that are sweeps (or runs) of their own, as far as a bounded search sees."""
    search = search or _Search()
    found = []
    for sub in search.subdirs(Path(root)):
        if search.stopped:
            break
        if any((sub / name).is_file() for name in SWEEP_MARKERS) or _layout(sub, search):
            found.append(sub)
    return found


def no_results(root: Path, command: str = "report") -> HarnessError:
    """The one-line error for a folder with no results of its own: it may hold several sweeps, or none."""
    search = _Search()
    sweeps = sweeps_under(root, search)
    if not sweeps and any((Path(root) / name).is_file() for name in SWEEP_MARKERS):
        return HarnessError(f"{root}: no trial of this sweep has finished yet (no {RESULT_FILE}); {command} it when one has")
    if not sweeps:
        where = f"JOB/repeat-N/{RESULT_FILE}, as a sweep writes them" + (
            f"; stopped after listing {MAX_FOLDERS:,} folders" if search.stopped else ""
        )
        return HarnessError(f"no harness results under {root} (looked for {where}); pass the folder a run or sweep printed")
    if len(sweeps) == 1:
        return HarnessError(f"{root} is not a sweep folder but holds one: python -m harness {command} {sweeps[0]}")
    names = ", ".join(s.name for s in sweeps[:8]) + (f" and {len(sweeps) - 8} more" if len(sweeps) > 8 else "")
    return HarnessError(
        f"{root} holds {len(sweeps)} sweeps, not one ({names}); {command} one at a time, e.g. python -m harness {command} {sweeps[0]}"
    )


def override_columns(overrides: list[str]) -> dict[str, str]:
    """``["loader.workers=2", "hydra.x=1"]`` -> ``{"loader.workers": "2"}`` (hydra.* left out).

    A swept value comes back from Hydra with its special characters escaped
    (``examples.my_pipeline\\:make``); the column holds the value as the config has it.
    """
    columns = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.lstrip("+~")
        if sep and not key.startswith("hydra."):
            columns[key] = _HYDRA_ESCAPE.sub(r"\1", value)
    return columns


_HYDRA_ESCAPE = re.compile(r"\\([\\()\[\]{}:=, ])")  # what Hydra's sweep values escape


STATUS_WORDS = {
    "ok": "ok",
    "failed": "failed",
    "timeout": "timed out",
    "too_short": "too short",
    "interrupted": "interrupted",
    "unreadable": "unreadable",
}


def status_word(status: str) -> str:
    """A status as the report says it ('too short'); one added to STATUSES later reads as itself."""
    return STATUS_WORDS.get(status, status.replace("_", " "))


STATUS_NOTES = {  # what a status means, in the notes column of results.csv
    "too_short": "measured too little to judge (see error); not a speed: longer trials (trial.seconds) or more steps",
    "interrupted": "stopped by SIGTERM / SIGINT before it finished; not a measurement",
}


def rows(root: Path) -> list[dict]:
    """One row per trial: readable results first, in job order, then one row per unreadable result file."""
    root = Path(root)
    found = scan(root)
    results = found.results
    bench = {
        (r.augment.get("library"), r.augment.get("signature")): r.summary.get("samples_per_s")
        for _, r in results
        if r.kind == "augbench" and r.status == "ok" and r.augment
    }
    signatures = {r.augment.get("signature", "none") if r.augment else "none" for _, r in results if r.kind == "trial" and r.status == "ok"}
    table = [_row(root, path, result, bench, len(signatures) > 1) for path, result in results]
    return table + [_unreadable_row(root, path, why) for path, why in found.skipped]


def _row(root: Path, path: Path, result: TrialResult, bench: dict, mixed_outputs: bool) -> dict:
    row = {
        "job": result.job,
        "repeat": result.repeat,
        "round": result.timing.get("round", ""),
        "position": result.timing.get("position", ""),
        "status": result.status,
        "kind": result.kind,
    }
    row.update(override_columns(result.overrides))
    for metric in METRICS:
        row[metric] = _fmt(result.summary.get(metric))
    aug = result.augment or {}
    row["augment"] = f"{aug['library']}: {aug['order']}" if aug else ""
    row["augbench_samples_per_s"] = _fmt(bench.get((aug.get("library"), aug.get("signature")))) if result.kind == "trial" else ""
    row["output"] = _output(result.same_data.get("output"))
    row["cpu_by_process"] = _processes(result.monitor)
    row["same_data"] = result.same_data.get("verdict", "")
    row["pixels"] = (result.same_data.get("reference", {}).get("sha1") or "")[:10]
    row.update(where(result))
    row["notes"] = "; ".join(_notes(result, mixed_outputs))
    row["error"] = result.error or ""
    row["result"] = str(path.relative_to(root))
    return row


def _notes(result: TrialResult, mixed_outputs: bool) -> list[str]:
    notes = [STATUS_NOTES[result.status]] if result.status in STATUS_NOTES else []
    notes += list(result.same_data.get("problems", []))
    restart = restart_note(result.summary)
    if restart:
        notes.append(restart)
    if result.kind == "trial" and mixed_outputs and result.status == "ok":
        order = (result.augment or {}).get("order", "no augmentation")
        notes.append(f"different output ({order}): rows with other augment ops or orders differ in pixels, not only speed")
    if result.kind == "augbench":
        notes.append("augbench: one thread, decoded images in memory, no loader; samples_per_s = whole pipeline images/s")
    return notes


def _unreadable_row(root: Path, path: Path, why: str) -> dict:
    """A row for a result file the harness cannot read, so that results.csv does not lose the trial."""
    parts = path.relative_to(root).parts
    job = next((int(p) for p in parts if JOB_DIR.match(p)), "")
    repeat = next((int(p.removeprefix("repeat-")) for p in parts if REPEAT_DIR.match(p)), "")
    return {"job": job, "repeat": repeat, "status": "unreadable", "kind": "", "error": why, "result": "/".join(parts)}


RESTART_NOTE_PCT = 5.0  # epoch restarts above this share of a trial's time are called out


def restart_note(summary: dict) -> str:
    """Plain words when starting each epoch's iterator cost more than 5% of the measured time."""
    pct = summary.get("restart_pct")
    if pct is None or pct <= RESTART_NOTE_PCT:
        return ""
    return (
        f"epoch restarts cost {pct:.0f}% of the time ({summary['epoch_restarts']} restarts, "
        f"{summary['epoch_restart_ms_p50']:.0f} ms to each new epoch's first batch); steady state "
        f"{summary['steady_samples_per_s']:.0f} samples/s: use a larger dataset or trial.epoch_mode=continuous "
        "to measure the steady state"
    )


def _processes(monitor) -> str:
    """'main 45%, worker-1 98%, worker-2 97%': mean CPU of each process over the measured phase."""
    from harness.monitor.summary import process_text

    return process_text((monitor or {}).get("summary", {}).get("cpu_by_process", {}))


def _output(stats) -> str:
    """'512x512x3 uint8 mean 111.3 sd 65.5' from the trial's output statistics."""
    if not stats or not stats.get("batches"):
        return ""
    shape = "x".join(str(d) for d in stats["sample_shape"])
    return f"{shape} {stats['dtype']} mean {stats['mean']:.4g} sd {stats['std']:.4g}"


def _fmt(value):
    if isinstance(value, float):
        return "" if math.isnan(value) else round(value, 4)
    return "" if value is None else value


def write_table(root: Path, table: list[dict] | None = None) -> Path:
    """Rewrite ``root/results.csv`` from every ``result.json`` of the sweep (or from its ``rows``, when given)."""
    table = rows(root) if table is None else table
    if not table:
        raise no_results(root)
    fields: list[str] = []
    for row in table:
        fields.extend(k for k in row if k not in fields)
    # overrides after job/repeat/status, metrics and paths last
    head = ["job", "repeat", "round", "position", "status", "kind"]
    tail = list(METRICS) + [
        "cpu_by_process",
        "augment",
        "augbench_samples_per_s",
        "output",
        "same_data",
        "pixels",
        "host",
        "cpu_model",
        "cores",
        "accelerator",
        "cuda_visible_devices",
        "notes",
        "error",
        "result",
    ]
    order = head + [f for f in fields if f not in head and f not in tail] + tail
    path = Path(root) / TABLE_FILE
    tmp = path.with_name(f".{TABLE_FILE}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=order, restval="")
        writer.writeheader()
        writer.writerows(table)
    os.replace(tmp, path)
    return path
