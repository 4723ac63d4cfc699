"""Advice that is a claim: concrete changes, each with a predicted samples/s and the model behind it.

The room reads results (:mod:`harness.results`: a sweep's variants, their ceilings) and never
imports a command or the report. Its parts:

* :mod:`~harness.advice.subject`: one variant's measured figures as the levers read them, and
  the per-epoch arithmetic every prediction shares;
* :mod:`~harness.advice.levers`: the levers (epoch restarts, parallelism, prefetch, cache,
  decoder, vectorized light ops, shards, pin_memory), each a function from a variant to the
  changes it suggests, with a prediction;
* :mod:`~harness.advice.plan`: every lever over every variant of a sweep, ranked against the
  sweep's best, with the conditions a verification runs them in;
* :mod:`~harness.advice.checked`: ``advice.json``, what a verification measured and its verdict
  per change (``harness advise SWEEP_DIR`` runs it; :mod:`harness.commands.advise`).
"""
