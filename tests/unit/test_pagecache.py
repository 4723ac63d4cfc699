"""``dataset.page_cache``: the mechanism measured by residency (mincore), never by timing, which is noisy here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.data import pagecache
from harness.data.manifest import DatasetManifest, Sample

FILES, SIZE = 64, 256 * 1024  # 16 MiB: enough pages to measure, small beside the page cache


@pytest.fixture
def files(tmp_path) -> list[Path]:
    if pagecache.filesystem(tmp_path) == "tmpfs":
        pytest.skip(f"{tmp_path} is on tmpfs: its files are their pages, and nothing can evict them")
    paths = []
    for i in range(FILES):
        path = tmp_path / f"{i:02d}.bin"
        path.write_bytes(os.urandom(SIZE))
        paths.append(path)
    if pagecache.residency(paths) is None:
        pytest.skip("this system has no mincore: residency cannot be measured")
    return paths


def test_evict_leaves_less_of_the_files_in_memory_than_warm(files):
    evicted = pagecache.evict(files)
    after_evict = pagecache.residency(files)
    warmed = pagecache.warm(files)
    after_warm = pagecache.residency(files)
    assert evicted["files"] == warmed["files"] == FILES and evicted["bytes"] == warmed["bytes"] == FILES * SIZE
    # freshly written pages are dirty: evict syncs them first, or the kernel would keep them
    assert after_evict is not None and after_warm is not None
    assert after_evict < after_warm, (after_evict, after_warm)
    assert after_evict <= 0.1 and after_warm >= 0.9, (after_evict, after_warm)


def test_residency_weighs_files_by_their_pages(files, tmp_path):
    pagecache.warm(files)
    empty = tmp_path / "empty.bin"
    empty.touch()
    assert pagecache.resident_pages(empty) == (0, 0)
    assert pagecache.residency([]) is None and pagecache.residency([empty]) is None
    assert pagecache.residency([*files, empty]) == pagecache.residency(files)


def manifest_in(root: Path, n: int = 3) -> DatasetManifest:
    (root / "images" / "cat").mkdir(parents=True)
    samples = []
    for i in range(n):
        (root / "images" / "cat" / f"cat.{i}.jpg").write_bytes(b"x" * 5000)
        samples.append(Sample(f"cat/cat.{i}.jpg", 0, 5000, "0" * 40))
    (root / "manifest.csv").write_text("filename,label\n")
    (root / "tfrecord-none").mkdir()
    (root / "tfrecord-none" / "shard-0.tfrecord").write_bytes(b"y" * 9000)
    (root / "tfrecord-none" / "shards.json").write_text("{}")
    (root / ".dataset.lock").touch()  # hidden: not dataset files
    return DatasetManifest(root, root / "images", ["cat"], samples, {})


def test_dataset_files_are_the_images_the_csv_and_every_shard_folders_files(tmp_path):
    manifest = manifest_in(tmp_path / "ds")
    names = [p.relative_to(tmp_path / "ds").as_posix() for p in pagecache.dataset_files(manifest)]
    assert names == [
        "images/cat/cat.0.jpg",
        "images/cat/cat.1.jpg",
        "images/cat/cat.2.jpg",
        "manifest.csv",
        "tfrecord-none/shard-0.tfrecord",
        "tfrecord-none/shards.json",
    ]


@pytest.mark.parametrize("mode", pagecache.MODES)
def test_apply_records_what_it_did_and_the_residency_before_and_after(tmp_path, mode):
    manifest = manifest_in(tmp_path / "ds")
    record = pagecache.apply(mode, manifest)
    assert record["mode"] == mode and record["files"] == 6 and record["bytes"] == 3 * 5000 + 15 + 9000 + 2
    assert set(record) >= {"resident_before", "resident_after", "seconds", "filesystem"}
    if record["resident_after"] is not None and record["filesystem"] != "tmpfs":
        assert record["resident_after"] == (0.0 if mode == "cold" else 1.0) or mode == "as_is"
        assert "note" not in record
    with pytest.raises(ValueError, match="page cache mode 'lukewarm'"):
        pagecache.apply("lukewarm", manifest)


def test_filesystem_names_the_mount_that_holds_a_path(tmp_path):
    assert pagecache.filesystem(tmp_path) not in ("", None)
    assert pagecache.filesystem(Path("/proc/self")) in ("proc", "?")
