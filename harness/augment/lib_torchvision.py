"""``augment.library=torchvision``: ``torchvision.transforms.v2`` on uint8 CHW tensors.

Tensors rather than PIL images, as torchvision recommends for v2. Ops that need floats
(GaussianNoise, Normalize) get a ``ToDtype(float32, scale=True)`` in front, and a
pipeline that ends in floats without normalize converts back to uint8: both recorded in
the pipeline's description, and part of what the op costs in this library.
"""

from __future__ import annotations

import numpy as np

from harness.augment.pipeline import Pipeline, Translator

FLOAT_OPS = ("gaussian_noise", "normalize")


class TorchvisionPipeline(Pipeline):
    library = "torchvision"

    def native(self, image: np.ndarray):
        import torch

        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)

    def __call__(self, image):
        return self.objects(image)

    def numpy(self, image) -> np.ndarray:
        return image.permute(1, 2, 0).contiguous().numpy()

    def reseed(self, seed: int) -> None:
        import torch

        torch.manual_seed(seed)

    def describe(self) -> dict:
        import torchvision

        return {"library": self.library, "version": torchvision.__version__, "transforms": [repr(t) for t in self.objects.transforms]}


class TorchvisionTranslator(Translator):
    library = "torchvision"
    supported = frozenset(
        {
            "resize",
            "random_resized_crop",
            "center_crop",
            "random_crop",
            "rotate",
            "affine",
            "hflip",
            "vflip",
            "color_jitter",
            "gaussian_blur",
            "gaussian_noise",
            "normalize",
        }
    )
    install = ("torchvision", "torch")

    def build(self, spec, seed: int) -> Pipeline:
        self.require()
        import torch
        from torchvision.transforms import InterpolationMode, v2

        bilinear = InterpolationMode.BILINEAR
        steps, is_float = [], False
        for op in spec.ops:
            p = dict(op.params)
            if op.op in FLOAT_OPS and not is_float:
                steps.append(v2.ToDtype(torch.float32, scale=True))
                is_float = True
            if op.op == "resize":
                steps.append(v2.Resize(list(p["size"]), interpolation=bilinear, antialias=True))
            elif op.op == "random_resized_crop":
                steps.append(v2.RandomResizedCrop(list(p["size"]), scale=p["scale"], ratio=p["ratio"], antialias=True))
            elif op.op == "center_crop":
                steps.append(v2.CenterCrop(list(p["size"])))
            elif op.op == "random_crop":
                steps.append(v2.RandomCrop(list(p["size"]), pad_if_needed=True))
            elif op.op == "rotate":
                steps.append(v2.RandomRotation(list(p["degrees"]), interpolation=bilinear, fill=0))
            elif op.op == "affine":
                translate = list(p["translate"]) if any(p["translate"]) else None
                clockwise = [-p["degrees"][1], -p["degrees"][0]]  # F.affine turns clockwise, F.rotate counter-clockwise
                steps.append(
                    v2.RandomAffine(
                        clockwise, translate=translate, scale=list(p["scale"]), shear=list(p["shear"]), interpolation=bilinear, fill=0
                    )
                )
            elif op.op == "hflip":
                steps.append(v2.RandomHorizontalFlip(p["p"]))
            elif op.op == "vflip":
                steps.append(v2.RandomVerticalFlip(p["p"]))
            elif op.op == "color_jitter":
                steps.append(
                    v2.ColorJitter(brightness=p["brightness"] or None, contrast=p["contrast"] or None, saturation=p["saturation"] or None)
                )
            elif op.op == "gaussian_blur":
                steps.append(v2.GaussianBlur(p["kernel_size"], sigma=list(p["sigma"])))
            elif op.op == "gaussian_noise":
                steps.append(v2.GaussianNoise(mean=0.0, sigma=p["std"], clip=True))
            elif op.op == "normalize":
                steps.append(v2.Normalize(list(p["mean"]), list(p["std"])))
        if is_float and spec.output_dtype() == "uint8":
            steps.append(v2.ToDtype(torch.uint8, scale=True))
        pipeline = TorchvisionPipeline(spec, v2.Compose(steps))
        pipeline.reseed(seed)
        return pipeline


TRANSLATOR = TorchvisionTranslator()
