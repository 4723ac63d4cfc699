"""``augment.library=tf_image``: TensorFlow image ops, written to run inside tf.data's map.

``tf.image`` has resize, crops (``sample_distorted_bounding_box`` is its random resized
crop, as in Inception's preprocessing), flips, contrast and saturation. What it lacks is
written with TensorFlow's own kernels, never with another library:

* rotate / affine: ``ImageProjectiveTransformV3``, the kernel Keras' RandomRotation and
  RandomAffine layers run on the TF backend;
* brightness: a multiplicative factor, as torchvision and albumentations define it
  (``tf.image.adjust_brightness`` adds a delta instead);
* gaussian blur: a separable ``depthwise_conv2d`` over a reflect-padded image;
* gaussian noise and normalize: arithmetic.

The image is float32 in [0, 255] between ops and is rounded back to uint8 at the end
unless normalize made it float.
"""

from __future__ import annotations

import math

import numpy as np

from harness.augment.pipeline import Pipeline, Translator


class TfImagePipeline(Pipeline):
    library = "tf_image"

    def __init__(self, spec, objects, tf):
        super().__init__(spec, objects)
        self.tf = tf
        # Called directly (augbench, sample grids), the chain runs as a graph, as tf.data's
        # map runs it; eager op-by-op dispatch would time Python, not the ops.
        self.graph = tf.function(objects, reduce_retracing=True)

    def native(self, image: np.ndarray):
        return self.tf.constant(image)

    def __call__(self, image):
        return self.graph(image)

    def numpy(self, image) -> np.ndarray:
        return image.numpy()

    def reseed(self, seed: int) -> None:
        self.tf.random.set_seed(seed)

    def describe(self) -> dict:
        return {"library": self.library, "version": self.tf.__version__, "ops": self.objects.labels}


class _Chain:
    """The per-sample function handed to ``Dataset.map``: uint8/float HWC -> the spec's output."""

    def __init__(self, spec, tf):
        self.spec, self.tf = spec, tf
        self.labels = [_LABELS[op.op] for op in spec.ops]

    def __call__(self, image):
        tf = self.tf
        x = tf.cast(image, tf.float32)
        for op in self.spec.ops:
            x = getattr(self, "_" + op.op)(x, dict(op.params))
        if self.spec.output_dtype() == "uint8":
            x = tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)
        return x

    # -- geometry ------------------------------------------------------------------
    def _resize(self, x, p):
        return self.tf.image.resize(x, list(p["size"]), method="bilinear", antialias=True)

    def _random_resized_crop(self, x, p):
        tf = self.tf
        begin, size, _ = tf.image.sample_distorted_bounding_box(
            tf.shape(x),
            bounding_boxes=tf.zeros([1, 0, 4]),
            min_object_covered=0.0,
            aspect_ratio_range=list(p["ratio"]),
            area_range=list(p["scale"]),
            max_attempts=10,
            use_image_if_no_bounding_boxes=True,
        )
        return tf.image.resize(tf.slice(x, begin, size), list(p["size"]), method="bilinear", antialias=True)

    def _center_crop(self, x, p):
        return self.tf.image.resize_with_crop_or_pad(x, *p["size"])

    def _random_crop(self, x, p):
        tf = self.tf
        h, w = p["size"]
        shape = tf.shape(x)
        x = tf.image.pad_to_bounding_box(x, 0, 0, tf.maximum(shape[0], h), tf.maximum(shape[1], w))
        return tf.image.random_crop(x, [h, w, shape[2]])

    def _project(self, x, forward):
        """Warp with a forward 3x3 matrix (input -> output pixel coordinates), bilinear, black fill."""
        tf = self.tf
        inverse = tf.linalg.inv(forward)
        inverse = inverse / inverse[2, 2]
        transform = tf.reshape(inverse, [9])[:8]
        shape = tf.shape(x)
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=x[None],
            transforms=transform[None],
            output_shape=shape[:2],
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="CONSTANT",
        )
        return out[0]

    def _centred(self, x, linear, tx=0.0, ty=0.0):
        """Forward matrix: ``linear`` (2x2) about the image centre, then a shift."""
        tf = self.tf
        shape = tf.cast(tf.shape(x), tf.float32)
        cx, cy = (shape[1] - 1) / 2, (shape[0] - 1) / 2
        a, b, c, d = linear
        return tf.stack(
            [
                tf.stack([a, b, cx - a * cx - b * cy + tx]),
                tf.stack([c, d, cy - c * cx - d * cy + ty]),
                tf.constant([0.0, 0.0, 1.0]),
            ]
        )

    def _angle(self, degrees):
        return self.tf.random.uniform([], degrees[0], degrees[1]) * (math.pi / 180)

    def _rotation(self, theta):
        tf = self.tf
        # counter-clockwise on screen (y points down): x' = x cos + y sin, y' = -x sin + y cos
        return [tf.cos(theta), tf.sin(theta), -tf.sin(theta), tf.cos(theta)]

    def _rotate(self, x, p):
        return self._project(x, self._centred(x, self._rotation(self._angle(p["degrees"]))))

    def _affine(self, x, p):
        tf = self.tf
        theta = self._angle(p["degrees"])
        shear = tf.tan(self._angle(p["shear"]))
        zoom = tf.random.uniform([], *p["scale"])
        shape = tf.cast(tf.shape(x), tf.float32)
        fx, fy = p["translate"]
        tx = tf.round(tf.random.uniform([], -fx, fx) * shape[1])
        ty = tf.round(tf.random.uniform([], -fy, fy) * shape[0])
        r = self._rotation(theta)
        # rotation . x-shear . zoom
        linear = [zoom * r[0], zoom * (r[0] * -shear + r[1]), zoom * r[2], zoom * (r[2] * -shear + r[3])]
        return self._project(x, self._centred(x, linear, tx, ty))

    def _flip(self, x, p, fn):
        tf = self.tf
        return tf.cond(tf.random.uniform([]) < p["p"], lambda: fn(x), lambda: x)

    def _hflip(self, x, p):
        return self._flip(x, p, self.tf.image.flip_left_right)

    def _vflip(self, x, p):
        return self._flip(x, p, self.tf.image.flip_up_down)

    # -- colour --------------------------------------------------------------------
    def _factor(self, v):
        return self.tf.random.uniform([], max(0.0, 1 - v), 1 + v)

    def _color_jitter(self, x, p):
        tf = self.tf
        if p["brightness"]:
            x = tf.clip_by_value(x * self._factor(p["brightness"]), 0.0, 255.0)
        if p["contrast"]:
            x = tf.clip_by_value(tf.image.adjust_contrast(x, self._factor(p["contrast"])), 0.0, 255.0)
        if p["saturation"]:
            x = tf.clip_by_value(tf.image.adjust_saturation(x / 255.0, self._factor(p["saturation"])) * 255.0, 0.0, 255.0)
        return x

    def _gaussian_blur(self, x, p):
        tf = self.tf
        k = p["kernel_size"]
        sigma = tf.random.uniform([], *p["sigma"])
        taps = tf.range(k, dtype=tf.float32) - (k - 1) / 2
        kernel = tf.exp(-(taps**2) / (2 * sigma**2))
        kernel = kernel / tf.reduce_sum(kernel)
        channels = tf.shape(x)[-1]
        padded = tf.pad(x[None], [[0, 0], [k // 2, k // 2], [k // 2, k // 2], [0, 0]], mode="REFLECT")
        rows = tf.tile(tf.reshape(kernel, [k, 1, 1, 1]), [1, 1, channels, 1])
        cols = tf.tile(tf.reshape(kernel, [1, k, 1, 1]), [1, 1, channels, 1])
        out = tf.nn.depthwise_conv2d(padded, rows, [1, 1, 1, 1], "VALID")
        return tf.nn.depthwise_conv2d(out, cols, [1, 1, 1, 1], "VALID")[0]

    def _gaussian_noise(self, x, p):
        tf = self.tf
        return tf.clip_by_value(x + tf.random.normal(tf.shape(x), stddev=p["std"] * 255.0), 0.0, 255.0)

    def _normalize(self, x, p):
        tf = self.tf
        return (x / 255.0 - tf.constant(p["mean"], tf.float32)) / tf.constant(p["std"], tf.float32)


_LABELS = {
    "resize": "tf.image.resize(bilinear, antialias)",
    "random_resized_crop": "tf.image.sample_distorted_bounding_box + slice + resize",
    "center_crop": "tf.image.resize_with_crop_or_pad",
    "random_crop": "tf.image.pad_to_bounding_box + tf.image.random_crop",
    "rotate": "ImageProjectiveTransformV3 (rotation)",
    "affine": "ImageProjectiveTransformV3 (rotation, shear, zoom, shift)",
    "hflip": "tf.image.flip_left_right with p",
    "vflip": "tf.image.flip_up_down with p",
    "color_jitter": "brightness factor, tf.image.adjust_contrast, tf.image.adjust_saturation",
    "gaussian_blur": "separable tf.nn.depthwise_conv2d (reflect padding)",
    "gaussian_noise": "tf.random.normal",
    "normalize": "(x / 255 - mean) / std",
}


class TfImageTranslator(Translator):
    library = "tf_image"
    supported = frozenset(_LABELS)
    install = ("tensorflow", "tf")

    def build(self, spec, seed: int) -> Pipeline:
        tf = self.require()
        tf.random.set_seed(seed)
        return TfImagePipeline(spec, _Chain(spec, tf), tf)


TRANSLATOR = TfImageTranslator()
