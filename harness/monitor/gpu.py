"""GPU counters through NVML (``pynvml`` from nvidia-ml-py), or the reason there are none.

:class:`NvmlSource` takes the NVML module as an argument: the real ``pynvml`` in
production, a small fake in the tests on machines without a GPU (``tests/fakes``), so
the code that reads counters is the same in both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Counters read every tick; PCIe throughput is read every PCIE_EVERY ticks because NVML
# measures it over a 20 ms window inside the call.
PCIE_EVERY = 5
SERIES = ("gpu_util_pct", "gpu_mem_util_pct", "gpu_mem_used_mb", "gpu_power_w", "gpu_sm_clock_mhz", "pcie_rx_mb_s", "pcie_tx_mb_s")


class NvmlSource:
    """One GPU's counters; ``absent`` holds why a counter (or the whole GPU) is missing."""

    def __init__(self, index: int = 0, nvml: Any = None):
        self.index = index
        self.handle: Any = None  # an NVML device handle once the GPU is open
        self.absent: dict[str, str] = {}
        self.device: dict[str, Any] = {}
        self.ticks = 0
        try:
            if nvml is None:
                import pynvml

                nvml = pynvml
            nvml.nvmlInit()
        except ImportError:
            self.absent["gpu"] = "pynvml (nvidia-ml-py) is not installed"
            return
        except Exception as exc:  # NVMLError_LibraryNotFound / DriverNotLoaded on machines without a GPU
            self.absent["gpu"] = f"NVML unavailable: {exc}"
            return
        self.nvml = nvml
        try:
            count = nvml.nvmlDeviceGetCount()
            if index >= count:
                self.absent["gpu"] = f"consumer.gpu_index={index} but NVML sees {count} GPU(s)"
                return
            self.handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = nvml.nvmlDeviceGetName(self.handle)
            self.device = {"index": index, "name": name.decode() if isinstance(name, bytes) else str(name)}
        except Exception as exc:
            self.absent["gpu"] = f"NVML could not open GPU {index}: {exc}"

    @property
    def available(self) -> bool:
        return self.handle is not None

    def _read(self, key: str, fn: Callable[[], T]) -> T | None:
        if key in self.absent:
            return None
        try:
            return fn()
        except Exception as exc:  # NVMLError_NotSupported and friends: absent from now on, with the reason
            self.absent[key] = f"NVML: {exc}"
            return None

    def sample(self) -> dict[str, float | None]:
        if not self.available:
            return {}
        n, h = self.nvml, self.handle
        util = self._read("gpu_util_pct", lambda: n.nvmlDeviceGetUtilizationRates(h))
        out = {
            "gpu_util_pct": None if util is None else float(util.gpu),
            "gpu_mem_util_pct": None if util is None else float(util.memory),
            "gpu_mem_used_mb": self._read("gpu_mem_used_mb", lambda: n.nvmlDeviceGetMemoryInfo(h).used / 2**20),
            "gpu_power_w": self._read("gpu_power_w", lambda: n.nvmlDeviceGetPowerUsage(h) / 1000.0),
            "gpu_sm_clock_mhz": self._read("gpu_sm_clock_mhz", lambda: float(n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM))),
        }
        if self.ticks % PCIE_EVERY == 0:  # NVML reports KB/s
            out["pcie_rx_mb_s"] = self._read("pcie_rx_mb_s", lambda: n.nvmlDeviceGetPcieThroughput(h, n.NVML_PCIE_UTIL_RX_BYTES) / 1024.0)
            out["pcie_tx_mb_s"] = self._read("pcie_tx_mb_s", lambda: n.nvmlDeviceGetPcieThroughput(h, n.NVML_PCIE_UTIL_TX_BYTES) / 1024.0)
        self.ticks += 1
        return out

    def close(self) -> None:
        if self.available:
            try:
                self.nvml.nvmlShutdown()
            except Exception:
                pass
