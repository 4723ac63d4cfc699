"""Dataset generation: deterministic, photo-like, built once, never half-built."""

import csv
import hashlib

import numpy as np
import pytest

from harness.config.schema import FolderDatasetConf, SyntheticDatasetConf
from harness.data import build, synth
from harness.errors import HarnessError


def test_render_is_a_pure_function_of_seed_and_index():
    a, b = synth.render(1, 5, 64, 48), synth.render(1, 5, 64, 48)
    assert a.shape == (48, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, synth.render(2, 5, 64, 48))


def test_jpeg_of_a_500x375_image_weighs_tens_of_kb_like_a_photo():
    sizes = [len(synth.encode(synth.render(0, i, 500, 375), "jpeg", 90)) for i in range(4)]
    assert all(15_000 < s < 150_000 for s in sizes), sizes


def test_synthetic_build_layout_manifest_and_reuse(tmp_path):
    conf = SyntheticDatasetConf(count=20, width=64, height=48, cache_dir=str(tmp_path))
    manifest = build.prepare(conf)
    assert len(manifest) == 20 and manifest.classes == ["cat", "dog"]
    assert sorted(p.name for p in manifest.images_dir.iterdir()) == ["cat", "dog"]
    with open(manifest.csv_path) as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["filename", "label"] and len(rows) == 20
    for sample in manifest.samples:
        data = (manifest.images_dir / sample.filename).read_bytes()
        assert len(data) == sample.bytes and hashlib.sha1(data).hexdigest() == sample.sha1
        assert sample.filename.startswith(manifest.classes[sample.label] + "/")
    again = build.prepare(conf)
    assert again.root == manifest.root and [s.sha1 for s in again.samples] == [s.sha1 for s in manifest.samples]


def test_same_parameters_give_same_bytes_in_another_cache(tmp_path):
    a = build.prepare(SyntheticDatasetConf(count=6, width=32, height=32, cache_dir=str(tmp_path / "a")))
    b = build.prepare(SyntheticDatasetConf(count=6, width=32, height=32, cache_dir=str(tmp_path / "b")))
    c = build.prepare(SyntheticDatasetConf(count=6, width=32, height=32, seed=1, cache_dir=str(tmp_path / "c")))
    assert [s.sha1 for s in a.samples] == [s.sha1 for s in b.samples]
    assert [s.sha1 for s in a.samples] != [s.sha1 for s in c.samples]


def test_interrupted_build_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    conf = SyntheticDatasetConf(count=40, width=32, height=32, cache_dir=str(tmp_path))
    real = synth.encode
    calls = {"n": 0}

    def failing(*args):
        calls["n"] += 1
        if calls["n"] > 10:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(synth, "encode", failing)
    monkeypatch.setattr(build.os, "cpu_count", lambda: 1)  # build in this process so the patch applies
    with pytest.raises(KeyboardInterrupt):
        build.prepare(conf)
    root = build.dataset_dir(conf)
    assert not root.exists()
    assert not list(root.parent.glob(f".{root.name}.tmp-*"))
    monkeypatch.setattr(synth, "encode", real)
    assert len(build.prepare(conf)) == 40


def test_folder_dataset_indexes_class_folders(tmp_path):
    src = tmp_path / "pets"
    for label in ("dog", "cat"):
        (src / label).mkdir(parents=True)
        for i in range(3):
            (src / label / f"{i}.jpg").write_bytes(synth.encode(synth.render(0, i, 32, 32), "jpeg", 80))
    (src / "cat" / "notes.txt").write_text("not an image")
    manifest = build.prepare(FolderDatasetConf(path=str(src), cache_dir=str(tmp_path / "cache")))
    assert manifest.classes == ["cat", "dog"] and len(manifest) == 6
    assert manifest.source == str(src.resolve())
    # the loaders read a view of the folder: links to exactly the manifest's files
    assert sorted(str(p.relative_to(manifest.images_dir)) for p in manifest.images_dir.rglob("*.jpg")) == [
        s.filename for s in manifest.samples
    ]
    assert all((manifest.images_dir / s.filename).resolve() == src.resolve() / s.filename for s in manifest.samples)
    assert manifest.ignored == {"other files": ["cat/notes.txt"]}
    assert all(label == (0 if f.startswith("cat/") else 1) for f, label in ((s.filename, s.label) for s in manifest.samples))


def test_folder_without_images_is_a_clear_error(tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(HarnessError, match="no images found"):
        build.prepare(FolderDatasetConf(path=str(tmp_path / "empty"), cache_dir=str(tmp_path / "cache")))


def _pets(src, count=3):
    for label in ("cat", "dog"):
        (src / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (src / label / f"{i}.jpg").write_bytes(synth.encode(synth.render(0, i, 32, 32), "jpeg", 80))


def test_folder_dataset_is_identified_by_its_content(tmp_path):
    """Adding, removing or replacing a file makes a new index; an untouched folder reuses its index."""
    import os

    src, conf = tmp_path / "pets", FolderDatasetConf(path=str(tmp_path / "pets"), cache_dir=str(tmp_path / "cache"))
    _pets(src)
    first = build.prepare(conf)
    assert build.prepare(conf).root == first.root
    (src / "cat" / "3.jpg").write_bytes((src / "cat" / "0.jpg").read_bytes())
    added = build.prepare(conf)
    assert added.root != first.root and len(added) == 7
    (src / "dog" / "0.jpg").unlink()
    assert len(build.prepare(conf)) == 6
    replaced = src / "cat" / "1.jpg"
    before = build.prepare(conf)
    replaced.write_bytes(synth.encode(synth.render(5, 5, 32, 32), "jpeg", 80))
    os.utime(replaced, ns=(1, 1))  # a replacement with an old mtime still changes the key through its size or mtime
    after = build.prepare(conf)
    assert after.root != before.root
    assert next(s.sha1 for s in after.samples if s.filename == "cat/1.jpg") != next(
        s.sha1 for s in before.samples if s.filename == "cat/1.jpg"
    )


def test_bad_files_are_skipped_and_named_or_refused(tmp_path):
    src = tmp_path / "pets"
    _pets(src)
    (src / "cat" / "broken.jpg").write_bytes(b"")
    conf = FolderDatasetConf(path=str(src), cache_dir=str(tmp_path / "cache"))
    manifest = build.prepare(conf)
    assert len(manifest) == 6 and manifest.skipped == [{"file": "cat/broken.jpg", "reason": "empty (0 bytes)"}]
    assert manifest.describe()["skipped"] == manifest.skipped
    conf.on_bad_file = "fail"
    with pytest.raises(HarnessError, match=r"1 file skipped: cat/broken.jpg \(empty \(0 bytes\)\).*on_bad_file=skip"):
        build.prepare(conf)


@pytest.mark.parametrize("path, message", [("", "dataset.path is empty"), ("/no/such/folder", "not a folder")])
def test_bad_dataset_path_is_one_line(tmp_path, path, message):
    with pytest.raises(HarnessError, match=message):
        build.prepare(FolderDatasetConf(path=path, cache_dir=str(tmp_path / "cache")))


def test_unwritable_cache_is_one_line(tmp_path, monkeypatch):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "cache"))

    monkeypatch.setattr(build, "_build_images", full)
    conf = SyntheticDatasetConf(count=4, width=8, height=8, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(HarnessError, match="cannot write .*No space left on device.*free some space: dataset.cache_dir=DIR"):
        build.prepare(conf)
