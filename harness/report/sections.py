"""The report's sections, registered in one list in the order the page shows them (cf. asv's publishers).

A section is one :class:`Section`: an id, a heading, a pure builder ``Sweep -> data | None``
(None where the section does not apply: no heading, no fragment, no Markdown), its HTML
fragment (a Jinja macro called with the data) and optionally its block of summary.md.
``template.html.j2`` loops over the built sections; summary.md joins the Markdown blocks of
the sections that have one, in the same order. A new section is one :func:`register_section`
call and its macro (``{% macro io(data) %}...{% endmacro %}`` in ``io.html.j2`` beside the caller)::

    register_section(Section("io", io_data, "Disk reads", html="io.html.j2", folder=Path(__file__).parent), after="pipelines")

The built-in fragments are the macros of ``sections.html.j2``, one per section (figures share one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.report import details, knee, overview, plots, ranking, recommend
from harness.results.sweep import Sweep

HERE = Path(__file__).parent
FRAGMENTS = "sections.html.j2"  # the built-in sections' macros


@dataclass(frozen=True)
class Section:
    id: str  # unique; names its macro unless ``macro`` does
    build: Callable[[Sweep], Any]  # pure: the section's data, or None where the section does not apply
    title: str | Callable[[Any], str] = ""  # its <h2>, or a function of the data giving it; "": no heading
    html: str | None = FRAGMENTS  # the template file holding its macro; None: summary.md only
    macro: str = ""  # the macro of ``html`` called with the data; "": the id
    folder: Path = HERE  # where ``html`` is; a section from outside the harness brings its own folder
    markdown: Callable[[Any], list[str]] | None = None  # its lines of summary.md, from the data; None: the page only
    anchor: str = ""  # the heading's id, for links into the page ("#failed")

    def heading(self, data: Any) -> str:
        return self.title(data) if callable(self.title) else self.title


@dataclass(frozen=True)
class Built:
    """A section that applies, with its data."""

    section: Section
    data: Any


def _figure(id: str, title: str, draw: Callable[[Sweep], str | None], caption: str) -> Section:
    return Section(id, details.figure(title, draw, caption), title, macro="figure")


# The order of the page. summary.md takes the same order, so a section whose place differs there
# is registered twice: the page's warnings about unreadable files lead, the PR comment's trail.
_SECTIONS: list[Section] = [
    Section("incomplete", overview.incomplete, markdown=overview.incomplete_md),
    Section("concurrent", overview.concurrent, markdown=overview.concurrent_md),
    Section("skipped", overview.skipped),
    Section("setup", overview.setup, markdown=overview.setup_md),
    Section("verdict", overview.verdict, "Verdict", markdown=overview.verdict_md),
    Section("recommendation", recommend.build, "Recommendation", markdown=recommend.markdown),
    Section("checked", recommend.checked, "Advice, checked", markdown=recommend.checked_markdown),
    # summary.md keeps its table, empty, for a sweep of augbench trials alone; the page shows none
    Section("ranking", ranking.build, lambda table: "Ranking" if table.rows else "", markdown=ranking.markdown),
    Section("notes", overview.notes, html=None, markdown=overview.notes_md),  # the page shows them under the verdict
    Section("check", details.check, lambda check: f"Regression check against {check['baseline']}"),
    Section("diagnosis", details.diagnoses, "Diagnosis"),
    Section("pipelines", details.pipelines, "Pipelines as built"),
    Section("hosts", overview.hosts, "Per machine", markdown=overview.hosts_md),
    Section("ranks", details.ranks, "Data-parallel ranks"),
    Section("storage", details.storage, "Storage, emulated"),
    _figure(
        "throughput",
        "Throughput",
        plots.throughput,
        "Median samples/s per variant, min-max of repeats as error bars, coloured by how input-bound it is; "
        "the lines are its ceilings (a roofline): what the accelerator alone could take, what the usable cores "
        "could decode, what the disk could read (a tick on each bar where the variants' ceilings differ).",
    ),
    _figure(
        "breakdown",
        "Where each step's time goes",
        plots.breakdown,
        "Mean per step: waiting for the loader, the host-to-device copy, and compute.",
    ),
    _figure("parameter", "Throughput against the swept parameter", plots.numeric_axis, "Median samples/s."),
    Section("knee", knee.section, "Where each loader stops keeping up", markdown=knee.markdown),
    _figure(
        "timelines",
        "CPU and memory over time",
        plots.timelines,
        "The trial's process tree, first repeat of each variant, sampled every monitor.interval_ms.",
    ),
    _figure("gpu", "GPU over time", lambda sweep: plots.timelines(sweep, gpu=True), "NVML utilization and memory."),
    Section("unsampled", details.unsampled),
    Section("orders", details.orders, "Augmentation orders"),
    Section("augbench", details.augbench, "augbench: single-thread op timings"),
    Section("grids", details.grids, "Augmentation samples"),
    Section("failed", overview.failed, "Trials that did not finish ok", markdown=overview.failed_md, anchor="failed"),
    Section("left_out", overview.skipped, html=None, markdown=overview.skipped_md),
]


def list_sections() -> list[str]:
    """The registered sections' ids, in the page's order."""
    return [s.id for s in _SECTIONS]


def register_section(section: Section, *, before: str | None = None, after: str | None = None) -> None:
    """Add ``section`` to the report: before or after the section of that id, else at the end."""
    if section.id in list_sections():
        raise HarnessError(f"report section {section.id!r} is registered already; choose another id")
    if before is not None and after is not None:
        raise HarnessError(f"report section {section.id!r}: give before= or after=, not both")
    place = before if before is not None else after
    if place is None:
        _SECTIONS.append(section)
        return
    if place not in list_sections():
        raise HarnessError(f"report section {place!r}: no such section; choose one of: {', '.join(list_sections())}")
    _SECTIONS.insert(list_sections().index(place) + (after is not None), section)


def build(sweep: Sweep) -> list[Built]:
    """Every registered section that applies to ``sweep``, with its data, in order."""
    return [Built(s, data) for s in _SECTIONS for data in [s.build(sweep)] if data is not None]


def html(built: list[Built]) -> list[dict]:
    """Each section the page shows: {"id", "title", "anchor", "html"}, the fragment rendered with its data."""
    return [
        {"id": b.section.id, "title": b.section.heading(b.data), "anchor": b.section.anchor, "html": fragment(b)}
        for b in built
        if b.section.html is not None
    ]


def fragment(b: Built):
    """The section's macro called with its data: HTML, escaped as the page is."""
    assert b.section.html is not None  # html() renders only sections with a fragment
    module = environment(b.section.folder).get_template(b.section.html).module
    return getattr(module, b.section.macro or b.section.id)(b.data)


def markdown(built: list[Built]) -> list[list[str]]:
    """The summary.md blocks of the sections that have one and have something to say."""
    return [lines for b in built if b.section.markdown is not None for lines in [b.section.markdown(b.data)] if lines]


@cache
def environment(folder: Path):
    """One Jinja environment per template folder, escaping every value (labels and errors come from users)."""
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True)
