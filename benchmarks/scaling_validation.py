"""Measure how often estimate_scaling recovers known exponents and regimes.

The networks are the synthetic smooth and diffusive ones of
tests/test_scaling_validation.py (40 seeds, depths 16..256, width 4). For each
configuration the script prints how many seeds get the right regime and limit,
how many recover the exponent within 0.05, and the mean and spread of the
estimates. A second table gives the single-network roughness classification
rate per depth.

Usage: python benchmarks/scaling_validation.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from deeplimits.scaling import (  # noqa: E402
    classify_roughness,
    estimate_scaling,
    roughness_ratio,
)
from test_scaling_validation import (  # noqa: E402
    DEPTHS,
    SEEDS,
    diffusive_network,
    smooth_network,
)


def main() -> None:
    torch.set_num_threads(1)
    cases = [(f"smooth beta={beta}", beta, "smooth") for beta in (0.0, 0.2, 0.5)]
    cases += [
        ("diffusive, delta none", 0.5, "none"),
        ("diffusive, delta per layer", 0.5, "per-layer"),
    ]
    print("| case | right regime and limit | beta within 0.05 | beta mean ± sd |")
    print("|---|---|---|---|")
    for label, beta, kind in cases:
        regime_ok, beta_ok, estimates = 0, 0, []
        for seed in SEEDS:
            if kind == "smooth":
                nets = {L: smooth_network(L, beta, seed) for L in DEPTHS}
                expected = ("smooth", "neural-ode" if beta == 0 else "linear-ode")
                exponent = "beta"
            else:
                per_layer = kind == "per-layer"
                nets = {
                    L: diffusive_network(L, seed, per_layer_delta=per_layer)
                    for L in DEPTHS
                }
                expected = ("diffusive", "ito-sde")
                exponent = "beta_effective"
            result = estimate_scaling(nets)
            value = getattr(result, exponent).exponent
            estimates.append(value)
            regime_ok += (result.regime, result.verdict.limit.kind) == expected
            beta_ok += abs(value - beta) <= 0.05
        n = len(SEEDS)
        print(
            f"| {label} | {regime_ok}/{n} | {beta_ok}/{n} | "
            f"{statistics.mean(estimates):.3f} ± {statistics.stdev(estimates):.3f} |"
        )

    print()
    print("| L | smooth networks classified smooth | diffusive classified diffusive |")
    print("|---|---|---|")
    for depth in (16, 32, 64, 128, 256, 512):
        smooth_ok, diffusive_ok = 0, 0
        for seed in SEEDS:
            for beta in (0.0, 0.5):
                net = smooth_network(depth, beta, seed)
                x = net.effective_delta()[:, None, None] * net.A
                smooth_ok += classify_roughness(float(roughness_ratio(x))) == "smooth"
            net = diffusive_network(depth, seed)
            x = net.effective_delta()[:, None, None] * net.A
            diffusive_ok += classify_roughness(float(roughness_ratio(x))) == "diffusive"
        n = len(SEEDS)
        print(f"| {depth} | {smooth_ok}/{2 * n} | {diffusive_ok}/{n} |")


if __name__ == "__main__":
    main()
