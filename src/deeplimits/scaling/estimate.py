r"""Estimate how trained weights scale with depth and decide the regime.

Entry point :func:`estimate_scaling`: from networks trained at several depths,
compute every statistic of :mod:`~deeplimits.scaling.statistics` for the
sequences :math:`A_k`, :math:`b_k`, :math:`\delta_k`, :math:`\delta_k A_k`,
:math:`\delta_k b_k`, fit power laws in :math:`L`
(:mod:`~deeplimits.scaling.regression`), measure the roughness of
:math:`\delta_k A_k` at each depth and decide the regime and its limit
(:mod:`~deeplimits.scaling.regimes`).

Reference: A.-S. Cohen, R. Cont, A. Rossier, R. Xu, "Scaling Properties of
Deep Residual Networks", ICML 2021.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from .._checks import check_choice, check_int, describe
from ..activations import Activation
from ..network import ResNet
from .regimes import (
    RegimeThresholds,
    RoughnessAtDepth,
    classify_roughness,
    decide_regime,
    hurst_from_ratio,
)
from .regression import MIN_DEPTHS, PowerLawFit, fit_power_law
from .result import SEQUENCES, ScalingResult, StatisticFit
from .statistics import (
    DEFAULT_WINDOW,
    STATISTICS,
    cumulative_sum,
    effective_layer_count,
    max_detrended_cumulative_sum,
    root_ssq,
    roughness_ratio,
)

__all__ = ["estimate_scaling", "MIN_LAYERS", "REPLICA_COPY_TOLERANCE"]

MIN_LAYERS = 2
"""Fewest layers a network may have. The increment statistics and the
roughness ratio compare consecutive layers, so a depth-1 network has none."""

REPLICA_COPY_TOLERANCE = 1e-6
r"""Relative distance below which two replicas of one depth count as copies.

Replicas :math:`r, s` with weights :math:`\theta = (A, b, \delta)` are copies
when :math:`\|\theta_r - \theta_s\| \le 10^{-6} \max(\|\theta_r\|,
\|\theta_s\|)`. The pooled fits treat replicas as independent points, so copies
make their intervals too narrow by up to a factor :math:`\sqrt{R}`."""

_HEADLINES: tuple[tuple[str, str, str], ...] = (
    ("alpha", "delta", "delta_k"),
    ("beta", "A", "A_k"),
    ("beta_b", "b", "b_k"),
    ("beta_effective", "delta*A", "delta_k A_k"),
)

# A statistic below this fraction of the sequence's own scale is rounding
# error: the exact value is 0 (for instance the detrended sum of a constant).
_RELATIVE_ZERO = 1e-12
_SQUARED_STATISTICS = ("quadratic_variation",)
# Exponents closer than this differ by rounding error (an exact power law has
# zero-width intervals).
_ROUNDING_EXPONENT = 1e-9


@dataclass(frozen=True)
class _DepthWeights:
    """float64 weights of the networks of one depth, with a replicas axis."""

    depth: int
    A: Tensor  # (R, L, d, d)
    b: Tensor  # (R, L, d)
    delta: Tensor  # (R, L)
    activation: Activation
    delta_mode: str

    def sequence(self, name: str) -> Tensor:
        if name == "A":
            return self.A
        if name == "b":
            return self.b
        if name == "delta":
            return self.delta
        if name == "delta*A":
            return self.delta[..., None, None] * self.A
        return self.delta[..., None] * self.b


def _networks_from_source(source: Any) -> dict[int, ResNet]:
    """Return ``{depth: ResNet}`` from any accepted source."""
    if isinstance(source, (str, os.PathLike)):
        from ..sweep import load_sweep

        source = load_sweep(source, load_data=False)
    if not isinstance(source, Mapping) and hasattr(source, "networks"):
        source = source.networks
    if isinstance(source, Mapping):
        networks: dict[int, ResNet] = {}
        for depth, net in source.items():
            _check_network(net, f"source[{depth!r}]")
            if int(depth) != net.depth:
                raise ValueError(
                    f"source[{depth!r}] is a network of depth {net.depth}, not "
                    f"{depth}. Key each network by its own depth."
                )
            networks[int(depth)] = net
        return networks
    if isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        networks = {}
        for index, net in enumerate(source):
            _check_network(net, f"source[{index}]")
            if net.depth in networks:
                raise ValueError(
                    f"source contains two networks of depth {net.depth} (the second "
                    f"at index {index}). Pass one network per depth, with "
                    "replicas=R for several networks of the same depth."
                )
            networks[net.depth] = net
        return networks
    raise TypeError(
        "source must be a SweepResult, a run folder path, a mapping {depth: "
        f"ResNet}} or a list of ResNets, got {describe(source)}."
    )


def _check_network(net: Any, name: str) -> None:
    if not isinstance(net, ResNet):
        raise TypeError(f"{name} must be a deeplimits.ResNet, got {describe(net)}.")


def _weights_of(net: ResNet) -> _DepthWeights:
    """Extract float64 weights with a replicas axis, rejecting NaN and inf."""
    with torch.no_grad():
        tensors = {
            "A": net.A.detach(),
            "b": net.b.detach(),
            "delta": net.effective_delta().detach(),
        }
    for name, tensor in tensors.items():
        bad = int((~torch.isfinite(tensor)).sum())
        if bad:
            raise ValueError(
                f"the network at depth {net.depth} has {bad} NaN or infinite "
                f"entries in {name} (shape {tuple(tensor.shape)}); its training "
                "probably diverged. Retrain that depth with a smaller learning "
                "rate, or leave it out."
            )
    prepared = {
        name: tensor.to(device="cpu", dtype=torch.float64)
        for name, tensor in tensors.items()
    }
    if not net.has_replicas:
        prepared = {name: tensor.unsqueeze(0) for name, tensor in prepared.items()}
    return _DepthWeights(
        net.depth,
        prepared["A"],
        prepared["b"],
        prepared["delta"],
        net.activation,
        net.delta_mode,
    )


def _check_consistent(networks: Mapping[int, ResNet]) -> None:
    """Require 3 or more depths of 2 or more layers, sharing width, replicas,
    activation and delta mode."""
    depths = sorted(networks)
    shallow = [depth for depth in depths if depth < MIN_LAYERS]
    if shallow:
        raise ValueError(
            f"every network must have at least {MIN_LAYERS} layers, because the "
            "increment statistics and the roughness ratio compare consecutive "
            f"layers, got depth {shallow[0]} in depths {depths}. Leave depth "
            f"{shallow[0]} out of the sweep."
        )
    if len(depths) < MIN_DEPTHS:
        raise ValueError(
            f"estimate_scaling needs networks at {MIN_DEPTHS} or more depths to "
            f"fit exponents with an interval, got depths {depths}. Train the "
            "sweep at more depths."
        )
    for attribute, label in (
        ("dim", "widths"),
        ("replicas", "replica counts"),
        ("delta_mode", "delta modes"),
    ):
        found = {depth: getattr(networks[depth], attribute) for depth in depths}
        if len(set(found.values())) > 1:
            listed = ", ".join(f"L={depth}: {value}" for depth, value in found.items())
            raise ValueError(
                f"all networks must have the same {attribute}, got mixed "
                f"{label} across depths ({listed}). Analyse each configuration "
                "as its own sweep."
            )
    names = {depth: networks[depth].activation.name for depth in depths}
    if len(set(names.values())) > 1:
        listed = ", ".join(f"L={depth}: {name}" for depth, name in names.items())
        raise ValueError(
            "all networks must use the same activation, got mixed activations "
            f"across depths ({listed})."
        )


def _statistic_values(
    weights: Sequence[_DepthWeights], sequence: str, statistic: str, window: int
) -> Tensor:
    """Return the statistic ``(R, n_depths)``, with rounding-level values set to 0."""
    columns = []
    for item in weights:
        x = item.sequence(sequence)
        if statistic == "detrended_cumulative_sum":
            value = max_detrended_cumulative_sum(x, replicas=True, window=window)
        else:
            value = STATISTICS[statistic](x, replicas=True)
        scale = _RELATIVE_ZERO * root_ssq(x, replicas=True) * item.depth**0.5
        if statistic in _SQUARED_STATISTICS:
            scale = scale**2
        columns.append(torch.where(value <= scale, torch.zeros_like(value), value))
    return torch.stack(columns, dim=1)


def _fit_statistic(
    depths: list[int],
    values: Tensor,
    sequence: str,
    statistic: str,
    confidence: float,
) -> StatisticFit:
    rows = tuple(tuple(float(v) for v in row) for row in values)
    if bool((values == 0).all()):
        return StatisticFit(
            sequence,
            statistic,
            tuple(depths),
            rows,
            None,
            (),
            f"{statistic} of {sequence} is zero at every depth "
            "(for increment statistics: the sequence is constant over layers).",
        )
    name = f"{statistic} of {sequence}"
    pooled = fit_power_law(depths, values.numpy(), confidence=confidence, name=name)
    per_replica = tuple(
        fit_power_law(depths, row.numpy(), confidence=confidence, name=name)
        for row in values
    )
    return StatisticFit(
        sequence, statistic, tuple(depths), rows, pooled, per_replica, None
    )


def _roughness(
    weights: Sequence[_DepthWeights], thresholds: RegimeThresholds
) -> tuple[tuple[RoughnessAtDepth, ...], Tensor]:
    """Roughness per depth and the effective layer counts ``(R, n_depths)``."""
    items = []
    counts = []
    for item in weights:
        effective = item.sequence("delta*A")
        ratios = roughness_ratio(effective, replicas=True)
        count = effective_layer_count(effective, replicas=True)
        counts.append(count)
        squares = effective.reshape(*effective.shape[:2], -1).pow(2).sum(dim=-1)
        share = squares.amax(dim=1) / squares.sum(dim=1)
        ratio = float(ratios.median())
        items.append(
            RoughnessAtDepth(
                depth=item.depth,
                ratios=tuple(float(value) for value in ratios),
                ratio=ratio,
                hurst=hurst_from_ratio(ratio),
                band=classify_roughness(ratio, thresholds),
                effective_layers=float(count.median()),
                largest_layer_share=float(share.median()),
            )
        )
    return tuple(items), torch.stack(counts, dim=1)


def _profiles_and_paths(
    weights: Sequence[_DepthWeights],
) -> tuple[dict[str, Any], dict[int, Any], tuple[tuple[int, int], ...]]:
    """Per-layer norms of every sequence, and a few entries of the deep paths."""
    profiles: dict[str, Any] = {}
    for sequence in SEQUENCES:
        by_depth = {}
        for item in weights:
            x = item.sequence(sequence)
            norms = x.reshape(x.shape[0], x.shape[1], -1).norm(dim=-1)
            by_depth[item.depth] = tuple(tuple(map(float, row)) for row in norms)
        profiles[sequence] = MappingProxyType(by_depth)

    dim = weights[0].A.shape[-1]
    entries = ((0, 0), (0, 1), (1, 0)) if dim > 1 else ((0, 0),)
    paths = {}
    for item in weights[-3:]:
        path = cumulative_sum(item.sequence("delta*A")[0])
        paths[item.depth] = tuple(tuple(map(float, path[:, i, j])) for i, j in entries)
    return profiles, paths, entries


def _distinct_replicas(item: _DepthWeights) -> int:
    """Count the replicas of one depth that are not copies of an earlier one.

    Two replicas are copies when their relative distance is at most
    :data:`REPLICA_COPY_TOLERANCE` (greedy grouping in replica order).
    """
    flat = torch.cat(
        [
            item.A.reshape(item.A.shape[0], -1),
            item.b.reshape(item.b.shape[0], -1),
            item.delta.reshape(item.delta.shape[0], -1),
        ],
        dim=1,
    )
    norms = flat.norm(dim=1)
    representatives: list[int] = []
    for replica in range(flat.shape[0]):
        copy = False
        for other in representatives:
            distance = float((flat[replica] - flat[other]).norm())
            scale = float(torch.maximum(norms[replica], norms[other]))
            if distance <= REPLICA_COPY_TOLERANCE * scale:
                copy = True
                break
        if not copy:
            representatives.append(replica)
    return len(representatives)


def _replica_caveat(distinct: Mapping[int, int], replicas: int) -> str | None:
    """Describe the depths whose replicas are near-copies, or return None."""
    copied = {depth: count for depth, count in distinct.items() if count < replicas}
    if not copied:
        return None
    listed = ", ".join(
        f"L = {depth}: {count} of {replicas}" for depth, count in copied.items()
    )
    return (
        "some replicas are near-copies of each other (relative distance at most "
        f"{REPLICA_COPY_TOLERANCE:g}); distinct replicas per depth: {listed}. "
        "The pooled fits count every copy as an independent point, so their "
        "intervals are too narrow. Retrain with independently seeded replicas, "
        "or read the per-replica fits"
    )


def _deep_half_fits(
    depths: list[int],
    fits: Mapping[tuple[str, str], StatisticFit],
    statistic: str,
    confidence: float,
) -> dict[str, PowerLawFit | None]:
    """Refit the headline exponents over the deeper half of the depths.

    The deeper half is the deepest ``max(3, ceil(n / 2))`` of the ``n`` depths.
    Every fit is None when that is all the depths (``n = 3``).
    """
    count = max(MIN_DEPTHS, math.ceil(len(depths) / 2))
    result: dict[str, PowerLawFit | None] = {}
    for name, sequence, label in _HEADLINES:
        full = fits[(sequence, statistic)]
        if count >= len(depths) or full.pooled is None:
            result[name] = None
            continue
        values = torch.tensor(full.values, dtype=torch.float64)[:, -count:]
        result[name] = fit_power_law(
            depths[-count:],
            values.numpy(),
            confidence=confidence,
            name=f"{statistic} of {label} over the deeper half",
        )
    return result


def _curvature_caveats(
    full: Mapping[str, PowerLawFit | None], deep: Mapping[str, PowerLawFit | None]
) -> list[str]:
    """Name each headline exponent whose deeper-half fit disagrees with the full fit.

    They disagree when each estimate lies outside the other's interval: the
    log-log plot bends over the depth range, so the power law does not hold
    there and the full-range interval, conditional on it, is too narrow.
    """
    caveats = []
    for name, _, label in _HEADLINES:
        whole, deeper = full[name], deep[name]
        if whole is None or deeper is None:
            continue
        if whole.contains(deeper.exponent) or deeper.contains(whole.exponent):
            continue
        if abs(whole.exponent - deeper.exponent) <= _ROUNDING_EXPONENT:
            continue
        caveats.append(
            f"{name} ({label}): the fit over the deeper half, L = "
            f"{deeper.min_depth}..{deeper.max_depth}, gives {deeper.exponent:.3f} "
            f"[{deeper.ci_low:.3f}, {deeper.ci_high:.3f}], which disagrees with "
            f"{whole.exponent:.3f} [{whole.ci_low:.3f}, {whole.ci_high:.3f}] over "
            f"L = {whole.min_depth}..{whole.max_depth}. The log-log plot bends "
            "(the shallow depths are not yet in the power-law range), so the "
            "full-range interval is too narrow; prefer the deeper-half value or "
            "add deeper networks"
        )
    return caveats


def _cumulative_sum_caveat(
    fits: Mapping[tuple[str, str], StatisticFit], regime: str
) -> str | None:
    r"""Flag a cumulative path :math:`\sum_{k<m} \delta_k A_k` that grows with L.

    Both hypotheses make the cumulative path converge, so its maximum norm
    should have exponent 0; a negative exponent whose interval excludes 0
    means the path grows with depth.
    """
    fit = fits[("delta*A", "cumulative_sum")].pooled
    if regime not in ("smooth", "diffusive") or fit is None or fit.ci_high >= 0.0:
        return None
    return (
        f"the cumulative sum max_m ||sum_(k<m) delta_k A_k|| has exponent "
        f"{fit.exponent:.3f} [{fit.ci_low:.3f}, {fit.ci_high:.3f}], so it grows "
        f"like L^{-fit.exponent:.3f} over L = {fit.min_depth}..{fit.max_depth} "
        "instead of converging"
    )


def estimate_scaling(
    source: Any,
    *,
    statistic: str = "rms",
    window: int = DEFAULT_WINDOW,
    confidence: float = 0.95,
    thresholds: RegimeThresholds | None = None,
) -> ScalingResult:
    r"""Measure how trained weights scale with depth and name the deep limit.

    For each sequence :math:`X \in \{A, b, \delta, \delta A, \delta b\}` and
    each statistic :math:`s` of :data:`~deeplimits.scaling.statistics.STATISTICS`,
    fit :math:`s(X^{(L)}) \approx C L^{-\beta}` over the depths, pooled over
    replicas and per replica. From the statistic ``statistic`` (rms by
    default) come :math:`\alpha` (:math:`\delta_k \sim L^{-\alpha}`),
    :math:`\beta` (:math:`A_k \sim L^{-\beta}`), :math:`\beta_b` and
    :math:`\gamma` (:math:`\delta_k A_k \sim L^{-\gamma}`; :math:`\alpha + \beta`
    under Hypothesis 1, 1/2 under Hypothesis 2). At every depth the roughness
    ratio of :math:`\delta_k A_k` (coarse over fine quadratic variation of its
    cumulative path, about 2 when smooth and 1 when Brownian) classifies each
    network on its own. :func:`~deeplimits.scaling.regimes.decide_regime`
    turns these into the verdict and the limit equation.

    Args:
        source: A :class:`~deeplimits.sweep.SweepResult`, a run folder written
            by :func:`~deeplimits.depth_sweep` (read with
            :func:`~deeplimits.sweep.load_sweep`), a mapping ``{depth: ResNet}``
            or a list of :class:`~deeplimits.ResNet`. At least 3 depths, all with
            the same width, replica count, activation and delta mode.
        statistic: Statistic behind the headline exponents (a key of
            ``STATISTICS``).
        window: Odd number of layers in the moving average of the detrended
            cumulative sum.
        confidence: Level of the exponent intervals.
        thresholds: Bands and tolerances of the verdict
            (:class:`~deeplimits.scaling.regimes.RegimeThresholds`).

    The intervals assume that the power law holds over the whole depth
    range and that replicas are independent. Two checks guard them: the
    headline exponents are refitted over the deeper half of the depths, and a
    disagreement beyond both intervals adds a caveat, because curvature from
    the shallow depths biases the full-range estimate. Replicas that are
    near-copies (:data:`REPLICA_COPY_TOLERANCE`) raise a warning and add a caveat.

    Returns:
        A :class:`~deeplimits.scaling.result.ScalingResult`.

    Warns:
        UserWarning: when the replicas at some depth are near-copies of each
            other; ``distinct_replicas`` of the result gives the counts.

    Raises:
        TypeError: for a source of another kind.
        ValueError: for fewer than 3 depths, a network of fewer than 2
            layers, or mixed widths, replica counts, activations or delta
            modes. Also for a NaN or infinite weight (the message names the
            depth and the tensor), and for a statistic that
            is zero at some depths but not all, because its log is undefined
            (the message names the depth). Also when the effective weights
            :math:`\delta_k A_k` are zero at every depth.

    Example:
        >>> import torch
        >>> from deeplimits import ResNet
        >>> nets = {}
        >>> for L in (16, 32, 64):
        ...     t = torch.arange(L, dtype=torch.float64) / L
        ...     A = torch.cos(t)[:, None, None] * torch.eye(2, dtype=torch.float64)
        ...     nets[L] = ResNet.from_weights(A, 0.1 * A[:, 0], torch.tensor(1.0 / L,
        ...                                   dtype=torch.float64))
        >>> result = estimate_scaling(nets)
        >>> result.regime, result.verdict.limit.kind, abs(result.beta.exponent) < 0.02
        ('smooth', 'neural-ode', True)
    """
    check_choice("statistic", statistic, STATISTICS)
    check_int("window", window, minimum=3)
    limits = thresholds or RegimeThresholds()
    if not isinstance(limits, RegimeThresholds):
        raise TypeError(
            f"thresholds must be a RegimeThresholds, got {describe(thresholds)}."
        )
    networks = _networks_from_source(source)
    _check_consistent(networks)
    depths = sorted(networks)
    weights = [_weights_of(networks[depth]) for depth in depths]
    first = networks[depths[0]]

    # Every statistic of every sequence, fitted in log-log.
    fits: dict[tuple[str, str], StatisticFit] = {}
    for sequence in SEQUENCES:
        for name in STATISTICS:
            values = _statistic_values(weights, sequence, name, window)
            fits[(sequence, name)] = _fit_statistic(
                depths, values, sequence, name, confidence
            )
    effective = fits[("delta*A", statistic)]
    if effective.pooled is None:
        raise ValueError(
            "the effective weights delta_k A_k are zero at every depth, so the "
            "residual branches act only through b and no scaling of A can be "
            "measured. Check that the networks were trained."
        )

    # Single-network roughness and sparsity.
    roughness, counts = _roughness(weights, limits)
    growth: PowerLawFit | None = fit_power_law(
        depths, counts.numpy(), confidence=confidence, name="effective layer count"
    )
    verdict = decide_regime(
        roughness,
        activation=first.activation,
        alpha=fits[("delta", statistic)].pooled,
        beta=fits[("A", statistic)].pooled,
        beta_effective=effective.pooled,
        effective_layers_growth=growth,
        thresholds=limits,
    )
    profiles, paths, entries = _profiles_and_paths(weights)

    # Checks of the assumptions behind the intervals and the verdict.
    distinct = {item.depth: _distinct_replicas(item) for item in weights}
    headline = {
        name: fits[(sequence, statistic)].pooled for name, sequence, _ in _HEADLINES
    }
    deep = _deep_half_fits(depths, fits, statistic, confidence)
    caveats = list(verdict.caveats)
    copies = _replica_caveat(distinct, first.replicas)
    if copies is not None:
        warnings.warn(copies + ".", UserWarning, stacklevel=2)
        caveats.append(copies)
    caveats += _curvature_caveats(headline, deep)
    growing_path = _cumulative_sum_caveat(fits, verdict.regime)
    if growing_path is not None:
        caveats.append(growing_path)

    return ScalingResult(
        depths=tuple(depths),
        dim=first.dim,
        replicas=first.replicas,
        activation=first.activation.name,
        delta_mode=first.delta_mode,
        statistic=statistic,
        window=window,
        fits=MappingProxyType(fits),
        alpha=fits[("delta", statistic)].pooled,
        beta=fits[("A", statistic)].pooled,
        beta_b=fits[("b", statistic)].pooled,
        beta_effective=effective.pooled,
        effective_layers_growth=growth,
        roughness=roughness,
        verdict=verdict,
        thresholds=limits,
        profiles=MappingProxyType(profiles),
        paths=MappingProxyType(paths),
        path_entries=entries,
        deep_half=MappingProxyType(deep),
        distinct_replicas=MappingProxyType(distinct),
        caveats=tuple(caveats),
    )
