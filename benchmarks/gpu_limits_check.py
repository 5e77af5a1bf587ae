"""Integrate each limit on CUDA and compare with the CPU result.

Run with ``python benchmarks/gpu_limits_check.py``. Without CUDA the script
prints why it skipped and exits with status 0. With CUDA it prints, for each
limit and dtype, the largest difference between the GPU and CPU solutions and
the wall time of each. It exits with status 1 if a difference exceeds its
tolerance (1e-10 in float64, 1e-4 in float32).
"""

from __future__ import annotations

import sys
import time

import torch

from deeplimits import ResNet
from deeplimits.limits import fit_limit

DEPTH, DIM, BATCH = 256, 10, 256
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-4}


def _cases() -> list[tuple[str, torch.nn.Module]]:
    smooth = ResNet(
        DIM, DEPTH, init="smooth", init_scale=1.0, seed=0, dtype=torch.float64
    )
    diffusive = ResNet(
        DIM,
        DEPTH,
        activation="gelu",
        init="diffusive",
        init_scale=1.0,
        seed=0,
        delta="none",
        dtype=torch.float64,
    )
    return [
        ("neural-ode", fit_limit(smooth, "neural-ode")),
        ("linear-ode", fit_limit(smooth, "linear-ode")),
        ("sde", fit_limit(diffusive, "sde")),
    ]


def _solve(limit: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    with torch.no_grad():
        ys = limit.integrate(x).ys
    if x.is_cuda:
        torch.cuda.synchronize()
    return ys.cpu().double(), time.perf_counter() - start


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_limits_check: CUDA is not available; nothing to compare. Skipped.")
        return 0
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, DIM, dtype=torch.float64, generator=generator)
    failed = False
    print(f"device: {torch.cuda.get_device_name(0)}; L={DEPTH}, d={DIM}, batch={BATCH}")
    for name, limit in _cases():
        for dtype in (torch.float64, torch.float32):
            cpu_limit = limit.to(device="cpu", dtype=dtype)
            cpu, cpu_time = _solve(cpu_limit, x.to(dtype))
            gpu_limit = limit.to(device="cuda", dtype=dtype)
            gpu, gpu_time = _solve(gpu_limit, x.to(device="cuda", dtype=dtype))
            gap = (gpu - cpu).abs().max().item() / max(cpu.abs().max().item(), 1.0)
            ok = gap <= TOLERANCE[dtype]
            failed = failed or not ok
            print(
                f"{name:11s} {str(dtype):14s} max relative gap {gap:.2e} "
                f"(tolerance {TOLERANCE[dtype]:.0e}) cpu {cpu_time:.2f} s "
                f"gpu {gpu_time:.2f} s {'ok' if ok else 'FAILED'}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
