"""The recommendation: which configuration to use at the sweep's step time, how far it is from its ceiling, what would help.

Per step time the sweep measured (``consumer.step_ms``, one unless it was swept), the
recommended variant is the fastest; a variant within :data:`TIE` of it that spends less CPU
per sample is recommended instead, and the text says why. Then, from the variant's
ceilings (:mod:`harness.report.bounds`), how far it is from the lowest and what follows from
the measurements: at the CPU ceiling more workers cannot help, at the accelerator's a faster
loader cannot, far below every ceiling with idle cores more parallelism has room. A decoder
is named as cheaper only where the calibration timed it on the same files.
"""

from __future__ import annotations

from harness.report import bounds
from harness.report.data import Sweep, Variant, cores_of
from harness.report.knee import STEP_KEY
from harness.report.text import md
from harness.results.ceilings import Ceilings

TIE = 0.05  # variants within this share of the fastest's samples/s count as equally fast


def build(sweep: Sweep) -> dict | None:
    """{"paragraphs": one per step time, "ceilings": the measured ceilings' rows, "measured": when and how}."""
    if sweep.best is None:
        return None
    groups: dict[str, list[Variant]] = {}
    for v in sweep.variants:
        if v.ok:
            groups.setdefault(v.overrides.get(STEP_KEY, "") if STEP_KEY in sweep.swept else "", []).append(v)
    items = [paragraph(step, group, sweep.ceilings) for step, group in sorted(groups.items(), key=lambda g: _number(g[0]))]
    measured = measured_text(sweep.ceilings) if sweep.ceilings_error is None else f"Not read: {sweep.ceilings_error}."
    return {"paragraphs": items, "ceilings": ceiling_rows(sweep), "measured": measured}


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def recommended(group: list[Variant]) -> tuple[Variant, str]:
    """(the variant to use, why it rather than the fastest, or "")."""
    fastest = max(group, key=lambda v: v.samples_per_s)
    close = [v for v in group if v.samples_per_s >= (1 - TIE) * fastest.samples_per_s]
    cheap = min(close, key=lambda v: v.metrics.get("cpu_s_per_1000_samples") or float("inf"))
    cpu, fast_cpu = cheap.metrics.get("cpu_s_per_1000_samples"), fastest.metrics.get("cpu_s_per_1000_samples")
    if cheap is fastest or cpu is None or fast_cpu is None:
        return fastest, ""
    return cheap, (
        f" (within {TIE:.0%} of the fastest, {fastest.label} at {fastest.samples_per_s:,.0f}, "
        f"on {cpu:.2f} CPU s per 1000 samples instead of {fast_cpu:.2f})"
    )


def paragraph(step: str, group: list[Variant], ceilings: Ceilings | None) -> str:
    v, why = recommended(group)
    where = f"At consumer.step_ms={step}: " if step else ""
    text = f"{where}{v.label} at {v.samples_per_s:,.0f} samples/s{why}."
    b = v.bounds
    if b is None or b.lowest is None or b.fraction is None:
        return text + " No ceiling is known for it."
    low, f = b.lowest, b.fraction
    text += f" It reaches {f:.0%} of its lowest ceiling, the {low.kind}'s ({low.samples_per_s:,.0f} samples/s: {low.what}). "
    text += _advice(v, b, ceilings)
    above = [c for c in b.ceilings if c is not low]
    if above and low.kind != "accelerator" and b.of("accelerator") is not None:
        acc = b.of("accelerator")
        assert acc is not None  # just checked
        text += f" The accelerator could take {acc.samples_per_s:,.0f} samples/s, {acc.samples_per_s / v.samples_per_s:.1f}x this."
    if not b.measured:
        text += " CPU and I/O ceilings were not measured for this sweep (python -m harness calibrate SWEEP_DIR measures them)."
    return text


def _advice(v: Variant, b: bounds.Bounds, ceilings: Ceilings | None) -> str:
    low, f = b.lowest, b.fraction
    assert low is not None and f is not None  # paragraph() returns earlier without them
    cores, cpu = cores_of(v), v.metrics.get("cpu_tree_mean_pct")
    busy = cpu / (cores * 100) if cpu is not None and cores else None
    if f >= bounds.NEAR and low.kind == "accelerator":
        keeps = "keeps up" if (v.metrics.get("stall_pct") or 0) < 5 else f"nearly keeps up (a faster loader gains at most {1 / f - 1:.0%})"
        return f"The loader {keeps}: only a faster step would speed training up."
    if f >= bounds.NEAR and low.kind == "CPU":
        return (
            "More workers or parallel calls will not help."
            + _cheaper(v, ceilings)
            + " A cache of decoded images would skip the decode after the first epoch, where memory allows."
        )
    if f >= bounds.NEAR:
        return "Reading the files is the limit: more CPU or workers will not help; a cache or fewer bytes per file would."
    used = f"its processes used {cpu:.0f}% of {(cores or 0) * 100}% of CPU" if busy is not None else ""
    if busy is not None and busy > bounds.BUSY:
        return f"Its processes kept the {cores} cores busy, so it does more per sample than the ceiling counts; more workers will not help."
    if f < bounds.FAR and busy is not None and busy < bounds.IDLE:
        return f"It is far below every ceiling and {used}: more parallelism (workers, parallel calls, prefetch) has room to help."
    notes = "".join(f" Note: {why}." for why in b.skipped)
    return f"The measured ceilings do not say what holds back the other {1 - f:.0%}" + (f"; {used}." if used else ".") + notes


def _cheaper(v: Variant, ceilings: Ceilings | None) -> str:
    """A decoder the calibration timed on the same files and size that costs less, or ""."""
    if ceilings is None or not v.ok:
        return ""
    from harness.results.ceilings import work_of

    t = v.ok[0]
    work = work_of(t.config, t.loader, t.dataset, t.augment)
    own = ceilings.cost(work) if work is not None else None
    if work is None or own is None:
        return ""
    same = [
        c
        for c in ceilings.costs
        if c.work != work
        and (c.work.dataset, c.work.height, c.work.width, c.work.augment) == (work.dataset, work.height, work.width, work.augment)
    ]
    better = min(same, key=lambda c: c.min_ms, default=None)
    if better is None or better.min_ms >= own.min_ms:
        return ""
    return (
        f" A cheaper decoder would: {better.work.label} took {better.min_ms:.2f} ms per sample here against "
        f"{own.min_ms:.2f} ({better.cpu_samples_per_s:,.0f} samples/s on these cores)."
    )


def ceiling_rows(sweep: Sweep) -> list[tuple[str, str, str]]:
    """(ceiling, samples/s, how) per distinct ceiling of the sweep's variants, lowest first."""
    seen: dict[tuple[str, str], float] = {}
    for v in sweep.variants:
        for c in v.bounds.ceilings if v.bounds else []:
            seen.setdefault((c.kind, c.what), c.samples_per_s)
    rows = sorted(seen.items(), key=lambda item: item[1])
    return [(kind, f"{value:,.0f}", what) for (kind, what), value in rows]


def measured_text(c: Ceilings | None) -> str:
    if c is None:
        return "Only the accelerator's ceiling is known: this sweep has no ceilings.json (python -m harness calibrate SWEEP_DIR)."
    return (
        f"CPU and I/O ceilings measured on {c.hostname} at {c.measured_at} in {c.seconds:.1f} s, after the trials "
        f"({c.cores:g} usable CPUs: {c.cores_how}): one core's fastest pass per sample times the usable cores; "
        "the disk's read bandwidth over the mean file size. See ceilings.json." + "".join(f" Note: {n}." for n in c.notes)
    )


def markdown(data: dict) -> list[str]:
    return ["**Recommendation**", ""] + [md(item) for item in data["paragraphs"]]
