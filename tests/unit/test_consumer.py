"""The emulated accelerator: a real copy, an accurate idle step, and honest device choice."""

import time

import numpy as np
import pytest

from harness.config.schema import BatchConf, ConsumerConf, Device
from harness.errors import HarnessError
from harness.trial import nvml
from harness.trial.consumer import EmulatedConsumer, batch_shape, make_consumer


def test_copy_lands_in_the_buffer():
    batch = BatchConf(size=4, height=8, width=8)
    consumer = EmulatedConsumer(ConsumerConf(step_ms=0), batch)
    images = np.random.default_rng(0).integers(0, 256, size=batch_shape(batch), dtype=np.uint8)
    h2d, compute = consumer.consume(images)
    assert np.array_equal(consumer.buffer, images)
    assert h2d >= 0 and compute == pytest.approx(0, abs=1)


def test_partial_batch_is_copied_into_the_front():
    batch = BatchConf(size=4, height=2, width=2)
    consumer = EmulatedConsumer(ConsumerConf(step_ms=0), batch)
    part = np.full((3, 2, 2, 3), 7, dtype=np.uint8)
    consumer.consume(part)
    assert (consumer.buffer[:3] == 7).all()


def test_compute_lasts_step_ms_and_leaves_the_cpu_idle():
    consumer = EmulatedConsumer(ConsumerConf(step_ms=20), BatchConf(size=1, height=1, width=1))
    images = np.zeros((1, 1, 1, 3), dtype=np.uint8)
    for _ in range(5):  # let the lateness correction settle
        consumer.consume(images)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    computes = [consumer.consume(images)[1] for _ in range(20)]
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    assert np.median(computes) == pytest.approx(20, rel=0.05)
    assert cpu < 0.25 * wall  # a sleeping stand-in, not a spinning one


def test_cuda_requested_without_cuda_is_a_clear_error():
    if nvml.probe()["available"]:
        pytest.skip("this machine has a GPU")
    with pytest.raises(HarnessError, match="consumer.device"):
        make_consumer(ConsumerConf(device=Device.cuda), BatchConf())


def test_auto_without_gpu_emulates_and_says_why():
    probe = nvml.probe()
    if probe["available"]:
        pytest.skip("this machine has a GPU")
    consumer = make_consumer(ConsumerConf(device=Device.auto), BatchConf())
    assert consumer.device == "emulated"
    assert probe["reason"] in consumer.describe()["reason"]


def test_nvml_probe_reports_absence_with_a_reason_not_zeros():
    probe = nvml.probe()
    if probe["available"]:
        assert probe["gpus"] and probe["driver"]
    else:
        assert probe["reason"] and probe["gpus"] == []


def test_work_during_compute_overlaps_the_step():
    consumer = EmulatedConsumer(ConsumerConf(step_ms=20), BatchConf(size=1, height=1, width=1))
    images = np.zeros((1, 1, 1, 3), dtype=np.uint8)
    for _ in range(5):
        consumer.consume(images)
    short = [consumer.consume(images, during=lambda: time.sleep(0.005))[1] for _ in range(10)]
    long = [consumer.consume(images, during=lambda: time.sleep(0.030))[1] for _ in range(3)]
    assert np.median(short) == pytest.approx(20, rel=0.05)  # 5 ms of CPU work hidden in a 20 ms step
    assert min(long) >= 29  # work longer than the step lengthens it
