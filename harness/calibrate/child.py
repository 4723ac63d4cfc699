"""The calibration's own process: ``python -m harness.calibrate.child REQUEST_FILE``.

The request (written by :mod:`harness.calibrate.run`) names the works to time, the datasets
to read, the usable cores where the trials recorded them, the time budget and where to
write ``ceilings.json``. The parent starts this process with every thread pool at one
thread, so a cost is one core's. A work that cannot be timed (a decoder's library is not
installed, a file is unreadable) becomes a note in the file, and the others go on.
"""

from __future__ import annotations

import json
import socket
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from harness.calibrate import costs, probes
from harness.errors import HarnessError
from harness.results.ceilings import Ceilings, Cost, Disk, Work

DECODE_FILES = 24  # files per timed pass: enough to average over image content, few enough for a short pass
DISK_SHARE = 0.25  # of the budget, for reading the datasets
MIN_WORK_S = 0.5  # timed seconds per work at least, however many works share the budget
MAX_WORK_S = 2.0  # and at most


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text())
    calibrate(request).write(Path(request["out"]))
    return 0


def calibrate(request: dict) -> Ceilings:
    """Measure what ``request`` asks for and return the file's contents (not yet written)."""
    from harness.trial.environment import cpu_model

    started = time.perf_counter()
    budget = float(request.get("budget_s", 15.0))
    cores, cores_how = request["cores"] if request.get("cores") else probes.usable_cores()
    notes = list(request.get("notes", []))
    files = {root: _files(root) for root in request.get("datasets", [])}
    disks = [_disk(root, *files[root], budget * DISK_SHARE / max(len(files), 1), notes) for root in files]
    works = _works(request.get("works", []), notes)
    each = min(MAX_WORK_S, max(MIN_WORK_S, budget * (1 - DISK_SHARE) / max(len(works), 1)))
    found = [_cost(work, config, files, cores, each, notes) for work, config in works]
    first = next(iter(files.values()), ([], []))[0]
    tf_works = any(w.decoder == "tf_image" for w, _ in works)
    return Ceilings(
        measured_at=datetime.now().isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - started, 2),
        hostname=socket.gethostname(),
        cpu_model=cpu_model(),
        cores=float(cores),
        cores_how=cores_how,
        costs=[c for c in found if c is not None],
        disks=[d for d in disks if d is not None],
        notes=notes,
        map_ms=_guarded(costs.map_call_ms, notes, "tf.data's map call") if tf_works else None,
        open_ms=_guarded(lambda: costs.open_ms(first), notes, "a file's open") if first else None,
    )


def _guarded(measure, notes: list[str], what: str) -> float | None:
    """A small constant the advice's models use, or None with a note where it could not be timed."""
    try:
        return round(measure(), 5)
    except (HarnessError, OSError, ValueError) as exc:
        notes.append(f"{what} not timed ({type(exc).__name__}: {exc})")
        return None


def _works(asked: list[dict], notes: list[str]) -> list[tuple[Work, str | None]]:
    """(work, its job's trial.yaml) for each distinct work; a job given by its config alone is described first."""
    out: list[tuple[Work, str | None]] = []
    for item in asked:
        work = Work(**item["work"]) if item.get("work") else _described(item["config"], notes)
        if work is not None and work not in [w for w, _ in out]:
            out.append((work, item.get("config")))
    return out


def _described(config: str, notes: list[str]) -> Work | None:
    """The work of a job no trial has run: its loader built as a trial builds it (not iterated), then described."""
    from omegaconf import OmegaConf

    from harness.config.compose import load_trial_config
    from harness.config.validate import augment_spec
    from harness.data.build import prepare
    from harness.errors import require
    from harness.loaders import get_loader
    from harness.results.ceilings import work_of

    cfg = load_trial_config(Path(config))
    spec = augment_spec(cfg)
    family = get_loader(cfg.loader.name)
    needs = family.needs(cfg.loader)
    if not needs.dataset:
        return None
    if needs.framework:
        require(needs.framework[0], what=f"loader={cfg.loader.name}", extra=needs.framework[1])
    manifest = prepare(cfg.dataset, tfrecord=needs.tfrecord, webdataset=needs.webdataset)
    with tempfile.TemporaryDirectory(prefix="harness-calibrate-") as scratch:
        loader = family(cfg.loader, cfg.batch, manifest, seed=cfg.trial.seed, workdir=Path(scratch), augment=spec)
        try:
            described = loader.describe()
        finally:
            loader.close()
    plain = cast("dict[str, Any]", OmegaConf.to_container(OmegaConf.load(config), resolve=True))  # a trial.yaml is a mapping
    work = work_of(plain, described, manifest.describe(), spec.describe() if spec else {})
    if work is None:
        notes.append(f"loader={cfg.loader.name}: no decode library the calibration knows ({described.get('decoder', 'not named')})")
    return work


def _files(root: str) -> tuple[list[str], list[int]]:
    """The dataset's files in manifest order, with their sizes."""
    from harness.data.manifest import DatasetManifest

    manifest = DatasetManifest.load(Path(root))
    return [str(manifest.images_dir / s.filename) for s in manifest.samples], [s.bytes for s in manifest.samples]


def _disk(root: str, paths: list[str], sizes: list[int], budget_s: float, notes: list[str]) -> Disk | None:
    if not paths:
        notes.append(f"{root}: no files to read")
        return None
    try:
        return probes.bandwidth(root, probes.spread(paths, sizes), sum(sizes) / len(sizes), budget_s)
    except OSError as exc:
        notes.append(f"{root}: read bandwidth not measured ({type(exc).__name__}: {exc})")
        return None


def _cost(work: Work, config: str | None, files: dict, cores: float, budget_s: float, notes: list[str]) -> Cost | None:
    paths, sizes = files.get(work.dataset) or _files(work.dataset)
    sample = probes.spread(paths, sizes, max_bytes=1 << 62, max_files=DECODE_FILES)
    try:
        pipeline = _pipeline(config) if work.augment else None
        return costs.measure(work, sample, cores, budget_s, pipeline)
    except (HarnessError, ImportError, OSError, ValueError) as exc:  # a missing extra or library, an unreadable file: this work only
        notes.append(f"{work.label}: not measured ({type(exc).__name__}: {exc})")
        return None


def _pipeline(config: str | None):
    """The augment pipeline of the job whose trial.yaml is ``config``, built as its loader builds it."""
    if config is None:
        raise HarnessError("no job config to build the augment pipeline from")
    from harness.augment.pipeline import build, translator
    from harness.config.compose import load_trial_config
    from harness.config.validate import augment_spec

    cfg = load_trial_config(Path(config))
    spec = augment_spec(cfg)
    if spec is None:
        raise HarnessError(f"{config}: the job has no augment pipeline")
    translator(spec.library).require()
    return build(spec, cfg.trial.seed)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
