"""The GPU path in one go: the CUDA consumer, pinned copies, NVML against AU, nvJPEG against CPU decode.

Run it on a machine with an NVIDIA GPU and torch with CUDA (no TensorFlow needed), from the
repository's root; it prints numbers, it does not pass or fail::

    python benchmarks/gpu_check.py [--out DIR] [--quick]

1. **Consumer step**: the CUDA consumer calibrates a matmul loop to ``consumer.step_ms``;
   each target is run for 50 steps and the mean wall time per step (copy, matmuls and the
   synchronize that ends a step) is compared with it.
2. **Host-to-device copies**: the batch a DataLoader hands over (32 x 3 x 224 x 224 uint8 and
   its float32 twin), copied by the consumer from pageable and from pinned memory, against a
   bare ``copy_(non_blocking=True)`` of the same tensor from pinned memory: GB/s and the ratio.
3. **nvJPEG vs CPU decode**: 512 generated JPEGs (500x375) decoded and resized to 224x224 by
   ``torchvision.io.decode_jpeg(device="cuda")`` in batches of 32, and by torchvision's CPU
   decode in this one process: images/s.
4. **A sweep**: ``loader=torch loader.pin_memory=false,true`` with the CUDA consumer, through
   ``python -m harness sweep``; its report, and per variant the consumer's AU beside NVML's
   GPU utilization.

On a machine without a CUDA GPU it says why and exits 2. Without the repository's
dependencies installed (a GPU image without a registry), carry hydra-core, omegaconf and
antlr4-python3-runtime as wheels: ``benchmarks/gpu_wheels.sh`` downloads them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def consumer_steps(torch, targets=(5.0, 10.0, 20.0), steps=50) -> list[dict]:
    from harness.trial.consumer import CudaConsumer

    batch = SimpleNamespace(size=32, channels=3, height=224, width=224, layout="nchw", dtype="uint8")
    host = torch.randint(0, 255, (32, 3, 224, 224), dtype=torch.uint8).pin_memory()
    out = []
    for target in targets:
        consumer = CudaConsumer(SimpleNamespace(step_ms=target, matmul_size=2048, gpu_index=0), batch)
        for _ in range(5):
            consumer.consume(host)
        start = time.perf_counter()
        for _ in range(steps):
            consumer.consume(host)
        per = (time.perf_counter() - start) * 1e3 / steps
        out.append({"target_ms": target, "measured_ms": round(per, 3), "error_pct": round(100 * (per - target) / target, 2)})
    return out


def copies(torch, repeats=50) -> list[dict]:
    """GB/s of the consumer's copy from pageable and pinned memory, and of a bare pinned copy_."""
    from harness.trial.consumer import CudaConsumer

    out = []
    for dtype, name in ((torch.uint8, "uint8"), (torch.float32, "float32")):
        batch = SimpleNamespace(size=32, channels=3, height=224, width=224, layout="nchw", dtype=name)
        consumer = CudaConsumer(SimpleNamespace(step_ms=0.0, matmul_size=256, gpu_index=0), batch)
        pageable = torch.randint(0, 255, (32, 3, 224, 224)).to(dtype)
        pinned = pageable.pin_memory()
        gb = pageable.numel() * pageable.element_size() / 1e9
        row = {"dtype": name, "mb": round(gb * 1e3, 1)}
        for label, tensor in (("pageable", pageable), ("pinned", pinned)):
            times = [consumer.consume(tensor)[0] for _ in range(repeats)][5:]
            row[f"consumer_{label}_gb_s"] = round(gb / (sorted(times)[len(times) // 2] / 1e3), 2)
        device = torch.empty_like(pinned, device="cuda")
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        bare = []
        for _ in range(repeats):
            start.record()
            device.copy_(pinned, non_blocking=True)
            end.record()
            end.synchronize()
            bare.append(start.elapsed_time(end))
        row["bare_pinned_gb_s"] = round(gb / (sorted(bare[5:])[len(bare[5:]) // 2] / 1e3), 2)
        row["consumer_pinned_of_bare"] = round(row["consumer_pinned_gb_s"] / row["bare_pinned_gb_s"], 3)
        out.append(row)
    return out


def decode(torch, count: int, cache: Path) -> dict:
    from torchvision.io import ImageReadMode, decode_jpeg, read_file
    from torchvision.transforms.v2 import functional as F

    from harness.config.schema import SyntheticDatasetConf
    from harness.data.build import prepare
    from harness.loaders._torch_impl import gpu_decode

    paths = prepare(SyntheticDatasetConf(count=count, cache_dir=str(cache))).columns()[0]
    data = [read_file(p) for p in paths]  # both sides start from the bytes in memory
    batch = SimpleNamespace(channels=3, height=224, width=224, layout="nchw")
    gpu_decode(data[:32], batch, "cuda")  # nvJPEG's handles and kernels, once
    torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(0, len(data), 32):
        gpu_decode(data[i : i + 32], batch, "cuda")
    torch.cuda.synchronize()
    gpu = len(data) / (time.perf_counter() - start)
    start = time.perf_counter()
    for raw in data:
        F.resize(decode_jpeg(raw, mode=ImageReadMode.RGB), [224, 224], antialias=True)
    cpu = len(data) / (time.perf_counter() - start)
    return {"files": len(data), "nvjpeg_images_s": round(gpu, 1), "cpu_one_process_images_s": round(cpu, 1), "ratio": round(gpu / cpu, 2)}


def sweep(out: Path, seconds: int) -> dict:
    folder = out / "pin_memory_sweep"
    command = [sys.executable, "-m", "harness", "sweep", "loader=torch", "loader.pin_memory=false,true", "loader.num_workers=4"]
    command += ["consumer.device=cuda", "batch.height=224", "batch.width=224", f"trial.seconds={seconds}", f"hydra.sweep.dir={folder}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
    rows = []
    for path in sorted(folder.glob("*/repeat-*/result.json")):
        result = json.loads(path.read_text())
        monitor = (result.get("monitor") or {}).get("summary") or {}
        rows.append(
            {
                "overrides": result["overrides"],
                "status": result["status"],
                "samples_per_s": result["summary"].get("samples_per_s"),
                "consumer_au_pct": result["summary"].get("au_pct"),
                "nvml_gpu_util_mean_pct": monitor.get("gpu_util_mean_pct"),
                "h2d_ms_p50": result["summary"].get("h2d_ms_p50"),
                "batches_pinned": result.get("loader", {}).get("batches_pinned"),
            }
        )
    return {"folder": str(folder), "report": str(folder / "report.html"), "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "gpu_check")
    parser.add_argument("--quick", action="store_true", help="fewer files and shorter trials (a smoke run)")
    args = parser.parse_args()
    from harness.trial.consumer import cuda_unavailable_reason

    reason = cuda_unavailable_reason()
    if reason is not None:
        print(f"gpu_check: no CUDA GPU to check: {reason}", file=sys.stderr)
        return 2
    import torch

    args.out.mkdir(parents=True, exist_ok=True)
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}", flush=True)
    found = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    for name, step in (
        ("consumer_step", lambda: consumer_steps(torch)),
        ("h2d", lambda: copies(torch)),
        ("decode", lambda: decode(torch, 128 if args.quick else 512, args.out / "cache")),
        ("sweep", lambda: sweep(args.out, 3 if args.quick else 10)),
    ):
        start = time.perf_counter()
        found[name] = step()
        print(f"{name} ({time.perf_counter() - start:.1f} s): {json.dumps(found[name], indent=1)}", flush=True)
    (args.out / "gpu_check.json").write_text(json.dumps(found, indent=1))
    print(f"gpu_check: {args.out / 'gpu_check.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
