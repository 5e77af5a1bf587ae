"""Accuracy and parameter count: reduced model against a trained ResNet.

For each data set (the built-in synthetic ODE data and the scikit-learn
digits, both with d = 10), this script trains

- a ResNet of depth 64 (tanh, shared delta, xavier-depth init);
- a reduced neural ODE (Legendre, K = 8, 8 rk4 steps, adjoint) from a random
  initialisation;
- the same reduced model warm-started from the trained ResNet by
  least-squares projection, then trained;

all with :func:`deeplimits.train` and the same budget (Adam, lr 1e-2, batch
32, the given number of epochs, seed 0, default stopping rule), and prints
test MSE, test accuracy (digits) and parameter counts.

Usage::

    python benchmarks/reduced_accuracy.py               # 20 epochs
    python benchmarks/reduced_accuracy.py --epochs 5    # quicker
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from deeplimits import ResNet
from deeplimits.data import digits, synthetic_ode
from deeplimits.reduced import ReducedLimitModel
from deeplimits.training import train


def _row(name: str, model: torch.nn.Module, result, seconds: float) -> str:
    accuracy = "-"
    if result.test_accuracy:
        accuracy = f"{100 * result.test_accuracy[-1]:.1f}%"
    count = sum(p.numel() for p in model.parameters())
    return (
        f"| {name} | {count} | {result.test_loss[-1]:.3e} | {accuracy} | "
        f"{result.epochs_run} | {seconds:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs per model")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    budget = dict(epochs=args.epochs, lr=1e-2, batch_size=32, seed=0, progress=False)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {args.threads} thread(s)"
    )
    print("| data / model | parameters | test MSE | test accuracy | epochs | s |")
    print("|---|---|---|---|---|---|")
    for name, data in (("synthetic", synthetic_ode(seed=0)), ("digits", digits())):
        started = time.perf_counter()
        net = ResNet(10, 64, seed=0)
        result = train(net, data, **budget)
        print(
            _row(
                f"{name} / ResNet depth 64", net, result, time.perf_counter() - started
            )
        )

        started = time.perf_counter()
        scratch = ReducedLimitModel(10, K=8, steps=8, seed=0)
        result = train(scratch, data, **budget)
        print(
            _row(
                f"{name} / reduced K=8, random init",
                scratch,
                result,
                time.perf_counter() - started,
            )
        )

        started = time.perf_counter()
        warm = ReducedLimitModel.from_network(net, "legendre", 8, steps=8)
        result = train(warm, data, **budget)
        print(
            _row(
                f"{name} / reduced K=8, warm start",
                warm,
                result,
                time.perf_counter() - started,
            )
        )


if __name__ == "__main__":
    main()
