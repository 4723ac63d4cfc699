"""Every loader family passes one suite, and every knob reaches the framework object.

Real TensorFlow, Keras and PyTorch, in this process, on a tiny generated dataset. The
suite is parametrized over the registry, which discovery fills from harness/loaders/, so
a new family module is in it without being named here (test_family_discovery.py).
"""

import itertools

import pytest

from harness.config.compose import compose, to_typed
from harness.data.build import prepare
from harness.loaders import get_loader, list_loaders
from harness.trial.checks import BatchChecks

FAMILIES = list_loaders()
# families that read the dataset's files (synthetic makes its own data) with their default config
READERS = [name for name in FAMILIES if get_loader(name).needs(get_loader(name).schema()).dataset]

TINY = [
    "dataset.count=48",
    "dataset.width=64",
    "dataset.height=48",
    "dataset.shards=3",
    "batch.size=8",
    "batch.height=24",
    "batch.width=32",
]


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("contract-cache")


def build(name, *overrides, cache=None, workdir=None):
    cls = get_loader(name)
    cfg = to_typed(compose([f"loader={name}", *cls.example, *TINY, f"dataset.cache_dir={cache}", *overrides]))
    needs = cls.needs(cfg.loader)
    cls.check(cfg.loader)
    manifest = prepare(cfg.dataset, tfrecord=needs.tfrecord, webdataset=needs.webdataset) if needs.dataset else None
    return cfg, cls(cfg.loader, cfg.batch, manifest, seed=0, workdir=workdir)


def run_epochs(cfg, loader, epochs=2):
    checks = BatchChecks(cfg.batch, loader.expected_ids())
    for e in range(epochs):
        for batch in loader.epoch(e):
            checks(e, batch)
    loader.close()
    return checks.report(loader.random_ops(), list(range(epochs)))


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("layout, dtype", [("nhwc", "uint8"), ("nchw", "float32")])
def test_family_delivers_the_contract_and_the_whole_dataset(name, layout, dtype, tiny_cache, tmp_path):
    cfg, loader = build(name, f"batch.layout={layout}", f"batch.dtype={dtype}", cache=tiny_cache, workdir=tmp_path)
    report = run_epochs(cfg, loader)
    assert report["verdict"] in ("complete", "unchecked"), report["problems"]
    if name in READERS:
        assert report["epochs"]["0"]["checksum"] == report["dataset_checksum"]
        assert report["epochs"]["1"]["checksum"] == report["dataset_checksum"]


def test_families_agree_on_the_same_epoch(tiny_cache, tmp_path):
    sums = {}
    for name in READERS:
        cfg, loader = build(name, cache=tiny_cache, workdir=tmp_path)
        sums[name] = run_epochs(cfg, loader, epochs=1)["epochs"]["0"]["checksum"]
    assert len(set(sums.values())) == 1, sums


def test_deliberately_broken_variants_are_caught(tiny_cache, tmp_path):
    cfg, loader = build("tf_data", "dataset.count=50", cache=tiny_cache, workdir=tmp_path)  # 50 = 6 x 8 + 2 dropped
    report = run_epochs(cfg, loader)
    assert report["verdict"] == "differs" and "2 samples never delivered" in report["problems"][0]
    cfg, loader = build("tf_data", "loader.random_flip=true", "loader.cache=memory", "loader.cache_place=after_augment", cache=tiny_cache)
    assert "repeat" in " ".join(run_epochs(cfg, loader, epochs=3)["problems"])
    cfg, loader = build("tf_data", "loader.random_flip=true", "loader.cache=memory", "loader.cache_place=after_resize", cache=tiny_cache)
    assert run_epochs(cfg, loader, epochs=3)["verdict"] == "complete"


def test_torch_knobs_reach_the_dataloader(tiny_cache):
    _, loader = build(
        "torch",
        "loader.num_workers=2",
        "loader.pin_memory=true",
        "loader.persistent_workers=true",
        "loader.prefetch_factor=3",
        "loader.shuffle=true",
        "loader.drop_last=false",
        "loader.collate=numpy_stack",
        "loader.start_method=spawn",
        cache=tiny_cache,
    )
    dl = loader.loader
    assert (dl.num_workers, dl.pin_memory, dl.persistent_workers, dl.prefetch_factor, dl.drop_last) == (2, True, True, 3, False)
    assert type(dl.sampler).__name__ == "RandomSampler"
    assert dl.collate_fn.__name__ == "numpy_stack"
    assert dl.multiprocessing_context.get_start_method() == "spawn"
    assert dl.worker_init_fn.args == (1,)
    _, loader = build("torch", "loader.style=iterable", "loader.decoder=torchvision", cache=tiny_cache)
    assert type(loader.data).__name__ == "FilesIterable" and loader.data.decode.decoder == "torchvision"
    assert type(loader.loader.sampler).__name__ == "_InfiniteConstantSampler"


def test_tf_data_knobs_reach_the_dataset_and_its_options(tiny_cache, tmp_path):
    _, loader = build(
        "tf_data",
        "loader.source=tfrecord",
        "loader.compression=gzip",
        "loader.interleave=true",
        "loader.cycle_length=2",
        "loader.num_parallel_calls=3",
        "loader.prefetch=4",
        "loader.cache=file",
        "loader.shuffle_buffer=16",
        "loader.deterministic=false",
        "loader.map_parallelization=false",
        "loader.inject_prefetch=false",
        "loader.map_and_batch_fusion=false",
        "loader.autotune=false",
        "loader.autotune_cpu_budget=1",
        "loader.autotune_ram_budget=100000000",
        "loader.private_threadpool_size=2",
        cache=tiny_cache,
        workdir=tmp_path,
    )
    options = loader.dataset_obj.options()
    opt = options.experimental_optimization
    assert options.deterministic is False and opt.map_parallelization is False and opt.inject_prefetch is False
    assert opt.map_and_batch_fusion is False and options.autotune.enabled is False
    assert options.autotune.cpu_budget == 1 and options.autotune.ram_budget == 100000000
    assert options.threading.private_threadpool_size == 2
    ops = " ".join(loader.ops)
    assert "interleave(TFRecordDataset, cycle_length=2" in ops and "num_parallel_calls=3" in ops
    assert "cache(file" in ops and "shuffle(16)" in ops and ops.endswith("prefetch(4)")
    assert sum(len(b) for b in loader.epoch(0)) == 48
    assert list((tmp_path / "tfdata-cache").glob("tfdata.cache*"))


def test_tf_data_vectorized_and_seed001_chain(tiny_cache):
    _, loader = build("tf_data", "loader.vectorized=true", "loader.random_flip=true", cache=tiny_cache)
    assert loader.ops.index("batch(8, drop_remainder=True)") < next(i for i, op in enumerate(loader.ops) if "random_flip" in op)
    cfg = to_typed(compose(["experiment=seed001"]))
    assert cfg.loader.source.value == "tfrecord" and cfg.loader.cache_place.value == "after_decode"
    _, loader = build("tf_data", "experiment=seed001", "batch.size=8", "batch.dtype=float32", cache=tiny_cache)
    names = [op.split("(")[0] if not op.startswith("map") else op.split(",")[0] for op in loader.ops]
    assert names == [
        "TFRecordDataset",
        "map(parse_single_example",
        "map(decode_jpeg+cast",
        "cache",
        "shuffle",
        "map(resize+to_dtype",
        "batch",
        "map(mobilenet.preprocess_input",
        "prefetch",
    ]
    batch = next(iter(loader.epoch(0)))
    assert float(batch.images.numpy().min()) >= -1.0 and float(batch.images.numpy().max()) <= 1.0


def test_keras_idg_knobs_reach_the_generator(tiny_cache):
    _, loader = build(
        "keras_idg",
        "loader.flow=dataframe",
        "loader.rotation_range=15",
        "loader.zoom_range=0.1",
        "loader.horizontal_flip=true",
        "loader.shuffle=true",
        "batch.dtype=float32",
        "loader.rescale=0.00392156862745098",
        cache=tiny_cache,
    )
    g = loader.generator
    assert g.rotation_range == 15 and list(g.zoom_range) == [0.9, 1.1] and g.horizontal_flip and g.rescale == pytest.approx(1 / 255)
    assert type(loader.iterator).__name__ == "DataFrameIterator" and loader.iterator.shuffle
    assert loader.random_ops()
    batch = next(iter(loader.epoch(0)))
    assert float(batch.images.max()) <= 1.0
    _, loader = build("keras_idg", cache=tiny_cache)
    assert type(loader.iterator).__name__ == "DirectoryIterator"


def test_keras_sequence_knobs_reach_pydataset_and_enqueuer(tiny_cache):
    _, loader = build("keras_sequence", "loader.workers=2", "loader.use_multiprocessing=true", "loader.max_queue_size=3", cache=tiny_cache)
    s = loader.sequence
    assert (s.workers, s.use_multiprocessing, s.max_queue_size) == (2, True, 3)
    assert loader.describe()["enqueuer"] == "OrderedEnqueuer"
    before = s.order.copy()
    list(loader.epoch(0))
    loader.close()
    assert sorted(s.order) == sorted(before) and list(s.order) != list(before)  # on_epoch_end reshuffled


def test_torchdata_nodes_knobs_reach_the_graph(tiny_cache):
    import torch

    knobs = ["loader.num_workers=3", "loader.method=process", "loader.in_order=false", "loader.prefetch_factor=3"]
    cfg, loader = build(
        "torchdata_nodes", *knobs, "loader.shuffle=true", "loader.drop_last=false", "loader.pin_memory=true", cache=tiny_cache
    )
    nodes = loader.nodes
    assert (nodes["ParallelMapper"].num_workers, nodes["ParallelMapper"].method, nodes["ParallelMapper"].in_order) == (3, "process", False)
    assert type(nodes["SamplerWrapper"].sampler).__name__ == "RandomSampler"
    assert (nodes["Batcher"].batch_size, nodes["Batcher"].drop_last, nodes["Prefetcher"].prefetch_factor) == (8, False, 3)
    assert ("PinMemory" in nodes) == torch.cuda.is_available()  # PinMemory pins for a CUDA device
    assert run_epochs(cfg, loader)["verdict"] == "complete"
    _, inline = build("torchdata_nodes", "loader.num_workers=0", "loader.prefetch_factor=0", cache=tiny_cache)
    assert inline.describe()["nodes"] == ["SamplerWrapper", "ParallelMapper", "Batcher", "Mapper"]


def test_webdataset_knobs_reach_the_pipeline_and_the_dataloader(tiny_cache):
    from harness.config.validate import validate
    from harness.errors import ConfigError

    knobs = ["loader.shards=3", "loader.num_workers=2", "loader.shardshuffle=2", "loader.shuffle_buffer=16", "loader.decode=torchrgb"]
    cfg, loader = build("webdataset", *knobs, "batch.dtype=float32", cache=tiny_cache)
    stages = [(s.f.__name__, s.args) for s in loader.dataset_obj.pipeline if hasattr(s, "f") and hasattr(s, "args")]
    assert [a for name, a in stages if name == "_shuffle"] == [(2,), (16,)]  # shards, then samples
    assert ("_batched", (8,)) in stages and ("_to_tuple", ("jpg;jpeg;png", "cls", "path.txt")) in stages
    decoder = next(a[0] for name, a in stages if name == "_map" and type(a[0]).__name__ == "Decoder")
    assert [h.imagespec for h in decoder.handlers if hasattr(h, "imagespec")] == ["torchrgb"]
    assert (len(loader.urls), loader.loader.num_workers, loader.loader.batch_size) == (3, 2, None)
    assert run_epochs(cfg, loader)["verdict"] == "complete"
    cfg, uneven = build("webdataset", "loader.shards=5", cache=tiny_cache)  # 2 workers read 29 and 19 samples
    report = run_epochs(cfg, uneven)
    assert report["verdict"] == "complete" and report["epochs"]["0"]["duplicates"] == 0, report["problems"]
    with pytest.raises(ConfigError, match="loader.shards >= loader.num_workers"):
        validate(compose(["loader=webdataset", "loader.num_workers=5"]))


def test_keras_directory_knobs_reach_the_call_and_ids_travel_through_its_shuffle(tiny_cache, monkeypatch):
    import grain
    import keras

    from harness.config.validate import validate
    from harness.errors import ConfigError

    calls, real = [], keras.utils.image_dataset_from_directory
    monkeypatch.setattr(keras.utils, "image_dataset_from_directory", lambda d, **kw: calls.append(kw) or real(d, **kw))
    knobs = ["loader.seed=5", "loader.interpolation=area", "loader.crop_to_aspect_ratio=true", "loader.prefetch=3"]
    cfg, loader = build("keras_directory", *knobs, "batch.layout=nchw", cache=tiny_cache)
    kw = calls[-1]
    assert (kw["seed"], kw["interpolation"], kw["crop_to_aspect_ratio"], kw["shuffle"]) == (5, "area", True, True)
    assert (kw["batch_size"], kw["image_size"], kw["data_format"], kw["format"]) == (8, (24, 32), "channels_first", "tf")
    spec = loader.dataset_obj.element_spec[0]
    assert spec.shape.as_list() == [None, 3, 24, 32] and spec.dtype.name == "uint8"
    assert type(loader.dataset_obj).__name__ == "_PrefetchDataset"  # prefetch(3) after the uint8 map
    orders = [[i for b in loader.epoch(e) for i in b.ids] for e in range(2)]
    assert sorted(orders[0]) == sorted(orders[1]) == sorted(loader.expected_ids()) and orders[0] != orders[1]  # reshuffled
    batch = next(iter(loader.epoch(0)))
    assert [loader.dataset.classes[label] for label in batch.labels] == [i.split("/")[0] for i in batch.ids]
    cfg, from_grain = build("keras_directory", "loader.format=grain", cache=tiny_cache)
    assert calls[-1]["format"] == "grain" and isinstance(from_grain.dataset_obj, grain.IterDataset)
    assert run_epochs(cfg, from_grain)["verdict"] == "complete"
    for bad, message in [("loader.pad_to_aspect_ratio=true", "not both"), ("loader.format=grain", "applies to format=tf")]:
        with pytest.raises(ConfigError, match=message):
            validate(compose(["loader=keras_directory", "loader.crop_to_aspect_ratio=true", "loader.prefetch=2", bad]))


def _grain_graph(ds):
    """Every dataset object under ``ds`` (grain keeps parents in _parents, interleaved workers in a list)."""
    import grain

    kinds = (grain.MapDataset, grain.IterDataset)
    found, todo = [], [ds]
    while todo:
        node = todo.pop()
        if any(node is f for f in found):  # the workers' slices share their parents
            continue
        found.append(node)
        for value in vars(node).values():
            todo += [v for v in (value if isinstance(value, (list, tuple)) else [value]) if isinstance(v, kinds)]
    return found


def test_grain_knobs_reach_the_datasets_and_the_continuous_stream_marks_epochs(tiny_cache):
    knobs = ["loader.worker_count=2", "loader.worker_buffer_size=3", "loader.read_threads=2", "loader.read_buffer_size=8"]
    cfg, loader = build("grain", *knobs, "loader.shuffle=true", "loader.seed=7", cache=tiny_cache)
    nodes = {}
    for node in _grain_graph(loader._iter_dataset(loader.repeated)):
        nodes.setdefault(type(node).__name__, []).append(node)
    assert [n._seed for n in nodes["ShuffleMapDataset"]] == [7]
    assert nodes["BatchMapDataset"][0]._batch_size == 8 and nodes["RepeatMapDataset"][0]._num_epochs is None
    assert {(o.num_threads, o.prefetch_buffer_size) for o in (n._read_options for n in nodes["PrefetchIterDataset"])} == {(2, 8)}
    assert [n._buffer_size for n in nodes["ProcessPrefetchIterDataset"]] == [3, 3]  # one per worker
    checks = BatchChecks(cfg.batch, loader.expected_ids())
    for epoch, batch in itertools.islice(loader.stream(), 14):  # 6 batches an epoch and its end marker, twice
        if batch is not None:
            checks(epoch, batch)
    loader.close()
    report = checks.report(False, [0, 1])
    assert report["verdict"] == "complete" and report["epochs"]["0"]["checksum"] == report["dataset_checksum"]


def test_generator_modes(tiny_cache):
    _, direct = build("generator", cache=tiny_cache)
    assert direct.tf_dataset is None
    _, wrapped = build("generator", "loader.mode=tf_from_generator", "loader.prefetch=2", cache=tiny_cache)
    assert type(wrapped.tf_dataset).__name__ == "_PrefetchDataset"


@pytest.mark.parametrize("name", READERS)
def test_reference_pixels_match_the_delivered_sample(name, tiny_cache):
    """The recorded checksum is of what the pipeline really delivers for that sample."""
    import numpy as np

    cfg, loader = build(name, cache=tiny_cache)
    first = loader.dataset.samples[0].filename
    reference = loader.reference_pixels(str(loader.dataset.images_dir / first))
    if reference is None:
        loader.close()
        pytest.skip(f"loader={name} says it has no reference pixels (Loader.reference_pixels returns None)")
    delivered = None
    for batch in loader.epoch(0):
        ids = [
            i.decode() if isinstance(i, bytes) else i for i in (batch.ids.numpy().tolist() if hasattr(batch.ids, "numpy") else batch.ids)
        ]
        if first in ids:
            images = batch.images.numpy() if hasattr(batch.images, "numpy") else np.asarray(batch.images)
            delivered = images[ids.index(first)]
            break
    loader.close()
    assert delivered is not None and np.array_equal(reference, delivered), name


def _map_labels(loader):
    return [op.split(", num_parallel_calls")[0] for op in loader.ops]


def test_tf_data_chain_fused_by_default_split_on_request(tiny_cache, tmp_path):
    """Seed 000's parse_file_to_img: one parallel map reads, decodes (decode_jpeg for JPEG) and resizes."""
    cfg, fused = build("tf_data", cache=tiny_cache, workdir=tmp_path)
    assert _map_labels(fused)[:2] == ["from_tensor_slices(manifest, n=48)", "map(read_file+decode_jpeg+resize+to_dtype"]
    cfg, split = build("tf_data", "loader.chain=split", cache=tiny_cache, workdir=tmp_path)
    assert _map_labels(split)[1:4] == ["map(read_file)", "map(decode_jpeg", "map(resize+to_dtype"]
    one = next(iter(fused.epoch(0))).images.numpy()
    assert (one == next(iter(split.epoch(0))).images.numpy()).all()  # same pixels, one map fewer per step
    assert run_epochs(cfg, split)["verdict"] == "complete"


def test_tf_data_png_files_decode_with_decode_png(tiny_cache, tmp_path):
    _, loader = build("tf_data", "dataset.format=png", cache=tiny_cache, workdir=tmp_path)
    assert "decode_png" in loader.ops[1]


def test_tf_data_continuous_stream_marks_epoch_ends(tiny_cache, tmp_path):
    _, loader = build("tf_data", cache=tiny_cache, workdir=tmp_path)
    stream = loader.stream()
    seen = [next(stream) for _ in range(14)]  # 48 samples / 8 = 6 batches an epoch, then its end marker
    assert [e for e, b in seen if b is None] == [0, 1]
    assert [e for e, b in seen[:7]] == [0] * 7 and seen[7][0] == 1
    assert "repeat()" in loader.ops and loader.ops.index("repeat()") == len(loader.ops) - 2  # just before prefetch


def test_tf_data_light_ops_per_sample_or_on_whole_batches(tiny_cache, tmp_path):
    import tensorflow as tf

    tf.random.set_seed(3)  # as an augment pipeline may have done: plain tf.random ops would repeat every epoch
    light = ["loader.rescale=0.00392156862745098", "loader.random_flip=true", "loader.random_brightness=0.1", "batch.dtype=float32"]
    cfg, scalar = build("tf_data", *light, cache=tiny_cache, workdir=tmp_path)
    _, vector = build("tf_data", *light, "loader.vectorized=true", cache=tiny_cache, workdir=tmp_path)
    labels = _map_labels(scalar)
    assert labels.index("map(rescale+random_flip+random_brightness") < labels.index("batch(8, drop_remainder=True)")
    vlabels = _map_labels(vector)
    assert vlabels.index("batch(8, drop_remainder=True)") < vlabels.index("map(rescale+random_flip+random_brightness on whole batches")
    for loader in (scalar, vector):
        images = next(iter(loader.epoch(0))).images.numpy()
        assert images.dtype.name == "float32" and -0.11 <= images.min() and images.max() <= 1.11
        assert run_epochs(cfg, loader)["verdict"] == "complete"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["loader.vectorized=true"], "nothing to vectorize"),
        (["loader.rescale=0.5"], "loader.rescale outputs float32 pixels; set batch.dtype=float32"),
        (["trial.epoch_mode=continuous", "loader=torch"], "loader=torch has no repeating iterator"),
    ],
)
def test_tf_data_light_op_and_epoch_mode_errors(overrides, message):
    from harness.config.validate import validate
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        validate(compose(["loader=tf_data", *TINY, *overrides]))


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_describes_its_chain_as_built(name, tiny_cache, tmp_path):
    _, loader = build(name, cache=tiny_cache, workdir=tmp_path)
    ops = loader.describe()["ops"]
    loader.close()
    assert ops and all(isinstance(op, str) and op for op in ops)
    assert any(str(8) in op for op in ops) or name == "synthetic"  # the batch size as built


@pytest.mark.parametrize("name, knobs", [("torch", ["loader.num_workers=1"]), ("generator", [])])
def test_ranks_share_the_order_but_draw_their_own_augmentations(name, knobs, tmp_path):
    """Every image the same: two ranks' first batches differ only if their random rotations do.

    Ranks used the trial's seed for draws too, so rank 1's workers rotated exactly as rank 0's
    did; training stacks seed draws per rank (seed + rank). The same rank twice is identical.
    """
    import numpy as np
    from PIL import Image

    from harness.config.validate import augment_spec

    folder = tmp_path / "same" / "a"
    folder.mkdir(parents=True)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    for i in range(16):
        image.save(folder / f"{i:02d}.jpg", quality=95)
    overrides = [f"loader={name}", *knobs, "dataset=folder", f"dataset.path={tmp_path / 'same'}", f"dataset.cache_dir={tmp_path / 'c'}"]
    overrides += ["batch.size=4", "batch.height=24", "batch.width=32", "augment=resize_rotate", "augment.ops.0.size=[24,32]"]
    cfg = to_typed(compose(overrides))
    whole = prepare(cfg.dataset)
    spec = augment_spec(cfg)

    def first_batch(rank: int):
        loader = get_loader(name)(cfg.loader, cfg.batch, whole.shard(rank, 2), seed=0, workdir=tmp_path, augment=spec)
        images = next(iter(loader.epoch(0))).images
        loader.close()
        return np.asarray(images)

    rank0, rank1 = first_batch(0), first_batch(1)
    assert np.array_equal(rank0, first_batch(0))  # deterministic: a difference below is the seed's
    assert not np.array_equal(rank0, rank1)
