"""``augment.library=albumentations``: an ``A.Compose`` on uint8 HWC numpy images (OpenCV).

Resizes use albumentations' own ``area_for_downscale="image"`` (INTER_AREA when
shrinking), its answer to antialiasing; rotations and affines fill with black
(``BORDER_CONSTANT``) as the spec says, instead of albumentations' reflecting default.
"""

from __future__ import annotations

import os

from harness.augment.pipeline import Pipeline, Translator

NO_UPDATE_CHECK = "NO_ALBUMENTATIONS_UPDATE"


class AlbumentationsPipeline(Pipeline):
    library = "albumentations"

    def __call__(self, image):
        return self.objects(image=image)["image"]

    def reseed(self, seed: int) -> None:
        self.objects.set_random_seed(seed)

    def describe(self) -> dict:
        import albumentations

        return {"library": self.library, "version": albumentations.__version__, "transforms": [repr(t) for t in self.objects.transforms]}


class AlbumentationsTranslator(Translator):
    library = "albumentations"
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
    install = ("albumentations", "aug")

    def build(self, spec, seed: int) -> Pipeline:
        # albumentations asks PyPI for a newer version each time it is imported (a request of up to 2 s, a warning
        # offline): not in a trial's start, nor where the machine has no network; a user's own setting wins
        os.environ.setdefault(NO_UPDATE_CHECK, "1")
        A = self.require()
        import cv2

        linear, constant = cv2.INTER_LINEAR, cv2.BORDER_CONSTANT
        steps = []
        for op in spec.ops:
            p = dict(op.params)
            if op.op == "resize":
                steps.append(A.Resize(*p["size"], interpolation=linear, area_for_downscale="image"))
            elif op.op == "random_resized_crop":
                steps.append(
                    A.RandomResizedCrop(
                        size=p["size"], scale=p["scale"], ratio=p["ratio"], interpolation=linear, area_for_downscale="image"
                    )
                )
            elif op.op == "center_crop":
                steps.append(A.CenterCrop(*p["size"], pad_if_needed=True, border_mode=constant, fill=0))
            elif op.op == "random_crop":
                steps.append(A.RandomCrop(*p["size"], pad_if_needed=True, border_mode=constant, fill=0))
            elif op.op == "rotate":
                steps.append(A.Rotate(limit=p["degrees"], interpolation=linear, border_mode=constant, fill=0, p=1.0))
            elif op.op == "affine":
                fx, fy = p["translate"]
                steps.append(
                    A.Affine(
                        rotate=p["degrees"],
                        translate_percent={"x": (-fx, fx), "y": (-fy, fy)},
                        scale=p["scale"],
                        shear={"x": p["shear"], "y": (0.0, 0.0)},
                        interpolation=linear,
                        border_mode=constant,
                        fill=0,
                        p=1.0,
                    )
                )
            elif op.op == "hflip":
                steps.append(A.HorizontalFlip(p=p["p"]))
            elif op.op == "vflip":
                steps.append(A.VerticalFlip(p=p["p"]))
            elif op.op == "color_jitter":
                steps.append(A.ColorJitter(brightness=p["brightness"], contrast=p["contrast"], saturation=p["saturation"], hue=0.0, p=1.0))
            elif op.op == "gaussian_blur":
                k = p["kernel_size"]
                steps.append(A.GaussianBlur(blur_limit=(k, k), sigma_limit=p["sigma"], p=1.0))
            elif op.op == "gaussian_noise":
                steps.append(A.GaussNoise(std_range=(p["std"], p["std"]), mean_range=(0.0, 0.0), p=1.0))
            elif op.op == "normalize":
                steps.append(A.Normalize(mean=p["mean"], std=p["std"], max_pixel_value=255.0))
        return AlbumentationsPipeline(spec, A.Compose(steps, seed=seed))


TRANSLATOR = AlbumentationsTranslator()
