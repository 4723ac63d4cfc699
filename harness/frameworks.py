"""Importing the frameworks a trial measures, at the least cost to the trial's start.

``import tensorflow`` (2.21) ends by importing ``keras.src.optimizers``, and with it most of Keras and
matplotlib.pyplot: about 1 s of the 3-4 s import on a 2-core machine, in every TensorFlow trial. Its
reason (b/196254385: registering Keras' optimizers for SavedModel loading) never applies to an input
pipeline, and TensorFlow itself tolerates the import failing (``except ImportError: pass``). So harness
imports TensorFlow with that one import refused, and Keras loads as usual the moment anything asks for
it (``import keras``, ``tf.keras``, ImageDataGenerator), outside the measured phase.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from types import ModuleType

_EAGER_KERAS = "keras.src.optimizers"  # what tensorflow/__init__.py imports last, for SavedModel registration


class _SkipEagerKeras(importlib.abc.MetaPathFinder):
    """Refuses ``keras.src.optimizers`` while ``import tensorflow`` runs: TensorFlow catches the ImportError."""

    def find_spec(self, fullname, path, target=None):
        if fullname == _EAGER_KERAS:
            raise ImportError(f"{_EAGER_KERAS}: left for when Keras is used (harness.frameworks)")
        return None


def import_module(name: str) -> ModuleType:
    """``importlib.import_module(name)``; TensorFlow without its eager Keras import (module docstring)."""
    if name.split(".")[0] != "tensorflow" or "tensorflow" in sys.modules or _EAGER_KERAS in sys.modules:
        return importlib.import_module(name)
    finder = _SkipEagerKeras()
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module(name)
    finally:
        sys.meta_path.remove(finder)
