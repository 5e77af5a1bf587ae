"""Tests of the bases on [0, 1] and of the least-squares projection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deeplimits.reduced import BASIS_NAMES, get_basis, project_onto_basis
from deeplimits.reduced.projection import constant_coefficients, evaluate_path


def gauss_legendre_01(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre nodes and weights mapped to [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return torch.from_numpy((nodes + 1) / 2), torch.from_numpy(weights / 2)


def test_legendre_orthogonality_by_quadrature() -> None:
    basis = get_basis("legendre", 12)
    # 20 Gauss points integrate polynomials of degree <= 39 exactly.
    nodes, weights = gauss_legendre_01(20)
    phi = basis(nodes)
    gram = phi.T @ (weights[:, None] * phi)
    expected = torch.diag(1.0 / (2 * torch.arange(12, dtype=torch.float64) + 1))
    torch.testing.assert_close(gram, expected, atol=1e-13, rtol=0)


def test_legendre_known_values() -> None:
    basis = get_basis("legendre", 4)
    t = torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64)
    x = 2 * t - 1
    expected = torch.stack(
        [torch.ones_like(x), x, (3 * x**2 - 1) / 2, (5 * x**3 - 3 * x) / 2], dim=-1
    )
    torch.testing.assert_close(basis(t), expected, atol=1e-15, rtol=0)


def test_chebyshev_cosine_identity() -> None:
    basis = get_basis("chebyshev", 10)
    theta = torch.linspace(0, math.pi, 37, dtype=torch.float64)
    t = (torch.cos(theta) + 1) / 2
    expected = torch.cos(theta[:, None] * torch.arange(10, dtype=torch.float64))
    torch.testing.assert_close(basis(t), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("K", [1, 2, 5, 9])
def test_piecewise_linear_partition_of_unity(K: int) -> None:
    basis = get_basis("piecewise-linear", K)
    t = torch.rand(200, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    values = basis(t)
    torch.testing.assert_close(
        values.sum(dim=-1), torch.ones(200, dtype=torch.float64), atol=1e-14, rtol=0
    )
    assert bool((values >= 0).all())


def test_piecewise_linear_interpolates_knots() -> None:
    basis = get_basis("piecewise-linear", 6)
    knots = torch.arange(6, dtype=torch.float64) / 5
    torch.testing.assert_close(basis(knots), torch.eye(6, dtype=torch.float64))
    assert basis.knots == pytest.approx((0.2, 0.4, 0.6, 0.8))


def test_fourier_values_and_discrete_orthogonality() -> None:
    K = 7
    basis = get_basis("fourier", K)
    n = 64
    t = torch.arange(n, dtype=torch.float64) / n
    phi = basis(t)
    torch.testing.assert_close(phi[:, 0], torch.ones(n, dtype=torch.float64))
    torch.testing.assert_close(phi[:, 3], torch.cos(4 * math.pi * t))
    torch.testing.assert_close(phi[:, 6], torch.sin(6 * math.pi * t))
    # On a uniform periodic grid the trigonometric functions are orthogonal.
    gram = phi.T @ phi / n
    expected = torch.diag(torch.tensor([1.0] + [0.5] * (K - 1), dtype=torch.float64))
    torch.testing.assert_close(gram, expected, atol=1e-13, rtol=0)


@pytest.mark.parametrize("name", BASIS_NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_basis_keeps_dtype_and_shape(name: str, dtype: torch.dtype) -> None:
    basis = get_basis(name, 5)
    values = basis(torch.linspace(0, 1, 11, dtype=dtype))
    assert values.shape == (11, 5)
    assert values.dtype == dtype
    assert basis(torch.tensor(0.5, dtype=dtype)).shape == (5,)


@pytest.mark.parametrize("name", BASIS_NAMES)
def test_projection_recovers_path_in_basis(name: str) -> None:
    basis = get_basis(name, 6)
    generator = torch.Generator().manual_seed(1)
    coefficients = torch.randn(6, 3, 2, generator=generator, dtype=torch.float64)
    times = torch.arange(40, dtype=torch.float64) / 40
    samples = evaluate_path(coefficients, times, basis)
    recovered = project_onto_basis(samples, times, basis)
    torch.testing.assert_close(recovered, coefficients, atol=1e-11, rtol=0)


@pytest.mark.parametrize("name", BASIS_NAMES)
def test_constant_coefficients_sum_to_one(name: str) -> None:
    basis = get_basis(name, 5)
    times = torch.linspace(0, 1, 9, dtype=torch.float64)
    ones = evaluate_path(constant_coefficients(basis), times, basis)
    torch.testing.assert_close(ones, torch.ones(9, dtype=torch.float64))


def test_projection_underdetermined_warns() -> None:
    basis = get_basis("legendre", 5)
    times = torch.arange(3, dtype=torch.float64) / 3
    with pytest.warns(UserWarning, match="underdetermined"):
        project_onto_basis(torch.ones(3), times, basis)


def test_projection_length_mismatch_raises() -> None:
    basis = get_basis("legendre", 2)
    with pytest.raises(ValueError, match="one sample per time"):
        project_onto_basis(torch.ones(4), torch.zeros(3), basis)


def test_get_basis_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="K must be >= 1"):
        get_basis("legendre", 0)
    with pytest.raises(TypeError, match="K must be an int"):
        get_basis("legendre", 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown basis 'hermite'"):
        get_basis("hermite", 4)
    with pytest.raises(ValueError, match="K .* is required"):
        get_basis("chebyshev")
    with pytest.raises(TypeError, match="basis must be a name"):
        get_basis(3, 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="disagrees with the basis instance"):
        get_basis(get_basis("fourier", 3), 4)


def test_basis_rejects_bad_times() -> None:
    basis = get_basis("legendre", 3)
    with pytest.raises(TypeError, match="floating-point"):
        basis(torch.arange(3))
    with pytest.raises(ValueError, match=r"shape \(n,\)"):
        basis(torch.zeros(2, 2))
    with pytest.raises(TypeError, match="torch.Tensor"):
        basis([0.5])  # type: ignore[arg-type]
