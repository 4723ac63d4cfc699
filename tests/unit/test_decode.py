"""Every decoder gives PIL's pixels within the tolerance it states, and says what is missing when it cannot run."""

import sys
from types import SimpleNamespace

import numpy as np
import pytest

from harness.config.schema import PhotosDatasetConf, SyntheticDatasetConf
from harness.data.build import prepare
from harness.errors import ConfigError, MissingExtraError
from harness.loaders.decode import DECODERS, ImageDecoder

BATCH = SimpleNamespace(height=150, width=150, channels=3)  # the default batch: photo-sized files shrink about 3x
# nvjpeg decodes on the GPU (tests/integration/test_gpu.py); on the CPU it only gives reference pixels
DECODER_VARIANTS = [ImageDecoder(name) for name in DECODERS if name != "nvjpeg"] + [
    ImageDecoder("simplejpeg", fastdct=True, fastupsample=True)
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Six generated and six real-photo JPEGs of 500x375, the size the tolerances are stated for."""
    cache = str(tmp_path_factory.mktemp("decode-cache"))
    paths = []
    for conf in (SyntheticDatasetConf(count=6, cache_dir=cache), PhotosDatasetConf(count=6, cache_dir=cache)):
        paths += prepare(conf).columns()[0]
    return paths


def differences(decoder, paths, batch=BATCH):
    """Per file: (mean, max) absolute difference from PIL's pixels, after checking shape and dtype."""
    out = []
    for path in paths:
        image, reference = decoder(path, batch), ImageDecoder("pil")(path, batch)
        assert image.shape == reference.shape == (batch.height, batch.width, batch.channels) and image.dtype == np.uint8
        diff = np.abs(image.astype(int) - reference.astype(int))
        out.append((float(diff.mean()), int(diff.max())))
    return out


@pytest.mark.parametrize("decoder", DECODER_VARIANTS, ids=lambda d: d.name + ("-fast" if d.fastdct else ""))
def test_each_decoder_is_within_its_stated_tolerance_of_pil(decoder, files):
    tolerance = decoder.tolerance
    for path, (mean, largest) in zip(files, differences(decoder, files)):
        assert mean <= tolerance.mean and largest <= tolerance.max, f"{decoder.name} {path}: mean {mean:.3f}, max {largest}"


def test_draft_and_simplejpeg_decode_png_as_pil_does_and_say_so(tmp_path):
    paths = prepare(SyntheticDatasetConf(count=3, width=64, height=48, format="png", cache_dir=str(tmp_path))).columns()[0]
    for name in ("pil_draft", "simplejpeg"):
        assert differences(ImageDecoder(name), paths, SimpleNamespace(height=24, width=32, channels=3)) == [(0.0, 0)] * 3
        assert "every file is PNG: PIL's full decode" in ImageDecoder(name).describe("png")
        assert "PIL's full decode" not in ImageDecoder(name).describe("jpeg")


def test_grayscale_batches_come_out_with_one_channel(files):
    gray = SimpleNamespace(height=24, width=32, channels=1)
    for decoder in DECODER_VARIANTS:
        assert decoder(files[0], gray).shape == (24, 32, 1), decoder.name


def test_at_stored_size_for_an_augment_pipeline(files):
    for decoder in DECODER_VARIANTS:
        assert decoder(files[0], BATCH, resize=False).shape == (375, 500, 3), decoder.name


@pytest.mark.parametrize("name", [n for n, info in DECODERS.items() if info.module])
def test_a_missing_library_is_one_line_naming_the_extra(name, monkeypatch):
    info = DECODERS[name]
    monkeypatch.setitem(sys.modules, info.module, None)  # import fails as if it were not installed
    with pytest.raises(MissingExtraError) as caught:
        ImageDecoder(name).require(what="loader=torch")
    message = str(caught.value)
    assert "\n" not in message and f"loader.decoder={name}" in message and f".[{info.extra}]" in message


def test_settings_that_would_do_nothing_are_refused():
    with pytest.raises(ConfigError, match="loader.fastdct=true is a simplejpeg setting"):
        ImageDecoder("opencv", fastdct=True).check()
    with pytest.raises(ConfigError, match="loader.decoder=pil_draft"):
        ImageDecoder("pil_draft").check(augment=True)
    ImageDecoder("simplejpeg", fastupsample=True).check()
    ImageDecoder("opencv").check(augment=True)


def test_the_chain_names_the_decoder_and_its_fast_paths():
    assert ImageDecoder("opencv").describe("jpeg") == "cv2.imdecode+cvtColor(BGR2RGB)+cv2.resize(INTER_LINEAR)"
    assert "decode_jpeg(fastdct=True, fastupsample=False)" in ImageDecoder("simplejpeg", fastdct=True).describe("jpeg")
    spec = SimpleNamespace(library="albumentations", order_label=lambda: "rotate>resize")
    assert ImageDecoder("pil").chain("jpeg", spec) == "PIL open+convert+augment(albumentations: rotate>resize)"


def test_nvjpeg_is_refused_without_a_cuda_gpu_and_with_a_per_sample_augment_pipeline():
    from harness.trial.consumer import cuda_unavailable_reason

    with pytest.raises(ConfigError, match="loader.decoder=nvjpeg decodes whole batches on the GPU, but augment.ops run per sample"):
        ImageDecoder("nvjpeg").check(augment=True)
    if cuda_unavailable_reason() is None:
        pytest.skip("a CUDA GPU is here: nvjpeg runs (tests/integration/test_gpu.py)")
    with pytest.raises(ConfigError, match=r"loader.decoder=nvjpeg decodes on a CUDA GPU .*, but here: .*; use loader.decoder=torchvision"):
        ImageDecoder("nvjpeg").check()


def test_nvjpegs_batch_path_gives_torchvisions_pixels_in_the_batch_layout_when_run_on_the_cpu(tmp_path):
    """The DataLoader hands over the files' bytes and the batch is decoded in one call: the same path as on a
    GPU, on the CPU (torchvision's decode_jpeg takes the device), so only nvJPEG's own pixels are left untested here."""
    pytest.importorskip("torchvision")
    from harness.config.compose import compose, to_typed
    from harness.loaders import get_loader

    overrides = ["loader=torch", "loader.decoder=torchvision", "batch.size=4", "batch.height=24", "batch.width=32", "batch.layout=nhwc"]
    cfg = to_typed(compose([*overrides, "dataset.count=8", "dataset.width=64", "dataset.height=48", f"dataset.cache_dir={tmp_path}"]))
    manifest = prepare(cfg.dataset)
    reference = [b.images.numpy() for b in get_loader("torch")(cfg.loader, cfg.batch, manifest, seed=0).epoch(0)]
    cfg.loader.decoder = type(cfg.loader.decoder)("nvjpeg")
    loader = get_loader("torch")(cfg.loader, cfg.batch, manifest, seed=0)
    loader.decode_device = "cpu"
    batches = list(loader.epoch(0))
    assert [b.images.shape for b in batches] == [(4, 24, 32, 3)] * 2 and batches[0].images.dtype.__str__() == "torch.uint8"
    assert all((b.images.numpy() == r).all() for b, r in zip(batches, reference))
    first = loader.reference_pixels(str(manifest.images_dir / batches[0].ids[0]))  # what every trial checksums
    assert first.shape == (24, 32, 3) and (first == batches[0].images.numpy()[0]).all()
    assert "decode_jpeg(device=cuda) per batch" in loader.describe()["ops"][0]
