"""Writes the reference pages into the documentation site at every build (mkdocs-gen-files runs this).

The pages themselves are built by :mod:`harness.reference` from the code; nothing here is written by hand.
"""

from pathlib import Path

import mkdocs_gen_files

from harness.reference import PAGES

for path, build in PAGES.items():
    with mkdocs_gen_files.open(path, "w") as page:
        page.write(build())
    mkdocs_gen_files.set_edit_path(path, Path("harness") / "reference.py")
