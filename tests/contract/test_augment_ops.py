"""Each op's translation in each library, run on real decoded images.

Every op: output shape, dtype and value range. Deterministic ops (and random ones pinned
to one value: a fixed angle, p=1) must agree across libraries within a tolerance in
mean absolute difference on the 0..255 scale; the tolerances are what interpolation
and rounding differences leave, far below what a wrong translation gives (a rotation
the other way is about 30 off, a missed flip about 40).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from harness.augment.pipeline import build
from harness.augment.spec import OPS, Spec, check_support, parse_op
from harness.config.compose import compose, to_typed
from harness.data.build import prepare
from harness.errors import ConfigError
from tests.conftest import ROOT

LIBRARIES = ("torchvision", "albumentations", "tf_image", "keras_idg")
PHOTO = ["dataset.count=8", "dataset.width=200", "dataset.height=150"]

PARAMS = {
    "resize": {"size": [96, 128]},
    "random_resized_crop": {"size": [64, 64], "scale": [0.3, 1.0]},
    "center_crop": {"size": [100, 120]},
    "random_crop": {"size": [100, 120]},
    "rotate": {"degrees": 25},
    "affine": {"degrees": 10, "translate": [0.1, 0.1], "scale": [0.9, 1.1], "shear": 5},
    "hflip": {"p": 0.5},
    "vflip": {"p": 0.5},
    "color_jitter": {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3},
    "gaussian_blur": {"kernel_size": 5, "sigma": [0.5, 1.5]},
    "gaussian_noise": {"std": 0.05},
    "normalize": {},
}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from harness.augment.preview import source_images

    cache = tmp_path_factory.mktemp("augment-cache")
    cfg = to_typed(compose([*PHOTO, f"dataset.cache_dir={cache}"]))
    return source_images(prepare(cfg.dataset), 3, 4)


def spec(library, *ops):
    return Spec([parse_op(i, dict(op=name, **params)) for i, (name, params) in enumerate(ops)], library)


def run(library, images, *ops, seed=0):
    s = spec(library, *ops)
    check_support(s, partial=True)
    return np.stack([build(s, seed).apply_numpy(image) for image in images])


def supported(library, op):
    try:
        check_support(spec(library, (op, PARAMS[op])), partial=True)
        return True
    except ConfigError:
        return False


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("op", list(OPS))
def test_each_op_gives_the_specified_shape_dtype_and_range(library, op, images):
    if not supported(library, op):
        with pytest.raises(ConfigError, match=f"{op}.*{library}"):
            check_support(spec(library, (op, PARAMS[op])), partial=True)
        return
    out = run(library, images, (op, PARAMS[op]))
    h, w = PARAMS[op].get("size", images[0].shape[:2])
    assert out.shape == (len(images), h, w, 3)
    if op == "normalize":
        assert out.dtype == np.float32
        assert -2.5 < out.min() < out.max() < 2.8  # (0 - 0.485) / 0.229 ... (1 - 0.406) / 0.225
    else:
        assert out.dtype == np.uint8
        assert out.max() > 100 and out.std() > 10  # still an image, not a blank


DETERMINISTIC = [
    ("resize", [("resize", {"size": [96, 128]})], 1.0),
    ("resize up", [("resize", {"size": [300, 400]})], 1.0),
    ("center crop", [("center_crop", {"size": [100, 120]})], 0.0),
    ("hflip p=1", [("hflip", {"p": 1.0})], 0.0),
    ("vflip p=1", [("vflip", {"p": 1.0})], 0.0),
    ("rotate 20", [("rotate", {"degrees": [20, 20]})], 1.5),
    # libraries compose rotation and shear in different orders; each part is pinned alone
    ("affine rotate+zoom", [("affine", {"degrees": [10, 10], "scale": [1.2, 1.2]})], 1.5),
    ("affine shear", [("affine", {"shear": [8, 8]})], 1.5),
    ("blur", [("gaussian_blur", {"kernel_size": 5, "sigma": [1.0, 1.0]})], 0.5),
    ("normalize", [("normalize", {})], 1e-4),
]


@pytest.mark.parametrize("name, ops, tolerance", DETERMINISTIC, ids=[d[0] for d in DETERMINISTIC])
def test_deterministic_ops_agree_across_libraries(name, ops, tolerance, images):
    outputs = {
        lib: run(lib, images, *ops)
        for lib in LIBRARIES
        if all(supported(lib, op) for op, _ in ops) and not (lib == "keras_idg" and ops[0][0] != "normalize" and ops[0][0] != "resize")
    }
    assert len(outputs) >= 2
    reference = outputs.pop("torchvision").astype(np.float64)
    for library, out in outputs.items():
        assert out.shape == reference.shape, library
        difference = np.abs(out.astype(np.float64) - reference).mean()
        assert difference <= tolerance, f"{library}: mean abs difference {difference:.3f} > {tolerance}"


def test_image_data_generator_rotates_like_the_others_in_distribution(images):
    """keras_idg only draws from [-v, v]; its rotated images keep the same mean as torchvision's."""
    ops = [("resize", {"size": [150, 200]}), ("rotate", {"degrees": 30})]
    means = {lib: run(lib, images, *ops).mean() for lib in ("torchvision", "keras_idg")}
    assert abs(means["torchvision"] - means["keras_idg"]) < 6, means


def test_the_same_seed_draws_the_same_augmentation_and_another_seed_does_not(images):
    ops = [("rotate", {"degrees": 30}), ("hflip", {})]
    for library in ("torchvision", "albumentations", "tf_image"):
        first, again, other = (run(library, images, *ops, seed=s) for s in (1, 1, 2))
        assert np.array_equal(first, again), library
        assert not np.array_equal(first, other), library


def test_order_changes_the_pixels(images):
    """resize-then-rotate and rotate-then-resize are different images, not one image made faster."""
    up = ("resize", {"size": [300, 400]})
    turn = ("rotate", {"degrees": [20, 20]})
    a, b = run("albumentations", images, up, turn), run("albumentations", images, turn, up)
    assert a.shape == b.shape
    assert np.abs(a.astype(float) - b.astype(float)).mean() > 0.5


NO_NETWORK = """
import socket

tried = []


def refuse(*args, **kwargs):
    tried.append(args)
    raise OSError("this test has no network")


socket.create_connection = refuse
socket.socket.connect = refuse
from harness.augment.pipeline import build
from harness.augment.spec import Spec, parse_op

build(Spec([parse_op(0, {"op": "hflip"})], "albumentations"), 0)
print("TRIED", len(tried))
"""


def test_building_an_albumentations_pipeline_asks_no_server_for_updates(tmp_path):
    """albumentations checks PyPI for a newer version at import unless NO_ALBUMENTATIONS_UPDATE is set: the harness sets it."""
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    done = subprocess.run([sys.executable, "-c", NO_NETWORK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "TRIED 0" in done.stdout and "check for updates" not in done.stderr, done.stdout + done.stderr[-2000:]


def test_a_trials_process_is_started_without_the_update_check_unless_the_user_set_it(monkeypatch):
    from harness.trial.spawn import _child_env

    monkeypatch.delenv("NO_ALBUMENTATIONS_UPDATE", raising=False)
    assert _child_env()["NO_ALBUMENTATIONS_UPDATE"] == "1" and _child_env()["PYTHONUNBUFFERED"] == "1"
    monkeypatch.setenv("NO_ALBUMENTATIONS_UPDATE", "0")
    assert _child_env()["NO_ALBUMENTATIONS_UPDATE"] == "0"
