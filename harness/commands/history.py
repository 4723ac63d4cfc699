"""``history``: add a gate run to the history store, and draw the speed across commits with its change points.

python -m harness history --store ci/history.jsonl --add reports/ci-gate   # after each gate run
python -m harness history --store ci/history.jsonl                          # history.html beside the store
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import HarnessError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise HarnessError(f"history: {message} (python -m harness history --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m harness history", add_help=False)
    p.add_argument("--store", default="ci/history.jsonl", metavar="FILE")
    p.add_argument("--add", metavar="SWEEP_DIR")
    p.add_argument("--commit")
    p.add_argument("--out", metavar="FILE")
    return p


def history(args: list[str]) -> int:
    """Add ``--add SWEEP_DIR`` to the store if given, then write history.html; print each change point."""
    from harness.history.page import render, trends
    from harness.history.store import append, read, record_of

    opts = _parser().parse_args(args)
    store = Path(opts.store)
    if opts.add:
        if not Path(opts.add).is_dir():
            raise HarnessError(f"--add {opts.add}: no such sweep folder")
        record = record_of(Path(opts.add), commit=opts.commit)
        append(store, record)
        print(f"history: {record.commit[:12]} added to {store} ({len(record.variants)} variant(s))")
    records = read(store)
    out = Path(opts.out) if opts.out else store.with_name("history.html")
    out.write_text(render(records, str(store)), encoding="utf-8")
    for variant, metric, runs, changes in trends(records):
        for c in changes:
            print(f"change point: {variant} {metric} {c.step:+.1%} at {runs[c.index][0].commit[:12]}")
    print(out)
    return 0
