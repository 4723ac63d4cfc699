"""WebDataset tar shards: every sample once, grouped by key, the same bytes every time, built once."""

import json
import tarfile

from harness.config.schema import SyntheticDatasetConf
from harness.data import build, wds


def _members(paths):
    samples = {}
    for path in paths:
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                key, _, field = member.name.partition(".")
                samples.setdefault(key, {})[field] = tar.extractfile(member).read()
    return samples


def test_shards_hold_each_sample_once_with_its_label_and_id(tmp_path):
    conf = SyntheticDatasetConf(count=10, width=32, height=24, cache_dir=str(tmp_path))
    manifest = build.prepare(conf, webdataset=3)
    paths = manifest.webdataset[3]
    assert [p.rsplit("/", 1)[1] for p in paths] == [wds.shard_name(i, 3) for i in range(3)]
    samples = _members(paths)
    assert sorted(s["path.txt"].decode() for s in samples.values()) == sorted(s.filename for s in manifest.samples)
    by_id = {s.filename: s for s in manifest.samples}
    for fields in samples.values():
        sample = by_id[fields["path.txt"].decode()]
        assert fields["jpg"] == (manifest.images_dir / sample.filename).read_bytes() and int(fields["cls"]) == sample.label
    counts = [entry["count"] for entry in json.loads((manifest.root / "webdataset-3" / "shards.json").read_text())["shards"]]
    assert counts == [4, 3, 3]  # round-robin


def test_shards_are_reproducible_and_built_once_per_count(tmp_path):
    conf = SyntheticDatasetConf(count=6, width=32, height=24, cache_dir=str(tmp_path))
    manifest = build.prepare(conf, webdataset=2)
    listing = (manifest.root / "webdataset-2" / "shards.json").read_text()
    again = tmp_path / "again"
    again.mkdir()
    wds.write_shards(manifest, again, 2)
    assert (again / "shards.json").read_text() == listing  # sha1 of every shard included
    assert build.prepare(conf, webdataset=2).webdataset == manifest.webdataset
    assert sorted(build.prepare(conf, webdataset=9).webdataset) == [2, 9]  # 9 asked, 6 samples: 6 shards
    assert len(build.prepare(conf).webdataset[9]) == 6
