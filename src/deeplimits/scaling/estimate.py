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

import os
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

__all__ = ["estimate_scaling"]

# A statistic below this fraction of the sequence's own scale is rounding
# error: the exact value is 0 (for instance the detrended sum of a constant).
_RELATIVE_ZERO = 1e-12
_SQUARED_STATISTICS = ("quadratic_variation",)


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
    """Require at least 3 depths sharing width, replicas, activation and mode."""
    depths = sorted(networks)
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

    Returns:
        A :class:`~deeplimits.scaling.result.ScalingResult`.

    Raises:
        TypeError: for a source of another kind.
        ValueError: for fewer than 3 depths, or mixed widths, replica counts,
            activations or delta modes. Also for a NaN or infinite weight (the
            message names the depth and the tensor), and for a statistic that
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
    )
