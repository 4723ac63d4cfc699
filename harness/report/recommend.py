"""The recommendation (one next step, its predicted gain, whether it was verified, what limits it after) and "Advice, checked".

The step comes from :mod:`harness.advice`: where ``advice.json`` holds a verification, the change
that measured the largest gain (a change that measured slower is never advised); otherwise the
change with the largest predicted gain, marked unverified. What limits it after the step is read
from the verification's own trials where they exist (the changed pipeline, measured, with its
ceilings), else from the variant it was applied to. The ceiling table shows each ceiling once:
the accelerator's over its variants' spread, the CPU's per work, the I/O's per dataset, each
with whether it held against every measured steady state.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from harness.report.text import md
from harness.results.ceilings import Ceilings
from harness.results.sweep import Sweep


def _advice(sweep: Sweep):
    """(advice.json's contents or None, why it could not be read or "")."""
    from harness.advice.checked import ADVICE_FILE, read
    from harness.errors import HarnessError

    path = Path(sweep.root) / ADVICE_FILE
    if not path.is_file():
        return None, ""
    try:
        return read(path), ""
    except HarnessError as exc:
        return None, str(exc)


def build(sweep: Sweep) -> dict | None:
    """{"paragraph": the next step, "ceilings": one row per ceiling, "measured": how they were measured, "notes"}."""
    from harness.advice.plan import plan

    if sweep.best is None:
        return None
    advice, error = _advice(sweep)
    found = plan(sweep)
    notes = [f"advice.json not read: {error}"] if error else []
    measured = measured_text(sweep.ceilings) if sweep.ceilings_error is None else f"Not read: {sweep.ceilings_error}."
    return {"paragraph": next_step(sweep, found, advice), "ceilings": ceiling_rows(sweep), "measured": measured, "notes": notes}


def next_step(sweep: Sweep, found, advice) -> str:
    """One paragraph: the next step, its predicted gain, whether it was verified, what limits it after."""
    best = sweep.best
    assert best is not None  # build() returns earlier without one
    where = f"From {best.label} ({best.samples_per_s:,.0f} samples/s)"
    if advice is not None and advice.checked:
        return where + ": " + _verified(sweep, advice, found)
    top = found.top(1)[0] if found is not None and found.candidates else None
    if top is None:
        return where + ": no change is predicted to gain 5% or more per epoch. " + _limit_text(best.bounds)
    c = top.change
    text = (
        f"{where}, next: {top.text} ({c.what}). Predicted {c.predicted:,.0f} samples/s per epoch ({c.model}): {top.gain:+.0%} "
        f"against the best's {found.best_rate:,.0f} per epoch by the same model. Not verified: python -m harness advise "
        f"{sweep.root} runs it against the best in interleaved rounds."
    )
    return text + (f" In your code: {c.code}." if c.code else "")


def _verified(sweep: Sweep, advice, found) -> str:
    win = advice.winner
    tried = len(advice.checked)
    if win is None:
        results = "; ".join(
            f"{' '.join(c.shown)}: {c.verdict}" + (f" ({c.gain:+.0%})" if c.gain is not None else "") for c in advice.checked
        )
        return f"keep it: none of the {tried} changes verified measured faster ({results})."
    measured = statistics.median(win.measured) if win.measured else 0.0
    spread = f"{min(win.measured):,.0f}-{max(win.measured):,.0f}" if win.measured else "-"
    text = (
        f"next: {' '.join(win.shown)} ({win.what}). Predicted {win.gain_predicted:+.0%} ({win.model}). Verified in "
        f"{len(win.ratios)} interleaved rounds against the best: {measured:,.0f} samples/s, {win.gain:+.0%} "
        f"(rounds {spread}): {win.verdict}."
    )
    text += f" In your code: {win.code}." if win.code else ""
    return text + " " + _after(sweep, win)


def _after(sweep: Sweep, win) -> str:
    """What limits the pipeline once the step is taken, from the verification's trials of it (measured, with the sweep's ceilings)."""
    from harness.advice.checked import ADVICE_DIR
    from harness.advice.plan import plan
    from harness.results.sweep import load

    folder = Path(sweep.root) / ADVICE_DIR
    if not folder.is_dir():
        return ""
    try:
        measured = load(folder, ceilings=sweep.ceilings)
    except Exception:  # noqa: BLE001 - the folder is advice: a report never fails on it
        return ""
    changed = next((v for v in measured.variants if v.ok and v.ok[0].overrides == win.run), None)
    if changed is None:
        return ""
    text = "After it, " + _limit_text(changed.bounds, lower=True)
    following = plan(measured, changed.job)
    top = following.top(1)[0] if following is not None and following.candidates else None
    if top is not None:
        shown = " ".join(o for o in top.shown if o not in win.run)
        text += f" Then: {shown} ({top.change.what}), predicted {top.gain:+.0%} from its measured figures."
    return text


def _limit_text(b, lower: bool = False) -> str:
    low, f = (b.lowest, b.fraction) if b is not None else (None, None)
    if low is None or f is None:
        return ("n" if lower else "N") + "o ceiling is known for it."
    return (
        f"{'i' if lower else 'I'}t is at {f:.0%} of its lowest ceiling, the {low.kind}'s ({low.samples_per_s:,.0f} samples/s: {low.what})."
    )


def ceiling_rows(sweep: Sweep) -> list[tuple[str, str, str, str]]:
    """(ceiling, samples/s, from, held) once per ceiling: the accelerator's over its variants, the CPU's per work, the I/O's per dataset."""
    groups: dict[tuple[str, str], list] = {}
    refuted: dict[tuple[str, str], str] = {}
    for b in (v.bounds for v in sweep.variants if v.bounds is not None):
        for c in b.ceilings:
            name = (c.kind, "" if c.kind == "accelerator" else c.what)
            groups.setdefault(name, []).append(c)
            if c.key in b.refuted:
                refuted[name] = b.refuted[c.key]
    rows = []
    for (kind, what), found in sorted(groups.items(), key=lambda item: min(c.samples_per_s for c in item[1])):
        values = sorted(c.samples_per_s for c in found)
        value = f"{values[0]:,.0f}" if values[-1] <= values[0] * 1.005 else f"{values[0]:,.0f}-{values[-1]:,.0f}"
        source = what or found[0].what.split(" every ")[0] + " every measured step and copy"
        held = f"mis-measured: {refuted[(kind, what)]}" if (kind, what) in refuted else "held"
        rows.append((kind, value, source, held))
    return rows


def measured_text(c: Ceilings | None) -> str:
    if c is None:
        return "Only the accelerator's ceiling is known: this sweep has no ceilings.json (python -m harness calibrate SWEEP_DIR)."
    return (
        f"Measured on {c.hostname} at {c.measured_at} in {c.seconds:.1f} s, after the trials ({c.cores:g} usable CPUs: {c.cores_how}). "
        "CPU: per decode path, the larger of its chain's steady state run alone (no accelerator step, most parallel, in the "
        "sweep's rounds) and the cores over the lowest CPU per sample measured doing that work. I/O: the disk's cold read "
        "bandwidth over the mean file size. Accelerator: the batch over the "
        "measured step and copy. Each is held against every measured steady state it applies to; see ceilings.json."
        + "".join(f" Note: {n}." for n in c.notes)
    )


def markdown(data: dict) -> list[str]:
    return ["**Recommendation**", "", md(data["paragraph"])]


# -- Advice, checked -------------------------------------------------------------------------------
def checked(sweep: Sweep) -> dict | None:
    """The verification's rows: per change its prediction, its measurement with the spread, the verdict; None without one."""
    advice, error = _advice(sweep)
    if advice is None:
        return {"rows": [], "untried": [], "notes": [f"advice.json not read: {error}"], "conditions": "", "best": ""} if error else None
    rows = []
    for c in advice.checked:
        got = f"{statistics.median(c.measured):,.0f} ({c.gain:+.0%})" if c.gain is not None else "-"
        spread = f"{min(c.measured):,.0f}-{max(c.measured):,.0f}" if c.measured else c.error
        rows.append([" ".join(c.shown), c.what, c.label, f"{c.predicted:,.0f} ({c.gain_predicted:+.0%})", got, spread, c.verdict, c.model])
    untried = [f"{' '.join(u['shown'])} ({u['what']}): predicted {u['gain']:+.0%}" for u in advice.untried]
    measured = advice.best.get("measured") or []
    best = f"{advice.best['label']}: predicted {advice.best['predicted']:,.0f} samples/s per epoch ({advice.best['model']})"
    best += f", measured {statistics.median(measured):,.0f} ({min(measured):,.0f}-{max(measured):,.0f})" if measured else ""
    conditions = " ".join(advice.conditions) or "the sweep's own trial bounds"
    return {"rows": rows, "untried": untried, "notes": advice.notes, "conditions": conditions, "best": best, "repeats": advice.repeats}


def checked_markdown(data: dict) -> list[str]:
    if not data["rows"]:
        return []
    lines = [
        "**Advice, checked** (gains against the best in the same round)",
        "",
        "| change | predicted | measured | verdict |",
        "| --- | ---: | ---: | --- |",
    ]
    return lines + [f"| {md(r[0])} | {r[3]} | {r[4]} | {r[6]} |" for r in data["rows"]]
