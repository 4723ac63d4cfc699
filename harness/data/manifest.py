"""The description of a built dataset that every loader reads.

A dataset folder holds ``images/<class>/<class>.<index>.<ext>`` (the class-folder layout
the seeds use), ``manifest.csv`` with ``filename,label`` (seed 001's DataFrame,
filenames relative to ``images/``), and ``dataset.json``, written last: a folder without
it is not a dataset. TFRecord shards are added on demand under ``tfrecord-<compression>/``,
WebDataset tar shards under ``webdataset-<shards>/``.

For a user's folder, ``images/`` is a view of it (see :mod:`harness.data.scan`): links to
the files every loader can read and 8-bit PNG copies of the odd ones, so every family
reads exactly the manifest's files. ``dataset.json`` also names the files it skipped
(unreadable) and left out by rule (nested folders, hidden and other files).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

SCHEMA_VERSION = 1
_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}
MANIFEST_FILE = "dataset.json"


@dataclass
class Sample:
    filename: str  # relative to images_dir; doubles as the sample id
    label: int  # class index
    bytes: int  # file size
    sha1: str  # file checksum
    converted: str | None = None  # why the scan converted it to PNG (the source is filename minus .png)
    mtime_ns: int | None = None  # the source file's modification time when indexed (user folders)


@dataclass
class DatasetManifest:
    root: Path  # the dataset folder in the cache
    images_dir: Path  # class folders (inside root, or the user's folder)
    classes: list[str]
    samples: list[Sample]
    params: dict  # what the dataset was built from
    tfrecords: dict[str, list[str]] = field(default_factory=dict)  # compression -> shard paths
    webdataset: dict[int, list[str]] = field(default_factory=dict)  # shard count -> tar shard paths
    source: str | None = None  # the user's folder, for a folder dataset (images_dir is a view of it)
    skipped: list[dict[str, str]] = field(default_factory=list)  # unreadable files: {file, reason}
    ignored: dict[str, list[str]] = field(default_factory=dict)  # left out by rule (nested folders, ...) -> names
    rank: tuple[int, int] | None = None  # (rank, ranks): this is one data-parallel rank's share (see shard)
    whole: DatasetManifest | None = None  # the unsharded manifest, for families that shard it themselves

    def shard(self, rank: int, ranks: int) -> DatasetManifest:
        """Rank ``rank`` of ``ranks``'s share: samples ``rank, rank + ranks, ...``, the remainder dropped.

        Every rank gets the same number of samples, as ``DistributedSampler(drop_last=True)``
        gives them (and the same indices, unshuffled): ranks in lockstep must run the same
        number of steps per epoch, or one would wait at a collective its peers never reach.
        """
        from dataclasses import replace

        whole = self.unsharded
        end = ranks * (len(whole.samples) // ranks)
        return replace(whole, samples=whole.samples[rank:end:ranks], rank=(rank, ranks), whole=whole)

    @property
    def unsharded(self) -> DatasetManifest:
        """The whole dataset this manifest is one rank's share of; the manifest itself when it is no share."""
        return self.whole if self.whole is not None else self

    @property
    def csv_path(self) -> Path:
        return self.root / "manifest.csv"

    @property
    def total_bytes(self) -> int:
        return sum(s.bytes for s in self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    def columns(self) -> tuple[list[str], list[int], list[str]]:
        """Absolute paths, labels and sample ids (filenames relative to ``images_dir``), in manifest order."""
        paths = [str(self.images_dir / s.filename) for s in self.samples]
        return paths, [s.label for s in self.samples], [s.filename for s in self.samples]

    def image_format(self) -> str | None:
        """``jpeg`` or ``png`` when every file has that extension (a decoder can be chosen), else ``None``."""
        kinds = {_FORMATS.get(Path(s.filename).suffix.lower()) for s in self.samples}
        return kinds.pop() if len(kinds) == 1 else None

    def converted(self) -> list[dict[str, str]]:
        return [{"file": s.filename, "reason": s.converted} for s in self.samples if s.converted]

    def skipped_line(self, limit: int = 5) -> str:
        """``3 files skipped: cat/x.jpg (truncated), ...``, or '' when none were."""
        return _listing_line(self.skipped, "skipped", limit)

    def notes(self) -> list[str]:
        """What a user must know about which files were read: skipped, converted, left out."""
        return dataset_notes(self.describe())

    def describe(self) -> dict:
        """A short summary for result files."""
        return {
            "root": str(self.root),
            "source": self.source,
            "images_dir": str(self.images_dir),
            "count": len(self.samples),
            "classes": self.classes,
            "total_bytes": self.total_bytes,
            "mean_bytes": self.total_bytes // max(len(self.samples), 1),
            "params": self.params,
            "tfrecords": {k: len(v) for k, v in self.tfrecords.items()},
            "webdataset": {str(k): len(v) for k, v in self.webdataset.items()},
            "skipped": self.skipped,
            "converted": self.converted(),
            "ignored": {k: {"count": len(v), "first": v[:5]} for k, v in self.ignored.items()},
            **({"rank": list(self.rank), "whole_count": len(self.whole.samples)} if self.rank and self.whole else {}),
        }

    def save(self, folder: Path) -> None:
        data = {
            "schema_version": SCHEMA_VERSION,
            "images_dir": str(self.images_dir) if self.images_dir.parent != self.root else "images",
            "classes": self.classes,
            "params": self.params,
            "source": self.source,
            "skipped": self.skipped,
            "ignored": self.ignored,
            "samples": [asdict(s) for s in self.samples],
        }
        write_json_atomic(folder / MANIFEST_FILE, data)

    @classmethod
    def load(cls, root: Path) -> DatasetManifest:
        data = json.loads((root / MANIFEST_FILE).read_text())
        version = data.get("schema_version", 0)
        if version > SCHEMA_VERSION:
            from harness.errors import HarnessError

            raise HarnessError(f"{root}: dataset schema {version} is newer than this harness reads ({SCHEMA_VERSION}); upgrade harness")
        images = Path(data["images_dir"])
        manifest = cls(
            root=root,
            images_dir=images if images.is_absolute() else root / images,
            classes=list(data["classes"]),
            samples=[Sample(**s) for s in data["samples"]],
            params=data["params"],
            source=data.get("source"),
            skipped=list(data.get("skipped", [])),
            ignored=dict(data.get("ignored", {})),
        )
        for folder in sorted(root.glob("tfrecord-*")):
            shards_file = folder / "shards.json"
            if shards_file.exists():
                shards = json.loads(shards_file.read_text())["shards"]
                manifest.tfrecords[folder.name.split("-", 1)[1]] = [str(folder / s["file"]) for s in shards]
        for folder in sorted(root.glob("webdataset-*")):
            shards_file = folder / "shards.json"
            if shards_file.exists() and folder.name.split("-", 1)[1].isdigit():
                shards = json.loads(shards_file.read_text())["shards"]
                manifest.webdataset[int(folder.name.split("-", 1)[1])] = [str(folder / s["file"]) for s in shards]
        return manifest


def dataset_notes(described: dict) -> list[str]:
    """The notes of :meth:`DatasetManifest.notes` from its ``describe()`` (a result's ``dataset``)."""
    ignored = described.get("ignored") or {}
    left_out = "; ".join(f"{v['count']} {k} (e.g. {v['first'][0]})" for k, v in ignored.items() if v.get("first"))
    lines = [
        _listing_line(described.get("skipped") or [], "skipped", 5),
        _listing_line(described.get("converted") or [], "converted to 8-bit PNG", 5),
        f"left out by rule: {left_out}" if left_out else "",
    ]
    return [f"dataset: {line}" for line in lines if line]


def _listing_line(entries: list[dict[str, str]], what: str, limit: int) -> str:
    if not entries:
        return ""
    shown = ", ".join(f"{e['file']} ({e['reason']})" for e in entries[:limit])
    more = f", and {len(entries) - limit} more" if len(entries) > limit else ""
    return f"{len(entries)} file{'s' if len(entries) > 1 else ''} {what}: {shown}{more}"


def write_text_atomic(path: Path, text: str) -> Path:
    """Write a file so that readers see the old file or the whole new one, never a part."""
    import os

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json_atomic(path: Path, data) -> None:
    """Write JSON atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=1, default=str) + "\n")


def read_versioned(path: Path, what: str, newest: int) -> dict:
    """A JSON file's mapping, refused with a :class:`HarnessError` where its ``schema_version`` is above ``newest``.

    Args:
        what: the file's kind as the error names it ("ceilings", "advice").

    Raises:
        OSError, ValueError: unreadable or not JSON (the caller names the file).
    """
    from harness.errors import HarnessError

    data = json.loads(Path(path).read_text())
    version = data.get("schema_version", 0)
    if version > newest:
        raise HarnessError(f"{path}: {what} schema {version} is newer than this harness reads ({newest}); upgrade harness")
    return data


def write_shard_index(out_dir: Path, paths: list[Path], counts: list[int], **about) -> None:
    """``out_dir/shards.json``: each shard file's sample count, size and SHA-1, with what kind of shards they are.

    TFRecord and WebDataset shards are indexed alike, so a reader checks either the same way.
    """
    import hashlib

    entries = [
        {"file": p.name, "count": c, "bytes": p.stat().st_size, "sha1": hashlib.sha1(p.read_bytes()).hexdigest()}
        for p, c in zip(paths, counts)
    ]
    write_json_atomic(out_dir / "shards.json", {"schema_version": 1, **about, "shards": entries})
