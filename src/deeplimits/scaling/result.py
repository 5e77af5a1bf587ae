r"""Result objects of :func:`~deeplimits.scaling.estimate_scaling`.

Everything is frozen; mappings are read-only views. :meth:`ScalingResult.to_dict`
gives plain JSON-ready data and :meth:`ScalingResult.summary` a readable text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .regimes import RegimeThresholds, RoughnessAtDepth, Verdict
from .regression import PowerLawFit

__all__ = ["SEQUENCES", "StatisticFit", "ScalingResult"]

SEQUENCES: tuple[str, ...] = ("A", "b", "delta", "delta*A", "delta*b")
r"""Per-layer sequences analysed: :math:`A_k`, :math:`b_k`, :math:`\delta_k`,
:math:`\delta_k A_k` and :math:`\delta_k b_k`."""


@dataclass(frozen=True)
class StatisticFit:
    """Values of one statistic of one sequence across depths, and their fits.

    Attributes:
        sequence: One of :data:`SEQUENCES`.
        statistic: A key of :data:`~deeplimits.scaling.statistics.STATISTICS`.
        depths: The depths, increasing.
        values: The statistic, shape ``(R, n_depths)`` as nested tuples.
        pooled: Fit over all replicas together, or ``None`` when unavailable.
        per_replica: One fit per replica (empty when unavailable).
        unavailable: Why there is no fit (for instance the increments of a
            shared delta are zero at every depth), else ``None``.
    """

    sequence: str
    statistic: str
    depths: tuple[int, ...]
    values: tuple[tuple[float, ...], ...]
    pooled: PowerLawFit | None
    per_replica: tuple[PowerLawFit, ...]
    unavailable: str | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "sequence": self.sequence,
            "statistic": self.statistic,
            "depths": list(self.depths),
            "values": [list(row) for row in self.values],
            "pooled": None if self.pooled is None else self.pooled.to_dict(),
            "per_replica": [fit.to_dict() for fit in self.per_replica],
            "unavailable": self.unavailable,
        }


def _optional(fit: PowerLawFit | None) -> dict[str, Any] | None:
    return None if fit is None else fit.to_dict()


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats by None, since JSON has no NaN or inf."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


@dataclass(frozen=True)
class ScalingResult:
    r"""Depth scaling of a sweep's trained weights, with its regime and limit.

    Attributes:
        depths: The depths :math:`L`, increasing.
        dim: The width :math:`d`.
        replicas: Replicas :math:`R` per depth.
        activation: Name of the activation.
        delta_mode: ``"none"``, ``"shared"`` or ``"per-layer"``.
        statistic: The statistic behind :attr:`alpha`, :attr:`beta`,
            :attr:`beta_b` and :attr:`beta_effective` (``"rms"`` by default).
        window: Moving-average window of the detrended cumulative sum.
        fits: Every (sequence, statistic) fit, keyed by that pair.
        alpha: Exponent of :math:`\delta_k` (:math:`\delta \sim L^{-\alpha}`).
        beta: Exponent of :math:`A_k` (:math:`A \sim L^{-\beta}`).
        beta_b: Exponent of :math:`b_k`, or ``None`` if :math:`b = 0`.
        beta_effective: Exponent :math:`\gamma` of :math:`\delta_k A_k`:
            :math:`\alpha + \beta` under Hypothesis 1, 1/2 under Hypothesis 2.
        effective_layers_growth: Fit of the effective layer count of
            :math:`\delta_k A_k` (its exponent is minus the growth rate).
        roughness: Roughness ratio of :math:`\delta_k A_k` at every depth.
        verdict: The regime, its evidence and the limit equation.
        thresholds: The bands and tolerances used for the verdict.
        profiles: ``profiles[sequence][depth]``: per-layer norms
            :math:`\|X_k\|`, ``(R, L)`` as nested tuples.
        paths: ``paths[depth]``: entries of the cumulative path
            :math:`S_m = \sum_{k<m} \delta_k A_k` of replica 0, ``m = 0..L``,
            for the three deepest depths; ``path_entries`` names the entries.
        path_entries: The ``(i, j)`` matrix entries kept in :attr:`paths`.
        deep_half: ``deep_half[name]`` for ``name`` in ``"alpha"``, ``"beta"``,
            ``"beta_b"``, ``"beta_effective"``: the same exponent fitted over
            the deepest ``max(3, ceil(n / 2))`` of the ``n`` depths, or ``None``
            (too few depths, or no full-range fit). A value outside the
            full-range interval points to curvature in the log-log plot.
        distinct_replicas: ``distinct_replicas[depth]``: replicas at that depth
            that are not near-copies of another
            (:data:`~deeplimits.scaling.estimate.REPLICA_COPY_TOLERANCE`).
        caveats: Sentences that qualify the exponents or the verdict: the
            verdict's own caveats (Hypothesis 1 holding only approximately),
            near-copy replicas, a deeper-half fit that disagrees with the
            full-range fit, a cumulative path that grows with depth. Empty when
            no check fired.
    """

    depths: tuple[int, ...]
    dim: int
    replicas: int
    activation: str
    delta_mode: str
    statistic: str
    window: int
    fits: Mapping[tuple[str, str], StatisticFit]
    alpha: PowerLawFit | None
    beta: PowerLawFit | None
    beta_b: PowerLawFit | None
    beta_effective: PowerLawFit
    effective_layers_growth: PowerLawFit | None
    roughness: tuple[RoughnessAtDepth, ...]
    verdict: Verdict
    thresholds: RegimeThresholds
    profiles: Mapping[str, Mapping[int, tuple[tuple[float, ...], ...]]]
    paths: Mapping[int, tuple[tuple[float, ...], ...]]
    path_entries: tuple[tuple[int, int], ...]
    deep_half: Mapping[str, PowerLawFit | None] = field(
        default_factory=lambda: MappingProxyType({})
    )
    distinct_replicas: Mapping[int, int] = field(
        default_factory=lambda: MappingProxyType({})
    )
    caveats: tuple[str, ...] = ()

    @property
    def regime(self) -> str:
        """The verdict's regime: ``"smooth"``, ``"diffusive"`` or ``"neither"``."""
        return self.verdict.regime

    def fit(self, sequence: str, statistic: str | None = None) -> StatisticFit:
        """Return the fit of ``statistic`` (default :attr:`statistic`) of ``sequence``.

        Raises:
            KeyError: for an unknown sequence or statistic, listing the valid ones.
        """
        key = (sequence, statistic or self.statistic)
        if key not in self.fits:
            sequences = sorted({name for name, _ in self.fits})
            statistics = sorted({name for _, name in self.fits})
            raise KeyError(
                f"no fit for sequence {key[0]!r} and statistic {key[1]!r}; "
                f"sequences are {sequences} and statistics {statistics}."
            )
        return self.fits[key]

    def to_dict(self) -> dict[str, Any]:
        """Return the whole result as JSON-ready data (NaN and inf become None)."""
        data = {
            "depths": list(self.depths),
            "dim": self.dim,
            "replicas": self.replicas,
            "activation": self.activation,
            "delta_mode": self.delta_mode,
            "statistic": self.statistic,
            "window": self.window,
            "exponents": {
                "alpha": _optional(self.alpha),
                "beta": _optional(self.beta),
                "beta_b": _optional(self.beta_b),
                "beta_effective": self.beta_effective.to_dict(),
            },
            "deep_half_exponents": {
                name: _optional(fit) for name, fit in self.deep_half.items()
            },
            "distinct_replicas": {
                str(depth): count for depth, count in self.distinct_replicas.items()
            },
            "caveats": list(self.caveats),
            "verdict": self.verdict.to_dict(),
            "roughness": [item.to_dict() for item in self.roughness],
            "effective_layers_growth": _optional(self.effective_layers_growth),
            "thresholds": self.thresholds.to_dict(),
            "fits": [fit.to_dict() for fit in self.fits.values()],
            "profiles": {
                sequence: {
                    str(depth): [list(row) for row in rows]
                    for depth, rows in by_depth.items()
                }
                for sequence, by_depth in self.profiles.items()
            },
            "paths": {
                str(depth): [list(row) for row in rows]
                for depth, rows in self.paths.items()
            },
            "path_entries": [list(entry) for entry in self.path_entries],
        }
        return _json_safe(data)

    def to_json(self, *, indent: int | None = 2) -> str:
        """Return :meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def exponent_table(self) -> list[list[str]]:
        """Return the exponent of every statistic per sequence as text rows.

        The first row is the header; each later row is a sequence followed by
        one exponent per statistic (``"-"`` where unavailable).
        """
        statistics = list(dict.fromkeys(name for _, name in self.fits))
        sequences = list(dict.fromkeys(name for name, _ in self.fits))
        rows = [["sequence", *statistics]]
        for sequence in sequences:
            row = [sequence]
            for statistic in statistics:
                pooled = self.fits[(sequence, statistic)].pooled
                row.append("-" if pooled is None else f"{pooled.exponent:.3f}")
            rows.append(row)
        return rows

    def summary(self) -> str:
        """Return a readable multi-line summary of the result."""
        depth_text = ", ".join(str(depth) for depth in self.depths)
        lines = [
            f"Scaling of trained weights: activation {self.activation}, delta "
            f"{self.delta_mode}, d = {self.dim}, {self.replicas} replica(s), "
            f"depths {depth_text}.",
            f"Exponents from the {self.statistic} statistic (statistic ~ "
            "L^-exponent; ± standard error, 95% interval):",
        ]
        named = [
            ("alpha   (delta_k)", self.alpha),
            ("beta    (A_k)", self.beta),
            ("beta_b  (b_k)", self.beta_b),
            ("gamma   (delta_k A_k)", self.beta_effective),
        ]
        for label, fit in named:
            lines.append(f"  {label:22s} {'unavailable' if fit is None else fit}")
        deeper = [
            (label, self.deep_half.get(name))
            for (label, _), name in zip(
                named, ("alpha", "beta", "beta_b", "beta_effective"), strict=True
            )
        ]
        if any(fit is not None for _, fit in deeper):
            lines.append("The same exponents over the deeper half of the depths:")
            for label, fit in deeper:
                text = "unavailable" if fit is None else str(fit)
                lines.append(f"  {label:22s} {text}")
        if self.replicas > 1 and self.distinct_replicas:
            counts = ", ".join(
                f"L = {depth}: {count}"
                for depth, count in self.distinct_replicas.items()
            )
            lines.append(f"Distinct replicas per depth (of {self.replicas}): {counts}")

        lines.append("Roughness ratio of delta_k A_k (2 = smooth, 1 = Brownian):")
        for item in self.roughness:
            lines.append(
                f"  L = {item.depth:5d}: {item.ratio:.3f} ({item.band}), "
                f"effective layers {item.effective_layers:.1f}"
            )

        lines.append("Exponents of every statistic (pooled over replicas):")
        table = self.exponent_table()
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            cells = [cell.rjust(width) for cell, width in zip(row, widths, strict=True)]
            lines.append("  " + "  ".join(cells))

        limit = self.verdict.limit
        lines.append(f"Verdict: {self.verdict.label}.")
        lines.append(
            f"Limit: {limit.kind}" + (f": {limit.equation}" if limit.equation else "")
        )
        lines.append(f"  because {limit.reason}")
        lines.append("Evidence:")
        lines.extend(f"  - {sentence}" for sentence in self.verdict.evidence)
        others = [text for text in self.caveats if text not in self.verdict.caveats]
        if others:
            lines.append("Caveats:")
            lines.extend(f"  - {sentence}." for sentence in others)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
