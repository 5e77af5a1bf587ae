"""Scaling statistics against hand-computed values and a plain-loop reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deeplimits.scaling import (
    STATISTICS,
    cumulative_sum,
    effective_layer_count,
    max_cumulative_sum,
    max_detrended_cumulative_sum,
    max_increment,
    max_norm,
    quadratic_variation,
    rms,
    root_ssq,
    roughness_ratio,
    sobolev_norm,
)

SCALAR = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)

# Hand-computed values for X = (1, 2, 4): increments (1, 2), S = (0, 1, 3, 7).
# With a 3-point window: S_1 - (0 + 1 + 3)/3 = -1/3, S_2 - (1 + 3 + 7)/3 = -2/3.
HAND_VALUES = {
    "max_norm": 4.0,
    "root_ssq": math.sqrt(21.0),
    "rms": math.sqrt(7.0),
    "sobolev": math.sqrt(3.0 * 5.0),
    "quadratic_variation": 5.0,
    "max_increment": 2.0,
    "cumulative_sum": 7.0,
    "detrended_cumulative_sum": 2.0 / 3.0,
}


@pytest.mark.parametrize("name", sorted(HAND_VALUES))
def test_statistic_scalar_hand_value(name: str) -> None:
    value = STATISTICS[name](SCALAR)
    assert value.dtype == torch.float64
    assert value.shape == ()
    assert float(value) == pytest.approx(HAND_VALUES[name], rel=1e-14)


def test_statistics_matrix_hand_values() -> None:
    # X_0 = [[1, 0], [0, 0]], X_1 = [[1, 0], [0, 2]]: norms 1 and sqrt 5,
    # increment [[0, 0], [0, 2]] of norm 2, S = (0, X_0, X_0 + X_1).
    x = torch.tensor(
        [[[1.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 2.0]]], dtype=torch.float64
    )
    assert float(max_norm(x)) == pytest.approx(math.sqrt(5.0))
    assert float(root_ssq(x)) == pytest.approx(math.sqrt(6.0))
    assert float(rms(x)) == pytest.approx(math.sqrt(3.0))
    assert float(quadratic_variation(x)) == pytest.approx(4.0)
    assert float(sobolev_norm(x)) == pytest.approx(math.sqrt(8.0))
    assert float(max_increment(x)) == pytest.approx(2.0)
    assert float(max_cumulative_sum(x)) == pytest.approx(math.sqrt(4.0 + 4.0))
    # Interior point m = 1: S_1 - (S_0 + S_1 + S_2)/3 = [[0, 0], [0, -2/3]].
    assert float(max_detrended_cumulative_sum(x, window=3)) == pytest.approx(2 / 3)


def test_cumulative_sum_signed_sequence() -> None:
    x = torch.tensor([3.0, -5.0, 1.0], dtype=torch.float64)
    # S = (0, 3, -2, -1): the largest norm is 3, not the final sum.
    assert float(max_cumulative_sum(x)) == pytest.approx(3.0)
    assert cumulative_sum(x).tolist() == [0.0, 3.0, -2.0, -1.0]


def test_cumulative_sum_keeps_trailing_shape() -> None:
    x = torch.ones(2, 5, 3, 3, dtype=torch.float64)
    path = cumulative_sum(x, replicas=True)
    assert path.shape == (2, 6, 3, 3)
    assert torch.equal(path[:, -1], torch.full((2, 3, 3), 5.0, dtype=torch.float64))


def test_detrended_sum_window_five_shrinks_at_edges() -> None:
    x = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    # S = (0, 1, 1, 1, 1, 1, 1); half-widths (0, 1, 2, 2, 2, 1, 0).
    # m = 1: 1 - 2/3 = 1/3; m = 2: 1 - 4/5 = 1/5; others 0.
    value = max_detrended_cumulative_sum(x, window=5)
    assert float(value) == pytest.approx(1.0 / 3.0)


def test_detrended_sum_zero_for_constant_sequence() -> None:
    x = torch.full((40, 3), 0.7, dtype=torch.float64)
    assert float(max_detrended_cumulative_sum(x, window=7)) < 1e-13


def _loop_reference(x: np.ndarray, window: int) -> dict[str, float]:
    """Plain-loop float64 implementation of every statistic, independent of torch."""
    layers = x.shape[0]
    norms = [float(np.sqrt((x[k] ** 2).sum())) for k in range(layers)]
    increments = [
        float(np.sqrt(((x[k + 1] - x[k]) ** 2).sum())) for k in range(layers - 1)
    ]
    partial = [np.zeros_like(x[0])]
    for k in range(layers):
        partial.append(partial[-1] + x[k])
    deviations = []
    for m in range(layers + 1):
        half = min(window // 2, m, layers - m)
        mean = sum(partial[j] for j in range(m - half, m + half + 1)) / (2 * half + 1)
        deviations.append(float(np.sqrt(((partial[m] - mean) ** 2).sum())))
    return {
        "max_norm": max(norms),
        "root_ssq": math.sqrt(sum(n * n for n in norms)),
        "rms": math.sqrt(sum(n * n for n in norms) / layers),
        "sobolev": math.sqrt(layers * sum(i * i for i in increments)),
        "quadratic_variation": sum(i * i for i in increments),
        "max_increment": max(increments),
        "cumulative_sum": max(float(np.sqrt((s**2).sum())) for s in partial),
        "detrended_cumulative_sum": max(deviations),
    }


@pytest.mark.parametrize("shape", [(17,), (16, 3), (9, 4, 4)])
def test_statistics_match_loop_reference(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    reference = _loop_reference(x, window=5)
    for name, function in STATISTICS.items():
        value = float(function(torch.from_numpy(x)))
        assert value == pytest.approx(reference[name], rel=1e-12), name


def test_statistics_replicas_axis_matches_each_replica() -> None:
    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.standard_normal((3, 12, 2, 2)))
    for name, function in STATISTICS.items():
        batched = function(x, replicas=True)
        assert batched.shape == (3,), name
        for replica in range(3):
            single = function(x[replica])
            assert float(batched[replica]) == pytest.approx(float(single)), name


def test_statistics_accept_numpy_and_float32() -> None:
    x32 = SCALAR.to(torch.float32)
    assert float(rms(x32)) == pytest.approx(math.sqrt(7.0), rel=1e-7)
    assert float(rms(SCALAR.numpy())) == pytest.approx(math.sqrt(7.0))


def test_roughness_ratio_hand_values() -> None:
    constant = torch.ones(4, dtype=torch.float64)
    alternating = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    isolated = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    odd = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    assert float(roughness_ratio(constant)) == pytest.approx(2.0)
    assert float(roughness_ratio(alternating)) == pytest.approx(0.0)
    assert float(roughness_ratio(isolated)) == pytest.approx(1.0)
    # Odd L drops the last layer: fine 1 + 4, coarse (1 + 2)^2.
    assert float(roughness_ratio(odd)) == pytest.approx(9.0 / 5.0)


def test_roughness_ratio_brownian_mean_and_spread() -> None:
    # i.i.d. Gaussian increments: rho - 1 has mean 0 and std about sqrt(2 / N).
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(400, 64, 4, 4, generator=generator, dtype=torch.float64)
    ratios = roughness_ratio(x, replicas=True)
    spread = math.sqrt(2.0 / (64 * 16))
    assert abs(float(ratios.mean()) - 1.0) < 4 * spread / math.sqrt(400)
    assert float(ratios.std()) == pytest.approx(spread, rel=0.15)


def test_roughness_ratio_smooth_path_near_two() -> None:
    t = torch.arange(128, dtype=torch.float64) / 128
    x = torch.sin(2 * math.pi * t) + 1.5
    # 2 - rho = sum (X_2j - X_2j+1)^2 / sum X^2 = O(L^-2).
    assert 2.0 - float(roughness_ratio(x)) < 1e-3


def test_effective_layer_count_hand_values() -> None:
    assert float(effective_layer_count(torch.ones(8))) == pytest.approx(8.0)
    sparse = torch.tensor([0.0, 3.0, 0.0, -3.0, 0.0])
    assert float(effective_layer_count(sparse)) == pytest.approx(2.0)


def test_statistic_rejects_bad_input() -> None:
    with pytest.raises(TypeError, match="x must be a torch.Tensor or numpy array"):
        rms([1.0, 2.0])
    with pytest.raises(ValueError, match=r"shape \(R, L, \.\.\.\) with replicas=True"):
        rms(torch.ones(4), replicas=True)
    with pytest.raises(ValueError, match="at least 2 layers"):
        quadratic_variation(torch.ones(1, 3))
    with pytest.raises(ValueError, match="1 NaN or infinite entries"):
        max_norm(torch.tensor([1.0, float("nan")]))
    with pytest.raises(TypeError, match="replicas must be a bool"):
        rms(torch.ones(3), replicas=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must hold real numbers"):
        rms(torch.ones(3, dtype=torch.bool))


def test_detrended_sum_rejects_even_or_small_window() -> None:
    with pytest.raises(ValueError, match="window must be odd"):
        max_detrended_cumulative_sum(SCALAR, window=4)
    with pytest.raises(ValueError, match="window must be at least 3"):
        max_detrended_cumulative_sum(SCALAR, window=1)


def test_roughness_ratio_rejects_zero_sequence() -> None:
    with pytest.raises(ValueError, match=r"all zero \(0/0\)"):
        roughness_ratio(torch.zeros(6, 2))
    with pytest.raises(ValueError, match=r"all zero \(0/0\)"):
        effective_layer_count(torch.zeros(6, 2))
