"""The GPU path, where a CUDA GPU is: skipped with the reason on every other machine.

Speeds are the benchmark's (``benchmarks/gpu_check.py``); these check behaviour: the CUDA
consumer runs and keeps its calibrated step, pinned batches arrive pinned, NVML's series reach
the result, and nvJPEG decodes the batches on the device.
"""

from __future__ import annotations

import json

import pytest

from harness.trial.consumer import cuda_unavailable_reason
from tests.conftest import sweep_dir

REASON = cuda_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no CUDA GPU here: {REASON}")
TINY = ["dataset.count=128", "batch.size=16", "batch.height=64", "batch.width=64", "trial.steps=20", "trial.warmup_steps=3"]


def result_of(cli, tmp_path, *overrides: str, loader: str = "torch") -> dict:
    done = cli("run", f"loader={loader}", "consumer.device=cuda", *TINY, *overrides)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((sweep_dir(done, tmp_path) / "repeat-0" / "result.json").read_text())


def test_the_cuda_consumer_keeps_its_calibrated_step_and_nvml_is_sampled(cli, tmp_path):
    result = result_of(cli, tmp_path, "loader.produce_ms=0", "consumer.step_ms=10", loader="synthetic")
    assert result["consumer"]["device"] == "cuda"
    assert result["summary"]["compute_ms_p50"] == pytest.approx(10.0, rel=0.10)  # the benchmark states it to 2%
    gpu = result["monitor"].get("gpu") or {}
    assert gpu.get("series", {}).get("gpu_util_pct"), "NVML's utilization series is missing"


def test_pinned_batches_arrive_pinned(cli, tmp_path):
    result = result_of(cli, tmp_path, "loader.num_workers=2", "loader.pin_memory=true")
    assert result["loader"]["batches_pinned"] is True


def test_nvjpeg_decodes_the_batches_on_the_gpu(cli, tmp_path):
    result = result_of(cli, tmp_path, "loader.num_workers=2", "loader.decoder=nvjpeg")
    assert result["status"] == "ok" and "decode_jpeg(device=cuda) per batch" in result["loader"]["ops"][0]
    assert result["same_data"]["verdict"] in ("complete", "partial")
