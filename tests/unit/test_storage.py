"""The storage room: the throttle's delays (known answers from sleeps), the parent's mount, the child's paths, the ceiling."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pytest

from harness.config.schema import StorageKind
from harness.results import bounds
from harness.results.model import TrialResult
from harness.storage.delays import Throttle
from harness.storage.mount import MOUNT, MOUNTS_ENV, SOURCE, URL, StorageError, available, leftover_mounts, mounted, relocate


def test_each_open_waits_its_latency_and_readers_at_once_overlap():
    throttle = Throttle(open_ms=20, read_ms=0, mb_per_s=None, jitter_pct=0)
    t = time.perf_counter()
    for _ in range(5):
        throttle.on_open()
    serial = time.perf_counter() - t
    t = time.perf_counter()
    readers = [threading.Thread(target=throttle.on_open) for _ in range(5)]
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    parallel = time.perf_counter() - t
    assert 0.1 <= serial < 0.5 and parallel < serial / 2, (serial, parallel)  # a sleep is never shorter; loaded: longer
    assert throttle.opens == 10


def test_the_bandwidth_is_one_wire_that_readers_share():
    """Four reads of 1 MB at 100 MB/s at once take 40 ms together: the wire, not each reader, has the rate."""
    throttle = Throttle(open_ms=0, read_ms=0, mb_per_s=100, jitter_pct=0)
    readers = [threading.Thread(target=throttle.on_read, args=(1_000_000,)) for _ in range(4)]
    t = time.perf_counter()
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    took = time.perf_counter() - t
    assert 0.04 <= took < 0.3, took
    assert (throttle.reads, throttle.bytes) == (4, 4_000_000)


def test_jitter_spreads_each_latency_within_its_bounds():
    throttle = Throttle(open_ms=10, read_ms=0, mb_per_s=None, jitter_pct=50, seed=1)
    spread = [throttle._spread(0.01) for _ in range(200)]
    assert 0.005 <= min(spread) < 0.006 and 0.014 < max(spread) <= 0.015


def test_the_child_reads_every_path_under_the_mount(monkeypatch, tmp_path):
    from harness.data.manifest import DatasetManifest

    source = tmp_path / "datasets"
    root = source / "synthetic-abc"
    manifest = DatasetManifest(root, root / "images", ["a"], [], {}, tfrecords={"none": [str(root / "tfrecord-none" / "0.tfrecord")]})
    assert relocate(manifest, {}) is manifest  # no mount: read where it is
    moved = relocate(manifest, {MOUNT: "/mnt/x", SOURCE: str(source)})
    assert moved.root == Path("/mnt/x/synthetic-abc") and moved.images_dir == Path("/mnt/x/synthetic-abc/images")
    assert moved.tfrecords == {"none": ["/mnt/x/synthetic-abc/tfrecord-none/0.tfrecord"]}


def _trial(loader: dict, storage: dict, mean_bytes: int = 50_000) -> TrialResult:
    config = {
        "batch": {"size": 8},
        "consumer": {"step_ms": 1.0},
        "loader": loader,
        "storage": {"kind": "throttled", "profile": "p", **storage},
    }
    return TrialResult("ok", config, [], 0, 0, dataset={"root": "/d", "count": 96, "mean_bytes": mean_bytes}, loader={"ops": []})


@pytest.mark.parametrize(
    ("loader", "storage", "expected"),
    [
        ({"name": "tf_data", "source": "manifest", "num_parallel_calls": "none"}, {"open_ms": 5}, 200.0),  # 1000 / 5 ms
        ({"name": "tf_data", "source": "manifest", "num_parallel_calls": 4}, {"open_ms": 5}, 800.0),
        ({"name": "torch", "num_workers": 0}, {"open_ms": 4, "read_ms": 1}, 200.0),  # 4 ms + one 128 KiB request of 1 ms
        ({"name": "torch", "num_workers": 4}, {"open_ms": 5, "mb_per_s": 10}, 200.0),  # 800 files/s, but 10 MB/s / 50 kB
        ({"name": "tf_data", "source": "tfrecord", "interleave": False}, {"open_ms": 5, "mb_per_s": 100}, 2000.0),  # no open per sample
        # jitter: the fastest draw bounds it (4 readers at 30 ms +-30% measured 135/s, past 4 x 1000 / 30 = 133, in a short trial)
        ({"name": "torch", "num_workers": 4}, {"open_ms": 30, "jitter_pct": 30}, 4 * 1000 / 21),
    ],
)
def test_a_throttled_profile_sets_the_io_ceiling_from_readers_latency_and_bandwidth(loader, storage, expected):
    (io,) = [c for c in bounds.of_trial(_trial(loader, storage), 100.0, 0.0, None).ceilings if c.kind == "I/O"]
    assert io.samples_per_s == pytest.approx(expected) and io.what.startswith("storage=p: ")


@pytest.mark.parametrize(
    ("loader", "mean_bytes", "expected"),
    [
        # 500 kB: 4 requests of 128 KiB, two in flight (the kernel reads one ahead): 2 rounds of 5 ms, 100 files/s
        ({"name": "torch", "num_workers": 0}, 500_000, 100.0),
        # a shard's sample: its share of the shard's requests, two in flight: 5 ms x 65,536 / 131,072 / 2 = 1.25 ms
        ({"name": "tf_data", "source": "tfrecord", "interleave": False}, 65_536, 800.0),
    ],
)
def test_read_latency_bounds_a_reader_with_one_request_read_ahead(loader, mean_bytes, expected):
    (io,) = [c for c in bounds.of_trial(_trial(loader, {"read_ms": 5}, mean_bytes), 100.0, 0.0, None).ceilings if c.kind == "I/O"]
    assert io.samples_per_s == pytest.approx(expected)


def test_autotuned_readers_get_no_storage_ceiling_only_the_reason():
    b = bounds.of_trial(
        _trial({"name": "tf_data", "source": "manifest", "num_parallel_calls": "autotune"}, {"open_ms": 5}), 100.0, 0.0, None
    )
    assert [c.kind for c in b.ceilings] == ["accelerator"] and "AUTOTUNE chooses how many files" in b.skipped[0]


needs_fuse = pytest.mark.skipif(available() is not None, reason=f"no FUSE here: {available()} (make fuse installs it)")


@pytest.fixture
def own_mounts(tmp_path, monkeypatch) -> Path:
    """This test's mountpoint folder: another xdist worker's mounts are not its business."""
    folder = tmp_path / "mounts"
    monkeypatch.setenv(MOUNTS_ENV, str(folder))
    return folder


@needs_fuse
def test_the_parent_mounts_the_cache_serves_it_throttled_and_unmounts(tmp_path, own_mounts):
    files = tmp_path / "datasets" / "d"
    files.mkdir(parents=True)
    for i in range(20):
        (files / f"{i}.bin").write_bytes(os.urandom(20_000))
    (files / "link.bin").symlink_to(files / "0.bin")  # a folder dataset's view: links, served as files
    config = {"storage": {"kind": "throttled", "profile": "t", "open_ms": 10}, "dataset": {"cache_dir": str(tmp_path)}}
    with mounted(config, tmp_path / "datasets", tmp_path) as mount:
        point = Path(mount["where"][MOUNT]) / "d"
        t = time.perf_counter()
        read = [(point / f"{i}.bin").read_bytes() for i in range(20)]
        took = time.perf_counter() - t
        assert read[3] == (files / "3.bin").read_bytes() and (point / "link.bin").read_bytes() == read[0]
        with pytest.raises(OSError):
            (point / "new").write_bytes(b"x")  # read-only
        assert leftover_mounts(own_mounts) == [str(point.parent)]
    assert took >= 0.2, took  # 20 opens of 10 ms
    assert leftover_mounts(own_mounts) == [] and not point.parent.exists()
    facts = mount["facts"]
    assert facts["opens"] >= 21 and facts["reads"] >= 21 and facts["cpu_us_per_request"] > 0 and "error" not in facts


def _timed_reads(paths: list[Path], threads: int) -> float:
    """Seconds to read every file, ``threads`` readers at once."""
    from concurrent.futures import ThreadPoolExecutor

    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(Path.read_bytes, paths))
    return time.perf_counter() - t


@needs_fuse
def test_the_server_is_built_once_per_source_and_a_failed_build_is_one_line(tmp_path, monkeypatch):
    from harness.storage import native

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")  # a compiler that fails
    assert native.build() == "the FUSE server did not compile: no output" and not native.path().exists()
    assert list((tmp_path / "bin").iterdir()) == []  # no half-written file left
    monkeypatch.delenv("CC")
    assert native.build() is None and os.access(native.path(), os.X_OK)
    built = native.path().stat().st_mtime_ns
    assert native.build() is None and native.path().stat().st_mtime_ns == built  # not built again
    assert native.path().parent == tmp_path / "bin" and native.path().name.startswith("harness-throttle-")
    monkeypatch.setenv("PATH", str(tmp_path))  # neither compiler nor pkg-config
    monkeypatch.setattr(native, "path", lambda: tmp_path / "bin" / "other")
    assert "a C compiler and pkg-config are needed" in native.build()


@needs_fuse
@pytest.mark.parametrize(
    ("storage", "files", "bounds"),
    [
        # k readers wait their opens side by side: 10 opens of 20 ms, 5 at once, take 2 rounds (>= 40 ms), not 200 ms
        ({"open_ms": 20}, (10, 1000), (0.04, 0.15)),
        # one shared wire: 4 files of 1 MB at 100 MB/s take 40 ms in all however many read at once
        ({"mb_per_s": 100}, (4, 1_000_000), (0.04, 0.3)),
        # every read request (128 KiB) waits 5 ms, at most two in flight (one read ahead): 4 MB is 31 requests (>= 77 ms)
        ({"read_ms": 5}, (1, 4_000_000), (0.077, 0.3)),
        # jitter: 10 opens of 20 ms +-50% in order take between 100 and 300 ms (a sleep may run long: the bound is loose)
        ({"open_ms": 20, "jitter_pct": 50}, (10, 1000), (0.1, 0.45)),
    ],
)
def test_the_fuse_server_charges_its_known_delays(tmp_path, own_mounts, storage, files, bounds):
    """The C server's delays as the issue states them, timed through a real mount (the first read of each file is timed)."""
    count, size = files
    (tmp_path / "datasets").mkdir()
    for i in range(count):
        (tmp_path / "datasets" / f"{i}.bin").write_bytes(os.urandom(size))
    config = {"storage": {"kind": "throttled", "profile": "t", **storage}, "dataset": {"cache_dir": str(tmp_path)}}
    with mounted(config, tmp_path / "datasets", tmp_path) as mount:
        paths = [Path(mount["where"][MOUNT]) / f"{i}.bin" for i in range(count)]
        took = _timed_reads(paths, threads=5 if "jitter_pct" not in storage else 1)
    assert bounds[0] <= took < bounds[1], took
    assert mount["facts"]["opens"] == count and mount["facts"]["bytes"] >= count * size


@needs_fuse
def test_a_mount_that_cannot_start_is_one_line_and_leaves_nothing(tmp_path, own_mounts):
    config = {"storage": {"kind": "throttled", "profile": "t"}, "dataset": {"cache_dir": str(tmp_path / "none")}}
    with pytest.raises(StorageError, match=r"^storage=t: no dataset cache at .* to serve"), mounted(config, tmp_path / "none", tmp_path):
        pass
    assert leftover_mounts(own_mounts) == []


@pytest.mark.parametrize("kind", ["local", StorageKind.local])
def test_local_storage_mounts_nothing(tmp_path, kind, own_mounts):
    """A job's config holds the enum, a result's the text: either is local (the enum once mounted every local trial)."""
    with mounted({"storage": {"kind": kind}}, tmp_path, tmp_path) as mount:
        assert mount == {"where": {}, "facts": {}} and leftover_mounts(own_mounts) == []


def test_a_server_that_died_mid_trial_fails_the_trial_with_its_line_and_keeps_the_figures():
    from harness.results.model import merge_supervision
    from harness.trial.protocol import Supervision

    result = TrialResult("ok", {}, [], 0, 0, summary={"samples_per_s": 90.0})
    died = {"profile": "nfs_lan", "opens": 7, "error": "storage=nfs_lan: the FUSE server stopped mid-trial (exit -9); see storage.log"}
    merge_supervision(result, Supervision("exited", 0, None, 1.0, "child", storage=died))
    assert (result.status, result.error) == ("failed", died["error"]) and result.overhead["storage"]["opens"] == 7
    fine = TrialResult("ok", {}, [], 0, 0)
    merge_supervision(fine, Supervision("exited", 0, None, 1.0, "child", storage={"profile": "nfs_lan", "opens": 7}))
    assert fine.status == "ok" and fine.overhead["storage"]["profile"] == "nfs_lan"


def test_the_server_takes_the_cores_the_trial_leaves():
    from harness.trial.spawn import _server_cores

    allowed = sorted(os.sched_getaffinity(0))
    assert _server_cores({"trial": {"cpus": None}}) is None  # the trial uses every core: the OS places the server
    assert _server_cores({"trial": {"cpus": 1}}) == (allowed[1:] or None)
    assert _server_cores({"trial": {"cpus": len(allowed)}}) is None


@needs_fuse
def test_a_server_killed_under_a_reader_is_named_and_its_dead_mount_removed(tmp_path, own_mounts):
    import signal
    import subprocess

    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "a.bin").write_bytes(b"x" * 1000)
    config = {"storage": {"kind": "throttled", "profile": "t"}, "dataset": {"cache_dir": str(tmp_path)}}
    with mounted(config, tmp_path / "datasets", tmp_path) as mount:
        point = Path(mount["where"][MOUNT])
        (server,) = subprocess.run(["pgrep", "-f", f"harness-throttle-[0-9a-f]+ {tmp_path}"], capture_output=True, text=True).stdout.split()
        os.kill(int(server), signal.SIGKILL)
        time.sleep(0.2)
        with pytest.raises(OSError):  # "Transport endpoint is not connected": what the loader sees
            (point / "a.bin").read_bytes()
    assert mount["facts"]["error"].startswith("storage=t: the FUSE server stopped mid-trial")
    assert leftover_mounts(own_mounts) == [] and not point.exists()


def test_the_http_server_waits_its_latency_per_get_serves_only_the_cache_and_says_what_it_served(tmp_path, own_mounts):
    import urllib.error
    import urllib.request

    (tmp_path / "datasets" / "d").mkdir(parents=True)
    shard = os.urandom(300_000)
    (tmp_path / "datasets" / "d" / "shard 0.tar").write_bytes(shard)
    (tmp_path / "secret").write_text("not served")
    config = {"storage": {"kind": "http", "profile": "h", "open_ms": 30, "read_ms": 10}}
    with mounted(config, tmp_path / "datasets", tmp_path) as mount:
        base = mount["where"][URL]
        t = time.perf_counter()
        body = urllib.request.urlopen(f"{base}/d/shard%200.tar", timeout=10).read()
        took = time.perf_counter() - t
        assert body == shard and took >= 0.03 + 3 * 0.01  # the first byte's 30 ms, three 128 KiB pieces of 10 ms
        for escape in ("/../secret", "/d/none.tar"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(base + escape, timeout=10)
    facts = mount["facts"]
    assert (facts["opens"], facts["reads"], facts["bytes"]) == (1, 3, 300_000) and facts["cpu_us_per_request"] > 0


def test_with_http_storage_the_child_reads_the_shards_by_url(monkeypatch, tmp_path):
    from harness.data.manifest import DatasetManifest

    root = tmp_path / "datasets" / "synthetic-abc"
    manifest = DatasetManifest(root, root / "images", ["a"], [], {}, webdataset={2: [str(root / "webdataset-2" / "shard-0.tar")]})
    moved = relocate(manifest, {URL: "http://127.0.0.1:9", SOURCE: str(tmp_path / "datasets")})
    assert moved.webdataset == {2: ["http://127.0.0.1:9/synthetic-abc/webdataset-2/shard-0.tar"]} and moved.root == root


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["storage=http", "loader=tf_data"], "storage=http serves the dataset by URL, and loader=tf_data reads files by path"),
        (["storage=throttled", "storage.open_ms=-1"], "storage.open_ms=-1.0: a latency or its spread cannot be negative"),
        (["storage=throttled", "storage.mb_per_s=0"], "storage.mb_per_s=0.0: the link's bandwidth must be positive"),
        (["storage=nfs_lan", "storage.jitter_pct=150"], "storage.jitter_pct=150.0: a latency drawn below zero"),
    ],
)
def test_storage_settings_that_make_no_sense_are_refused_in_one_line(overrides, says):
    from harness.config.compose import compose
    from harness.config.validate import validate
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="^" + re.escape(says)):
        validate(compose(overrides))
