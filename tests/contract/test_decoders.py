"""Every family with ``loader.decoder`` delivers what its reference pixels say for every decoder it offers.

Parametrized over the registry: any family whose schema has an enum field ``decoder`` is in,
with every value of that enum. Pixels against PIL's, within each decoder's tolerance, are
tests/unit/test_decode.py's; here the decoders run inside the families.
"""

import dataclasses
from enum import Enum

import numpy as np
import pytest

from harness.config.compose import compose, to_typed
from harness.data.build import prepare
from harness.loaders import get_loader, loader_schemas
from harness.loaders.decode import DECODERS
from tests.contract.test_odd_folder import first_epoch
from tests.odd_folder import make_odd_folder

TINY = ["dataset.count=24", "dataset.width=64", "dataset.height=48", "batch.size=8", "batch.height=24", "batch.width=32"]


def decoder_variants() -> list[tuple[str, str]]:
    """(family, decoder) for every family with a ``decoder`` enum and every value it offers."""
    found = []
    for name, schema in loader_schemas().items():
        default = next((f.default for f in dataclasses.fields(schema) if f.name == "decoder"), None)
        if isinstance(default, Enum):
            found += [(name, member.value) for member in type(default)]
    return found


VARIANTS = decoder_variants()


def test_the_python_families_offer_the_decode_axis():
    offered = {(family, decoder) for family, decoder in VARIANTS}
    for family in ("torch", "keras_sequence", "generator"):
        assert {(family, d) for d in ("pil", "pil_draft", "opencv", "simplejpeg")} <= offered
    assert ("torch", "torchvision") in offered and ("generator", "torchvision") not in offered


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("decoders-cache")


@pytest.mark.parametrize("family, decoder", VARIANTS, ids=[f"{f}-{d}" for f, d in VARIANTS])
def test_reference_pixels_apply_the_chosen_decoder(family, decoder, cache):
    if DECODERS[decoder].tolerance is None:  # a GPU decoder (nvjpeg): its batch path on the CPU is tests/unit/test_decode.py's
        from harness.trial.consumer import cuda_unavailable_reason

        if cuda_unavailable_reason() is not None:
            pytest.skip(f"loader.decoder={decoder} decodes on a CUDA GPU: {cuda_unavailable_reason()}")
    cls = get_loader(family)
    cfg = to_typed(compose([f"loader={family}", f"loader.decoder={decoder}", *cls.example, *TINY, f"dataset.cache_dir={cache}"]))
    cls.check(cfg.loader)
    loader = cls(cfg.loader, cfg.batch, prepare(cfg.dataset), seed=0)
    batch = next(iter(loader.epoch(0)))
    ids = batch.ids.numpy().tolist() if hasattr(batch.ids, "numpy") else list(batch.ids)
    first = ids[0].decode() if isinstance(ids[0], bytes) else str(ids[0])
    images = batch.images.numpy() if hasattr(batch.images, "numpy") else np.asarray(batch.images)
    reference = loader.reference_pixels(str(loader.dataset.images_dir / first))
    described = loader.describe()
    loader.close()
    assert np.array_equal(reference, images[0]), f"{family} decoder={decoder}: delivered pixels are not its reference pixels"
    assert described["decoder"] == decoder and DECODERS[decoder].reads in " ".join(described["ops"])  # the report's chain


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd-decoders") / "photos"
    return root, make_odd_folder(root), tmp_path_factory.mktemp("odd-decoders-cache")


@pytest.mark.parametrize("decoder", ["pil_draft", "opencv", "simplejpeg"])
def test_decoders_agree_with_pil_on_awkward_images_at_their_stored_size(decoder, odd):
    """Grayscale, RGBA, palette and CMYK files: with nothing resized, only OpenCV's CMYK differs, by 1 level."""
    _, reference = first_epoch("generator", odd)
    _, pixels = first_epoch("generator", odd, f"loader.decoder={decoder}")
    for sample_id, (image,) in pixels.items():
        allowed = 1 if decoder == "opencv" and sample_id.endswith("cmyk.jpg") else 0
        assert np.abs(image.astype(int) - reference[sample_id][0].astype(int)).max() <= allowed, f"{decoder} {sample_id}"
