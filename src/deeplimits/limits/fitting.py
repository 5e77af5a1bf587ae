r"""Map a trained network, raw weights or a run folder to its deep limit.

:func:`fit_limit` decides which limit applies (or takes the caller's choice)
and builds it from the weights:

===============  ========================================================
regime           limit built from the weights :math:`(A_k, b_k, \delta_k)`
===============  ========================================================
``neural-ode``   :class:`~deeplimits.limits.ode.NeuralODELimit` with
                 :math:`\bar A = A_k, \bar b = b_k, \bar\delta = L\delta_k`
                 (folded into :math:`L|\delta_k| A_k` for ReLU)
``linear-ode``   :class:`~deeplimits.limits.ode.LinearODELimit` with
                 :math:`W = L \delta_k A_k`, :math:`c = L \delta_k b_k`
``sde``          :class:`~deeplimits.limits.sde.LinearQuadraticSDELimit`
                 driven by :math:`V = \sum_{k<Lt} (\delta_k A_k, \delta_k b_k)`
===============  ========================================================

With ``regime="auto"`` the choice follows the scaling verdict of a depth
sweep (``scaling.json`` written by :mod:`deeplimits.scaling`) or, for a single
network, the roughness ratio of the cumulative path of :math:`\delta_k A_k`.
When no limit applies, :class:`~deeplimits.limits.results.NoLimitError` is
raised with the evidence attached.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_int, describe
from ..activations import Activation, get_activation
from ..network import ResNet
from ..scaling.regimes import RegimeThresholds, classify_roughness
from ..scaling.statistics import roughness_ratio as scaling_roughness_ratio
from .ode import LinearODELimit, NeuralODELimit
from .paths import INTERPOLATIONS
from .results import NoLimitError, RegimeEvidence
from .sde import LinearQuadraticSDELimit

__all__ = ["REGIMES", "fit_limit", "roughness_ratio", "select_regime"]

REGIMES: tuple[str, ...] = ("auto", "neural-ode", "linear-ode", "sde")

# A network where one layer carries more than this share of the quadratic
# variation is a sparse pattern, not a discretised path.
SPARSE_SHARE = 0.5
# Below this exponent beta the smooth regime is read as the neural ODE.
NEURAL_ODE_BETA = 0.1

Limit = NeuralODELimit | LinearODELimit | LinearQuadraticSDELimit


def roughness_ratio(increments: Tensor) -> tuple[float, float]:
    r"""Return the roughness ratio of a path and the largest single-layer share.

    The ratio is :func:`deeplimits.scaling.roughness_ratio`: the quadratic
    variation of the cumulative path sampled every second layer over the one at
    full resolution, about 2 for a smooth path and about 1 for a diffusive one.

    Args:
        increments: ``(L, ...)``, e.g. :math:`\delta_k A_k` of shape ``(L, d, d)``.

    Returns:
        ``(ratio, share)`` where ``share`` is :math:`\max_k \|X_k\|^2 / \sum_k
        \|X_k\|^2`. A path of zeros returns ``(2.0, 0.0)``, the smooth value.
    """
    depth = increments.shape[0]
    flat = increments.detach().reshape(depth, -1).to(torch.float64)
    squares = (flat**2).sum(1)
    total = float(squares.sum())
    if depth < 2 or float(squares[: 2 * (depth // 2)].sum()) == 0.0:
        return 2.0, 0.0 if total == 0.0 else float(squares.max()) / total
    ratio = float(scaling_roughness_ratio(flat))
    return ratio, float(squares.max()) / total


def select_regime(
    verdict: str,
    activation: Activation,
    *,
    beta: float | None,
    source: str,
    alpha: float | None = None,
    ratio: float | None = None,
    reasons: tuple[str, ...] = (),
    details: Mapping[str, Any] | None = None,
) -> RegimeEvidence:
    """Turn a scaling verdict and an activation into a limit regime with reasons."""
    notes = list(reasons)
    regime = "none"
    act = activation
    if verdict == "smooth":
        if act.homogeneous:
            regime = "neural-ode"
            notes.append(
                f"{act.name} is positively homogeneous, so the ReLU-type neural "
                "ODE in deltabar * Abar is the limit for any beta."
            )
        elif beta is None or beta <= NEURAL_ODE_BETA:
            regime = "neural-ode"
            notes.append(
                "beta is unknown for a single network: the neural ODE with the "
                "network's own weights is used (its Euler scheme is the network)."
                if beta is None
                else f"beta = {beta:.3g} <= {NEURAL_ODE_BETA}: neural ODE limit."
            )
        elif act.sigma0 == 0.0 and act.dsigma0 is not None:
            regime = "linear-ode"
            notes.append(
                f"beta = {beta:.3g} > 0 and sigma(0) = 0: the pre-activations "
                "vanish and the limit is the linear ODE."
            )
        else:
            notes.append(
                f"beta = {beta:.3g} > 0 but sigma(0) = {act.sigma0} != 0: the "
                "drift blows up like L^beta."
            )
    elif verdict == "diffusive":
        if act.c2_at_zero and act.sigma0 == 0.0 and act.d2sigma0 is not None:
            regime = "sde"
            notes.append(
                f"diffusive weights and {act.name} is C^2 with sigma(0) = 0: "
                "linear-quadratic Ito SDE limit."
            )
        else:
            notes.append(
                f"diffusive weights with {act.name}, which is not C^2 at 0 or has "
                "sigma(0) != 0: no SDE limit of this kind."
            )
    else:
        notes.append("the weights are neither smooth nor diffusive.")
    return RegimeEvidence(
        verdict=verdict,
        source=source,
        regime=regime,
        reasons=tuple(notes),
        alpha=alpha,
        beta=beta,
        roughness_ratio=ratio,
        details=dict(details or {}),
    )


def _network_evidence(net: ResNet) -> RegimeEvidence:
    """Classify one network (replica 0) by the roughness ratio of its path."""
    effective = net.effective_delta()
    delta = effective if not net.has_replicas else effective[0]
    A = net.A if not net.has_replicas else net.A[0]
    ratio, share = roughness_ratio(delta[:, None, None] * A)
    details = {"max_layer_share": share, "depth": net.depth}
    thresholds = RegimeThresholds()
    band = classify_roughness(ratio, thresholds)
    smooth_band = f">= {thresholds.smooth_min_ratio}"
    diffusive_band = f"[{thresholds.rough_max_ratio}, {thresholds.diffusive_max_ratio}]"
    if net.depth >= 8 and share > SPARSE_SHARE:
        verdict = "neither"
        reason = (
            f"one layer carries {share:.0%} of the quadratic variation of "
            "delta_k A_k: a sparse pattern, not a discretised path."
        )
    elif band == "smooth":
        verdict = "smooth"
        reason = f"roughness ratio {ratio:.3f} {smooth_band}: smooth path."
    elif band == "diffusive":
        verdict = "diffusive"
        reason = f"roughness ratio {ratio:.3f} in {diffusive_band}: diffusive path."
    else:
        verdict = "neither"
        reason = (
            f"roughness ratio {ratio:.3f} lies outside the smooth ({smooth_band}) "
            f"and diffusive ({diffusive_band}) bands."
        )
    return select_regime(
        verdict,
        net.activation,
        beta=None,
        source="roughness",
        ratio=ratio,
        reasons=(reason,),
        details=details,
    )


_SCALING_KINDS = {
    "neural-ode": "neural-ode",
    "relu-ode": "neural-ode",
    "linear-ode": "linear-ode",
    "ito-sde": "sde",
    "none": "none",
}


def _exponent(exponents: Mapping[str, Any], name: str) -> float | None:
    fit = exponents.get(name)
    if isinstance(fit, Mapping):
        fit = fit.get("exponent")
    return None if fit is None else float(fit)


def _scaling_evidence(
    source: Any, run_dir: Path | None, net: ResNet
) -> RegimeEvidence | None:
    """Return the sweep verdict of the scaling analysis, or ``None`` without one.

    ``run_dir/scaling.json`` is read when it exists; otherwise a sweep with at
    least 3 depths is analysed with :func:`deeplimits.scaling.estimate_scaling`.
    """
    data: Any = None
    origin = "scaling analysis of the sweep"
    if run_dir is not None and (run_dir / "scaling.json").is_file():
        data = json.loads((run_dir / "scaling.json").read_text())
        origin = "scaling.json"
    else:
        sweep_source = run_dir if run_dir is not None else source
        networks = getattr(sweep_source, "networks", None)
        if run_dir is None and not (
            isinstance(networks, Mapping) and len(networks) >= 3
        ):
            return None
        if run_dir is not None and len(list((run_dir / "weights").glob("*"))) < 3:
            return None
        from ..scaling import estimate_scaling

        data = estimate_scaling(sweep_source).to_dict()
    if not isinstance(data, Mapping) or not isinstance(data.get("verdict"), Mapping):
        return None
    verdict_block = data["verdict"]
    verdict = verdict_block.get("regime")
    if verdict not in ("smooth", "diffusive", "neither"):
        return None
    exponents = data.get("exponents", {})
    alpha, beta = _exponent(exponents, "alpha"), _exponent(exponents, "beta")
    ratio, _ = roughness_ratio(_replica_weights(net, 0)[3])
    reasons = [f"{origin}: verdict {verdict}."]
    reasons.extend(str(sentence) for sentence in verdict_block.get("evidence", ()))
    limit_block = verdict_block.get("limit") or {}
    kind = _SCALING_KINDS.get(str(limit_block.get("kind")))
    if kind is None:
        return select_regime(
            verdict,
            net.activation,
            beta=beta,
            alpha=alpha,
            source="scaling",
            ratio=ratio,
            reasons=tuple(reasons),
        )
    if limit_block.get("reason"):
        reasons.append(str(limit_block["reason"]))
    return RegimeEvidence(
        verdict=verdict,
        source="scaling",
        regime=kind,
        reasons=tuple(reasons),
        alpha=alpha,
        beta=beta,
        roughness_ratio=ratio,
        details={"depth": net.depth, "scaling_limit": limit_block.get("kind")},
    )


def _replica_weights(
    net: ResNet, replica: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    with torch.no_grad():
        delta = net.effective_delta().detach()
        A, b = net.A.detach(), net.b.detach()
        if net.has_replicas:
            A, b, delta = A[replica], b[replica], delta[replica]
        return A, b, delta, delta[:, None, None] * A


def _as_network(source: object, activation: Any) -> tuple[ResNet, Path | None]:
    """Return the network behind ``source`` and the run folder it came from."""
    if isinstance(source, ResNet):
        return source, None
    if isinstance(source, (tuple, list)) and len(source) in (2, 3):
        delta = source[2] if len(source) == 3 else None
        return _from_raw(source[0], source[1], delta, activation), None
    if isinstance(source, Mapping) and "A" in source and "b" in source:
        return _from_raw(
            source["A"], source["b"], source.get("delta"), activation
        ), None
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file():
            return ResNet.load(path, activation=activation), None
        if path.is_dir():
            return _deepest_network(path), path
        raise FileNotFoundError(
            f"source {str(path)!r} is neither a weights file nor a run folder. "
            "Pass a ResNet, (A, b, delta), a .safetensors file or a run folder."
        )
    networks = getattr(source, "networks", None)
    if isinstance(networks, Mapping) and networks:
        run_dir = getattr(source, "run_dir", None)
        return networks[max(networks)], None if run_dir is None else Path(run_dir)
    raise TypeError(
        "source must be a ResNet, a tuple (A, b) or (A, b, delta), a dict with keys "
        f"'A', 'b' (and 'delta'), a SweepResult, or a path; got {describe(source)}."
    )


def _from_raw(A: Any, b: Any, delta: Any, activation: Any) -> ResNet:
    return ResNet.from_weights(
        A, b, delta, activation="tanh" if activation is None else activation
    )


def _deepest_network(run_dir: Path) -> ResNet:
    weights = sorted((run_dir / "weights").glob("depth_*.safetensors"))
    if not weights:
        raise FileNotFoundError(
            f"run folder {str(run_dir)!r} contains no weights/depth_*.safetensors. "
            "Train a sweep into it first (deeplimits run --out RUN_DIR)."
        )
    return ResNet.load(max(weights, key=lambda p: int(p.stem.split("_")[-1])))


def _check_options(interpolation: Any, smoothing: Any, window: Any) -> None:
    """Check every option up front, whichever regime ends up being used."""
    check_choice("interpolation", interpolation, INTERPOLATIONS)
    if smoothing is not None:
        if (
            isinstance(smoothing, bool)
            or not isinstance(smoothing, (int, float))
            or not math.isfinite(smoothing)
            or smoothing < 0
        ):
            raise ValueError(
                "smoothing must be None or a finite width >= 0 in layers, got "
                f"{describe(smoothing)}. Pass None or 0 for no smoothing."
            )
    if window is not None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(
                "window must be None or an integer >= 1 (layers), got "
                f"{describe(window)}. Pass None for max(2, ceil(L/8)) layers."
            )


def fit_limit(
    source: Any,
    regime: str = "auto",
    *,
    activation: str | Activation | Callable[[Tensor], Tensor] | None = None,
    interpolation: str = "constant",
    smoothing: float | None = None,
    window: int | None = None,
    replica: int = 0,
) -> nn.Module:
    r"""Build the continuous-time limit of a network, raw weights or a run folder.

    Args:
        source: A :class:`~deeplimits.network.ResNet`; raw weights as a tuple
            ``(A, b)`` or ``(A, b, delta)`` or a dict with those keys (shapes
            as in :meth:`ResNet.from_weights`); a ``.safetensors`` weights file;
            a run folder (its deepest network is used, and ``scaling.json``
            when present decides the regime); or a ``SweepResult``.
        regime: ``"auto"``, or one of ``"neural-ode"``, ``"linear-ode"``,
            ``"sde"`` to force a limit.
        activation: Activation for raw weights (default ``"tanh"``) or to
            override the one stored in a weights file.
        interpolation: ``"constant"`` or ``"linear"`` weights between knots
            (ODE limits).
        smoothing: Gaussian smoothing width in layers for the ODE weight
            tables, or ``None``.
        window: Estimation window in layers for the SDE's statistical mode.
        replica: Replica whose weights define the ODE tables and the pathwise
            SDE path; the SDE statistics pool every replica.

    Returns:
        :class:`~deeplimits.limits.ode.NeuralODELimit`,
        :class:`~deeplimits.limits.ode.LinearODELimit` or
        :class:`~deeplimits.limits.sde.LinearQuadraticSDELimit`, with the
        :class:`~deeplimits.limits.results.RegimeEvidence` behind the choice in
        its ``evidence`` attribute.

    Raises:
        NoLimitError: with ``regime="auto"``, when the evidence rules every
            limit out; ``error.evidence`` holds the reasons and numbers.
        ValueError: for an invalid ``interpolation``, ``smoothing`` or
            ``window``, checked whatever regime is used; when a forced limit's
            assumptions fail (``"linear-ode"``
            with :math:`\sigma(0) \ne 0` or no :math:`\sigma'(0)`, ``"sde"``
            with an activation that is not :math:`C^2` at 0), or for an unknown
            regime.
        TypeError: for a source of another kind.

    Example:
        >>> import torch
        >>> from deeplimits import ResNet
        >>> net = ResNet(3, 32, init="smooth", init_scale=1.0, seed=0)
        >>> limit = fit_limit(net, "neural-ode")
        >>> limit.integrate(torch.zeros(2, 3)).ys.shape
        torch.Size([33, 2, 3])
    """
    check_choice("regime", regime, REGIMES)
    check_int("replica", replica)
    _check_options(interpolation, smoothing, window)
    net, run_dir = _as_network(source, activation)
    if activation is not None and not isinstance(source, (str, os.PathLike)):
        net_activation = get_activation(activation)
    else:
        net_activation = net.activation
    replicas = net.replicas
    if not 0 <= replica < replicas:
        raise ValueError(
            f"replica must lie in [0, {replicas}) for a network with {replicas} "
            f"replicas, got {replica}."
        )

    if regime == "auto":
        evidence = _scaling_evidence(source, run_dir, net)
        if evidence is None:
            evidence = _network_evidence(net)
        if evidence.regime == "none":
            raise NoLimitError(evidence)
        chosen = evidence.regime
    else:
        chosen = regime
        evidence = RegimeEvidence(
            verdict="forced",
            source="forced",
            regime=regime,
            reasons=(f"regime {regime!r} chosen by the caller.",),
        )

    A, b, delta, _ = _replica_weights(net, replica)
    limit: NeuralODELimit | LinearODELimit | LinearQuadraticSDELimit
    if chosen == "neural-ode":
        limit = NeuralODELimit.from_weights(
            A,
            b,
            delta,
            activation=net_activation,
            interpolation=interpolation,
            smoothing=smoothing,
        )
    elif chosen == "linear-ode":
        limit = LinearODELimit.from_weights(
            A,
            b,
            delta,
            activation=net_activation,
            interpolation=interpolation,
            smoothing=smoothing,
        )
    else:
        with torch.no_grad():
            all_delta = net.effective_delta().detach()
        limit = LinearQuadraticSDELimit(
            net.A.detach(),
            net.b.detach(),
            all_delta,
            activation=net_activation,
            replica=replica,
            window=window,
        )
    limit.evidence = evidence
    return limit
