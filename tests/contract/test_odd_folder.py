"""Every family reads the same files of a real-world folder and sees the same pixels.

The folder (tests/odd_folder.py) mixes grayscale, RGBA, palette, CMYK, 16-bit and BMP
images, broken files, non-ASCII names, a nested folder and a hidden file. Its images are
48x64 and the batches ask for 48x64, so no family resizes and pixels can be compared.
"""

import numpy as np
import pytest

from harness.config.compose import compose, to_typed
from harness.data.build import prepare
from harness.loaders import get_loader, list_loaders
from tests.odd_folder import BAD, CONVERTED, HEIGHT, WIDTH, make_odd_folder

# every family that reads the dataset's files, from the registry, so a new one is in
FAMILIES = [n for n in list_loaders() if get_loader(n).needs(get_loader(n).schema()).dataset]
# TensorFlow's decode_jpeg defaults to the INTEGER_FAST DCT; PIL and torchvision use the
# accurate one. Seen here: up to 5 levels apart. PNGs and converted files must be exact.
TF_JPEG_LEVELS = 8
TF_DECODERS = {"tf_data", "yardstick", "keras_directory"}  # families that decode with tf.io.decode_jpeg (keras: decode_image)


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd") / "photos"
    counts = make_odd_folder(root)
    return root, counts, tmp_path_factory.mktemp("odd-cache")


def first_epoch(name, odd, *overrides):
    root, _, cache = odd
    cfg = to_typed(
        compose(
            [
                f"loader={name}",
                *get_loader(name).example,
                "dataset=folder",
                f"dataset.path={root}",
                f"dataset.cache_dir={cache}",
                "batch.size=2",
                f"batch.height={HEIGHT}",
                f"batch.width={WIDTH}",
                *overrides,
            ]
        )
    )
    cls = get_loader(name)
    needs = cls.needs(cfg.loader)
    loader = cls(cfg.loader, cfg.batch, prepare(cfg.dataset, tfrecord=needs.tfrecord, webdataset=needs.webdataset), seed=0)
    pixels = {}
    for batch in loader.epoch(0):
        ids = batch.ids.numpy().tolist() if hasattr(batch.ids, "numpy") else list(batch.ids)
        images = batch.images.numpy() if hasattr(batch.images, "numpy") else np.asarray(batch.images)
        for i, sample_id in enumerate(ids):
            pixels.setdefault(sample_id.decode() if isinstance(sample_id, bytes) else str(sample_id), []).append(images[i])
    loader.close()
    return loader.dataset, pixels


def test_the_scan_names_bad_converted_and_ignored_files(odd):
    root, counts, cache = odd
    manifest, _ = first_epoch("generator", odd)
    assert {s["file"]: s["reason"] for s in manifest.skipped} == BAD
    assert {c["file"]: c["reason"] for c in manifest.converted()} == {k + ".png": v for k, v in CONVERTED.items()}
    assert set(manifest.ignored) == {"nested folders", "hidden files", "other files"}
    assert len(manifest) == sum(counts.values())
    assert "3 files skipped: cat/empty.jpg (empty (0 bytes))" in manifest.skipped_line()


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_reads_the_manifest_files_once_with_the_same_pixels(name, odd):
    manifest, reference = first_epoch("generator", odd)  # PIL: the reference decoder
    dataset, pixels = first_epoch(name, odd)
    assert sorted(pixels) == sorted(s.filename for s in dataset.samples), "a family read other files than the manifest's"
    assert all(len(v) == 1 for v in pixels.values()), "a sample arrived twice in one epoch"
    for sample_id, (image,) in pixels.items():
        diff = np.abs(image.astype(int) - reference[sample_id][0].astype(int)).max()
        jpeg = sample_id.lower().endswith(".jpg")
        allowed = TF_JPEG_LEVELS if (name in TF_DECODERS and jpeg) else 0
        assert diff <= allowed, f"{name} {sample_id}: pixels differ from PIL's by {diff} levels"


def test_torchvision_decoder_agrees_too(odd):
    _, reference = first_epoch("generator", odd)
    _, pixels = first_epoch("torch", odd, "loader.decoder=torchvision")
    for sample_id, (image,) in pixels.items():
        assert np.array_equal(image, reference[sample_id][0]), sample_id
