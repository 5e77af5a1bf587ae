r"""Plots of a :class:`~deeplimits.scaling.result.ScalingResult` (matplotlib).

Each function draws one :class:`matplotlib.figure.Figure`, saves it as PNG when
``path`` is given and returns it. The figures are built without pyplot, so
they leave the user's backend and pyplot's figure list alone; display one in a
notebook by evaluating it. :func:`plot_all` writes the full set into a folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from .._io import atomic_save_figure
from .result import ScalingResult

__all__ = [
    "plot_fits",
    "plot_profiles",
    "plot_paths",
    "paths_caption",
    "plot_delta",
    "plot_roughness",
    "plot_all",
    "PLOT_FILES",
]

PLOT_FILES: dict[str, str] = {
    "fits": "scaling_fits.png",
    "profiles": "scaling_weights.png",
    "paths": "scaling_paths.png",
    "delta": "scaling_delta.png",
    "roughness": "scaling_roughness.png",
}
"""File name of each plot written by :func:`plot_all`."""

_LABELS = {
    "A": r"$A_k$",
    "b": r"$b_k$",
    "delta": r"$\delta_k$",
    "delta*A": r"$\delta_k A_k$",
    "delta*b": r"$\delta_k b_k$",
}


def _subplots(
    *grid: int, figsize: tuple[float, float], **options: Any
) -> tuple[Figure, Any]:
    # Figures built without pyplot leave the user's backend and figure list alone.
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **options)


def _save(fig: Figure, path: str | os.PathLike[str] | None) -> Figure:
    if path is not None:
        atomic_save_figure(fig, path)
    return fig


def plot_fits(
    result: ScalingResult,
    *,
    statistic: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Plot each sequence's statistic against depth on log-log axes.

    One panel per sequence: the values of every replica, the pooled fit
    :math:`C L^{-\\beta}` and its confidence band for the mean line.
    """
    name = statistic or result.statistic
    fig, axes = _subplots(1, 5, figsize=(17, 3.6), squeeze=False)
    depths = np.asarray(result.depths, dtype=np.float64)
    grid = np.geomspace(depths.min(), depths.max(), 100)
    for axis, sequence in zip(
        axes[0], ("A", "b", "delta", "delta*A", "delta*b"), strict=True
    ):
        fit = result.fit(sequence, name)
        values = np.asarray(fit.values)
        for row in values:
            axis.scatter(depths, np.where(row > 0, row, np.nan), s=12, alpha=0.6)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("depth L")
        title = f"{name} of {_LABELS[sequence]}"
        if fit.pooled is not None:
            lower, upper = fit.pooled.band(grid)
            axis.plot(grid, fit.pooled.predict(grid), color="black", linewidth=1)
            axis.fill_between(grid, lower, upper, color="gray", alpha=0.3)
            pooled = fit.pooled
            title += (
                f"\nexponent {pooled.exponent:.3f} "
                f"[{pooled.ci_low:.3f}, {pooled.ci_high:.3f}]"
            )
        else:
            title += "\n(no fit: zero at every depth)"
        axis.set_title(title, fontsize=9)
    fig.suptitle("statistic ~ C L^-exponent, 95% confidence band of the fit")
    fig.tight_layout()
    return _save(fig, path)


def plot_profiles(
    result: ScalingResult, *, path: str | os.PathLike[str] | None = None
) -> Figure:
    r"""Plot rescaled layer norms :math:`L^{\hat\beta} \|X_k\|` against :math:`k/L`.

    One panel per sequence, one line per depth (replica 0), each rescaled by
    its own fitted exponent, so that smooth scaling makes the curves collapse
    onto :math:`\|\bar X(t)\|`.
    """
    fig, axes = _subplots(1, 4, figsize=(15, 3.6), squeeze=False)
    colours = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(result.depths)))
    for axis, sequence in zip(axes[0], ("A", "b", "delta", "delta*A"), strict=True):
        fit = result.fit(sequence).pooled
        exponent = 0.0 if fit is None else fit.exponent
        for colour, depth in zip(colours, result.depths, strict=True):
            norms = np.asarray(result.profiles[sequence][depth][0])
            times = np.arange(depth) / depth
            axis.plot(times, norms * depth**exponent, color=colour, label=f"L={depth}")
        axis.set_xlabel("t = k/L")
        axis.set_title(
            rf"$L^{{{exponent:.2f}}}\,\|${_LABELS[sequence]}$\|$", fontsize=10
        )
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("weights against k/L, rescaled by the fitted exponent")
    fig.tight_layout()
    return _save(fig, path)


def paths_caption(result: ScalingResult) -> str:
    r"""Return the title of :func:`plot_paths`: the rescaling and what it hides.

    The paths are multiplied by :math:`L^{\hat\gamma - \gamma_0}`. When that
    exponent is not 0, the title states that the unscaled paths grow (or
    shrink) like :math:`L^{\gamma_0 - \hat\gamma}` and that the plot hides it.
    """
    gamma = result.beta_effective.exponent
    reference = {"smooth": 1.0, "diffusive": 0.5}.get(result.regime, gamma)
    shift = gamma - reference
    lines = [
        f"cumulative effective weights, rescaled by L^(gamma - {reference:.2f}) "
        f"= L^{shift:.3f}, gamma = {gamma:.3f}; verdict: {result.regime}"
    ]
    if round(shift, 3) != 0.0:
        trend = "grow" if shift < 0 else "shrink"
        lines.append(
            f"the rescaling hides that the unscaled paths {trend} like "
            f"L^{-shift:.3f} over L = {min(result.depths)}..{max(result.depths)}"
        )
    return "\n".join(lines)


def plot_paths(
    result: ScalingResult, *, path: str | os.PathLike[str] | None = None
) -> Figure:
    r"""Plot the cumulative paths of :math:`\delta_k A_k` for the three deepest depths.

    The path :math:`S_m = \sum_{k<m} \delta_k A_k` of replica 0 is drawn
    against :math:`t = m/L` and multiplied by :math:`L^{\hat\gamma - \gamma_0}`,
    where :math:`\hat\gamma` is the fitted exponent of :math:`\delta_k A_k` and
    :math:`\gamma_0` is 1 for a smooth verdict, 1/2 for a diffusive one and
    :math:`\hat\gamma` otherwise (no amplitude rescaling). A smooth regime
    shows one smooth curve per entry; a diffusive one shows Brownian-looking
    paths. The rescaling hides how the unscaled path changes with depth
    (like :math:`L^{\gamma_0 - \hat\gamma}`), and the title
    (:func:`paths_caption`) says so.
    """
    gamma = result.beta_effective.exponent
    reference = {"smooth": 1.0, "diffusive": 0.5}.get(result.regime, gamma)
    fig, axes = _subplots(
        1,
        len(result.path_entries),
        figsize=(5 * len(result.path_entries), 3.6),
        squeeze=False,
    )
    for depth, rows in result.paths.items():
        times = np.arange(depth + 1) / depth
        scale = depth ** (gamma - reference)
        for axis, row in zip(axes[0], rows, strict=True):
            axis.plot(times, np.asarray(row) * scale, label=f"L={depth}", linewidth=1)
    for axis, (i, j) in zip(axes[0], result.path_entries, strict=True):
        axis.set_xlabel("t = m/L")
        axis.set_title(rf"entry ({i}, {j}) of $\sum_{{k<m}} \delta_k A_k$", fontsize=10)
        axis.legend(fontsize=8)
    fig.suptitle(paths_caption(result))
    fig.tight_layout()
    return _save(fig, path)


def plot_delta(
    result: ScalingResult, *, path: str | os.PathLike[str] | None = None
) -> Figure:
    r"""Plot :math:`\delta` against depth: rms per replica with the fitted alpha.

    A dashed line shows :math:`1/L` for reference. For ``delta_mode="none"``
    the values are all 1.
    """
    fit = result.fit("delta")
    depths = np.asarray(result.depths, dtype=np.float64)
    fig, axis = _subplots(figsize=(5, 3.8))
    for row in np.asarray(fit.values):
        axis.scatter(depths, row, s=14, alpha=0.7)
    if fit.pooled is not None:
        grid = np.geomspace(depths.min(), depths.max(), 100)
        lower, upper = fit.pooled.band(grid)
        axis.plot(
            grid,
            fit.pooled.predict(grid),
            color="black",
            linewidth=1,
            label=f"alpha = {fit.pooled.exponent:.3f}",
        )
        axis.fill_between(grid, lower, upper, color="gray", alpha=0.3)
        reference = fit.pooled.predict(depths[:1])[0] * depths[0] / grid
        axis.plot(grid, reference, linestyle="--", color="tab:red", label="1/L")
        axis.legend(fontsize=8)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("depth L")
    axis.set_ylabel(rf"{result.statistic} of $\delta_k$")
    axis.set_title(f"delta against depth (delta mode {result.delta_mode})")
    fig.tight_layout()
    return _save(fig, path)


def plot_roughness(
    result: ScalingResult, *, path: str | os.PathLike[str] | None = None
) -> Figure:
    """Plot the roughness ratio against depth with the classification bands."""
    limits = result.thresholds
    fig, axis = _subplots(figsize=(5, 3.8))
    axis.axhspan(
        limits.smooth_min_ratio, 2.05, color="tab:green", alpha=0.15, label="smooth"
    )
    axis.axhspan(
        limits.rough_max_ratio,
        limits.diffusive_max_ratio,
        color="tab:blue",
        alpha=0.15,
        label="diffusive",
    )

    # Per-replica ratios as dots, the median as a line.
    for item in result.roughness:
        axis.scatter(
            [item.depth] * len(item.ratios), item.ratios, s=12, color="black", alpha=0.6
        )
    axis.plot(
        [item.depth for item in result.roughness],
        [item.ratio for item in result.roughness],
        color="black",
    )

    axis.set_xscale("log")
    axis.set_ylim(0, 2.1)
    axis.set_xlabel("depth L")
    axis.set_ylabel("coarse / fine quadratic variation")
    axis.set_title(r"roughness ratio of $\delta_k A_k$")
    axis.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_all(result: ScalingResult, folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Write every plot into ``folder`` and return ``{name: path}``."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    makers = {
        "fits": plot_fits,
        "profiles": plot_profiles,
        "paths": plot_paths,
        "delta": plot_delta,
        "roughness": plot_roughness,
    }
    written = {}
    for name, make in makers.items():
        file = target / PLOT_FILES[name]
        make(result, path=file)
        written[name] = file
    return written
