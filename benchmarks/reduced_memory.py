"""Peak memory of one training step: reduced model against resolution, ResNet
against depth.

Each configuration runs in a fresh Python subprocess, which

1. builds the model and a batch, and runs one warm-up training step (forward,
   backward, Adam step), so lazily allocated buffers exist;
2. resets the kernel's peak resident set size (``echo 5 >
   /proc/self/clear_refs``, Linux only) and reads the current RSS;
3. runs one more training step and reads the peak RSS (``VmHWM``).

The figure reported is peak minus current RSS: the extra memory of one step.
The subprocess runs with ``MALLOC_MMAP_THRESHOLD_=65536`` and
``MALLOC_TRIM_THRESHOLD_=0`` so glibc returns freed blocks to the kernel at
once. Without them, the warm-up step leaves freed memory resident, and the
second step reuses it without raising the peak. A second,
allocator-independent figure is the total size of the tensors that autograd
saves for the backward pass during the forward pass
(``torch.autograd.graph.saved_tensors_hooks``), a measure of the autograd
graph itself. It counts a tensor once per operation that saves
it, so storage shared between operations is counted more than once. On a
GPU, pass ``--device cuda`` to read ``torch.cuda.max_memory_allocated``
instead of the RSS.

The reduced model is run with ``odeint_adjoint`` (its training default) and,
for contrast, with direct backpropagation through the same rk4 solver.

Usage::

    python benchmarks/reduced_memory.py            # d = 32, batch = 2048
    python benchmarks/reduced_memory.py --quick    # smoke test; its figures
                                                   # are too small to compare
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys

RESOLUTIONS = [8, 16, 32, 64, 128]


def _status_kib(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        match = re.search(rf"{key}:\s+(\d+) kB", handle.read())
    assert match is not None
    return int(match.group(1))


def measure(kind: str, size: int, dim: int, batch: int, device: str) -> dict:
    """Run inside the subprocess: one configuration, returns MiB figures."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    from deeplimits import ResNet
    from deeplimits.reduced import ReducedLimitModel

    if kind == "resnet":
        model = ResNet(dim, size, seed=0, device=device)
    else:
        model = ReducedLimitModel(
            dim, K=8, steps=size, adjoint=(kind == "adjoint"), seed=0, device=device
        )
    x = torch.randn(batch, dim, device=device)
    y = torch.randn(batch, dim, device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    saved_bytes = [0]

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved_bytes[0] += tensor.numel() * tensor.element_size()
        return tensor

    def step(count_saved: bool) -> None:
        optimizer.zero_grad(set_to_none=True)
        if count_saved:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = (model(x) - y).square().mean()
        else:
            loss = (model(x) - y).square().mean()
        loss.backward()
        optimizer.step()

    step(count_saved=True)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step(count_saved=False)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        before = _status_kib("VmRSS")
        step(count_saved=False)
        peak = (_status_kib("VmHWM") - before) * 1024
    return {
        "kind": kind,
        "size": size,
        "peak_step_mib": peak / 2**20,
        "saved_tensors_mib": saved_bytes[0] / 2**20,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def run_child(kind: str, size: int, dim: int, batch: int, device: str) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    command = [
        sys.executable,
        __file__,
        "--child",
        json.dumps([kind, size, dim, batch, device]),
    ]
    output = subprocess.run(
        command, env=env, check=True, capture_output=True, text=True
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=32, help="width d")
    parser.add_argument("--batch", type=int, default=2048, help="batch size")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--quick", action="store_true", help="d = 8, batch = 256")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*json.loads(args.child))))
        return
    dim, batch = (8, 256) if args.quick else (args.dim, args.batch)

    rows = []
    for kind in ("adjoint", "direct", "resnet"):
        for size in RESOLUTIONS:
            rows.append(run_child(kind, size, dim, batch, args.device))
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"{os.cpu_count()} cores, python {platform.python_version()}"
    )
    print(f"d = {dim}, batch = {batch}, device = {args.device}, rk4, K = 8")
    header = "| model | steps or depth | peak extra memory of one step (MiB) "
    print(header + "| saved tensors (MiB) | parameters |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['kind']} | {row['size']} | {row['peak_step_mib']:.2f} | "
            f"{row['saved_tensors_mib']:.2f} | {row['parameters']} |"
        )
    for kind in ("adjoint", "direct", "resnet"):
        first = next(r for r in rows if r["kind"] == kind and r["size"] == 8)
        last = next(r for r in rows if r["kind"] == kind and r["size"] == 128)
        ratio = last["peak_step_mib"] / max(first["peak_step_mib"], 1e-9)
        print(f"{kind}: peak ratio 128 vs 8 = {ratio:.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
