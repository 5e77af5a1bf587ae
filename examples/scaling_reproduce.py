r"""Reproduce the scaling regimes of trained residual networks with deeplimits.

Two configurations studied by Cohen, Cont, Rossier and Xu, "Scaling
Properties of Deep Residual Networks" (ICML 2021), on the library's synthetic
ODE data:

- ``tanh-shared``: tanh with one shared, trainable delta; expected smooth
  scaling with 0 < beta < 1 and alpha + beta close to 1;
- ``relu-per-layer``: ReLU with a signed delta per layer; expected diffusive
  effective weights delta_k A_k with exponent near 1/2. The measured runs
  match this with plain SGD from an O(1) xavier initialisation (command
  below). With Adam a few layers carry most of the weight (docs/scaling.md).

Each run trains a depth sweep into a run folder, then runs the scaling stage
(``scaling.json``, plots, ``report.md``). A finished depth is never retrained,
so an interrupted run resumes where it stopped.

Usage::

    python examples/scaling_reproduce.py tanh-shared --out runs/scaling-tanh \
        --replicas 4 --epochs 100 --patience 20
    python examples/scaling_reproduce.py relu-per-layer --out runs/scaling-relu-sgd \
        --replicas 4 --epochs 100 --patience 20 --optimizer sgd --lr 0.05 \
        --init xavier --init-scale 1.0
"""

from __future__ import annotations

import argparse
import time

import torch

from deeplimits.scaling import analyze_run
from deeplimits.sweep import depth_sweep

CONFIGS: dict[str, dict[str, object]] = {
    "tanh-shared": {"activation": "tanh", "delta": "shared"},
    "relu-per-layer": {"activation": "relu", "delta": "per-layer"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", choices=sorted(CONFIGS))
    parser.add_argument("--out", required=True, help="run folder to write")
    parser.add_argument(
        "--depths",
        default="8,16,32,64,128,256",
        help="comma-separated depths (default: 8,16,32,64,128,256)",
    )
    parser.add_argument("--replicas", type=int, default=3, help="replicas per depth")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs")
    parser.add_argument(
        "--patience",
        type=int,
        default=5,
        help="stop after this many epochs without a 1%% training-loss improvement",
    )
    parser.add_argument(
        "--optimizer", default="adam", choices=["adam", "sgd"], help="optimizer"
    )
    parser.add_argument("--lr", type=float, default=1e-2, help="learning rate")
    parser.add_argument(
        "--init", default="xavier-depth", help="initialisation name (xavier-depth)"
    )
    parser.add_argument("--init-scale", type=float, default=0.01, help="init scale s")
    parser.add_argument("--batch-size", type=int, default=32, help="minibatch size")
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1)"
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    depths = [int(depth) for depth in args.depths.split(",")]
    start = time.perf_counter()
    depth_sweep(
        depths,
        dataset="synthetic",
        init=args.init,
        batch_size=args.batch_size,
        init_scale=args.init_scale,
        replicas=args.replicas,
        optimizer=args.optimizer,
        lr=args.lr,
        epochs=args.epochs,
        patience=args.patience,
        seed=args.seed,
        out=args.out,
        progress=False,
        **CONFIGS[args.config],  # type: ignore[arg-type]
    )
    print(f"sweep finished in {time.perf_counter() - start:.0f} s")
    result = analyze_run(args.out, progress=False)
    print(result.summary())


if __name__ == "__main__":
    main()
