"""The same-data check on hand-made batches: each verdict has a known answer."""

import numpy as np
import pytest

from harness.config.schema import BatchConf, Layout
from harness.errors import HarnessError
from harness.loaders.base import Batch
from harness.trial.checks import BatchChecks, checksum

B = BatchConf(size=4, height=2, width=2)
IDS = [f"s{i}" for i in range(8)]


def batch(ids, fill=0, seed=None):
    images = np.full((len(ids), 2, 2, 3), fill, dtype=np.uint8)
    if seed is not None:
        images = np.random.default_rng(seed).integers(0, 256, size=images.shape, dtype=np.uint8)
    return Batch(images=images, labels=np.zeros(len(ids)), ids=ids)


def feed(checks, epochs):
    for epoch, batches in enumerate(epochs):
        for b in batches:
            checks(epoch, b)


def test_checksum_ignores_order_but_not_duplicates():
    assert checksum(["a", "b", "c"]) == checksum(["c", "a", "b"])
    assert checksum(["a", "b"]) != checksum(["a", "b", "b"])


def test_two_full_epochs_are_complete():
    checks = BatchChecks(B, IDS)
    feed(checks, [[batch(IDS[:4]), batch(IDS[4:])], [batch(IDS[4:]), batch(IDS[:4])]])
    report = checks.report(random_ops=False, completed=[0, 1])
    assert report["verdict"] == "complete" and report["problems"] == []
    assert report["epochs"]["0"]["checksum"] == report["epochs"]["1"]["checksum"] == report["dataset_checksum"]


def test_dropped_remainder_duplicates_and_strangers_are_named():
    checks = BatchChecks(B, IDS)
    feed(checks, [[batch(["s0", "s1", "s2", "s2"]), batch(["s3", "s4", "x9"])]])
    report = checks.report(random_ops=False, completed=[0])
    assert report["verdict"] == "differs"
    text = " ".join(report["problems"])
    assert "1 duplicated" in text and "1 samples not in the dataset" in text and "3 samples never delivered" in text


def test_an_epoch_cut_short_by_the_bound_is_not_judged():
    checks = BatchChecks(B, IDS)
    feed(checks, [[batch(IDS[:4])]])
    assert checks.report(random_ops=False, completed=[])["verdict"] == "partial"


def test_random_op_that_repeats_every_epoch_is_flagged():
    checks = BatchChecks(B, IDS)
    feed(checks, [[batch(IDS[:4], seed=1), batch(IDS[4:], seed=2)]] * 2)
    report = checks.report(random_ops=True, completed=[0, 1])
    assert report["verdict"] == "differs" and "repeat" in report["problems"][0]


def test_random_op_that_changes_is_fine_and_deterministic_one_must_not_change():
    checks = BatchChecks(B, IDS)
    feed(checks, [[batch(IDS[:4], seed=1), batch(IDS[4:], seed=2)], [batch(IDS[:4], seed=3), batch(IDS[4:], seed=4)]])
    assert checks.report(random_ops=True, completed=[0, 1])["verdict"] == "complete"
    report = checks.report(random_ops=False, completed=[0, 1])
    assert report["verdict"] == "differs" and "deterministic" in report["problems"][0]


@pytest.mark.parametrize("images", [np.zeros((4, 2, 2, 1), np.uint8), np.zeros((4, 2, 2, 3), np.float32), np.zeros((5, 2, 2, 3), np.uint8)])
def test_shape_or_dtype_contract_breach_fails_the_trial(images):
    with pytest.raises(HarnessError, match="batch"):
        BatchChecks(B, IDS)(0, Batch(images=images, labels=None, ids=None))


def test_loader_without_ids_is_unchecked_not_complete():
    checks = BatchChecks(B, IDS)
    checks(0, Batch(images=np.zeros((4, 2, 2, 3), np.uint8), labels=None, ids=None))
    assert checks.report(random_ops=False, completed=[0])["verdict"] == "unchecked"


def test_missing_framework_names_the_extra(monkeypatch):
    import sys

    from harness.errors import MissingExtraError, require

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingExtraError, match=r"pip install -e '\.\[torch\]'"):
        require("torch", what="loader=torch", extra="torch")


def test_error_line_is_the_cause_not_the_preamble():
    from harness.trial.worker import one_line

    tf_like = AttributeError("in user code:\n\n    File x.py, line 3\n\n    AttributeError: module 'tf' has no attribute 'nope'\n")
    assert one_line(tf_like) == "AttributeError: module 'tf' has no attribute 'nope'"
    assert one_line(ValueError("bad value")) == "ValueError: bad value"
    assert one_line(RuntimeError()) == "RuntimeError"


@pytest.mark.parametrize(
    "shape, dtype, layout, hint",
    [
        ((8, 3, 32, 32), "float32", "nhwc", "batch.dtype=float32, batch.layout=nchw"),  # torchvision's ToTensor output
        ((8, 32, 32, 3), "uint8", "nchw", "batch.layout=nhwc"),
        ((8, 64, 48, 3), "uint8", "nhwc", "batch.height=64, batch.width=48"),
        ((16, 32, 32, 3), "uint8", "nhwc", "batch.size=16"),
        ((8, 32, 32), "uint8", "nhwc", "yield 4-d image batches (got 3-d)"),
        ((8, 32, 32, 3), "int64", "nhwc", "cast the images to uint8 or float32 (got int64)"),
    ],
)
def test_a_broken_batch_contract_names_what_to_set(shape, dtype, layout, hint):
    checks = BatchChecks(BatchConf(size=8, height=32, width=32, layout=Layout(layout)), None)
    with pytest.raises(HarnessError) as failed:
        checks.check_shape(0, Batch(np.zeros(shape, dtype=dtype), None))
    assert str(failed.value).endswith(f": {hint}") and "\n" not in str(failed.value)
