"""The synthetic accelerator that consumes every batch, the same for every loader.

``emulated`` (no GPU): a real copy of the batch into a preallocated buffer stands in
for the host-to-device copy, then a sleep of ``step_ms`` stands in for compute. A GPU
leaves the CPU free while it computes, so the stand-in sleeps rather than spins.

``cuda``: the batch is copied to the device with ``non_blocking=True`` (so pinned host
memory pays off exactly as in training), then a matmul loop calibrated at start-up to
last ``step_ms`` runs; CUDA events time the copy and the compute separately, and the
step ends with a synchronize, as a training step that reads its loss does.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from harness.config.schema import choice
from harness.errors import HarnessError, require


def batch_shape(batch) -> tuple[int, ...]:
    """The full-batch shape that ``batch`` fixes."""
    if choice(batch.layout) == "nchw":
        return (batch.size, batch.channels, batch.height, batch.width)
    return (batch.size, batch.height, batch.width, batch.channels)


def to_host(images) -> np.ndarray:
    """A numpy view (or copy, where the framework must copy) of a CPU batch."""
    if isinstance(images, np.ndarray):
        return images
    if getattr(images, "is_cuda", False):  # a batch decoded on the GPU (loader.decoder=nvjpeg)
        images = images.cpu()
    if hasattr(images, "numpy"):  # tf.Tensor, torch.Tensor on CPU
        return images.numpy()
    return np.asarray(images)


class EmulatedConsumer:
    device = "emulated"

    def __init__(self, conf, batch, reason: str = "requested"):
        self.step_s = conf.step_ms / 1000.0
        self.reason = reason
        self.buffer = np.empty(batch_shape(batch), dtype=choice(batch.dtype))
        self.late_s = 0.0  # running estimate of how far past its deadline a sleep wakes up

    def _compute(self, started: float) -> None:
        """Idle until ``step_s`` after ``started``, correcting for the OS waking sleepers late.

        A bare ``time.sleep(0.010)`` lasts about 10.1-10.2 ms on a busy VM; an emulated
        accelerator must be accurate, so the sleep is shortened by the average lateness
        seen so far (an exponentially weighted mean, clamped to half the step).
        """
        start = time.perf_counter()
        asked = max(self.step_s - (start - started) - self.late_s, 0.0)
        time.sleep(asked)
        late = time.perf_counter() - start - asked
        self.late_s = min(max(0.9 * self.late_s + 0.1 * late, 0.0), self.step_s / 2)

    def consume(self, images, during: Callable[[], None] | None = None) -> tuple[float, float]:
        """Copy the batch, then 'compute'; return (h2d_ms, compute_ms).

        ``during`` runs while the device computes, as a training loop's own CPU work
        does; it lengthens the step only if it outlasts ``step_ms``.
        """
        t0 = time.perf_counter()
        host = to_host(images)
        np.copyto(self.buffer[: host.shape[0]], host, casting="no")
        t1 = time.perf_counter()
        if during is not None:
            during()
        if self.step_s > 0:
            self._compute(t1)
        t2 = time.perf_counter()
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3

    def describe(self) -> dict:
        return {
            "device": self.device,
            "reason": self.reason,
            "h2d": "numpy copy into a preallocated host buffer",
            "compute": "sleep of step_ms, corrected for wake-up lateness: the CPU stays free, as it does while a GPU computes",
            "sleep_lateness_ms": round(self.late_s * 1e3, 4),
        }


class CudaConsumer:
    device = "cuda"

    def __init__(self, conf, batch):
        torch = require("torch", what="consumer.device=cuda", extra="torch")
        if not torch.cuda.is_available():
            raise HarnessError(
                "consumer.device=cuda: torch.cuda.is_available() is False on this machine; "
                "use consumer.device=auto or consumer.device=emulated"
            )
        self.torch = torch
        self.dev = torch.device(f"cuda:{conf.gpu_index}")
        dtype = torch.uint8 if choice(batch.dtype) == "uint8" else torch.float32
        self.buffer = torch.empty(batch_shape(batch), dtype=dtype, device=self.dev)
        n = conf.matmul_size
        self.a = torch.randn(n, n, device=self.dev)
        self.b = torch.randn(n, n, device=self.dev)
        self.c = torch.empty(n, n, device=self.dev)
        self.events = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
        self.step_ms = conf.step_ms
        self.matmul_ms, self.iterations = self._calibrate(conf.step_ms)

    def _calibrate(self, step_ms: float) -> tuple[float, int]:
        torch = self.torch
        for _ in range(3):  # warm up cuBLAS and clocks
            torch.mm(self.a, self.b, out=self.c)
        torch.cuda.synchronize(self.dev)
        start, end = self.events[0], self.events[1]
        trial = 20
        start.record()
        for _ in range(trial):
            torch.mm(self.a, self.b, out=self.c)
        end.record()
        end.synchronize()
        per = start.elapsed_time(end) / trial
        return per, (0 if step_ms <= 0 else max(1, round(step_ms / per)))

    def consume(self, images, during: Callable[[], None] | None = None) -> tuple[float, float]:
        """Queue the copy and the matmuls, run ``during`` on the CPU meanwhile, then synchronize."""
        torch = self.torch
        tensor = images if isinstance(images, torch.Tensor) else torch.from_numpy(to_host(images))
        e0, e1, e2 = self.events
        e0.record()
        self.buffer[: tensor.shape[0]].copy_(tensor, non_blocking=True)
        e1.record()
        for _ in range(self.iterations):
            torch.mm(self.a, self.b, out=self.c)
        e2.record()
        if during is not None:
            during()
        e2.synchronize()
        return e0.elapsed_time(e1), e1.elapsed_time(e2)

    def describe(self) -> dict:
        torch = self.torch
        return {
            "device": self.device,
            "gpu": torch.cuda.get_device_name(self.dev),
            "matmul_size": int(self.a.shape[0]),
            "matmul_ms": round(self.matmul_ms, 4),
            "iterations_per_step": self.iterations,
            "calibrated_step_ms": round(self.matmul_ms * self.iterations, 3),
            "h2d": "tensor.copy_(non_blocking=True) into a preallocated device buffer",
        }


def make_consumer(conf, batch):
    """Build the consumer ``consumer.device`` asks for; ``auto`` picks CUDA when it can."""
    device = choice(conf.device)
    if device == "emulated":
        return EmulatedConsumer(conf, batch)
    if device == "cuda":
        return CudaConsumer(conf, batch)
    reason = cuda_unavailable_reason()
    if reason is None:
        return CudaConsumer(conf, batch)
    return EmulatedConsumer(conf, batch, reason=f"auto: {reason}")


def cuda_unavailable_reason():
    """Why the CUDA consumer cannot run here, or ``None`` if it can.

    Asks NVML first, so a machine without a GPU never imports torch for nothing.
    """
    from harness.trial import nvml

    probe = nvml.probe()
    if not probe["available"]:
        return f"no NVIDIA GPU ({probe['reason']})"
    try:
        import torch
    except ModuleNotFoundError:
        return "a GPU is present but torch is not installed (pip install -e '.[torch]')"
    if not torch.cuda.is_available():
        return "a GPU is present but torch.cuda.is_available() is False (CPU-only torch build?)"
    return None
