"""``compare A B``: two sweeps (before and after a change, or two machines) side by side on one page.

Variants are matched by their label; per metric the page shows A's and B's medians, the change,
the smallest change their repeats can tell from run-to-run noise (the check's bound: 2.33
standard errors of the difference of per-repeat means) and a verdict: beyond the noise (faster or
slower, with p from the rank test of their windows), within the noise, or why it cannot be told.
Unlike ``check`` it sets no threshold and fails nothing: it is a reading, exit 0.

    python -m harness compare reports/before reports/after              # compare.html in the current folder
    python -m harness compare reports/before reports/after --out x.html --metric samples_per_s
"""

from __future__ import annotations

import argparse
import html
from pathlib import Path

from harness.errors import HarnessError

DEFAULT_METRICS = ("samples_per_s", "cpu_ms_per_sample", "stall_pct")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise HarnessError(f"compare: {message} (python -m harness compare --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m harness compare", add_help=False)
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--out", default="compare.html", metavar="FILE")
    p.add_argument("--metric", action="append", dest="metrics")
    p.add_argument("--alpha", type=float, default=0.01)
    return p


def compare(args: list[str]) -> int:
    import harness.check as gate

    opts = _parser().parse_args(args)
    metrics = opts.metrics or list(DEFAULT_METRICS)
    unknown = [m for m in metrics if m not in gate.METRICS]
    if unknown:
        raise HarnessError(f"compare: --metric {unknown[0]} is none of {', '.join(gate.METRICS)}")
    sides = []
    for folder in (opts.a, opts.b):
        if not Path(folder).is_dir():
            raise HarnessError(f"compare: {folder}: no such sweep folder")
        sides.append(gate.collect(Path(folder)))
    a, b = sides
    rows = rows_of(a, b, metrics, opts.alpha)
    page = render(opts.a, opts.b, a, b, rows)
    out = Path(opts.out)
    out.write_text(page)
    _print(rows)
    only = _unmatched(a, b)
    for side, names in only.items():
        if names:
            print(f"only in {side}: {', '.join(names)}")
    print(f"compare: {out}")
    return 0


def rows_of(a: dict, b: dict, metrics: list[str], alpha: float) -> list[dict]:
    """Per matched variant and metric: medians, change, the noise bound and the verdict in words."""
    import harness.check as gate

    if not any(name in a["variants"] for name in b["variants"]):
        raise HarnessError(f"compare: the two sweeps share no variant (A: {', '.join(a['variants'])}; B: {', '.join(b['variants'])})")
    matched = {**a, "variants": {k: v for k, v in a["variants"].items() if k in b["variants"]}}
    verdicts = gate.compare(matched, b, metrics=metrics, thresholds=dict.fromkeys(metrics, 0.0), alpha=alpha, ratio_to=None)
    return [{"variant": v.variant, "metric": v.metric, "a": v.baseline, "b": v.current, **_reading(v)} for v in verdicts]


def _reading(v) -> dict:
    """The verdict with no threshold: beyond the noise (which way), within it, or why it cannot be told."""
    from harness.results.verdicts import change_text

    change = change_text(v) if v.change is not None else "–"
    noise = f"±{v.detectable:.1%}" if v.detectable is not None and v.kind == "relative" else "–"
    if v.verdict in ("regressed", "improved"):
        said = f"beyond the noise: {'worse' if v.verdict == 'regressed' else 'better'} (p {v.p:.2g})"
    elif v.detectable is not None and v.change is not None and abs(v.change) > v.detectable and v.p is not None:
        said = f"not significant (p {v.p:.2g})"  # past the repeats' bound, but the windows' rank test does not carry it
    elif v.detectable is not None and v.change is not None:  # the bound, not a failure, kept it from a claim
        said = "within the noise"
    else:
        said = f"cannot tell: {v.reason or 'no samples'}"
    return {"change": change, "noise": noise, "said": said, "css": v.verdict if v.verdict in ("regressed", "improved") else ""}


def _unmatched(a: dict, b: dict) -> dict[str, list[str]]:
    return {"A": [k for k in a["variants"] if k not in b["variants"]], "B": [k for k in b["variants"] if k not in a["variants"]]}


def _print(rows: list[dict]) -> None:
    width = max([len(r["variant"]) for r in rows] + [7])
    print(f"{'variant':<{width}}  {'metric':<18} {'A':>10} {'B':>10} {'change':>9} {'noise':>8}  reading")
    for r in rows:
        figures = f"{_num(r['a']):>10} {_num(r['b']):>10} {r['change']:>9} {r['noise']:>8}"
        print(f"{r['variant']:<{width}}  {r['metric']:<18} {figures}  {r['said']}")


def _num(x) -> str:
    return "–" if x is None else f"{x:,.2f}" if abs(x) < 100 else f"{x:,.0f}"


def _unbroken_p(said: str) -> str:
    """A reading's "(p 3.6e-05)" kept on one line (a line may otherwise break at its exponent's hyphen)."""
    import re

    return re.sub(r"\(p [^)]*\)", lambda m: f'<span class="m">{m.group(0)}</span>', said)


def render(name_a: str, name_b: str, a: dict, b: dict, rows: list[dict]) -> str:
    """One self-contained page: the two sweeps, their machines, the matched table, the variants only one has.

    Figures and metric names never wrap (a number cut in two reads as two); labels and readings wrap between words.
    """
    e = html.escape
    machines = "the same machine" if a.get("fingerprint") == b.get("fingerprint") else "different machines (fingerprints differ)"
    body = "".join(
        f'<tr class="{r["css"]}"><td class="l">{e(r["variant"])}</td><td class="l m">{e(r["metric"])}</td><td>{_num(r["a"])}</td>'
        f'<td>{_num(r["b"])}</td><td>{e(r["change"])}</td><td>{e(r["noise"])}</td><td class="l">{_unbroken_p(e(r["said"]))}</td></tr>'
        for r in rows
    )
    only = "".join(f"<p class='small'>Only in {side}: {e(', '.join(names))}</p>" for side, names in _unmatched(a, b).items() if names)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>compare {e(name_a)} and {e(name_b)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:72em}} table{{border-collapse:collapse}}
td,th{{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}}
.l{{text-align:left;white-space:normal;overflow-wrap:anywhere}} .m{{white-space:nowrap}}
tr.regressed{{background:#fde2e1}} tr.improved{{background:#e3f6e5}} .small{{color:#555;font-size:.9em}}</style></head>
<body><h1>Two sweeps compared</h1>
<p><b>A</b>: {e(name_a)} (commit {e(str(a.get("commit") or "unknown"))})<br>
<b>B</b>: {e(name_b)} (commit {e(str(b.get("commit") or "unknown"))}); measured on {machines}.</p>
<p class="small">Per matched variant (same label) and metric: the medians of each sweep's windows, the change from A to B, and the smallest
change the two sweeps' repeats can tell from run-to-run noise (2.33 standard errors of the difference of per-repeat means). A change is
<i>beyond the noise</i> only past that bound and with p &lt; 0.01 (Mann-Whitney U on the windows); one repeat a side cannot tell.</p>
<table id="compare"><tr><th class="l">variant</th><th class="l">metric</th><th>A</th><th>B</th><th>change</th><th>noise</th>
<th class="l">reading</th></tr>{body}</table>{only}</body></html>
"""
