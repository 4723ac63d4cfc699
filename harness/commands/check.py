"""``check SWEEP_DIR``: the CI regression gate.

The gate (baselines, significance test, thresholds) is not built yet; until it is, the
command says so and exits 2, the code for "the check could not run", so no CI job can
mistake it for a pass.
"""

from __future__ import annotations

import sys
from typing import List

CANNOT_RUN_EXIT = 2


def check(args: List[str]) -> int:
    print("ERROR: check is not available yet in this version of harness; nothing was compared", file=sys.stderr)
    return CANNOT_RUN_EXIT
