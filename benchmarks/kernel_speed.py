"""Time one Adam training step of the fused ResNet against a plain autograd loop.

Measures, in one run and on one CPU thread:

- the fused kernel (:class:`deeplimits.ResNet`) against the straightforward
  implementation (a Python list of per-layer parameters and an autograd loop),
  for d = 10, batch 32 and L in {10, 100, 1000};
- the cost of 8 replicas against 1 with the fused kernel.

Each configuration is timed as the median of several repeats, with the
configurations interleaved so that load from other processes affects them
alike. Run it with ``python benchmarks/kernel_speed.py``; the figures go to
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from deeplimits import ResNet


class LoopResNet(nn.Module):
    """The straightforward ResNet: per-layer parameters and an autograd loop."""

    def __init__(self, dim: int, depth: int) -> None:
        super().__init__()
        self.A = nn.ParameterList(
            nn.Parameter(torch.randn(dim, dim) * 0.01 / (dim * depth))
            for _ in range(depth)
        )
        self.b = nn.ParameterList(nn.Parameter(torch.zeros(dim)) for _ in range(depth))
        self.delta = nn.Parameter(torch.tensor(1.0 / depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for A, b in zip(self.A, self.b, strict=True):
            h = h + self.delta.abs() * torch.tanh(h @ A.T + b)
        return h


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        output = model(x)
        loss = (output - y).pow(2).mean(dim=(-2, -1)).sum()
        loss.backward()
        optimizer.step()

    return step


def time_steps(steps: dict[str, Callable[[], None]], repeats: int, inner: int) -> dict:
    for step in steps.values():  # warm-up
        step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(inner):
                step()
            samples[name].append((time.perf_counter() - start) / inner)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per case")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dim, batch = 10, 32
    x = torch.randn(batch, dim)
    y = torch.randn(batch, dim)

    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    print("\nOne Adam step, fused kernel against the autograd loop (d=10, batch 32)")
    print(f"{'L':>6} {'loop (ms)':>10} {'fused (ms)':>11} {'speed-up':>9}")
    for depth in (10, 100, 1000):
        inner = max(1, 200 // depth)
        steps = {
            "loop": make_step(LoopResNet(dim, depth), x, y),
            "fused": make_step(ResNet(dim, depth, seed=0), x, y),
        }
        times = time_steps(steps, args.repeats, inner)
        print(
            f"{depth:>6} {1e3 * times['loop']:>10.2f} {1e3 * times['fused']:>11.2f} "
            f"{times['loop'] / times['fused']:>8.1f}x"
        )

    print("\nReplicas with the fused kernel (d=10, batch 32)")
    print(f"{'L':>6} {'R=1 (ms)':>10} {'R=8 (ms)':>10} {'ratio':>7}")
    for depth in (10, 100, 1000):
        inner = max(1, 200 // depth)
        steps = {
            "one": make_step(ResNet(dim, depth, seed=0), x, y),
            "eight": make_step(ResNet(dim, depth, replicas=8, seed=0), x, y),
        }
        times = time_steps(steps, args.repeats, inner)
        print(
            f"{depth:>6} {1e3 * times['one']:>10.2f} {1e3 * times['eight']:>10.2f} "
            f"{times['eight'] / times['one']:>6.2f}x"
        )


if __name__ == "__main__":
    main()
