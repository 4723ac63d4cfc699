"""dataset=photos: distinct crops of real photographs, named with their licences, built once by content."""

import json

import pytest

from harness.config.compose import compose, to_typed
from harness.config.schema import PhotosDatasetConf
from harness.config.validate import validate
from harness.data import build, photos
from harness.errors import ConfigError, MissingExtraError

SMALL = dict(width=64, height=48)


def test_photos_build_distinct_images_one_class_per_source(tmp_path):
    conf = PhotosDatasetConf(count=14, cache_dir=str(tmp_path), **SMALL)
    manifest = build.prepare(conf)
    assert manifest.classes == [s.name for s in photos.SOURCES] and len(manifest) == 14
    assert len({s.sha1 for s in manifest.samples}) == 14, "two images came out the same"
    assert {s.label for s in manifest.samples} == set(range(len(photos.SOURCES)))
    assert all(s.filename.endswith(".jpg") and s.filename.startswith(manifest.classes[s.label] + "/") for s in manifest.samples)
    from PIL import Image

    with Image.open(manifest.images_dir / manifest.samples[0].filename) as image:
        assert image.size == (64, 48) and image.mode == "RGB"
    assert build.prepare(conf).root == manifest.root  # built once


def test_dataset_json_names_every_source_and_its_licence(tmp_path):
    manifest = build.prepare(PhotosDatasetConf(count=6, cache_dir=str(tmp_path), **SMALL))
    sources = json.loads((manifest.root / "dataset.json").read_text())["params"]["sources"]
    assert [s["file"] for s in sources] == [s.file for s in photos.SOURCES]
    assert all(s["licence"] in ("public domain", "CC0", "CC0 1.0") and s["credit"] and len(s["sha1"]) == 40 for s in sources)


def test_same_parameters_same_bytes_and_classes_dealt_in_turn(tmp_path):
    a = build.prepare(PhotosDatasetConf(count=8, cache_dir=str(tmp_path / "a"), **SMALL))
    b = build.prepare(PhotosDatasetConf(count=8, cache_dir=str(tmp_path / "b"), **SMALL))
    assert [s.sha1 for s in a.samples] == [s.sha1 for s in b.samples]
    named = build.prepare(PhotosDatasetConf(count=8, classes=["cat", "dog"], format="png", cache_dir=str(tmp_path), **SMALL))
    assert named.classes == ["cat", "dog"] and [s.label for s in named.samples] == [0, 1] * 4
    assert named.image_format() == "png" and named.root != a.root


def test_crops_never_repeat_even_when_many_are_asked_for(tmp_path):
    conf = PhotosDatasetConf(count=3000, **SMALL)
    jobs = photos.plan(conf, str(tmp_path))
    assert len({(source, box, mirror) for source, box, mirror, *_ in jobs}) == 3000
    assert len({box[2] - box[0] for _, box, *_ in jobs}) > 50  # crop sizes vary


def test_missing_scikit_image_is_one_line_naming_the_photos_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(photos.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError) as caught:
        build.prepare(PhotosDatasetConf(count=2, cache_dir=str(tmp_path)))
    assert "\n" not in str(caught.value) and "dataset=photos" in str(caught.value) and ".[photos]" in str(caught.value)


def test_photos_compose_typed_and_validate():
    cfg = compose(["dataset=photos", "dataset.count=200"])
    assert isinstance(to_typed(cfg).dataset, PhotosDatasetConf)
    validate(cfg)
    with pytest.raises(ConfigError, match="dataset.classes"):
        validate(compose(["dataset=photos", "dataset.classes=[a,a]"]))
    with pytest.raises(ConfigError, match="dataset.jpeg_quality"):
        validate(compose(["dataset=photos", "dataset.jpeg_quality=0"]))
