"""Augment orders side by side: each order's speed inside the loader and in augbench.

A summary of a sweep's results (terminal lines, and a block of the report), so it lives
with the report and reads only result files.
"""

from __future__ import annotations

from pathlib import Path


def order_summary(root: Path) -> list[str]:
    """Terminal lines comparing augment orders per loader and library, in-loader beside augbench.

    Repeats are summarized by their median. For each loader and library whose jobs ran
    the same ops in more than one order, the fastest order's gain over the slowest is
    given in the loader and in augbench.
    """
    import json
    import statistics

    from harness.results.model import read_result
    from harness.results.table import find_results

    loader_rates: dict[tuple, list[float]] = {}
    bench: dict[tuple, float] = {}
    for path in find_results(root):
        r = read_result(path)
        if r.status != "ok" or not r.augment:
            continue
        ops = json.dumps(sorted((o["name"], json.dumps(o, sort_keys=True)) for o in r.augment["ops"]))
        if r.kind == "augbench":
            bench[(r.augment["library"], r.augment["order"], ops)] = r.summary["samples_per_s"]
        else:
            key = (r.config.get("loader", {}).get("name", "?"), r.augment["library"], r.augment["order"], ops)
            loader_rates.setdefault(key, []).append(r.summary["samples_per_s"])
    if not loader_rates:
        return []
    lines = [
        "augment orders (samples/s; median of repeats; augbench: one thread, no loader):",
        f"  {'loader':<15} {'library':<15} {'order':<28} {'in loader':>10} {'augbench':>10}",
    ]
    groups: dict[tuple, list[tuple]] = {}
    for (loader, library, order, ops), rates in loader_rates.items():
        groups.setdefault((loader, library, ops), []).append((order, statistics.median(rates), bench.get((library, order, ops))))
    for (loader, library, _), orders in groups.items():
        orders.sort(key=lambda o: -o[1])
        for order, rate, micro in orders:
            micro_text = f"{micro:10.1f}" if micro else f"{'':>10}"
            lines.append(f"  {loader:<15} {library:<15} {order:<28} {rate:10.1f} {micro_text}")
        if len(orders) > 1:
            (best, fast, fast_micro), (_, slow, slow_micro) = orders[0], orders[-1]
            micro = f" ({fast_micro / slow_micro:.2f}x in augbench)" if fast_micro and slow_micro else ""
            lines.append(f"  {'':<15} {'':<15} -> {best} is {fast / slow:.2f}x the slowest order in the loader{micro}")
    return lines
