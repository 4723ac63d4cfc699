"""The declarative augmentation pipeline: ops, their parameters, order and output shape.

A pipeline is written once in the config (``augment.ops``) and translated into each
library. This module knows the ops and their meaning; it imports no framework, so a
sweep rejects a bad pipeline, an op a library lacks or an impossible order before any
trial starts.

Meaning of every op, which each library's translation follows:

==================== ==================================================================
resize               to ``size`` ([h, w] or one int for a square), bilinear
random_resized_crop  a crop of ``scale`` of the area and ``ratio`` aspect, resized to ``size``
center_crop          the centre ``size`` window
random_crop          a random ``size`` window
rotate               by an angle drawn uniformly from [-degrees, degrees] (or [lo, hi]),
                     counter-clockwise, about the centre, same size, bilinear, black fill
affine               rotation as rotate, translation up to ``translate`` [fx, fy] of the
                     size, zoom drawn from ``scale`` [lo, hi], x-shear from [-shear, shear]
                     (how rotation and shear compose is each library's own convention)
hflip / vflip        mirror with probability ``p``
color_jitter         brightness, contrast, saturation factors drawn from [1 - v, 1 + v]
gaussian_blur        ``kernel_size`` (odd), sigma drawn from ``sigma`` [lo, hi]
gaussian_noise       add N(0, std) per pixel, ``std`` a fraction of the pixel range; clipped
normalize            (x / 255 - mean) / std per channel; the output becomes float32
==================== ==================================================================
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError

REQUIRED = object()

# op -> parameter -> default (REQUIRED: must be given)
OPS: dict[str, dict[str, Any]] = {
    "resize": {"size": REQUIRED},
    "random_resized_crop": {"size": REQUIRED, "scale": [0.08, 1.0], "ratio": [0.75, 4 / 3]},
    "center_crop": {"size": REQUIRED},
    "random_crop": {"size": REQUIRED},
    "rotate": {"degrees": 30.0},
    "affine": {"degrees": 0.0, "translate": [0.0, 0.0], "scale": [1.0, 1.0], "shear": 0.0},
    "hflip": {"p": 0.5},
    "vflip": {"p": 0.5},
    "color_jitter": {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0},
    "gaussian_blur": {"kernel_size": 5, "sigma": [0.1, 2.0]},
    "gaussian_noise": {"std": 0.05},
    "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
}
SIZE_OPS = ("resize", "random_resized_crop", "center_crop", "random_crop")
# Ops whose output depends only on the input: the ones libraries must agree on.
DETERMINISTIC = ("resize", "center_crop", "normalize")

LIBRARIES = ("torchvision", "albumentations", "tf_image", "keras_idg")
# loader family -> libraries that can run inside it (first: what ``augment.library=auto`` picks)
LOADER_LIBRARIES = {
    "torch": ("torchvision", "albumentations"),  # in the Dataset's __getitem__, i.e. in the workers
    "tf_data": ("tf_image", "albumentations"),  # a map; albumentations through tf.numpy_function
    "keras_idg": ("keras_idg",),  # ImageDataGenerator's own arguments
    "keras_sequence": ("albumentations",),  # numpy in __getitem__; torchvision cannot load beside TF
    "generator": ("albumentations",),
}


@dataclass(frozen=True)
class Op:
    op: str  # one of OPS
    name: str  # how augment.order refers to it (defaults to op)
    params: tuple[tuple[str, Any], ...]  # every parameter, defaults filled in

    def __getitem__(self, key: str):
        return dict(self.params)[key]

    def label(self) -> str:
        return self.name


@dataclass
class Spec:
    """A validated pipeline: ops in the order they run."""

    ops: list[Op]
    library: str
    order_name: str | None = None  # the named order, if one was chosen
    given: list[str] = field(default_factory=list)  # op names in the order the config lists them

    @property
    def active(self) -> bool:
        return bool(self.ops)

    def order_label(self) -> str:
        return ">".join(op.name for op in self.ops)

    def output_size(self, source: tuple[int, int] | None = None) -> tuple[int, int] | None:
        """(height, width) after the last size-setting op; ``source`` when none sets one."""
        size = source
        for op in self.ops:
            if op.op in SIZE_OPS:
                size = tuple(op["size"])
        return size

    def output_dtype(self) -> str:
        return "float32" if any(op.op == "normalize" for op in self.ops) else "uint8"

    def random(self) -> bool:
        return any(op.op not in DETERMINISTIC for op in self.ops)

    def signature(self) -> str:
        """Same ops, same parameters, same order -> same signature (the library is not part of it)."""
        text = json.dumps([[op.op, list(op.params)] for op in self.ops], sort_keys=True, default=list)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    def describe(self) -> dict:
        return {
            "library": self.library,
            "order": self.order_label(),
            "order_name": self.order_name,
            "ops": [{"op": op.op, "name": op.name, **{k: _plain(v) for k, v in op.params}} for op in self.ops],
            "output_dtype": self.output_dtype(),
            "signature": self.signature(),
        }

    def subset(self, ops: Sequence[Op]) -> Spec:
        return Spec(list(ops), self.library, self.order_name, [op.name for op in ops])


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _size(key: str, value) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
        raise ConfigError(f"{key}={value}: expected [height, width] (positive integers) or one integer")
    return (int(value[0]), int(value[1]))


def _pair(key: str, value, *, low=None, symmetric=False) -> tuple[float, float]:
    """A range: [lo, hi], or one number v meaning [-v, v] (symmetric) or [v, v]."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [-abs(value), abs(value)] if symmetric else [value, value]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{key}={value}: expected a number or [low, high]")
    lo, hi = float(value[0]), float(value[1])
    if lo > hi or (low is not None and lo < low):
        bound = f" and low >= {low}" if low is not None else ""
        raise ConfigError(f"{key}={list(value)}: expected low <= high{bound}")
    return (lo, hi)


def _number(key: str, value, *, low=0.0, high=None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low or (high is not None and value > high):
        span = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{key}={value}: expected a number {span}")
    return float(value)


def _triple(key: str, value, *, positive: bool) -> tuple[float, float, float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * 3
    if not isinstance(value, (list, tuple)) or len(value) not in (1, 3) or (positive and min(value) <= 0):
        raise ConfigError(f"{key}={value}: expected 1 or 3 {'positive ' if positive else ''}numbers (one per channel)")
    values = [float(v) for v in value]
    if len(values) == 1:
        return values[0], values[0], values[0]
    return values[0], values[1], values[2]


def _normalize_params(op: str, params: dict[str, Any], where: str) -> dict[str, Any]:
    """Check each parameter of one op and put it in canonical form (tuples, floats)."""
    out = dict(params)
    for key in ("size",):
        if key in out:
            out[key] = _size(f"{where}.{key}", out[key])
    if op == "random_resized_crop":
        out["scale"] = _pair(f"{where}.scale", out["scale"], low=0.0)
        out["ratio"] = _pair(f"{where}.ratio", out["ratio"], low=1e-6)
        if out["scale"][1] > 1:
            raise ConfigError(f"{where}.scale={list(out['scale'])}: a crop's area fraction is at most 1")
    if op in ("rotate", "affine"):
        out["degrees"] = _pair(f"{where}.degrees", out["degrees"], symmetric=True)
    if op == "affine":
        translate = out["translate"]
        if not isinstance(translate, (list, tuple)) or len(translate) != 2 or not all(0 <= float(t) <= 1 for t in translate):
            raise ConfigError(f"{where}.translate={translate}: expected [fx, fy], fractions of width and height in [0, 1]")
        out["translate"] = (float(translate[0]), float(translate[1]))
        out["scale"] = _pair(f"{where}.scale", out["scale"], low=1e-3)
        out["shear"] = _pair(f"{where}.shear", out["shear"], symmetric=True)
    if op in ("hflip", "vflip"):
        out["p"] = _number(f"{where}.p", out["p"], high=1.0)
    if op == "color_jitter":
        for key in ("brightness", "contrast", "saturation"):
            out[key] = _number(f"{where}.{key}", out[key], high=1.0)
        if not any(out[k] for k in ("brightness", "contrast", "saturation")):
            raise ConfigError(f"{where}: color_jitter with brightness, contrast and saturation all 0 does nothing; set one")
    if op == "gaussian_blur":
        k = out["kernel_size"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 3 or k % 2 == 0:
            raise ConfigError(f"{where}.kernel_size={k}: expected an odd integer >= 3")
        out["sigma"] = _pair(f"{where}.sigma", out["sigma"], low=1e-3)
    if op == "gaussian_noise":
        out["std"] = _number(f"{where}.std", out["std"], high=1.0)
    if op == "normalize":
        out["mean"] = _triple(f"{where}.mean", out["mean"], positive=False)
        out["std"] = _triple(f"{where}.std", out["std"], positive=True)
    return out


def parse_op(index: int, raw) -> Op:
    where = f"augment.ops[{index}]"
    if not isinstance(raw, dict) or "op" not in raw:
        raise ConfigError(f"{where}={raw}: each op is a mapping with an 'op' key, e.g. {{op: rotate, degrees: 30}}")
    raw = dict(raw)
    op = raw.pop("op")
    name = str(raw.pop("name", op))
    if op not in OPS:
        raise ConfigError(f"{where}.op={op}: unknown op; choose one of: {', '.join(OPS)}")
    schema = OPS[op]
    unknown = sorted(set(raw) - set(schema))
    if unknown:
        raise ConfigError(f"{where}: {op} has no parameter {unknown[0]!r}; its parameters: {', '.join(schema) or 'none'}")
    params = {k: raw.get(k, default) for k, default in schema.items()}
    missing = [k for k, v in params.items() if v is REQUIRED]
    if missing:
        raise ConfigError(f"{where}: {op} needs {missing[0]!r}")
    params = _normalize_params(op, params, where)
    return Op(op=op, name=name, params=tuple((k, params[k]) for k in schema))


def _order_names(order, orders: dict[str, Any]) -> tuple[list[str] | None, str | None]:
    """``augment.order`` -> (op names in run order, the named order's name)."""
    if order is None or (isinstance(order, str) and order.strip().lower() in ("", "null", "none", "as_listed")):
        return None, None
    if isinstance(order, str) and order in orders:
        return [str(n) for n in orders[order]], order
    if isinstance(order, str):
        for sep in (">", "-"):
            if sep in order:
                return [n.strip() for n in order.split(sep)], None
        return [order.strip()], None
    if isinstance(order, (list, tuple)):
        return [str(n) for n in order], None
    raise ConfigError(f"augment.order={order!r}: expected a named order, 'a-b-c' or a list of op names")


def parse(conf, loader_name: str | None = None) -> Spec:
    """Validate ``augment.*`` and return the pipeline in run order.

    Args:
        conf: the :class:`~harness.config.schema.AugmentConf`.
        loader_name: the trial's loader family, to resolve ``library=auto`` and check
            that the library can run inside it.
    """
    from harness.config.schema import choice

    ops = [parse_op(i, raw) for i, raw in enumerate(conf.ops or [])]
    library = choice(conf.library)
    if not ops:
        return Spec([], library)
    names = [op.name for op in ops]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"augment.ops: two ops are called {dup!r}; give one a 'name' so augment.order can tell them apart")
    wanted, order_name = _order_names(conf.order, dict(conf.orders or {}))
    if wanted is not None:
        if len(wanted) == 1 and wanted[0] not in names and len(names) > 1:
            named = ", ".join(sorted(conf.orders or {})) or "none defined"
            raise ConfigError(
                f"augment.order={wanted[0]}: not a named order (augment.orders: {named}) nor op names joined by '-' ({', '.join(names)})"
            )
        if sorted(wanted) != sorted(names):
            raise ConfigError(f"augment.order={'>'.join(wanted)}: must list each op of augment.ops exactly once ({', '.join(names)})")
        by_name = {op.name: op for op in ops}
        ops = [by_name[n] for n in wanted]
    if library == "auto":
        if loader_name not in LOADER_LIBRARIES:
            raise ConfigError(f"loader={loader_name} runs no augmentation; augment.ops needs loader {', '.join(LOADER_LIBRARIES)}")
        library = LOADER_LIBRARIES[loader_name][0]
    spec = Spec(ops, library, order_name, names)
    if loader_name is not None:
        allowed = LOADER_LIBRARIES.get(loader_name, ())
        if library not in allowed:
            hint = f"use augment.library={' or '.join(allowed)}" if allowed else "use a loader that reads images"
            raise ConfigError(f"augment.library={library} cannot run inside loader={loader_name}; {hint}")
    check_support(spec)
    return spec


def check_support(spec: Spec, *, partial: bool = False) -> None:
    """Raise if the library lacks an op or cannot express the pipeline (see each translator's ``check``)."""
    from harness.augment.pipeline import translator

    translator(spec.library).check(spec, partial=partial)


def check_against_batch(spec: Spec, batch) -> None:
    """The pipeline must end at the batch's size and dtype, which every loader hands the consumer."""
    from harness.config.schema import choice

    size = spec.output_size()
    if size is None:
        raise ConfigError(
            "augment.ops: no op sets the image size (resize, random_resized_crop, center_crop, random_crop); "
            "add one so samples can be stacked into batches"
        )
    if tuple(size) != (batch.height, batch.width):
        raise ConfigError(
            f"augment.ops end at {size[0]}x{size[1]} ({spec.order_label()}) but batch is {batch.height}x{batch.width}; "
            f"set batch.height={size[0]} batch.width={size[1]}"
        )
    if spec.output_dtype() == "float32" and choice(batch.dtype) != "float32":
        raise ConfigError("augment op normalize outputs float32; set batch.dtype=float32")


def permutations(names: Sequence[str]) -> list[str]:
    """Every order of ``names`` as 'a-b-c' strings, for ``augment.order=`` sweeps."""
    return ["-".join(p) for p in itertools.permutations(names)]
