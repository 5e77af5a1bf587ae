"""Initialisations: distributions, scaling with depth, reproducibility."""

import math

import pytest
import torch

from deeplimits import FractionalBrownian, ResNet, Smooth
from deeplimits.inits import fractional_gaussian_noise, initial_weights


def _generator(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("hurst", [0.25, 0.5, 0.8])
def test_fgn_covariance_matches_theory(hurst):
    n_paths, length = 40_000, 12
    noise = fractional_gaussian_noise(n_paths, length, hurst, _generator(0))
    empirical = noise.T @ noise / n_paths
    lags = torch.arange(length, dtype=torch.float64)
    lag = (lags[:, None] - lags[None, :]).abs()
    two_h = 2 * hurst
    theory = 0.5 * ((lag + 1) ** two_h - 2 * lag**two_h + (lag - 1).abs() ** two_h)
    # Each entry estimates a covariance of at most 1 with standard error
    # at most sqrt(2 / n_paths) ~ 0.007; 6 standard errors bound all 144 entries.
    assert (empirical - theory).abs().max() < 6 * math.sqrt(2 / n_paths)


@pytest.mark.parametrize("hurst", [0.3, 0.7])
def test_fbm_path_variance(hurst):
    # B^H(t) has variance t^{2H}; the init increments are L^-H-scaled fGn.
    depth, dim = 32, 4
    A, _ = initial_weights(
        FractionalBrownian(hurst),
        replicas=500,
        depth=depth,
        dim=dim,
        scale=dim,
        generator=_generator(1),
    )
    path = A.cumsum(dim=1)  # (R, L, d, d), unit entry scale since s / d = 1
    times = torch.arange(1, depth + 1, dtype=torch.float64) / depth
    variance = path.pow(2).mean(dim=(0, 2, 3))
    expected = times ** (2 * hurst)
    # 500 * 16 samples per time: relative standard error ~ sqrt(2 / 8000) ~ 0.016
    # (the 16 entries of one replica are independent).
    torch.testing.assert_close(variance, expected, rtol=0.08, atol=0.0)


@pytest.mark.parametrize(
    ("init", "a_factor"),
    [("xavier", 1.0), ("xavier-depth", 1 / 50), ("diffusive", 1 / math.sqrt(50))],
)
def test_gaussian_init_std(init, a_factor):
    depth, dim, scale = 50, 8, 0.7
    A, b = initial_weights(
        init, replicas=20, depth=depth, dim=dim, scale=scale, generator=_generator(2)
    )
    assert A.shape == (20, depth, dim, dim)
    assert b.shape == (20, depth, dim)
    # 64000 and 8000 samples: relative standard error of the std below 1%.
    assert A.std().item() == pytest.approx(scale / dim * a_factor, rel=0.03)
    assert b.std().item() == pytest.approx(scale / math.sqrt(dim) * a_factor, rel=0.05)


def test_smooth_init_scales_with_depth():
    config = Smooth(beta=0.3, modes=3)
    shallow, _ = initial_weights(
        config, replicas=1, depth=40, dim=2, scale=1.0, generator=_generator(3)
    )
    deep, _ = initial_weights(
        config, replicas=1, depth=80, dim=2, scale=1.0, generator=_generator(3)
    )
    # Same coefficients (same seed): layer k of depth 40 and layer 2k of depth 80
    # sample the same Abar(t), so their ratio is (80 / 40)^-beta exactly.
    ratio = deep[0, ::2] / shallow[0]
    torch.testing.assert_close(ratio, torch.full_like(ratio, 2**-0.3))


def test_smooth_init_increments_are_small():
    A, _ = initial_weights(
        Smooth(), replicas=1, depth=400, dim=3, scale=1.0, generator=_generator(4)
    )
    increments = (A[0, 1:] - A[0, :-1]).abs().max()
    assert increments < 0.05 * A.abs().max()


def test_zero_init():
    A, b = initial_weights(
        "zero", replicas=2, depth=3, dim=2, scale=1.0, generator=_generator(5)
    )
    assert not A.any()
    assert not b.any()


def test_seed_reproducible():
    first = ResNet(5, 9, init="fbm", seed=11)
    second = ResNet(5, 9, init="fbm", seed=11)
    other = ResNet(5, 9, init="fbm", seed=12)
    assert torch.equal(first.A, second.A)
    assert torch.equal(first.b, second.b)
    assert not torch.equal(first.A, other.A)


def test_unknown_init_rejected():
    with pytest.raises(ValueError, match=r"init must be one of .*got 'he'"):
        ResNet(3, 4, init="he")


def test_hurst_out_of_range_rejected():
    with pytest.raises(ValueError, match=r"strictly between 0 and 1, got 1.0"):
        FractionalBrownian(1.0)


def test_negative_beta_rejected():
    with pytest.raises(ValueError, match=r"Smooth\(beta=...\) must be finite and >= 0"):
        Smooth(beta=-0.5)


def test_negative_scale_rejected():
    with pytest.raises(ValueError, match=r"init_scale must be a finite non-negative"):
        ResNet(3, 4, init_scale=-1.0)
