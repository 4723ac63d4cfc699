"""``report.html`` (one self-contained file) and ``summary.md`` for a sweep folder."""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path

from harness.report import plots, ranking
from harness.report.data import BIMODAL_ADVICE, UNSTABLE_ADVICE, UNSTABLE_CV, Sweep, band, load
from harness.report.text import fmt as _fmt
from harness.report.text import md as md  # commands.check escapes its own Markdown with it
from harness.results.table import STATUS_WORDS, status_word

REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.md"


def _context(sweep: Sweep, table: ranking.Ranking) -> dict:
    trials = sweep.trials()
    first = next((t for t in trials if t.status == "ok"), trials[0] if trials else None)
    env = first.environment if first else {}
    packages = env.get("packages", {})
    ds = first.dataset if first else {}
    consumer = first.consumer if first else {}
    cfg = first.config if first else {}
    step = cfg.get("consumer", {}).get("step_ms")
    batch = cfg.get("batch", {})
    gpu = env.get("gpu", {})
    context = {
        "title": f"{cfg.get('name', 'sweep')}: {sweep.root.name}",
        "root": str(sweep.root),
        "swept": sweep.swept,
        "command": "python -m harness sweep " + " ".join(_common_overrides(sweep)),
        "dataset": _dataset_text(ds),
        "consumer": (
            f"{consumer.get('device', '?')} accelerator, step {step} ms, batch {batch.get('size')} x "
            f"{batch.get('height')}x{batch.get('width')} {batch.get('dtype')}; ceiling "
            f"{_fmt(sweep.ceiling_samples_per_s, 0)} samples/s ({consumer.get('reason', '')})"
        ),
        "machine": (
            f"{env.get('cpu_model', '?')}, {env.get('cpu_affinity') or env.get('cpu_logical')} cores, "
            f"{(env.get('ram_bytes') or 0) / 2**30:.0f} GiB RAM, GPU: "
            + (", ".join(g.get("name", "?") for g in gpu.get("gpus", [])) if gpu.get("available") else f"none ({gpu.get('reason', '?')})")
        ),
        "versions": ", ".join(f"{k} {v}" for k, v in packages.items() if v),
        "date": datetime.fromtimestamp(first.timing.get("started_at", 0)).strftime("%Y-%m-%d %H:%M") if first else "–",
        "trial_counts": _trial_counts(trials),
        "n_variants": len(sweep.variants),
        "incomplete": sweep.incomplete,
        "skipped": sweep.skipped,
        "dataset_notes": dataset_notes_of(trials),
        "best": sweep.best,
        "headers": table.headers,
        "rows": table.rows,
        "baseline_text": table.baseline_text,
        "unstable_cv": table.unstable_cv,
        "diagnoses": [(v.label, v.diagnosis) for v in sweep.ranked],
        "pipelines": pipelines(sweep),
        "failed": [
            {"label": v.label, "repeat": t.repeat, "status": status_word(t.status), "css": t.status, "error": t.error or "no reason given"}
            for v in sweep.variants
            for t in v.failed
        ],
        "notes": _notes_for(sweep),
    }
    context["verdict"] = _verdict(sweep)
    return context


def _trial_counts(trials: list) -> str:
    """'5 ok, 1 failed, 2 too short': every status that occurs, ok first."""
    counts = {status: sum(t.status == status for t in trials) for status in dict.fromkeys([*STATUS_WORDS, *(t.status for t in trials)])}
    return ", ".join(f"{n} {status_word(s)}" for s, n in counts.items() if n or s == "ok")


def _common_overrides(sweep: Sweep) -> list[str]:
    trials = sweep.trials()
    if not trials:
        return []
    keys: dict[str, set] = {}
    for t in trials:
        for o in t.overrides:
            k, _, v = o.partition("=")
            keys.setdefault(k, set()).add(v)
    return [f"{k}={','.join(sorted(v))}" for k, v in keys.items() if not k.startswith("hydra.")]


def _verdict(sweep: Sweep) -> str:
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


def _notes_for(sweep: Sweep) -> list[str]:
    notes = []
    if len(sweep.variants) == 1:
        notes.append("One variant only: there is nothing to compare it with; sweep a parameter (a,b,c) to rank variants.")
    outputs = {(t.augment or {}).get("signature", "none") for v in sweep.variants for t in v.ok}
    if len(outputs) > 1:
        notes.append(
            "Some variants run different augment ops or orders: they deliver different images, so compare them "
            "as different pipelines, not only as speed variants (see the augmentation samples)."
        )
    unstable = [v.label for v in sweep.variants if v.unstable]
    if unstable:
        notes.append(
            f"Unstable (the repeats' coefficient of variation is above {UNSTABLE_CV:.0%}): {', '.join(unstable)}. "
            f"Before deciding: {UNSTABLE_ADVICE}."
        )
    for v in sweep.variants:
        if v.modes is not None:  # v.bimodal
            notes.append(
                f"Bimodal: the repeats of {v.label} fall into two speeds ({v.modes[0]:,.0f} and "
                f"{v.modes[1]:,.0f} samples/s): {BIMODAL_ADVICE}."
            )
    return notes


def _figures(sweep: Sweep) -> tuple:
    figures, missing = [], []
    uri = plots.throughput(sweep)
    if uri:
        figures.append(
            {
                "title": "Throughput",
                "uri": uri,
                "caption": "Median samples/s per variant, min-max of repeats as "
                "error bars, coloured by how input-bound it is; the dashed line is what the accelerator alone could take.",
            }
        )
    uri = plots.breakdown(sweep)
    if uri:
        figures.append(
            {
                "title": "Where each step's time goes",
                "uri": uri,
                "caption": "Mean per step: waiting for the loader, the host-to-device copy, and compute.",
            }
        )
    uri = plots.numeric_axis(sweep)
    if uri:
        figures.append({"title": "Throughput against the swept parameter", "uri": uri, "caption": "Median samples/s."})
    uri = plots.timelines(sweep)
    if uri:
        figures.append(
            {
                "title": "CPU and memory over time",
                "uri": uri,
                "caption": "The trial's process tree, first repeat of each variant, sampled every monitor.interval_ms.",
            }
        )
    elif any(t.status == "ok" for t in sweep.trials()):
        missing.append("No utilization timelines: these trials were not sampled (monitor.enabled=false, or results from an older harness).")
    uri = plots.timelines(sweep, gpu=True)
    if uri:
        figures.append({"title": "GPU over time", "uri": uri, "caption": "NVML utilization and memory."})
    return figures, missing


def _bench_rows(sweep: Sweep) -> list[tuple]:
    rows = []
    for result in sweep.bench:
        if result.status != "ok":
            continue
        a = result.augment
        for op in a["bench"]["ops"]:
            rows.append(
                (
                    a["library"],
                    a["order"],
                    op["name"],
                    "x".join(map(str, op["input_shape"][:2])),
                    f"{op['images_per_s']:,.1f}",
                    f"{op['cv']:.1%}" + (" unstable" if op["unstable"] else ""),
                )
            )
        p = a["bench"]["pipeline"]
        rows.append(
            (
                a["library"],
                a["order"],
                "= whole pipeline",
                "",
                f"{p['images_per_s']:,.1f}",
                f"{p['cv']:.1%}" + (" unstable" if p["unstable"] else ""),
            )
        )
    return rows


def _check_rows(sweep: Sweep) -> dict | None:
    """The last ``check``'s verdicts (check.json), for the report; an unreadable file is named in ``sweep.skipped``."""
    import json

    from harness.results.verdicts import JUDGED, Verdict, change_text

    path = Path(sweep.root) / "check.json"
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        verdicts = [Verdict(**item) for item in record.get("verdicts", [])]
        rows = [
            [
                v.variant,
                v.metric,
                _fmt(v.baseline, 3),
                _fmt(v.current, 3),
                change_text(v),
                "–" if v.p is None else f"{v.p:.2g}",
                v.verdict + (f": {v.reason}" if v.reason else ""),
            ]
            for v in verdicts
        ]
    except (OSError, ValueError, TypeError, AttributeError) as exc:  # written by hand or by another version
        sweep.skipped.append(f"skipped {path}: not a readable check record ({type(exc).__name__}: {exc})")
        return None
    return {
        "baseline": record.get("baseline"),
        "ratio_to": record.get("ratio_to"),
        "regressions": record.get("regressions", 0),
        "unjudged": sum(v.verdict not in JUDGED for v in verdicts),
        "rows": rows,
    }


def _grids(sweep: Sweep) -> list[dict]:
    grids = []
    for v in sweep.variants:
        path = sweep.root / str(v.job) / "samples.png"
        if path.exists():
            grids.append({"label": v.label, "uri": "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()})
    return grids


def pipelines(sweep: Sweep) -> list[tuple]:
    """(variant label, its chain as the loader built it, step by step) from the first ok trial's result."""
    out = []
    for v in sweep.variants:
        ops = next((t.loader.get("ops") for t in v.ok if t.loader.get("ops")), None)
        if ops:
            out.append((v.label, " → ".join(str(op) for op in ops)))
    return out


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


def markdown(sweep: Sweep) -> str:
    """summary.md: the verdict and ranking for a pull request; every user string escaped (:func:`md`)."""
    lines = [f"## harness: {md(sweep.root.name)}" + (" (INCOMPLETE)" if sweep.incomplete else ""), ""]
    if sweep.incomplete:
        lines += [f"**INCOMPLETE:** {md(sweep.incomplete)}; the ranking covers the finished trials only.", ""]
    notes = dataset_notes_of(sweep.trials())
    lines += [f"- {md(line)}" for line in notes] + ([""] if notes else [])
    verdict = _verdict(sweep)
    lines += [md(verdict) if verdict else "No trial finished; nothing to rank.", ""]
    lines += ranking.markdown(ranking.build(sweep))
    lines += [line for note in _notes_for(sweep) for line in ("", md(note))]
    return "\n".join(lines + _not_ok_lines(sweep)) + "\n"


def _not_ok_lines(sweep: Sweep) -> list[str]:
    """Markdown lines for trials that did not finish ok, and for result files that could not be read."""
    trials = [
        f"- {md(v.label)} repeat {t.repeat}: {status_word(t.status)}: {md(t.error or 'no reason given')}"
        for v in sweep.variants
        for t in v.failed
    ]
    lines = ["", "Trials that did not finish ok:", ""] + trials if trials else []
    if sweep.skipped:
        lines += ["", "Result files left out (unreadable):", ""] + [f"- {md(line)}" for line in sweep.skipped]
    return lines


def write_report(root: Path, baseline: str | None = None) -> Path:
    """Write ``report.html`` and ``summary.md`` into the sweep folder; return the HTML's path."""
    return write(load(root, baseline))


def write(sweep: Sweep) -> Path:
    """Write a loaded sweep's ``report.html`` and ``summary.md`` into its folder; return the HTML's path."""
    import jinja2

    from harness.data.manifest import write_text_atomic

    root = Path(sweep.root)
    context = _context(sweep, ranking.build(sweep))
    context["figures"], context["missing"] = _figures(sweep)
    context["bench"] = _bench_rows(sweep)
    from harness.report.orders import order_summary

    context["orders"] = "\n".join(order_summary(root))
    context["check"] = _check_rows(sweep)
    context["grids"] = _grids(sweep)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent)), autoescape=True)
    html = env.get_template("template.html.j2").render(**context)
    write_text_atomic(root / SUMMARY_FILE, markdown(sweep))
    return write_text_atomic(root / REPORT_FILE, html)
