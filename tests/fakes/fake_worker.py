"""A stand-in for ``python -m harness.trial.worker TRIAL_DIR`` that speaks the trial protocol and nothing else.

The request's ``config_file`` is a JSON plan: ``mode`` ``ok`` (a measured phase of
``measure_s`` seconds told over the channel, then a result), ``crash`` (exit 3 without
a result) ``hang`` (sleep past any timeout) or ``linger`` (write the result, then hang in teardown). After writing ``result.json`` it writes
``written.json`` beside it: the file's inode, mtime and sha1 as it left them, so a test
can tell whether anyone touched the result afterwards. The result's ``overhead`` says
whether the sampler's answer came (``acked``) and which ``HARNESS_*`` variables it saw.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

from harness.results.model import TrialResult
from harness.trial.protocol import Channel, Request


def main(folder: Path) -> int:
    request = Request.read(folder)
    plan = json.loads(Path(request.config_file).read_text())
    channel = Channel.for_child(request)
    if plan["mode"] == "crash":
        print("fake worker: crashing on purpose", flush=True)
        return 3
    if plan["mode"] == "hang":
        time.sleep(600)
    result = TrialResult("ok", {}, request.overrides, request.job, request.repeat, kind=request.kind, timing=dict(request.schedule))
    start = time.perf_counter()
    if channel is not None:
        channel.begin()
    time.sleep(plan.get("measure_s", 0.5))
    wall = time.perf_counter() - start
    acked = channel.end() if channel is not None else False
    result.timing["measure_start_clock"] = start
    result.summary = {"wall_s": wall, "steps": 1}
    result.steps = {
        "t_ms": [0.0],
        "wait_ms": [0.0],
        "h2d_ms": [0.0],
        "compute_ms": [wall * 1e3],
        "step_ms": [wall * 1e3],
        "samples": [8],
        "epoch": [0],
    }
    result.overhead = {"acked": acked, "harness_env": sorted(k for k in os.environ if k.startswith("HARNESS_"))}
    path = result.write(folder)
    stat = os.stat(path)
    seen = {"ino": stat.st_ino, "mtime_ns": stat.st_mtime_ns, "sha1": hashlib.sha1(path.read_bytes()).hexdigest()}
    (folder / "written.json").write_text(json.dumps(seen))
    if plan["mode"] == "linger":  # a framework's teardown that never returns, after the result is out
        time.sleep(600)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
