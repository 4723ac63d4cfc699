"""Augmentation pipelines: one declarative list of ops, translated into each library.

``spec`` parses and checks ``augment.*`` without frameworks; ``pipeline`` and the
``lib_*`` modules build each library's own transforms; ``bench`` times them op by op on
one thread (``python -m harness augbench``); ``preview`` saves sample grids.
"""
