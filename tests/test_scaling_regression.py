"""Power-law fits against exact laws and scipy's independent regression."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from deeplimits.scaling import fit_power_law

DEPTHS = [8, 16, 32, 64, 128]


def test_exact_power_law_recovered() -> None:
    values = [3.0 * depth**-0.37 for depth in DEPTHS]
    fit = fit_power_law(DEPTHS, values)
    assert fit.exponent == pytest.approx(0.37, abs=1e-12)
    assert fit.prefactor == pytest.approx(3.0, rel=1e-12)
    assert fit.stderr == pytest.approx(0.0, abs=1e-12)
    assert fit.r2 == pytest.approx(1.0)
    assert (fit.min_depth, fit.max_depth, fit.n_depths) == (8, 128, 5)


def test_growing_statistic_has_negative_exponent() -> None:
    fit = fit_power_law(DEPTHS, [depth**0.5 for depth in DEPTHS])
    assert fit.exponent == pytest.approx(-0.5)


def test_fit_matches_scipy_linregress() -> None:
    rng = np.random.default_rng(0)
    values = np.array(DEPTHS, dtype=float) ** -0.6 * np.exp(
        0.1 * rng.standard_normal(5)
    )
    fit = fit_power_law(DEPTHS, values)
    reference = stats.linregress(np.log(DEPTHS), np.log(values))
    quantile = stats.t.ppf(0.975, len(DEPTHS) - 2)
    assert fit.exponent == pytest.approx(-reference.slope, rel=1e-12)
    assert fit.stderr == pytest.approx(reference.stderr, rel=1e-12)
    assert fit.r2 == pytest.approx(reference.rvalue**2, rel=1e-12)
    assert fit.ci_low == pytest.approx(-reference.slope - quantile * reference.stderr)
    assert fit.ci_high == pytest.approx(-reference.slope + quantile * reference.stderr)
    assert fit.n_replicas == 1


def test_pooled_replicas_match_stacked_regression() -> None:
    rng = np.random.default_rng(1)
    values = np.array(DEPTHS, dtype=float) ** -0.3 * np.exp(
        0.05 * rng.standard_normal((4, 5))
    )
    fit = fit_power_law(DEPTHS, values)
    x = np.tile(np.log(DEPTHS), 4)
    reference = stats.linregress(x, np.log(values).ravel())
    quantile = stats.t.ppf(0.975, 20 - 2)
    assert fit.n_points == 20
    assert fit.n_replicas == 4
    assert fit.exponent == pytest.approx(-reference.slope, rel=1e-12)
    assert fit.stderr == pytest.approx(reference.stderr, rel=1e-12)
    assert fit.t_quantile == pytest.approx(quantile)


def test_interval_coverage_close_to_nominal() -> None:
    # 95% intervals from noisy exact power laws cover the truth about 95% of
    # the time; 400 draws give a binomial std of about 1.1%.
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(400):
        noise = np.exp(0.2 * rng.standard_normal(5))
        fit = fit_power_law(DEPTHS, np.array(DEPTHS, dtype=float) ** -0.5 * noise)
        covered += fit.contains(0.5)
    assert 0.91 <= covered / 400 <= 0.99


def test_band_contains_fit_and_widens_away_from_centre() -> None:
    rng = np.random.default_rng(3)
    values = np.array(DEPTHS, dtype=float) ** -1.0 * np.exp(
        0.1 * rng.standard_normal(5)
    )
    fit = fit_power_law(DEPTHS, values)
    grid = np.geomspace(8, 128, 9)
    lower, upper = fit.band(grid)
    centre = fit.predict(grid)
    assert np.all(lower < centre)
    assert np.all(centre < upper)
    width = np.log(upper / lower)
    centre_index = int(np.argmin(np.abs(np.log(grid) - fit.log_depth_mean)))
    assert width[0] > width[centre_index]
    assert width[-1] > width[centre_index]


def test_fit_to_dict_and_text() -> None:
    fit = fit_power_law(DEPTHS, [depth**-0.25 for depth in DEPTHS])
    data = fit.to_dict()
    assert data["exponent"] == pytest.approx(0.25)
    assert set(data) >= {"stderr", "ci_low", "ci_high", "r2", "n_replicas"}
    assert "0.250 ± 0.000" in str(fit)
    assert "1 replica)" in str(fit)


def test_fit_rejects_too_few_depths() -> None:
    with pytest.raises(ValueError, match=r"at least 3 distinct depths, got \[8, 16\]"):
        fit_power_law([8, 16, 16], [1.0, 0.5, 0.5])


def test_fit_rejects_zero_value_naming_depth() -> None:
    with pytest.raises(ValueError, match=r"rms of b is zero at depth 32, so log"):
        fit_power_law([16, 32, 64], [1.0, 0.0, 0.5], name="rms of b")
    with pytest.raises(ValueError, match="is zero at depth 64, replica 1"):
        fit_power_law([16, 32, 64], [[1.0, 0.7, 0.5], [1.0, 0.7, 0.0]])


def test_fit_rejects_negative_nonfinite_and_shape() -> None:
    with pytest.raises(ValueError, match=r"negative \(-1.0\) at depth 16"):
        fit_power_law([16, 32, 64], [-1.0, 0.7, 0.5])
    with pytest.raises(ValueError, match="is nan at depth 32"):
        fit_power_law([16, 32, 64], [1.0, math.nan, 0.5])
    with pytest.raises(ValueError, match=r"must have shape \(3,\) or \(R, 3\)"):
        fit_power_law([16, 32, 64], [1.0, 0.5])
    with pytest.raises(ValueError, match="depths must be positive"):
        fit_power_law([0, 32, 64], [1.0, 0.7, 0.5])
    with pytest.raises(ValueError, match=r"confidence must lie in \(0, 1\)"):
        fit_power_law([16, 32, 64], [1.0, 0.7, 0.5], confidence=1.0)
