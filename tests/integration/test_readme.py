"""The shown sessions of the README and the documentation are run, so what they show cannot drift from what harness prints.

Every ``$ python -m harness ...`` line inside a fenced block of README.md or docs/**/*.md is run
in a scratch folder; the lines after it, up to the next ``$`` line or the end of the block, must
be what it printed.
"""

import shlex

import pytest

from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def sessions():
    """(command, expected output lines) for each shown session in the README and the docs."""
    found, fenced, current = [], False, None
    for line in (line for page in PAGES for line in page.read_text().splitlines()):
        if line.startswith("```"):
            fenced, current = not fenced, None
        elif fenced and line.startswith("$ python -m harness "):
            current = (line[2:], [])
            found.append(current)
        elif current is not None and line.strip():
            current[1].append(line)
    return found


def test_the_docs_show_sessions():
    assert len(sessions()) >= 3


@pytest.mark.parametrize("command, expected", sessions(), ids=[c for c, _ in sessions()])
def test_a_shown_session_prints_what_the_readme_says(cli, command, expected):
    done = cli(*shlex.split(command)[3:], timeout=120)
    printed = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert printed == expected
