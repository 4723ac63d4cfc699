"""``report.html`` (one self-contained file) and ``summary.md`` for a sweep folder.

Both come from the registered sections (:mod:`harness.report.sections`), built once per report:
the page shows every section that applies, summary.md the ones with a Markdown form.
"""

from __future__ import annotations

from pathlib import Path

from harness.report import sections
from harness.report.details import read_check
from harness.report.text import md as md  # commands.check escapes its own Markdown with it
from harness.results.sweep import Sweep, load

REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.md"


def page(sweep: Sweep, built: list[sections.Built]) -> str:
    """report.html: the title, then each section that applies, in the registered order."""
    first = next((t for t in sweep.trials() if t.status == "ok"), None) or next(iter(sweep.trials()), None)
    name = (first.config if first else {}).get("name", "sweep")
    template = sections.environment(Path(__file__).parent).get_template("template.html.j2")
    return template.render(
        title=f"{name}: {sweep.root.name}", incomplete=sweep.incomplete, root=str(sweep.root), sections=sections.html(built)
    )


def markdown(sweep: Sweep, built: list[sections.Built] | None = None) -> str:
    """summary.md: the verdict and ranking for a pull request; every user string escaped (:func:`md`).

    Args:
        sweep: the loaded sweep.
        built: its sections as :func:`sections.build` made them; built here when not given.
    """
    title = f"## harness: {md(sweep.root.name)}" + (" (INCOMPLETE)" if sweep.incomplete else "")
    blocks = sections.markdown(sections.build(sweep) if built is None else built)
    return "\n\n".join(["\n".join(lines) for lines in [[title], *blocks]]) + "\n"


def write_report(root: Path, baseline: str | None = None) -> Path:
    """Write ``report.html`` and ``summary.md`` into the sweep folder; return the HTML's path."""
    return write(load(root, baseline))


def write(sweep: Sweep) -> Path:
    """Write a loaded sweep's ``report.html`` and ``summary.md`` into its folder; return the HTML's path."""
    from harness.data.manifest import write_text_atomic

    read_check(sweep)  # before building: an unreadable check.json joins the warnings at the top
    built = sections.build(sweep)
    root = Path(sweep.root)
    write_text_atomic(root / SUMMARY_FILE, markdown(sweep, built))
    return write_text_atomic(root / REPORT_FILE, page(sweep, built))
