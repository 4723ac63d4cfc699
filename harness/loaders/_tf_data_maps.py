"""What ``loader=tf_data``'s maps run on one element ``(image, label, id)``.

Parse or read, decode, resize to the batch's dtype and layout, the augment pipeline, the
extra CPU work and the light ops: each a method of :class:`ElementMaps`, which
:class:`~harness.loaders.tf_data.TfDataLoader` inherits and chains into ``Dataset.map``
calls. Kept apart from the family module so that each file reads in one sitting; the
methods use the loader's ``tf``, ``conf``, ``batch``, ``decoder``, ``rng`` and augment
pipeline, and TensorFlow is never imported here.
"""

from __future__ import annotations

from harness.config.schema import choice


class ElementMaps:
    """The per-element functions of the tf.data chain (a mixin of the tf_data loader)."""

    def _parse(self, record):
        tf = self.tf
        spec = {
            "image_raw": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64),
            "id": tf.io.FixedLenFeature([], tf.string),
        }
        parsed = tf.io.parse_single_example(record, spec)
        return parsed["image_raw"], parsed["label"], parsed["id"]

    def _read(self, path, label, sample_id):
        return self.tf.io.read_file(path), label, sample_id

    def _decode(self, raw, label, sample_id):
        tf, channels = self.tf, self.batch.channels
        if self.decoder == "decode_image":
            image = tf.io.decode_image(raw, channels=channels, expand_animations=False)
        else:
            image = getattr(tf.io, self.decoder)(raw, channels=channels)
        if self.conf.cast_float:
            image = tf.cast(image, tf.float32)
        return image, label, sample_id

    def _resize(self, image, label, sample_id):
        """Resize, then convert to the batch's dtype and layout (the deterministic tail)."""
        b = self.batch
        # with rescale the light ops cast to float32 after the cache, so the cache holds uint8 (4x smaller)
        dtype = "uint8" if self.conf.rescale is not None else None
        return self._to_batch(self.tf.image.resize(image, [b.height, b.width]), dtype), label, sample_id

    def _to_batch(self, image, dtype=None):
        """The batch's dtype (or ``dtype``; rounding floats into uint8) and layout, for one image."""
        tf, b = self.tf, self.batch
        dtype = dtype or choice(b.dtype)
        if dtype == "uint8" and image.dtype != tf.uint8:
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        elif dtype == "float32" and image.dtype != tf.float32:
            image = tf.cast(image, tf.float32)
        if choice(b.layout) == "nchw":
            image = tf.transpose(image, [2, 0, 1])
        return image

    def _augment(self, image, label, sample_id):
        """The augment pipeline on one decoded image, then the batch's dtype and layout."""
        tf, b = self.tf, self.batch
        pipeline = self.pipeline()
        if pipeline.library == "tf_image":
            image = pipeline.objects(image)  # traced into the map function
        else:  # albumentations inside the map through tf.numpy_function, as its docs show for tf.data
            out = tf.float32 if self.augment.output_dtype() == "float32" else tf.uint8
            image = tf.numpy_function(pipeline, [tf.cast(image, tf.uint8)], out, stateful=True)
            image.set_shape([b.height, b.width, b.channels])
        return self._to_batch(image), label, sample_id

    def _extra_work(self, image, label, sample_id):
        """A cumulative sum over ``extra_work`` thousand floats, tied to the image so it runs for every sample.

        One op of fixed size, so its cost is the same every time and on one thread. Its
        result (always 0) is added to the label: TF's graph optimizer prunes work that only a
        control dependency holds on to.
        """
        tf = self.tf
        offset = tf.abs(tf.cast(tf.reshape(image, [-1])[0], tf.float32))
        total = tf.reduce_max(tf.math.cumsum(tf.range(self.conf.extra_work * 1000, dtype=tf.float32) + offset))
        return image, label + tf.cast(tf.minimum(total, 0.0), label.dtype), sample_id

    def _light(self, image, label, sample_id):
        """Rescale, flip, brightness: on one image, or on a whole batch with one coin and one delta per image."""
        tf, c = self.tf, self.conf
        per_image = tf.shape(image)[:1] if c.vectorized else []
        if c.rescale is not None:
            image = tf.cast(image, tf.float32) * c.rescale
        if c.random_flip:
            width_axis = -1 if choice(self.batch.layout) == "nchw" else -2
            coins = self.rng.uniform(per_image) < 0.5
            mask = tf.reshape(coins, [-1, 1, 1, 1]) if c.vectorized else coins
            image = tf.where(mask, tf.reverse(image, [width_axis]), image)
        if c.random_brightness is not None:
            delta = self.rng.uniform(per_image, -c.random_brightness, c.random_brightness)
            image = image + (tf.reshape(delta, [-1, 1, 1, 1]) if c.vectorized else delta)
        return image, label, sample_id

    def _mobilenet(self, image, label, sample_id):
        from tensorflow.keras.applications import mobilenet

        return mobilenet.preprocess_input(image), label, sample_id
