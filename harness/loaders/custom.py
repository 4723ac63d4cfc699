"""``loader=custom``: the user's own pipeline, measured exactly like the built-in families.

``loader.target=my_package.pipelines:make_loader`` names a function (or an object) in the
user's code; the trial's process imports it (from the current folder, ``PYTHONPATH`` or
``loader.path``) and calls it with the dataset's files (:class:`Data`), the batch every
family must deliver (:class:`BatchSpec`) and ``loader.kwargs`` (each one a sweep axis:
``loader.kwargs.workers=0,2``). What it returns is adapted to the consumer:

- a ``tf.data.Dataset``, a ``torch.utils.data.DataLoader`` or any re-iterable: a fresh
  iterator per epoch, as ``model.fit`` and a PyTorch epoch loop take one;
- a ``keras.utils.PyDataset``: through Keras' own adapter, so its ``workers`` and
  ``use_multiprocessing`` work as in ``fit``;
- a generator (or another one-shot iterator): the first epoch reads it, each later epoch
  calls the function again for a fresh one.

Each element is ``images``, ``(images, labels)``, ``(images, labels, ids)`` or a mapping
with ``image(s)`` / ``label(s)``; ids (the dataset's file names) turn on the same-data
checks. The first batch must match ``batch.*`` (size, height, width, channels, dtype,
layout); a mismatch fails the trial with one line naming what differs.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config.schema import choice
from harness.errors import ConfigError, HarnessError
from harness.loaders.base import Batch, Loader, LoaderConf, Needs, register_loader

PICKLED_SUFFIX = ".pkl"  # loader.target=<file>.pkl: an object harness.measure() pickled for the trial


@dataclass
class CustomLoaderConf(LoaderConf):
    """The user's own pipeline: an import path to a function that builds it."""

    name: str = "custom"
    target: str = ""  # module:function (or module.function) in the user's code; required
    path: str | None = None  # a folder put first on sys.path in the trial (where the user's module lives)
    kwargs: dict[str, Any] = field(default_factory=dict)  # passed to the function; each is a sweepable override
    dataset: bool = True  # whether the pipeline reads the dataset (false: it makes its own data)


@dataclass(frozen=True)
class Data:
    """The dataset as every family reads it: what a user's function gets first."""

    paths: list[str]  # absolute file paths, in manifest order
    labels: list[int]  # class index of each file
    ids: list[str]  # each file's id (its path relative to ``folder``): yield them to have every epoch checked
    classes: list[str]  # class names; ``labels`` index this list
    folder: str  # one sub-folder per class (image_dataset_from_directory, flow_from_directory)
    manifest: Any = None  # the full DatasetManifest (sizes, checksums), for pipelines that want more


@dataclass(frozen=True)
class BatchSpec:
    """What every batch must be, as plain values (``batch.*``)."""

    size: int
    height: int
    width: int
    channels: int
    dtype: str  # "uint8" or "float32"
    layout: str  # "nhwc" or "nchw"

    @property
    def shape(self) -> tuple[int, int, int, int]:
        if self.layout == "nchw":
            return (self.size, self.channels, self.height, self.width)
        return (self.size, self.height, self.width, self.channels)


def split_target(target: str) -> tuple[str, str]:
    """``module:attr`` or ``module.attr`` -> (module, attr); a one-line error for anything else."""
    module, sep, attr = target.partition(":")
    if not sep:
        module, _, attr = target.rpartition(".")
    if not module or not attr or not all(part.isidentifier() for part in [*module.split("."), *attr.split(".")]):
        raise ConfigError(
            f"loader.target={target!r}: not an import path; write module:function, e.g. loader.target=my_pipelines:make_loader"
        )
    return module, attr


def resolve(target: str, path: str | None = None):
    """The object ``target`` names, imported in this process (the trial's)."""
    if target.endswith(PICKLED_SUFFIX):
        import pickle

        with open(target, "rb") as f:
            return pickle.load(f)
    module_name, attr = split_target(target)
    sys.path[:0] = _search_path(path)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise  # the user's module imports something that is missing: their traceback says what
        raise ConfigError(
            f"loader.target={target}: cannot import {module_name} ({exc}); run harness from the folder that holds it, "
            "put that folder on PYTHONPATH, or set loader.path=DIR"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"loader.target={target}: {module_name} has no {attr}")
        obj = getattr(obj, part)
    return obj


def _search_path(path: str | None) -> list[str]:
    """The folder ``loader.path`` adds to the search path (none without one)."""
    if not path:
        return []
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError(f"loader.path={path}: not a folder; point it at the folder that holds your pipeline's module")
    return [str(folder)]


def _findable(module: str, target: str, path: str | None) -> None:
    """Refuse, before any trial, a target whose module the trial could not import (without running it)."""
    import importlib.util

    added = _search_path(path)
    sys.path[:0] = added
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a parent package that is missing or not a package
        spec = None
    finally:
        for folder in added:
            sys.path.remove(folder)
    if spec is None:
        raise ConfigError(
            f"loader.target={target}: no module {module} on the search path; run harness from the folder that holds it, "
            "put that folder on PYTHONPATH, or set loader.path=DIR"
        )


def kind_of(obj) -> str:
    """What a user's function returned, in the words the report uses."""
    names = {f"{c.__module__}.{c.__qualname__}" for c in type(obj).__mro__}
    if any(n.startswith("tensorflow.") and n.endswith("DatasetV2") for n in names):
        return "tf.data.Dataset"
    if "torch.utils.data.dataloader.DataLoader" in names:
        return "torch DataLoader"
    if any(n.endswith(".PyDataset") or n.endswith(".Sequence") for n in names if n.startswith("keras")):
        return "keras PyDataset"
    if inspect.isgenerator(obj):
        return "generator"
    if hasattr(obj, "__iter__"):
        return "iterator" if hasattr(obj, "__next__") else "iterable"  # iter() of an unknown object may start work
    raise HarnessError(
        f"the pipeline function returned a {type(obj).__name__}; return a tf.data.Dataset, a DataLoader or any iterable "
        "of batches, a keras.utils.PyDataset, or a generator"
    )


_IMAGE_KEYS = ("image", "images", "x", "pixel_values")
_LABEL_KEYS = ("label", "labels", "y")


def split(element) -> tuple[Any, Any, Any]:
    """(images, labels or None, ids or None) of one element a user's pipeline yielded."""
    if isinstance(element, dict):
        images = next((element[k] for k in _IMAGE_KEYS if k in element), None)
        labels = next((element[k] for k in _LABEL_KEYS if k in element), None)
        if images is None:
            raise HarnessError(f"a batch is a mapping without images: keys {sorted(element)}; name them one of {', '.join(_IMAGE_KEYS)}")
        return images, labels, element.get("ids")
    if isinstance(element, (tuple, list)) and element and hasattr(element[0], "shape"):
        labels = element[1] if len(element) > 1 else None
        third = element[2] if len(element) > 2 else None
        return element[0], labels, third if _are_ids(third) else None
    if hasattr(element, "shape"):
        return element, None, None
    raise HarnessError(
        f"a batch is a {type(element).__name__}; yield images, (images, labels), (images, labels, ids) or a mapping with 'image'"
    )


def _are_ids(value) -> bool:
    """Whether a third element holds sample ids (names), not Keras-style sample weights."""
    if value is None:
        return False
    if hasattr(value, "numpy"):
        value = value.numpy()
    first = value[0] if len(value) else None
    return isinstance(first, (str, bytes))


def plain_python(data: Data, batch: BatchSpec, shuffle: bool = False, seed: int = 0):
    """A reference pipeline (PIL in this process, one batch after another), and a template for your own.

    ``loader.target=harness.loaders.custom:plain_python`` measures it; the contract suite
    runs the family with it (:attr:`CustomLoader.example`).
    """
    import numpy as np

    from harness.loaders.images import batches_of, load_batch

    order = list(range(len(data.paths)))
    if shuffle:
        np.random.default_rng(seed).shuffle(order)
    paths, labels, ids = np.asarray(data.paths), np.asarray(data.labels, dtype=np.int64), np.asarray(data.ids)
    for picked in batches_of(order, batch.size, drop_last=False):
        yield load_batch(paths[picked], batch), labels[picked], ids[picked].tolist()


@register_loader
class CustomLoader(Loader):
    name = "custom"
    schema = CustomLoaderConf
    rank_sharding = "a per-rank slice of the file list in data.paths (data.folder stays the whole folder)"
    example = ("loader.target=harness.loaders.custom:plain_python",)  # a working config: loader.target is required

    @classmethod
    def needs(cls, conf) -> Needs:
        return Needs(dataset=conf.dataset)

    @classmethod
    def check(cls, conf) -> None:
        if not conf.target:
            raise ConfigError("loader=custom needs loader.target=module:function, the function that builds your pipeline")
        if conf.target.endswith(PICKLED_SUFFIX):
            if not Path(conf.target).is_file():
                raise ConfigError(f"loader.target={conf.target}: no such file")
            return
        module, _ = split_target(conf.target)
        _findable(module, conf.target, conf.path)

    @classmethod
    def check_augment(cls, conf, spec) -> None:
        if spec is not None and spec.active:
            raise ConfigError("loader=custom runs your pipeline as written: augment it there, and leave augment=none")

    def __init__(self, conf, batch, dataset, seed: int, workdir=None, augment=None):
        super().__init__(conf, batch, dataset, seed, workdir, augment)
        self.target = resolve(conf.target, conf.path)
        self.spec = BatchSpec(batch.size, batch.height, batch.width, batch.channels, choice(batch.dtype), choice(batch.layout))
        self.data = self._data(dataset)
        self.kwargs = dict(conf.kwargs)
        self.built = self._build()
        self.kind = kind_of(self.built)
        self.adapter = self._keras_adapter() if self.kind == "keras PyDataset" else None
        self.used = False  # a one-shot iterator read once already

    @staticmethod
    def _data(dataset) -> Data | None:
        if dataset is None:
            return None
        paths, labels, ids = dataset.columns()
        return Data(paths, labels, ids, list(dataset.classes), str(dataset.images_dir), dataset)

    def _build(self):
        """Call the user's function (or take the object as it is)."""
        if not callable(self.target) or _is_pipeline(self.target):
            return self.target
        try:
            params = inspect.signature(self.target).parameters
        except (TypeError, ValueError):  # a builtin or C callable: call it as documented
            params = {}
        extra = {"seed": self.seed} if "seed" in params and "seed" not in self.kwargs else {}
        return self.target(self.data, self.spec, **self.kwargs, **extra)

    def _keras_adapter(self):
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

        return PyDatasetAdapter(self.built, shuffle=False)

    def _elements(self) -> Iterator:
        if self.adapter is not None:
            self.adapter.on_epoch_begin()
            try:
                yield from self.adapter.get_numpy_iterator()
            finally:
                self.adapter.on_epoch_end()
            return
        if self.kind in ("generator", "iterator"):
            if self.used:  # one-shot: a fresh one from the function for every later epoch
                self.built = self._build()
            self.used = True
        yield from self.built

    def epoch(self, index: int) -> Iterator[Batch]:
        for element in self._elements():
            images, labels, ids = split(element)
            yield Batch(images=images, labels=labels, ids=ids)

    def random_ops(self) -> bool | None:  # type: ignore[override]
        return None  # unknown: the user's pipeline may augment

    def reference_pixels(self, path: str):
        return None  # the user's pipeline decides the pixels

    def describe(self) -> dict:
        return {
            "target": self.conf.target,
            "returned": self.kind,
            "type": f"{type(self.built).__module__}.{type(self.built).__qualname__}",
            "kwargs": self.kwargs,
            "knobs": knobs(self.built),
            "ops": [f"{self.conf.target}(data, batch={self._batch_text()}{''.join(f', {k}={v!r}' for k, v in self.kwargs.items())})"]
            + [f"-> {self.kind}" + (f" {knobs(self.built)}" if knobs(self.built) else "")],
            "decoder": "as the pipeline does",
        }

    def _batch_text(self) -> str:
        b = self.spec
        return f"{b.size} x {b.height}x{b.width}x{b.channels} {b.dtype} {b.layout}"

    def close(self) -> None:
        if self.adapter is not None and self.adapter.enqueuer is not None:
            self.adapter.enqueuer.stop()


def _is_pipeline(obj) -> bool:
    """A pipeline object that happens to be callable (a tf.data.Dataset is not; some iterables are)."""
    return not (inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isclass(obj)) and hasattr(obj, "__iter__")


# What the report shows of a framework object the user built: the settings that decide its speed.
_KNOBS = {
    "torch DataLoader": ("batch_size", "num_workers", "pin_memory", "persistent_workers", "prefetch_factor", "drop_last"),
    "keras PyDataset": ("workers", "use_multiprocessing", "max_queue_size"),
}


def knobs(obj) -> dict:
    """The speed-deciding settings of the returned object, as built (DataLoader, PyDataset, tf.data options)."""
    kind = kind_of(obj)
    found = {name: getattr(obj, name) for name in _KNOBS.get(kind, ()) if isinstance(getattr(obj, name, None), (int, bool, float))}
    if kind == "tf.data.Dataset":
        options = obj.options()
        found["deterministic"] = options.deterministic
        found["autotune"] = options.autotune.enabled
    return found
