"""Calibration: this machine's ceilings for the sweep's input pipelines (``ceilings.json``).

Measured in a process of its own (:mod:`harness.calibrate.child`), after a sweep's trials
or by ``python -m harness calibrate``, never during a trial's measured phase:

* :mod:`~harness.calibrate.costs`: one core's cost per sample of each decode library the
  sweep's loaders use (decode + resize, or decode + the augment pipeline), on files in the
  page cache, as augbench times ops: warm-up, timed passes, median and spread;
* :mod:`~harness.calibrate.probes`: the usable cores and each dataset's read bandwidth;
* :mod:`~harness.calibrate.run`: the parent's side, which decides what to measure from the
  sweep's results (or from composed configs) and supervises the child.

The file's model and the ceilings' arithmetic are in :mod:`harness.results.ceilings`.
"""
