r"""Scaling analysis of trained residual networks across depth.

Statistics of per-layer weight sequences (:mod:`.statistics`), power-law fits
in the depth with intervals (:mod:`.regression`), the smooth / diffusive /
neither decision and its limit equation (:mod:`.regimes`), the one-call
:func:`estimate_scaling`, plots (:mod:`.plots`) and the run-folder stage
:func:`analyze_run`.

Reference: A.-S. Cohen, R. Cont, A. Rossier, R. Xu, "Scaling Properties of
Deep Residual Networks", ICML 2021.
"""

from .analyze import analyze_run, write_section
from .estimate import estimate_scaling
from .regimes import (
    LimitEquation,
    RegimeThresholds,
    RoughnessAtDepth,
    Verdict,
    classify_roughness,
    decide_regime,
    hurst_from_ratio,
    limit_equation,
)
from .regression import PowerLawFit, fit_power_law
from .result import SEQUENCES, ScalingResult, StatisticFit
from .statistics import (
    DEFAULT_WINDOW,
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

__all__ = [
    "DEFAULT_WINDOW",
    "LimitEquation",
    "PowerLawFit",
    "RegimeThresholds",
    "RoughnessAtDepth",
    "SEQUENCES",
    "STATISTICS",
    "ScalingResult",
    "StatisticFit",
    "Verdict",
    "analyze_run",
    "classify_roughness",
    "cumulative_sum",
    "decide_regime",
    "effective_layer_count",
    "estimate_scaling",
    "fit_power_law",
    "hurst_from_ratio",
    "limit_equation",
    "max_cumulative_sum",
    "max_detrended_cumulative_sum",
    "max_increment",
    "max_norm",
    "quadratic_variation",
    "rms",
    "root_ssq",
    "roughness_ratio",
    "sobolev_norm",
    "write_section",
]
