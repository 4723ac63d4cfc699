"""The declarative augment pipeline: parsing, order, library support, batch agreement.

No framework is imported here: every one of these errors must come at config time.
"""

import sys

import pytest

from harness.augment.spec import OPS, parse, permutations
from harness.config.compose import compose, to_typed
from harness.config.validate import augment_spec, validate
from harness.errors import ConfigError

RESIZE_ROTATE = ["augment=resize_rotate", "batch.height=512", "batch.width=512"]


def typed(*overrides):
    return to_typed(compose(list(overrides)))


def spec_of(*overrides):
    cfg = typed(*overrides)
    return parse(cfg.augment, cfg.loader.name)


def error_of(*overrides) -> str:
    with pytest.raises(ConfigError) as caught:
        validate(compose(list(overrides)))
    return str(caught.value)


def test_no_ops_means_no_pipeline():
    cfg = typed("loader=torch")
    assert augment_spec(cfg) is None


def test_auto_picks_the_loaders_own_library():
    assert spec_of("loader=torch", *RESIZE_ROTATE).library == "torchvision"
    assert spec_of("loader=tf_data", *RESIZE_ROTATE).library == "tf_image"
    assert spec_of("loader=generator", *RESIZE_ROTATE).library == "albumentations"


def test_orders_by_name_by_dashes_and_as_a_list_run_the_ops_in_that_order():
    base = ["loader=torch", *RESIZE_ROTATE]
    assert spec_of(*base).order_label() == "resize>rotate"
    assert spec_of(*base, "augment.order=cheap").order_label() == "rotate>resize"
    assert spec_of(*base, "augment.order=costly").order_label() == "resize>rotate"
    assert spec_of(*base, "augment.order=rotate-resize").order_label() == "rotate>resize"
    assert spec_of(*base, "augment.order=[rotate,resize]").order_label() == "rotate>resize"


def test_order_changes_the_signature_and_library_does_not():
    base = ["loader=torch", *RESIZE_ROTATE]
    torchvision = spec_of(*base, "augment.order=cheap")
    albumentations = spec_of(*base, "augment.order=cheap", "augment.library=albumentations")
    costly = spec_of(*base, "augment.order=costly")
    assert torchvision.signature() == albumentations.signature()
    assert torchvision.signature() != costly.signature()


def test_permutations_list_every_order_once():
    orders = permutations(["a", "b", "c"])
    assert len(orders) == len(set(orders)) == 6
    assert "c-a-b" in orders


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["augment.order=rotate-rotate"], ["exactly once", "resize, rotate"]),
        (["augment.order=sideways"], ["sideways", "not a named order", "cheap, costly"]),
        (["augment.ops=[{op:twirl}]"], ["augment.ops[0].op=twirl", "unknown op", "rotate"]),
        (["augment.ops=[{op:rotate,degres:3}]"], ["degres", "its parameters: degrees"]),
        (["augment.ops=[{op:resize}]"], ["needs 'size'"]),
        (["augment.ops=[{op:resize,size:[0,3]}]"], ["size=[0, 3]"]),
        (["augment.ops=[{op:resize,size:9},{op:resize,size:9}]"], ["two ops are called 'resize'", "name"]),
        (["augment.ops=[{op:gaussian_blur,kernel_size:4},{op:resize,size:512}]"], ["kernel_size=4", "odd"]),
        (["augment.ops=[{op:hflip,p:2},{op:resize,size:512}]"], ["p=2", "between 0"]),
        (["augment.ops=[{op:rotate}]"], ["no op sets the image size"]),
        (["batch.height=150"], ["end at 512x512", "batch.height=512"]),
        (["augment.ops=[{op:resize,size:512},{op:normalize}]"], ["normalize", "batch.dtype=float32"]),
        (["augment.library=tf_image"], ["tf_image cannot run inside loader=torch", "torchvision or albumentations"]),
    ],
)
def test_bad_pipelines_fail_at_config_time_naming_what_is_wrong(overrides, words):
    text = error_of("loader=torch", *RESIZE_ROTATE, *overrides)
    for word in words:
        assert word in text, text


def test_a_loader_without_images_cannot_augment():
    assert "loader=synthetic runs no augmentation" in error_of("loader=synthetic", *RESIZE_ROTATE)


@pytest.mark.parametrize(
    "ops, words",
    [
        ("[{op:resize,size:512},{op:gaussian_blur}]", ["gaussian_blur", "keras_idg", "it has:"]),
        ("[{op:resize,size:512},{op:random_crop,size:512}]", ["random_crop", "keras_idg"]),
        ("[{op:rotate},{op:resize,size:512}]", ["not expressible", "fixed"]),
        ("[{op:resize,size:512},{op:hflip,p:1.0}]", ["p=0.5 only"]),
        ("[{op:resize,size:512},{op:color_jitter,contrast:0.2}]", ["brightness_range only"]),
        ("[{op:resize,size:512},{op:rotate,degrees:[0,30]}]", ["[-v, v]"]),
    ],
)
def test_image_data_generator_refuses_what_its_arguments_cannot_express(ops, words):
    text = error_of("loader=keras_idg", "batch.height=512", "batch.width=512", f"augment.ops={ops}")
    for word in words:
        assert word in text, text


def test_keras_idg_own_arguments_and_augment_ops_are_exclusive():
    text = error_of("loader=keras_idg", *RESIZE_ROTATE, "loader.rotation_range=10")
    assert "loader.rotation_range and augment.ops" in text


def test_tf_data_cache_must_precede_the_pipeline_or_follow_it_on_purpose():
    base = ["loader=tf_data", *RESIZE_ROTATE, "loader.cache=memory"]
    assert "after_decode" in error_of(*base, "loader.cache_place=after_resize")
    validate(compose([*base, "loader.cache_place=after_decode"]))
    validate(compose([*base, "loader.cache_place=after_augment"]))


def test_every_op_has_torchvision_albumentations_and_tf_image_translations_checked_without_importing_them():
    import subprocess

    ops = ",".join(f"{{op:{name}{',size:64' if 'size' in OPS[name] else ''}}}" for name in OPS if name != "color_jitter")
    code = (
        "import sys\n"
        "from harness.augment.spec import parse\n"
        "from harness.config.compose import compose, to_typed\n"
        "for library in ('torchvision', 'albumentations', 'tf_image'):\n"
        f"    cfg = to_typed(compose(['augment.ops=[{ops},{{op:color_jitter,brightness:0.1}}]', 'augment.library=' + library]))\n"
        "    assert len(parse(cfg.augment, None).ops) == 12\n"
        "print([m for m in ('tensorflow', 'torch', 'torchvision', 'albumentations', 'cv2') if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
