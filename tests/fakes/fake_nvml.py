"""A small stand-in for ``pynvml`` on machines without a GPU.

Only the calls :class:`harness.monitor.gpu.NvmlSource` makes, with scripted values. It
lives under tests/ and is passed in explicitly (``NvmlSource(nvml=FakeNvml(...))``): the
harness itself never imports it, and on a GPU machine the real path is tested instead.
"""

from types import SimpleNamespace


class NotSupported(Exception):
    def __str__(self):
        return "Not Supported"


class FakeNvml:
    NVML_CLOCK_SM = 1
    NVML_PCIE_UTIL_TX_BYTES = 0
    NVML_PCIE_UTIL_RX_BYTES = 1

    def __init__(self, utilization, *, power_mw=250_000, used_bytes=3 * 2**30, pcie=False, count=1):
        self.utilization = list(utilization)  # gpu % per call, cycled
        self.power_mw, self.used_bytes, self.pcie, self.count = power_mw, used_bytes, pcie, count
        self.calls = 0
        self.shut = False

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        self.shut = True

    def nvmlDeviceGetCount(self):
        return self.count

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("handle", index)

    def nvmlDeviceGetName(self, handle):
        return b"Fake GPU"

    def nvmlDeviceGetUtilizationRates(self, handle):
        value = self.utilization[self.calls % len(self.utilization)]
        self.calls += 1
        return SimpleNamespace(gpu=value, memory=value / 2)

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(used=self.used_bytes, total=80 * 2**30)

    def nvmlDeviceGetPowerUsage(self, handle):
        return self.power_mw

    def nvmlDeviceGetClockInfo(self, handle, kind):
        return 1980

    def nvmlDeviceGetPcieThroughput(self, handle, counter):
        if not self.pcie:
            raise NotSupported()
        return 4096 if counter == self.NVML_PCIE_UTIL_RX_BYTES else 1024
