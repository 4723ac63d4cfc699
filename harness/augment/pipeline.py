"""Translators: one declarative :class:`~harness.augment.spec.Spec`, each library's own objects.

A translator has two halves. :meth:`Translator.check` runs at config time without the
framework: an op the library lacks, or a pipeline it cannot express, is a one-line error
naming both. :meth:`Translator.build` imports the library and returns a
:class:`Pipeline` made of that library's transforms, which the loaders run inside
their workers or maps and which ``augbench`` and the sample grids call directly.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from harness.errors import ConfigError

_MODULES = {
    "torchvision": "harness.augment.lib_torchvision",
    "albumentations": "harness.augment.lib_albumentations",
    "tf_image": "harness.augment.lib_tf_image",
    "keras_idg": "harness.augment.lib_keras_idg",
}


class Pipeline:
    """A built pipeline in one library.

    ``native`` turns a decoded uint8 HWC numpy image into the library's input type,
    ``__call__`` runs the transforms on it, and ``numpy`` turns the output back into an
    HWC numpy array (uint8, or float32 after normalize).
    """

    library: str

    def __init__(self, spec, objects: Any):
        self.spec, self.objects = spec, objects

    def native(self, image: np.ndarray):
        return image

    def __call__(self, image):
        raise NotImplementedError

    def numpy(self, image) -> np.ndarray:
        return np.asarray(image)

    def reseed(self, seed: int) -> None:
        """Make the next draws reproducible (sample grids, tests)."""

    def apply_numpy(self, image: np.ndarray) -> np.ndarray:
        return self.numpy(self(self.native(image)))

    def describe(self) -> dict:
        return {"library": self.library, "objects": repr(self.objects)}


class Translator:
    library: str
    supported: frozenset[str] = frozenset()
    install = ("", "")  # (module, pip extra) the library needs

    def check(self, spec, *, partial: bool = False) -> None:
        """Raise :class:`ConfigError` if the library lacks an op; ``partial`` skips whole-pipeline rules."""
        for op in spec.ops:
            if op.op not in self.supported:
                have = ", ".join(sorted(self.supported))
                raise ConfigError(f"augment op {op.op} ({op.name}) has no translation in augment.library={self.library}; it has: {have}")

    def build(self, spec, seed: int) -> Pipeline:
        raise NotImplementedError

    def require(self):
        from harness.errors import require

        module, extra = self.install
        return require(module, what=f"augment.library={self.library}", extra=extra)


def translator(library: str) -> Translator:
    if library not in _MODULES:
        raise ConfigError(f"augment.library={library}: choose one of: {', '.join(_MODULES)}")
    return importlib.import_module(_MODULES[library]).TRANSLATOR


def build(spec, seed: int) -> Pipeline:
    """The spec's pipeline in its library, seeded."""
    return translator(spec.library).build(spec, seed)
