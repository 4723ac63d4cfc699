"""Storage tiers a trial can read its dataset from (``storage=`` in the config).

``local`` reads the dataset's own folder. ``throttled`` serves the dataset cache through a FUSE
mount with a set latency per open and per read request, a bandwidth cap and jitter
(``throttle.c``, a libfuse 3 server built on first use by :mod:`harness.storage.native`), which the
trial's parent starts and always unmounts (:mod:`harness.storage.mount`). The profiles in
``conf/storage/`` name common tiers with the figures' sources. Nothing here imports a framework.
"""
