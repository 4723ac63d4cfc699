"""Builders of the report's overview sections: completeness, unreadable files, the setup,
the verdict and its notes, and the trials that did not finish ok; with their summary.md blocks.

Each builder takes the loaded :class:`~harness.results.sweep.Sweep` and returns the section's
data, or None where the section does not apply; each ``*_md`` turns that data into lines of
summary.md, every user string escaped (:func:`~harness.report.text.md`).
"""

from __future__ import annotations

from datetime import datetime

from harness.report.diagnosis import BIMODAL_ADVICE, UNSTABLE_ADVICE
from harness.report.text import fmt, md
from harness.results.sweep import UNSTABLE_CV, Sweep, band
from harness.results.table import STATUS_WORDS, status_word


# -- incomplete and unreadable ------------------------------------------------------------
def incomplete(sweep: Sweep) -> str | None:
    return sweep.incomplete


def incomplete_md(why: str) -> list[str]:
    return [f"**INCOMPLETE:** {md(why)}; the ranking covers the finished trials only."]


def concurrent(sweep: Sweep) -> str | None:
    """The loud warning for trials that shared a machine at the same time (another launcher ran them so)."""
    from harness.results.placement import concurrency_warning

    return concurrency_warning(sweep.trials())


def concurrent_md(line: str) -> list[str]:
    return [f"**WARNING:** {md(line)}."]


def skipped(sweep: Sweep) -> list[str] | None:
    """The result files (and check.json, schedule.json) that could not be read, one line each."""
    return list(sweep.skipped) or None


def skipped_md(lines: list[str]) -> list[str]:
    return ["Result files left out (unreadable):", ""] + [f"- {md(line)}" for line in lines]


# -- setup ------------------------------------------------------------------------------
def setup(sweep: Sweep) -> dict:
    """What was swept, with what data, consumer and machine, when, and how many trials finished."""
    trials = sweep.trials()
    first = next((t for t in trials if t.status == "ok"), trials[0] if trials else None)
    env = first.environment if first else {}
    cfg = first.config if first else {}
    return {
        "swept": sweep.swept,
        "command": "python -m harness sweep " + " ".join(_common_overrides(sweep)),
        "dataset": _dataset_text(first.dataset if first else {}),
        "dataset_notes": dataset_notes_of(trials),
        "consumer": _consumer_text(sweep, first.consumer if first else {}, cfg),
        "machine": _machine_text(env),
        "versions": ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items() if v),
        "date": datetime.fromtimestamp(first.timing.get("started_at", 0)).strftime("%Y-%m-%d %H:%M") if first else "–",
        "trial_counts": _trial_counts(trials),
        "n_variants": len(sweep.variants),
    }


def setup_md(data: dict) -> list[str]:
    return [f"- {md(line)}" for line in data["dataset_notes"]]


def _consumer_text(sweep: Sweep, consumer: dict, cfg: dict) -> str:
    step = cfg.get("consumer", {}).get("step_ms")
    batch = cfg.get("batch", {})
    return (
        f"{consumer.get('device', '?')} accelerator, step {step} ms, batch {batch.get('size')} x "
        f"{batch.get('height')}x{batch.get('width')} {batch.get('dtype')}; ceiling "
        f"{fmt(sweep.ceiling_samples_per_s, 0)} samples/s ({consumer.get('reason', '')})"
    )


def _machine_text(env: dict) -> str:
    gpu = env.get("gpu", {})
    gpus = ", ".join(g.get("name", "?") for g in gpu.get("gpus", [])) if gpu.get("available") else f"none ({gpu.get('reason', '?')})"
    return (
        f"{env.get('cpu_model', '?')}, {env.get('cpu_affinity') or env.get('cpu_logical')} cores, "
        f"{(env.get('ram_bytes') or 0) / 2**30:.0f} GiB RAM, GPU: " + gpus
    )


def _trial_counts(trials: list) -> str:
    """'5 ok, 1 failed, 2 too short': every status that occurs, ok first."""
    counts = {status: sum(t.status == status for t in trials) for status in dict.fromkeys([*STATUS_WORDS, *(t.status for t in trials)])}
    return ", ".join(f"{n} {status_word(s)}" for s, n in counts.items() if n or s == "ok")


def _common_overrides(sweep: Sweep) -> list[str]:
    keys: dict[str, set] = {}
    for t in sweep.trials():
        for o in t.overrides:
            k, _, v = o.partition("=")
            keys.setdefault(k, set()).add(v)
    return [f"{k}={','.join(sorted(v))}" for k, v in keys.items() if not k.startswith("hydra.")]


def _dataset_text(ds: dict) -> str:
    if not ds.get("count"):
        return ds.get("reason") or "–"
    size = f"{ds.get('count')} images, {ds.get('mean_bytes', 0) / 1024:.0f} KB each on average"
    if ds.get("source"):  # a user's folder: where it is, and the cache folder its view is in
        return f"{size}, from {ds['source']} (indexed in {ds.get('root')})"
    params = ds.get("params", {})
    return f"{size}, {params.get('width', '?')}x{params.get('height', '?')}: {ds.get('root')}"


def dataset_notes_of(trials) -> list[str]:
    """Which files the trials' datasets skipped, converted or left out; each distinct line once."""
    from harness.data.manifest import dataset_notes

    lines: list[str] = []
    for t in trials:
        lines += [line for line in dataset_notes(t.dataset or {}) if line not in lines]
    return lines


# -- verdict and notes ------------------------------------------------------------------
def verdict(sweep: Sweep) -> dict:
    """The verdict in one paragraph ("" when no trial finished) and the notes that qualify it."""
    return {"text": verdict_text(sweep), "notes": notes(sweep) or []}


def verdict_md(data: dict) -> list[str]:
    return [md(data["text"]) if data["text"] else "No trial finished; nothing to rank."]


def verdict_text(sweep: Sweep) -> str:
    best, base = sweep.best, sweep.baseline
    if best is None:
        return ""
    rate = best.metrics["samples_per_s"]
    text = f"Fastest: {best.label} at {rate:,.0f} samples/s"
    if base is not None and base is not best and best.speedup:
        text += f", {best.speedup:.2f}x the baseline, job {base.job} ({base.label}, {base.metrics['samples_per_s']:,.0f} samples/s)"
    elif base is best and len([v for v in sweep.variants if v.ok]) > 1:
        text += ", the baseline itself: every other variant is slower"
    text += f". It is {band(best.metrics['stall_pct'])} (the accelerator waited {best.metrics['stall_pct']:.0f}% of the time)"
    if sweep.ceiling_samples_per_s:
        text += f"; the accelerator alone could take {sweep.ceiling_samples_per_s:,.0f} samples/s"
    slow = [v for v in sweep.variants if v.ok and band(v.metrics["stall_pct"]) == "highly input-bound"]
    if slow and len(sweep.variants) > 1:
        text += f". {len(slow)} of {len([v for v in sweep.variants if v.ok])} variants are highly input-bound"
    return text + "."


def notes(sweep: Sweep) -> list[str] | None:
    """What to keep in mind before acting on the ranking: one variant only, different outputs, machine-fit warnings, noisy repeats."""
    out = []
    if len(sweep.variants) == 1:
        out.append("One variant only: there is nothing to compare it with; sweep a parameter (a,b,c) to rank variants.")
    outputs = {(t.augment or {}).get("signature", "none") for v in sweep.variants for t in v.ok}
    if len(outputs) > 1:
        out.append(
            "Some variants run different augment ops or orders: they deliver different images, so compare them "
            "as different pipelines, not only as speed variants (see the augmentation samples)."
        )
    unstable = [v.label for v in sweep.variants if v.unstable]
    if unstable:
        out.append(
            f"Unstable (the repeats' coefficient of variation is above {UNSTABLE_CV:.0%}): {', '.join(unstable)}. "
            f"Before deciding: {UNSTABLE_ADVICE}."
        )
    from harness.results.placement import machines_warning

    spread = machines_warning(sweep.trials())
    if spread:
        out.append(spread + ".")
    for line in dict.fromkeys(w for t in sweep.trials() for w in (t.environment or {}).get("preflight") or []):
        out.append(f"Before the trials: {line}.")  # the machine-fit warnings each trial recorded (harness.trial.preflight)
    for v in sweep.variants:
        if v.modes is not None:  # v.bimodal
            out.append(
                f"Bimodal: the repeats of {v.label} fall into two speeds ({v.modes[0]:,.0f} and "
                f"{v.modes[1]:,.0f} samples/s): {BIMODAL_ADVICE}."
            )
    return out or None


def notes_md(lines: list[str]) -> list[str]:
    return [part for note in lines for part in ("", md(note))][1:]  # a blank line between notes


# -- trials that did not finish ok ------------------------------------------------------
def failed(sweep: Sweep) -> list[dict] | None:
    """One entry per trial that did not finish ok: failed, timed out, too short or interrupted, with its reason."""
    rows = [
        {"label": v.label, "repeat": t.repeat, "status": status_word(t.status), "css": t.status, "error": t.error or "no reason given"}
        for v in sweep.variants
        for t in v.failed
    ]
    return rows or None


def failed_md(rows: list[dict]) -> list[str]:
    return ["Trials that did not finish ok:", ""] + [
        f"- {md(f['label'])} repeat {f['repeat']}: {f['status']}: {md(f['error'])}" for f in rows
    ]


# -- trials on several machines -----------------------------------------------------------------
def hosts(sweep: Sweep) -> dict | None:
    """Each variant's median samples/s per machine, where the trials ran on more than one (None on one machine).

    Rows from different machines measure the machine as much as the variant (nodes of 1 and 2
    cores), so a variant whose repeats ran on two hosts gets two figures, not their average.
    """
    import statistics

    from harness.results.placement import machines, where

    names = list(machines(sweep.trials()))
    if len(names) < 2:
        return None
    cores: dict[str, str] = {}
    for place in map(where, sweep.trials()):
        cores.setdefault(place["host"], place["cores"])
    rows = []
    for v in sweep.variants:
        cells = []
        for host in names:
            speeds = [t.summary.get("samples_per_s") or 0.0 for t in v.ok if where(t)["host"] == host]
            cells.append({"median": statistics.median(speeds), "n": len(speeds)} if speeds else None)
        rows.append({"label": v.label, "cells": cells})
    return {"hosts": [{"name": h, "cores": cores.get(h) or "?"} for h in names], "rows": rows}


def hosts_md(h: dict) -> list[str]:
    names = [m["name"] for m in h["hosts"]]
    lines = ["Median samples/s per machine (n: ok trials there):", "", "| variant | " + " | ".join(names) + " |"]
    lines.append("| --- |" + " ---: |" * len(names))
    for row in h["rows"]:
        cells = [f"{c['median']:,.1f} (n {c['n']})" if c else "" for c in row["cells"]]
        lines.append(f"| {md(row['label'])} | " + " | ".join(cells) + " |")
    return lines
