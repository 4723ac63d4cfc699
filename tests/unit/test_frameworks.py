"""TensorFlow without its eager Keras import (harness.frameworks): a trial starts ~0.8 s sooner, and Keras still
loads whenever a pipeline uses it."""

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# not importorskip: TensorFlow imported into the test process makes a later torchvision import there segfault
pytestmark = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")

PROBE = """
import sys
from harness.errors import require
tf = require("tensorflow", what="test", extra="tf")
print("eager keras", "keras.src.optimizers" in sys.modules, "matplotlib.pyplot" in sys.modules)
print("finders left", any(type(f).__name__ == "_SkipEagerKeras" for f in sys.meta_path))
print("tf.data", [int(x) for x in tf.data.Dataset.range(4).map(lambda x: x * 2).as_numpy_iterator()])
import keras
from tensorflow.keras.preprocessing.image import ImageDataGenerator
used = (keras.optimizers.Adam, tf.keras.optimizers.SGD, ImageDataGenerator, keras.utils.PyDataset)
print("keras", *(kind.__name__ for kind in used))
"""


def test_tensorflow_imports_without_keras_which_still_loads_when_used():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "eager keras False False" in lines  # neither Keras' optimizers nor pyplot came with TensorFlow
    assert "finders left False" in lines  # the refusal lasts for the import only
    assert "tf.data [0, 2, 4, 6]" in lines
    assert "keras Adam SGD ImageDataGenerator PyDataset" in lines
