r"""Scaling regimes of trained weights and the deep limit each one implies.

Write :math:`X_k = \delta_k A_k` for the effective weights of layer :math:`k`
and :math:`S_m = \sum_{k<m} X_k` for their cumulative path.

* **Smooth** (Hypothesis 1): :math:`L^\beta A_k \to \bar A(k/L)` uniformly and
  :math:`\delta_k \sim L^{-\alpha}` with :math:`\alpha + \beta = 1`, so
  :math:`X_k = O(1/L)`, consecutive layers nearly agree and the roughness ratio
  is close to 2.
* **Diffusive** (Hypothesis 2): :math:`S` converges to a continuous path with
  non-zero quadratic variation, so :math:`X_k = O(L^{-1/2})`, the rms of
  :math:`X` has exponent 1/2 and the roughness ratio is close to 1.
* **Neither**: a sparse pattern where a few layers carry all the weight, a
  roughness ratio between the two bands, or rough weights whose size does not
  scale like :math:`L^{-1/2}`.

The limit equations, for :math:`H` of shape ``(batch, d)`` on :math:`t \in [0,1]`:

* :math:`\beta = 0`: neural ODE
  :math:`\dot H = \bar\delta(t)\, \sigma(\bar A(t) H + \bar b(t))`.
* :math:`0 < \beta \le 1`, :math:`\sigma \in C^2` near 0 and :math:`\sigma(0) = 0`:
  linear ODE :math:`\dot H = \sigma'(0)\, \bar\delta(t) (\bar A(t) H + \bar b(t))`.
* ReLU (positively homogeneous) under smooth scaling, any :math:`\beta`:
  :math:`\dot H = \operatorname{relu}(\bar A^{\text{eff}}(t) H +
  \bar b^{\text{eff}}(t))` with :math:`\bar A^{\text{eff}} = \lim L\, \delta_k A_k`
  (for :math:`\delta_k > 0`).
* Diffusive, :math:`\sigma \in C^2` with :math:`\sigma(0) = 0`: the Itô
  (left-point) linear-quadratic SDE

  .. math::

      dH^i = \sigma'(0)\Big(\sum_j H^j\, dV^{A,ij} + dV^{b,i}\Big)
             + \tfrac{1}{2}\sigma''(0)\, dQ^i(H),

  with :math:`V^A_t = \lim \sum_{k<Lt} \delta_k A_k`, :math:`V^b` likewise and
  :math:`Q^i(H)_t = \lim \sum_{k<Lt} \delta_k (A_k H + b_k)_i^2`.
* No limit: :math:`\sigma(0) \ne 0` with :math:`\beta > 0` (the drift
  :math:`\sum_k \delta_k \sigma(0)` grows like :math:`L^{\beta}`), ReLU under
  diffusive scaling (not :math:`C^2` at 0), any other activation that is
  neither :math:`C^2` nor homogeneous when :math:`\beta > 0`, and the
  "neither" regime.

Reference: A.-S. Cohen, R. Cont, A. Rossier, R. Xu, "Scaling Properties of
Deep Residual Networks", ICML 2021 (Hypotheses 1 and 2 and the limit theorems).
"""

from __future__ import annotations

import math
import statistics as pystats
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .._checks import check_int, check_positive_float
from ..activations import Activation
from .regression import PowerLawFit

__all__ = [
    "RegimeThresholds",
    "RoughnessAtDepth",
    "LimitEquation",
    "Verdict",
    "ROUGHNESS_BANDS",
    "classify_roughness",
    "hurst_from_ratio",
    "limit_equation",
    "decide_regime",
]

ROUGHNESS_BANDS: tuple[str, ...] = ("smooth", "intermediate", "diffusive", "rough")
"""Bands of the roughness ratio, from 2 (smooth) down to 0 (anti-correlated)."""


@dataclass(frozen=True)
class RegimeThresholds:
    r"""Bands and tolerances that turn measurements into a regime.

    Attributes:
        smooth_min_ratio: Roughness ratio at or above which a network is smooth
            (:math:`\rho \ge 1.6`, Hurst estimate :math:`H \ge 0.84`).
        diffusive_max_ratio: Ratio at or below which it is diffusive
            (:math:`\rho \le 1.25`, :math:`H \le 0.66`).
        rough_max_ratio: Ratio below which increments are anti-correlated
            (:math:`\rho < 0.8`, :math:`H < 0.34`), rougher than Brownian.
        roughness_min_depth: Smallest depth whose ratio enters the verdict.
            Shallower depths are classified but not used. When no depth reaches
            it, the deepest depth decides.
        beta_zero_tolerance: :math:`\beta` counts as 0 (neural ODE) when its
            interval contains 0 or :math:`|\hat\beta|` is below this.
        hypothesis_1_tolerance: Largest :math:`|\alpha + \beta - 1|` (measured as
            the exponent of :math:`\delta_k A_k`) consistent with Hypothesis 1
            when the interval does not contain 1.
        diffusive_exponent_tolerance: Largest distance of the exponent of
            :math:`\delta_k A_k` from 1/2 consistent with Hypothesis 2 when its
            interval does not contain 1/2.
        sparse_fraction: A network is sparse when fewer than this fraction of
            its layers carry the weight (effective layer count over :math:`L`)
            at the deepest depth ...
        sparse_max_growth: ... and the effective layer count grows more slowly
            than :math:`L^{0.5}` across depths.
    """

    smooth_min_ratio: float = 1.6
    diffusive_max_ratio: float = 1.25
    rough_max_ratio: float = 0.8
    roughness_min_depth: int = 64
    beta_zero_tolerance: float = 0.05
    hypothesis_1_tolerance: float = 0.2
    diffusive_exponent_tolerance: float = 0.15
    sparse_fraction: float = 0.1
    sparse_max_growth: float = 0.5

    def __post_init__(self) -> None:
        for name in (
            "smooth_min_ratio",
            "diffusive_max_ratio",
            "rough_max_ratio",
            "beta_zero_tolerance",
            "hypothesis_1_tolerance",
            "diffusive_exponent_tolerance",
            "sparse_fraction",
            "sparse_max_growth",
        ):
            check_positive_float(name, getattr(self, name))
        check_int("roughness_min_depth", self.roughness_min_depth, minimum=2)
        ordered = (
            self.rough_max_ratio < self.diffusive_max_ratio < self.smooth_min_ratio
        )
        if not ordered or self.smooth_min_ratio > 2.0:
            raise ValueError(
                "roughness bands must satisfy rough_max_ratio < diffusive_max_ratio "
                "< smooth_min_ratio <= 2, got "
                f"{self.rough_max_ratio}, {self.diffusive_max_ratio}, "
                f"{self.smooth_min_ratio}."
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return asdict(self)


def hurst_from_ratio(ratio: float) -> float:
    r"""Return the Hurst estimate :math:`H = (1 + \log_2 \rho)/2` of a ratio.

    For increments of size :math:`L^{-H}` the roughness ratio is
    :math:`2^{2H-1}`: :math:`H = 1` for a smooth path, :math:`1/2` for a
    Brownian one. A ratio of 0 gives :math:`-\infty`.
    """
    if ratio <= 0.0:
        return -math.inf
    return 0.5 * (1.0 + math.log2(ratio))


def classify_roughness(ratio: float, thresholds: RegimeThresholds | None = None) -> str:
    r"""Return the band of a roughness ratio :math:`\rho \in [0, 2]`.

    ``"smooth"`` for :math:`\rho \ge 1.6`, ``"diffusive"`` for
    :math:`0.8 \le \rho \le 1.25`, ``"rough"`` (anti-correlated increments) for
    :math:`\rho < 0.8`, and ``"intermediate"`` in between, with the default
    :class:`RegimeThresholds`.
    """
    limits = thresholds or RegimeThresholds()
    if ratio >= limits.smooth_min_ratio:
        return "smooth"
    if ratio > limits.diffusive_max_ratio:
        return "intermediate"
    if ratio >= limits.rough_max_ratio:
        return "diffusive"
    return "rough"


@dataclass(frozen=True)
class RoughnessAtDepth:
    r"""Roughness ratio of :math:`\delta_k A_k` for the networks of one depth.

    Attributes:
        depth: :math:`L`.
        ratios: :math:`\rho` per replica.
        ratio: Median of ``ratios``.
        hurst: :math:`(1 + \log_2 \rho)/2` of the median.
        band: Band of the median (:func:`classify_roughness`).
        effective_layers: Median effective layer count of :math:`\delta_k A_k`
            (:func:`~deeplimits.scaling.statistics.effective_layer_count`).
        largest_layer_share: Median share
            :math:`\max_k \|X_k\|^2 / \sum_k \|X_k\|^2` of the quadratic
            variation carried by the largest layer. It tends to 0 for smooth
            and diffusive paths and stays positive when the path jumps.
    """

    depth: int
    ratios: tuple[float, ...]
    ratio: float
    hurst: float
    band: str
    effective_layers: float
    largest_layer_share: float

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        data = asdict(self)
        data["ratios"] = list(self.ratios)
        if math.isinf(self.hurst):
            data["hurst"] = None
        return data


@dataclass(frozen=True)
class LimitEquation:
    """The deep limit that the regime and the activation imply.

    Attributes:
        kind: ``"neural-ode"``, ``"linear-ode"``, ``"relu-ode"``, ``"ito-sde"``
            or ``"none"``.
        equation: The equation in plain text (empty for ``"none"``).
        latex: The same equation in LaTeX (empty for ``"none"``).
        reason: Why this limit applies, or why there is none.
    """

    kind: str
    equation: str
    latex: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    r"""Regime of a depth sweep, the evidence for it and the limit it implies.

    Attributes:
        regime: ``"smooth"`` (Hypothesis 1), ``"diffusive"`` (Hypothesis 2) or
            ``"neither"``.
        limit: The :class:`LimitEquation` for the network's activation.
        evidence: Sentences giving each measurement behind the decision.
        roughness_ratio: Median roughness ratio over the depths used.
        hypothesis_1_consistent: Whether the exponent of :math:`\delta_k A_k`
            (:math:`\alpha + \beta`) is consistent with 1: its interval
            contains 1 or it lies within ``hypothesis_1_tolerance`` of 1.
        sparse: Whether a few layers carry all the weight.
        hypothesis_1_exact: Whether the interval of :math:`\alpha + \beta`
            contains 1. A smooth verdict with ``hypothesis_1_consistent`` but
            not ``hypothesis_1_exact`` holds only approximately: then
            :math:`L \delta_k A_k` still grows or decays like
            :math:`L^{1 - \gamma}` and the limit is an approximation on the
            fitted depth range.
        caveats: Sentences qualifying the verdict (empty when it holds without
            qualification); :attr:`label` puts them after the regime.
    """

    regime: str
    limit: LimitEquation
    evidence: tuple[str, ...]
    roughness_ratio: float
    hypothesis_1_consistent: bool
    sparse: bool
    hypothesis_1_exact: bool = True
    caveats: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The regime, followed by ``", approximately: "`` and the caveats if any."""
        if not self.caveats:
            return self.regime
        return f"{self.regime}, approximately: " + "; ".join(self.caveats)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return {
            "regime": self.regime,
            "limit": self.limit.to_dict(),
            "evidence": list(self.evidence),
            "roughness_ratio": self.roughness_ratio,
            "hypothesis_1_consistent": self.hypothesis_1_consistent,
            "sparse": self.sparse,
            "hypothesis_1_exact": self.hypothesis_1_exact,
            "caveats": list(self.caveats),
            "label": self.label,
        }


def _near(fit: PowerLawFit, target: float, tolerance: float) -> bool:
    return fit.contains(target) or abs(fit.exponent - target) <= tolerance


def _number(value: float | None) -> str:
    return "undefined" if value is None else f"{value:g}"


def limit_equation(
    regime: str,
    activation: Activation,
    *,
    beta: PowerLawFit | None,
    hypothesis_1_consistent: bool = True,
    beta_effective: float | None = None,
    thresholds: RegimeThresholds | None = None,
    neither_reason: str = "",
) -> LimitEquation:
    r"""Return the limit equation of a regime for an activation.

    Args:
        regime: ``"smooth"``, ``"diffusive"`` or ``"neither"``.
        activation: The network's activation, with its data at 0.
        beta: Exponent fit of :math:`A_k`; decides between the neural ODE
            (:math:`\beta = 0`) and the linear ODE (:math:`\beta > 0`) in the
            smooth regime. ``None`` is read as :math:`\beta = 0`.
        hypothesis_1_consistent: Whether :math:`\alpha + \beta` is consistent
            with 1; when it is not, the smooth regime has no non-trivial limit.
        beta_effective: The exponent :math:`\gamma = \alpha + \beta` of
            :math:`\delta_k A_k`, quoted when Hypothesis 1 fails.
        thresholds: Tolerances (:class:`RegimeThresholds`).
        neither_reason: Reason reported for the ``"neither"`` regime.
    """
    limits = thresholds or RegimeThresholds()
    name = activation.name
    if regime == "neither":
        return LimitEquation("none", "", "", neither_reason)
    if regime == "diffusive":
        return _diffusive_limit(activation)
    if regime != "smooth":
        raise ValueError(
            f"regime must be 'smooth', 'diffusive' or 'neither', got {regime!r}."
        )

    if not hypothesis_1_consistent:
        gamma = "unknown" if beta_effective is None else f"{beta_effective:.3f}"
        if beta_effective is not None and beta_effective > 1.0:
            outcome = (
                "sum_k delta_k A_k tends to 0 like L^(1 - gamma) and the network "
                "tends to the identity map on A"
            )
        else:
            outcome = "sum_k delta_k A_k grows like L^(1 - gamma) without bound"
        return LimitEquation(
            "none",
            "",
            "",
            "the weights are smooth in the layer index, but delta_k A_k scales "
            f"like L^-gamma with gamma = alpha + beta = {gamma}, not 1, so "
            f"{outcome}; Hypothesis 1 needs alpha + beta = 1.",
        )
    if activation.homogeneous and activation.dsigma0 is None:
        return LimitEquation(
            "relu-ode",
            f"dH/dt = {name}(Abar_eff(t) H + bbar_eff(t)), "
            "Abar_eff = lim L delta_k A_k, bbar_eff = lim L delta_k b_k",
            rf"\frac{{dH}}{{dt}} = \mathrm{{{name}}}(\bar A^{{\mathrm{{eff}}}}(t) H"
            r" + \bar b^{\mathrm{eff}}(t))",
            f"{name} is positively homogeneous, so delta_k {name}(A_k h + b_k) = "
            f"{name}(delta_k A_k h + delta_k b_k) for delta_k > 0 and only the "
            "effective weights matter, whatever beta is (layers with "
            "delta_k < 0 flip the sign of their term).",
        )
    if beta is None or _near(beta, 0.0, limits.beta_zero_tolerance):
        beta_text = "0" if beta is None else f"{beta.exponent:.3f}"
        return LimitEquation(
            "neural-ode",
            f"dH/dt = deltabar(t) {name}(Abar(t) H + bbar(t))",
            rf"\frac{{dH}}{{dt}} = \bar\delta(t)\,\mathrm{{{name}}}(\bar A(t) H"
            r" + \bar b(t))",
            f"beta = {beta_text} is consistent with 0: the weights A_k converge "
            "without rescaling and the activation stays nonlinear in the limit.",
        )
    if activation.sigma0 != 0.0:
        return LimitEquation(
            "none",
            "",
            "",
            f"sigma(0) = {activation.sigma0:g} is not 0 while beta = "
            f"{beta.exponent:.3f} > 0: each layer adds "
            "delta_k sigma(0), and sum_k delta_k grows like L^(1 - alpha) = "
            "L^beta, so the drift blows up.",
        )
    if not activation.c2_at_zero or activation.dsigma0 is None:
        return LimitEquation(
            "none",
            "",
            "",
            f"{name} is not C^2 at 0, so the first-order expansion "
            "delta_k sigma(z) = sigma'(0) delta_k z + O(delta_k z^2) behind the "
            f"linear ODE does not hold (beta = {beta.exponent:.3f} > 0).",
        )
    slope = activation.dsigma0
    return LimitEquation(
        "linear-ode",
        f"dH/dt = sigma'(0) deltabar(t) (Abar(t) H + bbar(t)), sigma'(0) = {slope:g}",
        r"\frac{dH}{dt} = \sigma'(0)\,\bar\delta(t)\,(\bar A(t) H + \bar b(t)),"
        rf"\qquad \sigma'(0) = {slope:g}",
        f"0 < beta = {beta.exponent:.3f}: the pre-activations A_k h + b_k "
        f"vanish like L^-beta, so {name} acts through its linearisation "
        f"sigma'(0) z at 0 ({name} is C^2 with sigma(0) = 0).",
    )


def _diffusive_limit(activation: Activation) -> LimitEquation:
    name = activation.name
    if activation.homogeneous and activation.dsigma0 is None:
        return LimitEquation(
            "none",
            "",
            "",
            f"{name} is not C^2 at 0 (sigma''(0) does not exist), so the "
            "second-order expansion that gives the Ito SDE limit fails; the "
            f"library reports no ODE or SDE limit for {name} with diffusive "
            "weights and compares with the discrete network only.",
        )
    if activation.sigma0 != 0.0:
        return LimitEquation(
            "none",
            "",
            "",
            f"sigma(0) = {activation.sigma0:g} is not 0: each layer adds "
            "delta_k sigma(0) with delta_k of order 1 under diffusive scaling, "
            "so the drift grows like L.",
        )
    if not activation.c2_at_zero or activation.dsigma0 is None:
        return LimitEquation(
            "none",
            "",
            "",
            f"{name} is not C^2 at 0, so the second-order expansion that gives "
            "the Ito SDE limit fails.",
        )
    slope = activation.dsigma0
    curvature = activation.d2sigma0 or 0.0
    linear = "sigma'(0) (sum_j H^j dV^(A,ij) + dV^(b,i))"
    linear_tex = r"\sigma'(0)\Big(\sum_j H^j\,dV^{A,ij}_t + dV^{b,i}_t\Big)"
    values = f"sigma'(0) = {slope:g}, sigma''(0) = {curvature:g}"
    values_tex = rf"\sigma'(0) = {slope:g},\ \sigma''(0) = {curvature:g}"
    if curvature == 0.0:
        equation = f"dH^i = {linear}  (Ito; {values}, so there is no quadratic term)"
        latex = rf"dH^i_t = {linear_tex},\qquad {values_tex}"
    else:
        equation = f"dH^i = {linear} + (sigma''(0)/2) dQ^i(H)  (Ito; {values})"
        latex = (
            rf"dH^i_t = {linear_tex} + \frac{{\sigma''(0)}}{{2}}\,dQ^i(H)_t,"
            rf"\qquad {values_tex}"
        )
    return LimitEquation(
        "ito-sde",
        equation + "; V^A_t = lim sum_{k<Lt} delta_k A_k, V^b likewise, "
        "Q^i(H)_t = lim sum_{k<Lt} delta_k (A_k H + b_k)_i^2",
        latex,
        f"{name} is C^2 with sigma(0) = 0, sigma'(0) = {_number(slope)}, "
        f"sigma''(0) = {_number(activation.d2sigma0)}: the second-order expansion "
        "of each layer gives an Ito (left-point) SDE driven by the effective "
        "paths V^A, V^b plus the finite-variation quadratic term Q; reading it "
        "as Stratonovich, or dropping Q when sigma''(0) != 0, gives a wrong limit.",
    )


def decide_regime(
    roughness: Sequence[RoughnessAtDepth],
    *,
    activation: Activation,
    alpha: PowerLawFit | None,
    beta: PowerLawFit | None,
    beta_effective: PowerLawFit,
    effective_layers_growth: PowerLawFit | None,
    thresholds: RegimeThresholds | None = None,
) -> Verdict:
    r"""Decide the regime of a sweep from its measurements.

    The rule, in order:

    1. **Sparse** (``"neither"``): at the deepest depth fewer than
       ``sparse_fraction`` of the layers carry :math:`\delta_k A_k`, and the
       effective layer count grows more slowly than :math:`L^{0.5}`.
    2. The roughness ratio is the median, over depths
       :math:`L \ge` ``roughness_min_depth`` (or the deepest depth if none is
       that deep), of the per-depth medians over replicas; its band decides
       between smooth, diffusive and neither.
    3. **Smooth**: band ``"smooth"``. The exponent
       :math:`\gamma` of :math:`\delta_k A_k` is checked against
       :math:`\alpha + \beta = 1`; when it fails the regime stays smooth but
       the limit is ``"none"``. When :math:`\gamma` is accepted only through
       ``hypothesis_1_tolerance`` (its interval excludes 1), the verdict
       carries a caveat: :math:`L \delta_k A_k \sim L^{1-\gamma}` does not
       converge and the limit is an approximation on the fitted depth range.
    4. **Diffusive**: band ``"diffusive"`` and :math:`\gamma` consistent with
       1/2 (the quadratic variation of the cumulative path neither vanishes
       nor blows up). A diffusive band with :math:`\gamma` away from 1/2 is
       ``"neither"``.
    5. ``"intermediate"`` and ``"rough"`` bands are ``"neither"``.

    Args:
        roughness: Per-depth roughness, ordered by depth.
        activation: The network's activation.
        alpha: Exponent fit of :math:`\delta_k` (``None`` if unavailable).
        beta: Exponent fit of :math:`A_k` (``None`` if unavailable).
        beta_effective: Exponent fit :math:`\gamma` of :math:`\delta_k A_k`.
        effective_layers_growth: Power-law fit of the effective layer count,
            whose exponent is minus its growth rate (``None`` if unavailable).
        thresholds: Bands and tolerances.
    """
    limits = thresholds or RegimeThresholds()
    evidence: list[str] = []
    gamma = beta_effective

    # Roughness ratio over the trusted depths.
    trusted = [item for item in roughness if item.depth >= limits.roughness_min_depth]
    used = trusted or [max(roughness, key=lambda item: item.depth)]
    ratio = float(pystats.median(item.ratio for item in used))
    band = classify_roughness(ratio, limits)
    depth_list = ", ".join(str(item.depth) for item in used)
    evidence.append(
        f"roughness ratio of delta_k A_k (coarse/fine quadratic variation; 2 = "
        f"smooth, 1 = Brownian): median {ratio:.3f} over L = {depth_list}, "
        f"Hurst estimate {hurst_from_ratio(ratio):.2f}, band '{band}'."
    )
    if not trusted:
        evidence.append(
            f"no depth reaches {limits.roughness_min_depth}, so the roughness "
            "band rests on the deepest depth alone and is less reliable."
        )

    # Exponents.
    if alpha is not None:
        evidence.append(f"alpha (rms of delta_k) = {alpha}.")
    if beta is not None:
        evidence.append(f"beta (rms of A_k) = {beta}.")
    evidence.append(f"exponent of delta_k A_k (alpha + beta) = {gamma}.")
    consistent_1 = _near(gamma, 1.0, limits.hypothesis_1_tolerance)
    # The tolerance keeps a rounding-level miss of an exact power law exact.
    exact_1 = gamma.contains(1.0) or abs(gamma.exponent - 1.0) <= 1e-9
    caveats: list[str] = []
    consistent_2 = _near(gamma, 0.5, limits.diffusive_exponent_tolerance)

    # Sparse pattern.
    deepest = max(roughness, key=lambda item: item.depth)
    fraction = deepest.effective_layers / deepest.depth
    growth = (
        None if effective_layers_growth is None else -effective_layers_growth.exponent
    )
    sparse = (
        fraction < limits.sparse_fraction
        and growth is not None
        and growth < limits.sparse_max_growth
    )
    growth_text = "unavailable" if growth is None else f"L^{growth:.2f}"
    evidence.append(
        f"effective layer count at L = {deepest.depth}: "
        f"{deepest.effective_layers:.1f} ({100 * fraction:.1f}% of layers), "
        f"growing like {growth_text}; the largest layer carries "
        f"{100 * deepest.largest_layer_share:.1f}% of the quadratic variation."
    )

    # Decision.
    if sparse:
        reason = (
            f"a few layers carry all the weight: {deepest.effective_layers:.1f} "
            f"effective layers of {deepest.depth}, growing like {growth_text}, so "
            "the cumulative path has jumps and no ODE or SDE limit."
        )
        regime = "neither"
    elif band == "smooth":
        regime, reason = "smooth", ""
        if consistent_1 and not exact_1:
            evidence.append(
                f"alpha + beta = {gamma.exponent:.3f} "
                f"[{gamma.ci_low:.3f}, {gamma.ci_high:.3f}] excludes 1; accepted "
                f"within the tolerance {limits.hypothesis_1_tolerance} "
                "(RegimeThresholds.hypothesis_1_tolerance)."
            )
            caveats.append(_approximate_hypothesis_1(gamma))
        if not consistent_1:
            evidence.append(
                f"alpha + beta = {gamma.exponent:.3f} is not consistent with 1 "
                f"(tolerance {limits.hypothesis_1_tolerance}), so Hypothesis 1 "
                "is satisfied only in its smoothness part."
            )
    elif band == "diffusive" and consistent_2:
        regime, reason = "diffusive", ""
    elif band == "diffusive":
        regime = "neither"
        reason = (
            f"consecutive layers are independent-looking (ratio {ratio:.3f}), but "
            f"delta_k A_k scales like L^-{gamma.exponent:.3f}, not L^-1/2, so the "
            "quadratic variation of the cumulative path vanishes or blows up."
        )
    elif band == "intermediate":
        regime = "neither"
        reason = (
            f"the roughness ratio {ratio:.3f} lies between the smooth band "
            f"(>= {limits.smooth_min_ratio}) and the diffusive band "
            f"(<= {limits.diffusive_max_ratio}): neither hypothesis fits; deeper "
            "networks may settle it."
        )
    else:
        regime = "neither"
        reason = (
            f"the roughness ratio {ratio:.3f} is below {limits.rough_max_ratio}: "
            "consecutive layers cancel (anti-correlated increments), rougher "
            "than a Brownian path."
        )
    limit = limit_equation(
        regime,
        activation,
        beta=beta,
        hypothesis_1_consistent=consistent_1,
        beta_effective=gamma.exponent,
        thresholds=limits,
        neither_reason=reason,
    )
    return Verdict(
        regime=regime,
        limit=limit,
        evidence=tuple(evidence),
        roughness_ratio=ratio,
        hypothesis_1_consistent=consistent_1,
        sparse=sparse,
        hypothesis_1_exact=exact_1,
        caveats=tuple(caveats),
    )


def _approximate_hypothesis_1(gamma: PowerLawFit) -> str:
    r"""Describe a smooth verdict whose :math:`\alpha + \beta` interval excludes 1.

    Under Hypothesis 1 :math:`L \delta_k A_k` converges; with
    :math:`\delta_k A_k \sim L^{-\gamma}` it behaves like :math:`L^{1-\gamma}`,
    which diverges for :math:`\gamma < 1` and vanishes for :math:`\gamma > 1`.
    """
    growth = 1.0 - gamma.exponent
    trend = (
        f"grows like L^{growth:.3f}" if growth > 0 else (f"decays like L^{growth:.3f}")
    )
    return (
        f"alpha + beta = {gamma.exponent:.3f} [{gamma.ci_low:.3f}, "
        f"{gamma.ci_high:.3f}] excludes 1, so L delta_k A_k {trend} over "
        f"L = {gamma.min_depth}..{gamma.max_depth} and the limit is an "
        "approximation on this depth range"
    )
