"""Each variant's diagnosis: at most three short lines, the rest folded under them.

1. how input-bound it is (TensorFlow profiler's bands) and what bounds it, from its ceilings that held;
2. its own next step: the change predicted to speed it up most (:mod:`harness.advice.plan`), or
   the cost of its epoch restarts where no lever has a measurement to stand on;
3. whether its repeats can be trusted (unstable, two speeds) or a ceiling was mis-measured.

The details fold out: ceilings that do not apply and why, the time to the first batch, the
speed-up over the baseline, the same-data check's problems, tf.data's autotuning note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.results import bounds as roofline
from harness.results.sweep import Sweep, Variant, band, cores_of
from harness.results.table import RESTART_NOTE_PCT, status_word

UNSTABLE_ADVICE = "more repeats (trial.repeats), longer trials (trial.seconds), fewer background processes"
BIMODAL_ADVICE = (
    "the pipeline flips between two modes (AUTOTUNE on few cores does this); read the per-trial rows, "
    "pin num_parallel_calls, or run more repeats"
)
MAX_LINES = 3


@dataclass
class Diagnosis:
    lines: list[str] = field(default_factory=list)  # at most MAX_LINES, each one short sentence
    details: list[str] = field(default_factory=list)  # folded under them

    @property
    def text(self) -> str:
        """Everything as one paragraph (summary.md, the terminal)."""
        return " ".join(self.lines + self.details)


def diagnose(v: Variant, sweep: Sweep) -> Diagnosis:
    """The variant's diagnosis: its bound, its next step, how far its figures can be trusted."""
    if not v.ok:
        first = v.failed[0]
        return Diagnosis([f"No repeat finished ok ({v.status_text()}): {status_word(first.status)}: {first.error or 'no reason given'}."])
    d = Diagnosis([_bound_line(v)])
    step = _next_line(v, sweep)
    if step:
        d.lines.append(step)
    trust = _trust_line(v)
    if trust:
        d.lines.append(trust)
    d.details = _details(v, sweep)
    d.lines = d.lines[:MAX_LINES]
    return d


def _bound_line(v: Variant) -> str:
    stall = v.metrics["stall_pct"] or 0.0
    head = f"{band(stall).capitalize()} (waited {stall:.0f}%)"
    b = v.bounds
    low, f = (b.lowest, b.fraction) if b is not None else (None, None)
    cores, cpu = cores_of(v), v.metrics.get("cpu_tree_mean_pct")
    busy = cpu / (cores * 100) if cpu is not None and cores else None
    if low is None or f is None:
        return head + (f"; CPU {cpu:.0f}% of {cores * 100}%." if busy is not None and cores else ".")
    where = f"{f:.0%} of its {low.kind} ceiling ({low.samples_per_s:,.0f}/s)"
    if stall < 5:
        return f"{head}: the accelerator sets the pace, at {where}."
    if f >= roofline.NEAR:
        kind = {"accelerator": "accelerator-bound", "CPU": "CPU-bound", "I/O": "fetch-bound"}[low.kind]
        return f"{head}: {kind}, at {where}."
    if busy is not None and busy > roofline.BUSY:
        return f"{head}: all {cores} cores busy, yet at {where}: its chain does more per sample than the ceiling's."
    if f < roofline.FAR and busy is not None and busy < roofline.IDLE:
        return f"{head}: at {where} with cores idle (CPU {cpu:.0f}% of {(cores or 0) * 100}%): something serial holds it."
    return f"{head}: at {where}" + (f", CPU {cpu:.0f}% of {(cores or 0) * 100}%." if busy is not None else ".")


def _next_line(v: Variant, sweep: Sweep) -> str:
    from harness.advice.plan import plan

    mine = plan(sweep, v.job)
    checked = _checked(sweep)
    for c in mine.candidates if mine is not None else []:
        done = next((x for x in checked if x.job == v.job and set(c.change.changes) <= set(x.run)), None)
        if done is None:
            return f"Next: {c.text} ({c.change.what}), predicted {c.change.predicted:,.0f}/s per epoch ({c.gain:+.0%})."
        if done.sped_up:
            return f"Next: {c.text} ({c.change.what}), verified: {done.gain:+.0%} against the best ({done.verdict})."
        # a change verified as no faster is no advice: the next candidate, if any
    pct = v.metrics.get("restart_pct")
    if pct is not None and pct > RESTART_NOTE_PCT:
        return f"Epoch restarts cost {pct:.0f}% of its time; its steady state is {v.metrics.get('steady_samples_per_s') or 0:,.0f}/s."
    return ""


def _checked(sweep: Sweep) -> list:
    """The changes ``advice.json`` verified, or none where there is no readable one."""
    from pathlib import Path

    from harness.advice.checked import ADVICE_FILE, read
    from harness.errors import HarnessError

    path = Path(sweep.root) / ADVICE_FILE
    try:
        return read(path).checked if path.is_file() else []
    except HarnessError:  # the Recommendation names the unreadable file
        return []


def _trust_line(v: Variant) -> str:
    if v.modes is not None:  # v.bimodal
        slow, fast = v.modes
        return f"Two speeds ({slow:,.0f} and {fast:,.0f}/s): {BIMODAL_ADVICE}."
    if v.unstable:
        return f"Unstable: {v.spread['min']:,.0f}-{v.spread['max']:,.0f}/s (CV {v.cv:.0%}): {UNSTABLE_ADVICE}."
    wrong = v.bounds.mismeasured() if v.bounds is not None else []
    return wrong[0][0].upper() + wrong[0][1:] + "." if wrong else ""


def _details(v: Variant, sweep: Sweep) -> list[str]:
    m, out = v.metrics, []
    if v.bounds is not None:
        out += [line[0].upper() + line[1:] + "." for line in v.bounds.skipped + v.bounds.mismeasured()]
        if not v.bounds.measured and (m["stall_pct"] or 0) >= 5:
            out.append("CPU and I/O ceilings were not measured: python -m harness calibrate SWEEP_DIR measures them.")
    pct = m.get("restart_pct")
    if pct is not None and pct > RESTART_NOTE_PCT:
        ms, count = m.get("epoch_restart_ms_p50"), m.get("epoch_restarts")
        out.append(
            f"Epoch restarts cost {pct:.0f}% of its time ({ms or 0:,.0f} ms to each new epoch's first batch, {count or 0:g} "
            f"restart{'' if count == 1 else 's'}): "
            "one repeating iterator (trial.epoch_mode=continuous), persistent workers or a larger dataset leave them out."
        )
        out += _autotune_words(v)
    ttfb = m.get("ttfb_s")
    if ttfb and ttfb > 2:
        out.append(f"The first batch took {ttfb:.1f} s.")
    if sweep.baseline is not None and v is not sweep.baseline and v.speedup:
        out.append(f"{v.speedup:.2f}x the baseline (job {sweep.baseline.job}).")
    problems = sorted({p for t in v.ok for p in t.same_data.get("problems", [])})
    if problems:
        out.append("Same-data check: " + "; ".join(problems) + ".")
    return out


def _autotune_words(v: Variant) -> list[str]:
    """tf.data with autotuning on: deleting each epoch's finished iterator can block for up to a second or more."""
    loader: dict[str, Any] = next((t.config.get("loader", {}) for t in v.ok), {})
    if loader.get("name") != "tf_data" or loader.get("autotune") is False:
        return []
    return [
        "With tf.data's autotuning on, deleting a finished iterator waits for its model thread; loader.autotune=false with "
        "fixed num_parallel_calls and prefetch avoids it, as does one repeating iterator."
    ]
