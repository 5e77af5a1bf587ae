r"""Power-law fits of a statistic against depth.

A statistic :math:`s(L)` measured at depths :math:`L_1 < \dots < L_n` (with
:math:`R` replicas at each depth) is fitted by ordinary least squares of
:math:`\log s` on :math:`\log L`:

.. math::

    \log s_{r,i} = \log C - \beta \log L_i + \varepsilon_{r,i},

so that :math:`s \sim C L^{-\beta}` has exponent :math:`\beta` (one sign
convention everywhere: a statistic that decays with depth has a positive
exponent). With :math:`N = R n` points, :math:`x_i = \log L_i`,
:math:`S_{xx} = \sum (x - \bar x)^2` over all points and residual variance
:math:`s^2 = \text{SSR}/(N-2)`, the standard error is
:math:`\text{se}(\hat\beta) = s / \sqrt{S_{xx}}` and the interval is
:math:`\hat\beta \pm t_{N-2,\,(1+c)/2}\, \text{se}` with confidence :math:`c`
(0.95 by default) from Student's t distribution.

Pooling replicas treats their residuals as independent, which holds for
independently initialised and trained replicas.

Reference: A.-S. Cohen, R. Cont, A. Rossier, R. Xu, "Scaling Properties of
Deep Residual Networks", ICML 2021 (exponents fitted on log-log scale).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import stats

from .._checks import describe

__all__ = ["PowerLawFit", "fit_power_law", "MIN_DEPTHS"]

MIN_DEPTHS = 3
"""Minimum number of distinct depths of a fit. Two points always fit a line
exactly, so three is the minimum that leaves a residual (one degree of freedom)."""


@dataclass(frozen=True)
class PowerLawFit:
    r"""Least-squares fit of :math:`s(L) = C L^{-\beta}` on log-log scale.

    Attributes:
        exponent: :math:`\hat\beta`, minus the log-log slope.
        stderr: Standard error of :math:`\hat\beta`.
        ci_low: Lower end of the confidence interval for :math:`\beta`.
        ci_high: Upper end of the confidence interval for :math:`\beta`.
        confidence: Confidence level of the interval (0.95 by default).
        r2: Coefficient of determination of the log-log fit; 1 for an exact
            fit, including a constant statistic.
        prefactor: :math:`\hat C`.
        min_depth: Smallest depth fitted.
        max_depth: Largest depth fitted.
        n_depths: Number of distinct depths.
        n_replicas: Number of replicas per depth.
        n_points: Number of (depth, value) points, :math:`R n`.
        log_depth_mean: :math:`\bar x`, mean of :math:`\log L` over the points.
        log_depth_sxx: :math:`S_{xx}` over the points.
        residual_std: :math:`s`, the residual standard deviation in log units.
        t_quantile: The Student t quantile used for the interval.
    """

    exponent: float
    stderr: float
    ci_low: float
    ci_high: float
    confidence: float
    r2: float
    prefactor: float
    min_depth: int
    max_depth: int
    n_depths: int
    n_replicas: int
    n_points: int
    log_depth_mean: float
    log_depth_sxx: float
    residual_std: float
    t_quantile: float

    def predict(self, depths: Any) -> np.ndarray:
        r"""Return the fitted values :math:`\hat C L^{-\hat\beta}` at ``depths``."""
        grid = np.asarray(depths, dtype=np.float64)
        return self.prefactor * grid ** (-self.exponent)

    def band(self, depths: Any) -> tuple[np.ndarray, np.ndarray]:
        r"""Return the confidence band of the fitted line at ``depths``.

        The band for the mean of :math:`\log s` at :math:`x = \log L` is
        :math:`\hat y(x) \pm t\, s \sqrt{1/N + (x - \bar x)^2 / S_{xx}}`,
        returned on the original scale as ``(lower, upper)`` arrays.
        """
        grid = np.log(np.asarray(depths, dtype=np.float64))
        centre = math.log(self.prefactor) - self.exponent * grid
        spread = np.sqrt(
            1.0 / self.n_points + (grid - self.log_depth_mean) ** 2 / self.log_depth_sxx
        )
        half = self.t_quantile * self.residual_std * spread
        return np.exp(centre - half), np.exp(centre + half)

    def contains(self, value: float) -> bool:
        """Return whether ``value`` lies in the confidence interval of the exponent."""
        return self.ci_low <= value <= self.ci_high

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return asdict(self)

    def __str__(self) -> str:
        percent = round(100 * self.confidence)
        replicas = (
            "1 replica" if self.n_replicas == 1 else f"{self.n_replicas} replicas"
        )
        return (
            f"{_fixed(self.exponent)} ± {_fixed(self.stderr)} ({percent}% CI "
            f"[{_fixed(self.ci_low)}, {_fixed(self.ci_high)}], R² = {self.r2:.3f}, "
            f"L = {self.min_depth}..{self.max_depth}, {replicas})"
        )


def _fixed(value: float) -> str:
    """Format with 3 decimals, printing a value that rounds to zero as 0.000."""
    return f"{round(value, 3) + 0.0:.3f}"


def fit_power_law(
    depths: Sequence[int],
    values: Any,
    *,
    confidence: float = 0.95,
    name: str = "statistic",
) -> PowerLawFit:
    r"""Fit :math:`s(L) \approx C L^{-\beta}` by least squares on log-log scale.

    Args:
        depths: The :math:`n \ge 3` distinct depths :math:`L_i`, positive ints.
        values: Positive finite values, shape ``(n,)``, or ``(R, n)`` with a
            leading replicas axis (pooled into one fit of :math:`R n` points).
        confidence: Level of the two-sided interval, in (0, 1).
        name: What the values are, used in error messages
            (e.g. ``"rms of delta*A"``).

    Returns:
        The :class:`PowerLawFit`.

    Raises:
        ValueError: for fewer than 3 distinct depths, non-positive depths, a
            shape mismatch, or a value that is zero, negative or not finite
            (its logarithm is undefined, so the message names the depth).

    Example:
        >>> fit = fit_power_law([16, 32, 64], [16.0**-2, 32.0**-2, 64.0**-2])
        >>> round(fit.exponent, 6)
        2.0
    """
    depth_list = [int(depth) for depth in depths]
    if len(set(depth_list)) < MIN_DEPTHS:
        raise ValueError(
            f"a power-law fit needs at least {MIN_DEPTHS} distinct depths, got "
            f"{sorted(set(depth_list))} for {name}. Train the sweep at more depths."
        )
    if min(depth_list) < 1:
        raise ValueError(f"depths must be positive integers, got {depth_list}.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}.")
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[1] != len(depth_list):
        raise ValueError(
            f"values for {name} must have shape ({len(depth_list)},) or "
            f"(R, {len(depth_list)}) to match {len(depth_list)} depths, got "
            f"{describe(values) if matrix.ndim == 0 else tuple(matrix.shape)}."
        )
    _check_positive(depth_list, matrix, name)

    # Ordinary least squares of log value on log depth over all points.
    replicas = matrix.shape[0]
    x = np.tile(np.log(np.asarray(depth_list, dtype=np.float64)), replicas)
    y = np.log(matrix).reshape(-1)
    points = x.size
    x_mean, y_mean = x.mean(), y.mean()
    sxx = float(((x - x_mean) ** 2).sum())
    slope = float(((x - x_mean) * (y - y_mean)).sum() / sxx)
    intercept = float(y_mean - slope * x_mean)
    residuals = y - (intercept + slope * x)
    ssr = float((residuals**2).sum())
    sst = float(((y - y_mean) ** 2).sum())

    # Standard error and Student t interval with N - 2 degrees of freedom.
    dof = points - 2
    residual_std = math.sqrt(ssr / dof)
    stderr = residual_std / math.sqrt(sxx)
    quantile = _t_quantile(confidence, dof)
    exponent = -slope
    r2 = 1.0 if sst == 0.0 or ssr == 0.0 else 1.0 - ssr / sst
    return PowerLawFit(
        exponent=exponent,
        stderr=stderr,
        ci_low=exponent - quantile * stderr,
        ci_high=exponent + quantile * stderr,
        confidence=confidence,
        r2=r2,
        prefactor=math.exp(intercept),
        min_depth=min(depth_list),
        max_depth=max(depth_list),
        n_depths=len(set(depth_list)),
        n_replicas=replicas,
        n_points=points,
        log_depth_mean=float(x_mean),
        log_depth_sxx=sxx,
        residual_std=residual_std,
        t_quantile=quantile,
    )


@lru_cache(maxsize=256)
def _t_quantile(confidence: float, dof: int) -> float:
    """Two-sided Student t quantile, cached because scipy's ppf is slow."""
    return float(stats.t.ppf(0.5 + confidence / 2.0, dof))


def _check_positive(depths: list[int], matrix: np.ndarray, name: str) -> None:
    """Raise ValueError naming the first depth with a non-positive or bad value."""
    for column, depth in enumerate(depths):
        column_values = matrix[:, column]
        for replica, value in enumerate(column_values):
            where = f"depth {depth}" + (
                f", replica {replica}" if matrix.shape[0] > 1 else ""
            )
            if not math.isfinite(value):
                raise ValueError(
                    f"{name} is {value} at {where}; a power law needs finite "
                    "values. Check the weights at that depth for NaN or inf."
                )
            if value == 0.0:
                raise ValueError(
                    f"{name} is zero at {where}, so log({name}) is undefined and "
                    "no power law can be fitted. The sequence is zero (or "
                    "constant, for increment statistics) at that depth; leave "
                    "that depth out or use another statistic."
                )
            if value < 0.0:
                raise ValueError(
                    f"{name} is negative ({value}) at {where}; a power law needs "
                    "positive values."
                )
