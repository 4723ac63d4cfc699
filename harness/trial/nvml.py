"""NVIDIA GPUs through NVML (``pynvml`` from nvidia-ml-py).

Only the real library is used here. Where NVML is missing or finds no GPU, the answer
says so with the reason; nothing is reported as zero.
"""

from __future__ import annotations


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def probe() -> dict:
    """Whether NVML works here, and the GPUs it sees.

    Returns:
        ``{"available": bool, "reason": str | None, "driver": str | None, "gpus": [...]}``
    """
    try:
        import pynvml
    except ModuleNotFoundError:
        return {"available": False, "reason": "pynvml (nvidia-ml-py) is not installed", "driver": None, "gpus": []}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return {"available": False, "reason": f"NVML init failed: {_text(exc)}", "driver": None, "gpus": []}
    try:
        count = pynvml.nvmlDeviceGetCount()
        gpus = []
        for i in range(count):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append({"index": i, "name": _text(pynvml.nvmlDeviceGetName(handle)), "memory_bytes": int(memory.total)})
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
    finally:
        pynvml.nvmlShutdown()
    if not gpus:
        return {"available": False, "reason": "NVML found no GPU", "driver": driver, "gpus": []}
    return {"available": True, "reason": None, "driver": driver, "gpus": gpus}
