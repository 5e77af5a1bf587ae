"""Known-answer validation: synthetic smooth and diffusive weights.

Smooth weights are L^-beta Abar(k/L) with a random smooth Abar plus a 10%
perturbation that is independent across layers, and delta = L^-(1 - beta),
so Hypothesis 1 is satisfied with alpha + beta = 1. Diffusive weights are a trend
Abar(k/L)/L plus independent increments of variance 1/(d L) per entry, so the
cumulative path is a drift plus a Brownian motion (Hypothesis 2, exponent 1/2).
Each configuration runs over 40 fixed seeds and must name the right regime and
recover the exponent within 0.05 in at least 95% of them.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from deeplimits import ResNet
from deeplimits.activations import Activation
from deeplimits.scaling import classify_roughness, estimate_scaling, roughness_ratio

DEPTHS = (16, 32, 64, 128, 256)
SEEDS = range(40)
DIM = 4
F64 = torch.float64


def _smooth_profile(depth: int, seed: int, trailing: tuple[int, ...]) -> torch.Tensor:
    """Abar(k/L) = sum_j c_j cos(pi j k/L) / (1 + j), shape (L, *trailing).

    The coefficients c_j depend on ``seed`` only, so every depth samples the
    same limit function Abar.
    """
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(depth, dtype=F64) / depth
    modes = 4
    coefficients = torch.randn(modes, *trailing, generator=generator, dtype=F64)
    coefficients = coefficients / math.sqrt(DIM)
    basis = torch.stack([torch.cos(math.pi * j * t) / (1 + j) for j in range(modes)])
    return torch.tensordot(basis.T, coefficients, dims=1)


def _noise(depth: int, generator: torch.Generator, trailing: tuple[int, ...]):
    """Independent N(0, 1/d) entries, shape (L, *trailing)."""
    sample = torch.randn(depth, *trailing, generator=generator, dtype=F64)
    return sample / math.sqrt(DIM)


def smooth_network(
    depth: int, beta: float, seed: int, *, activation: str | Activation = "tanh"
) -> ResNet:
    """L^-beta (Abar(k/L) + 0.1 noise_k) with delta = L^-(1 - beta)."""
    generator = torch.Generator().manual_seed(1000 * seed + depth)
    A = _smooth_profile(depth, 2 * seed, (DIM, DIM))
    A = A + 0.1 * _noise(depth, generator, (DIM, DIM))
    b = _smooth_profile(depth, 2 * seed + 1, (DIM,))
    b = b + 0.1 * _noise(depth, generator, (DIM,))
    delta = torch.tensor(depth ** -(1.0 - beta), dtype=F64)
    return ResNet.from_weights(
        A * depth**-beta, b * depth**-beta, delta, activation=activation
    )


def diffusive_network(
    depth: int,
    seed: int,
    *,
    per_layer_delta: bool = False,
    activation: str | Activation = "tanh",
) -> ResNet:
    """Trend Abar(k/L)/L plus independent increments of variance 1/(d L).

    With ``per_layer_delta``, delta_k is uniform on [0.75, 1.25] per layer.
    """
    generator = torch.Generator().manual_seed(1000 * seed + depth)
    A = _smooth_profile(depth, 2 * seed, (DIM, DIM)) / depth
    A = A + _noise(depth, generator, (DIM, DIM)) / math.sqrt(depth)
    b = _smooth_profile(depth, 2 * seed + 1, (DIM,)) / depth
    b = b + _noise(depth, generator, (DIM,)) / math.sqrt(depth)
    delta = None
    if per_layer_delta:
        delta = 0.75 + 0.5 * torch.rand(depth, generator=generator, dtype=F64)
    return ResNet.from_weights(A, b, delta, activation=activation)


@pytest.mark.parametrize("beta", [0.0, 0.2, 0.5])
def test_smooth_weights_recover_beta_and_regime(beta: float) -> None:
    expected_limit = "neural-ode" if beta == 0.0 else "linear-ode"
    successes = 0
    for seed in SEEDS:
        networks = {depth: smooth_network(depth, beta, seed) for depth in DEPTHS}
        result = estimate_scaling(networks)
        good = (
            abs(result.beta.exponent - beta) <= 0.05
            and abs(result.alpha.exponent - (1.0 - beta)) <= 0.05
            and result.regime == "smooth"
            and result.verdict.hypothesis_1_consistent
            and result.verdict.limit.kind == expected_limit
        )
        successes += good
    assert successes / len(SEEDS) >= 0.95


@pytest.mark.parametrize("per_layer_delta", [False, True])
def test_diffusive_weights_recover_half_and_regime(per_layer_delta: bool) -> None:
    successes = 0
    for seed in SEEDS:
        networks = {
            depth: diffusive_network(depth, seed, per_layer_delta=per_layer_delta)
            for depth in DEPTHS
        }
        result = estimate_scaling(networks)
        good = (
            abs(result.beta.exponent - 0.5) <= 0.05
            and abs(result.beta_effective.exponent - 0.5) <= 0.05
            and abs(result.alpha.exponent) <= 0.05
            and result.regime == "diffusive"
            and result.verdict.limit.kind == "ito-sde"
        )
        successes += good
    assert successes / len(SEEDS) >= 0.95


@pytest.mark.parametrize("depth", [64, 128, 256, 512])
def test_roughness_ratio_classifies_single_network(depth: int) -> None:
    smooth_right = 0
    diffusive_right = 0
    for seed in SEEDS:
        for beta in (0.0, 0.5):
            net = smooth_network(depth, beta, seed)
            effective = net.effective_delta()[:, None, None] * net.A
            band = classify_roughness(float(roughness_ratio(effective)))
            smooth_right += band == "smooth"
        net = diffusive_network(depth, seed)
        effective = net.effective_delta()[:, None, None] * net.A
        band = classify_roughness(float(roughness_ratio(effective)))
        diffusive_right += band == "diffusive"
    assert diffusive_right / len(SEEDS) >= 0.95
    assert smooth_right / (2 * len(SEEDS)) >= 0.95


def test_relu_smooth_gives_relu_ode() -> None:
    networks = {
        depth: smooth_network(depth, 0.3, 1, activation="relu") for depth in DEPTHS
    }
    result = estimate_scaling(networks)
    assert result.regime == "smooth"
    assert result.verdict.limit.kind == "relu-ode"


def test_relu_diffusive_has_no_limit() -> None:
    networks = {
        depth: diffusive_network(depth, 1, activation="relu") for depth in DEPTHS
    }
    result = estimate_scaling(networks)
    assert result.regime == "diffusive"
    assert result.verdict.limit.kind == "none"
    assert "not C^2 at 0" in result.verdict.limit.reason


def test_gelu_diffusive_keeps_quadratic_term() -> None:
    networks = {
        depth: diffusive_network(depth, 1, activation="gelu") for depth in DEPTHS
    }
    limit = estimate_scaling(networks).verdict.limit
    assert limit.kind == "ito-sde"
    # sigma''(0) / 2 = phi(0) = 1 / sqrt(2 pi) for the exact GELU.
    assert "(sigma''(0)/2) dQ^i(H)" in limit.equation
    assert f"sigma''(0) = {2 / math.sqrt(2 * math.pi):g}" in limit.equation
    assert "sigma'(0) (sum_j H^j dV^(A,ij)" in limit.equation
    assert "sigma'(0) = 0.5" in limit.equation


def test_nonzero_sigma0_with_positive_beta_has_no_limit() -> None:
    shifted = Activation.from_function(
        lambda z: torch.tanh(z) + 0.5, name="shifted-tanh"
    )
    networks = {
        depth: smooth_network(depth, 0.5, 2, activation=shifted) for depth in DEPTHS
    }
    result = estimate_scaling(networks)
    assert result.regime == "smooth"
    assert result.verdict.limit.kind == "none"
    assert "sigma(0) = 0.5 is not 0" in result.verdict.limit.reason


def test_nonzero_sigma0_with_zero_beta_is_neural_ode() -> None:
    shifted = Activation.from_function(
        lambda z: torch.tanh(z) + 0.5, name="shifted-tanh"
    )
    networks = {
        depth: smooth_network(depth, 0.0, 3, activation=shifted) for depth in DEPTHS
    }
    assert estimate_scaling(networks).verdict.limit.kind == "neural-ode"


def test_sparse_pattern_is_neither() -> None:
    networks = {}
    for depth in DEPTHS:
        generator = torch.Generator().manual_seed(depth)
        A = 1e-4 * torch.randn(depth, DIM, DIM, generator=generator, dtype=F64) / depth
        for position in (depth // 4, depth // 2, 3 * depth // 4):
            A[position] = torch.randn(DIM, DIM, generator=generator, dtype=F64)
        b = torch.zeros(depth, DIM, dtype=F64)
        b[depth // 2] = 1.0
        networks[depth] = ResNet.from_weights(A, b, None)
    result = estimate_scaling(networks)
    assert result.regime == "neither"
    assert result.verdict.sparse
    assert result.verdict.limit.kind == "none"
    assert "a few layers carry all the weight" in result.verdict.limit.reason


def test_intermediate_roughness_is_neither() -> None:
    # Equal smooth and independent parts of size 1/L: ratio about 1.5.
    networks = {}
    for depth in DEPTHS:
        generator = torch.Generator().manual_seed(depth)
        smooth = _smooth_profile(depth, 5, (DIM, DIM))
        scale = smooth.pow(2).mean().sqrt()
        noise = _noise(depth, generator, (DIM, DIM))
        A = (smooth + scale * noise / noise.pow(2).mean().sqrt()) / depth
        networks[depth] = ResNet.from_weights(A, torch.zeros(depth, DIM, dtype=F64))
    result = estimate_scaling(networks)
    assert result.roughness[-1].band == "intermediate"
    assert result.regime == "neither"
    assert "lies between the smooth band" in result.verdict.limit.reason


def test_small_rough_weights_are_neither() -> None:
    # Independent layers of size 1/L: Brownian-looking but the quadratic
    # variation of the cumulative path vanishes like 1/L.
    networks = {}
    for depth in DEPTHS:
        generator = torch.Generator().manual_seed(depth)
        A = _noise(depth, generator, (DIM, DIM)) / depth
        networks[depth] = ResNet.from_weights(A, torch.zeros(depth, DIM, dtype=F64))
    result = estimate_scaling(networks)
    assert result.roughness[-1].band == "diffusive"
    assert result.beta_effective.exponent == pytest.approx(1.0, abs=0.05)
    assert result.regime == "neither"
    assert "not L^-1/2" in result.verdict.limit.reason


def test_alternating_weights_are_rough() -> None:
    networks = {}
    for depth in DEPTHS:
        signs = (-1.0) ** torch.arange(depth, dtype=F64)
        A = signs[:, None, None] * torch.eye(DIM, dtype=F64) / math.sqrt(depth)
        networks[depth] = ResNet.from_weights(A, torch.zeros(depth, DIM, dtype=F64))
    result = estimate_scaling(networks)
    assert result.roughness[-1].band == "rough"
    assert result.regime == "neither"
    assert "anti-correlated" in result.verdict.limit.reason
    # A ratio of 0 has Hurst estimate -inf, stored as null in strict JSON.
    assert json.loads(result.to_json())["roughness"][-1]["hurst"] is None


def test_wrong_alpha_plus_beta_has_no_limit() -> None:
    # delta = L^-1 with beta = 0.5: alpha + beta = 1.5, so sum delta A -> 0.
    networks = {}
    for depth in DEPTHS:
        net = smooth_network(depth, 0.5, 4)
        networks[depth] = ResNet.from_weights(
            net.A.detach(), net.b.detach(), torch.tensor(1.0 / depth, dtype=F64)
        )
    result = estimate_scaling(networks)
    assert result.regime == "smooth"
    assert not result.verdict.hypothesis_1_consistent
    assert result.verdict.limit.kind == "none"
    assert "tends to the identity map" in result.verdict.limit.reason
