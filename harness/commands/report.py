"""``report SWEEP_DIR``: rebuild the results table of a sweep and print it."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.errors import HarnessError


def report(args: list[str]) -> int:
    from harness.results.table import no_results, rows, write_table

    folders = [a for a in args if "=" not in a]
    options = dict(a.split("=", 1) for a in args if "=" in a)
    unknown = sorted(set(options) - {"report.baseline"})
    if unknown:
        raise HarnessError(f"report: unknown option {unknown[0]}; the only option is report.baseline=JOB_OR_LABEL")
    if len(folders) != 1:
        raise HarnessError("report takes one sweep folder: python -m harness report reports/<sweep> [report.baseline=JOB]")
    root = Path(folders[0])
    if not root.is_dir():
        raise HarnessError(f"{root}: no such folder; pass a folder that a sweep printed")
    table = rows(root)
    if not table:  # several sweeps, or none: one line that says which, before anything is written
        raise no_results(root)
    path = write_table(root, table)
    for row in table:
        print(_line(row))
    from harness.report.orders import order_summary

    for line in order_summary(root):
        print(line)
    from harness.report.render import write
    from harness.results.sweep import load

    sweep = load(root, options.get("report.baseline"))
    html = write(sweep)
    for line in sweep.skipped + ([f"INCOMPLETE: {sweep.incomplete}"] if sweep.incomplete else []):
        print(f"WARNING: {line}", file=sys.stderr)  # the report covers less than the sweep
    print(path)
    print(html.with_name("summary.md"))
    print(html)
    return 0


def _line(row: dict) -> str:
    """One terminal line per trial; a trial that did not finish ok shows its status in words and its reason."""
    from harness.results.table import status_word

    keys = {k: v for k, v in row.items() if "." in k or k.startswith("+")}
    where = " ".join(f"{k}={v}" for k, v in keys.items()) or "(defaults)"
    figure = f"{row['samples_per_s']:>10} samples/s  stall {row['stall_pct']}%" if row["status"] == "ok" else row["error"]
    if row["kind"] == "augbench" and row["status"] == "ok":
        figure = f"{row['samples_per_s']:>10} images/s on one thread (augbench: {row['augment']})"
    return f"job {row['job']} repeat {row['repeat']} {status_word(row['status']):11s} {where}: {figure}"
