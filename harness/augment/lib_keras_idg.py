"""``augment.library=keras_idg``: the pipeline as ``ImageDataGenerator`` arguments.

ImageDataGenerator runs a fixed chain, so only pipelines in its order are expressible:

    load_img(target_size)          resize, first (the iterator resizes while loading)
    random_transform: one affine   rotate or affine (rotation_range, shifts, shear, zoom)
                      flips        hflip, vflip (p = 0.5 only)
                      brightness   color_jitter with brightness only (brightness_range)
    standardize                    normalize (rescale=1/255, then featurewise mean / std)

Crops, blur, noise, contrast and saturation have no argument; asking for them, for
another order or for a flip probability other than 0.5 fails at config time.
Rotations and affines fill with black (``fill_mode="constant"``) as the spec says.
Affine zoom: the spec's scale [lo, hi] enlarges content, ImageDataGenerator's zoom
factor shrinks it, so ``zoom_range = [1/hi, 1/lo]``.
"""

from __future__ import annotations

import numpy as np

from harness.augment.pipeline import Pipeline, Translator
from harness.errors import ConfigError

# ImageDataGenerator's fixed chain: the rank of each op in it
RANK = {"resize": 0, "rotate": 1, "affine": 1, "hflip": 2, "vflip": 3, "color_jitter": 4, "normalize": 5}
CHAIN = "resize > rotate|affine > hflip > vflip > color_jitter(brightness) > normalize"


def generator_kwargs(spec) -> dict:
    """ImageDataGenerator(**kwargs) for the spec (without resize, which the iterator does)."""
    kwargs: dict = {"fill_mode": "constant", "cval": 0.0}
    for op in spec.ops:
        p = dict(op.params)
        if op.op in ("rotate", "affine"):
            kwargs["rotation_range"] = p["degrees"][1]
        if op.op == "affine":
            kwargs["width_shift_range"], kwargs["height_shift_range"] = p["translate"]
            kwargs["shear_range"] = p["shear"][1]
            lo, hi = p["scale"]
            kwargs["zoom_range"] = [1.0 / hi, 1.0 / lo]
        if op.op == "hflip":
            kwargs["horizontal_flip"] = True
        if op.op == "vflip":
            kwargs["vertical_flip"] = True
        if op.op == "color_jitter":
            kwargs["brightness_range"] = [max(0.0, 1 - p["brightness"]), 1 + p["brightness"]]
        if op.op == "normalize":
            kwargs.update(rescale=1 / 255.0, featurewise_center=True, featurewise_std_normalization=True)
    return kwargs


class KerasIdgPipeline(Pipeline):
    """``objects`` is the ImageDataGenerator.

    Inside ``loader=keras_idg`` the generator's own iterator runs it. Called directly
    (augbench, sample grids), this repeats the iterator's steps for one image: resize
    with PIL as ``load_img(target_size)`` does, ``img_to_array``, ``random_transform``,
    ``standardize``.
    """

    library = "keras_idg"

    def __init__(self, spec, generator, target_size, interpolation="bilinear"):
        super().__init__(spec, generator)
        self.target_size, self.interpolation = target_size, interpolation

    def __call__(self, image):
        if self.target_size is not None and tuple(image.shape[:2]) != tuple(self.target_size):
            from PIL import Image

            image = np.asarray(Image.fromarray(image).resize((self.target_size[1], self.target_size[0]), Image.Resampling.BILINEAR))
        x = self.objects.random_transform(image.astype(np.float32))
        return self.objects.standardize(x)

    def numpy(self, image) -> np.ndarray:
        if self.spec.output_dtype() == "uint8":
            return np.clip(np.rint(image), 0, 255).astype(np.uint8)
        return image.astype(np.float32)

    def reseed(self, seed: int) -> None:
        np.random.seed(seed % 2**32)  # ImageDataGenerator draws from numpy's global generator

    def describe(self) -> dict:
        return {
            "library": self.library,
            "target_size": list(self.target_size or []),
            "arguments": {k: (list(v) if isinstance(v, tuple) else v) for k, v in generator_kwargs(self.spec).items()},
        }


class KerasIdgTranslator(Translator):
    library = "keras_idg"
    supported = frozenset(RANK)
    install = ("tensorflow", "tf")

    def check(self, spec, *, partial: bool = False) -> None:
        super().check(spec, partial=partial)
        ranks = [RANK[op.op] for op in spec.ops]
        if not partial:
            if ranks != sorted(ranks):
                raise ConfigError(
                    f"augment order {spec.order_label()} is not expressible in augment.library=keras_idg, whose order is fixed: {CHAIN}"
                )
            if ranks.count(1) > 1:
                raise ConfigError("augment.library=keras_idg has one rotation_range; use rotate or affine, not both")
            if not spec.ops or spec.ops[0].op != "resize":
                raise ConfigError("augment.library=keras_idg resizes while loading (target_size); start augment.ops with resize")
        for op in spec.ops:
            p = dict(op.params)
            if op.op in ("hflip", "vflip") and p["p"] != 0.5:
                raise ConfigError(f"augment op {op.name}: keras_idg flips with p=0.5 only (got p={p['p']})")
            if op.op == "color_jitter" and (p["contrast"] or p["saturation"]):
                raise ConfigError(
                    f"augment op {op.name}: keras_idg has brightness_range only; contrast and saturation "
                    "have no ImageDataGenerator argument"
                )
            symmetric = [k for k in ("degrees", "shear") if k in p and p[k][0] != -p[k][1]]
            if symmetric:
                raise ConfigError(f"augment op {op.name}: keras_idg draws {symmetric[0]} from [-v, v]; give one number")

    def build(self, spec, seed: int) -> Pipeline:
        tf = self.require()
        generator = tf.keras.preprocessing.image.ImageDataGenerator(**generator_kwargs(spec))
        for op in spec.ops:
            if op.op == "normalize":  # what fit() would compute, set to the spec's statistics
                generator.mean = np.array(op["mean"], np.float32).reshape(1, 1, 3)
                generator.std = np.array(op["std"], np.float32).reshape(1, 1, 3)
        size = next((tuple(op["size"]) for op in spec.ops if op.op == "resize"), None)
        pipeline = KerasIdgPipeline(spec, generator, size)
        pipeline.reseed(seed)
        return pipeline


TRANSLATOR = KerasIdgTranslator()
