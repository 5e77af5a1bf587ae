"""Result types of the limits package: solutions, regime evidence, no-limit error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

__all__ = ["LimitSolution", "NoLimitError", "RegimeEvidence"]


@dataclass(frozen=True, repr=False)
class LimitSolution:
    """Solution of a limit equation on the output times ``ts``.

    Attributes:
        ts: Output times in ``[0, 1]``, shape ``(T,)``, in the dtype of ``ys``
            on the device of the limit. The solvers step on a float64 layer
            clock and only the returned times are cast.
        ys: States :math:`H(t)`, shape ``(T, batch, d)``; for
            :meth:`LinearQuadraticSDELimit.sample` shape
            ``(T, n_paths, batch, d)``.
        method: Name of the solver method.
        backend: ``"torchdiffeq"``, ``"torchsde"`` or ``"stepper"`` (the
            fixed-grid torch loop of :mod:`deeplimits.limits.stepper`).
        nfe: Number of evaluations of the vector field (ODE) or of the drift
            (SDE) during the forward solve.
        n_steps: Number of accepted solver steps; ``None`` for adaptive
            torchdiffeq solvers, which do not report it.
        adjoint: Whether the solve used the adjoint method for gradients.
        wall_time: Seconds spent in the forward solve.
    """

    ts: Tensor
    ys: Tensor
    method: str
    backend: str
    nfe: int
    n_steps: int | None
    adjoint: bool
    wall_time: float

    @property
    def final(self) -> Tensor:
        """State at the last output time, ``ys[-1]``."""
        return self.ys[-1]

    def __repr__(self) -> str:
        steps = "adaptive" if self.n_steps is None else self.n_steps
        return (
            f"LimitSolution(ts={tuple(self.ts.shape)}, ys={tuple(self.ys.shape)}, "
            f"dtype={self.ys.dtype}, method={self.method!r}, "
            f"backend={self.backend!r}, nfe={self.nfe}, n_steps={steps}, "
            f"adjoint={self.adjoint}, wall_time={self.wall_time:.3g} s)"
        )


@dataclass(frozen=True)
class RegimeEvidence:
    """Evidence behind the regime that :func:`fit_limit` chose or rejected.

    Attributes:
        verdict: ``"smooth"``, ``"diffusive"`` or ``"neither"``.
        source: ``"scaling"`` (exponents fitted over a depth sweep),
            ``"roughness"`` (the single-network roughness ratio) or
            ``"forced"`` (the caller chose the regime).
        regime: Limit chosen: ``"neural-ode"``, ``"linear-ode"``, ``"sde"``,
            or ``"none"``.
        reasons: Sentences that explain the choice.
        alpha: Exponent of :math:`\\delta \\sim L^{-\\alpha}`, when known.
        beta: Exponent of :math:`A \\sim L^{-\\beta}`, when known.
        roughness_ratio: Quadratic variation of the cumulative path of
            :math:`\\delta_k A_k` sampled every second layer divided by the
            value at full resolution (about 2 for a smooth path, about 1 for a
            diffusive one), when computed.
        details: Further numbers, JSON-serialisable.
    """

    verdict: str
    source: str
    regime: str
    reasons: tuple[str, ...]
    alpha: float | None = None
    beta: float | None = None
    roughness_ratio: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the evidence as a JSON-serialisable dictionary."""
        return {
            "verdict": self.verdict,
            "source": self.source,
            "regime": self.regime,
            "reasons": list(self.reasons),
            "alpha": self.alpha,
            "beta": self.beta,
            "roughness_ratio": self.roughness_ratio,
            "details": dict(self.details),
        }


class NoLimitError(ValueError):
    """Raised by ``fit_limit(..., regime="auto")`` when the weights have no
    neural ODE, linear ODE or SDE limit.

    The error carries the evidence, so callers that expect this outcome catch
    it and report ``error.evidence``; the discrete network can still be
    compared with any limit chosen by hand.

    Attributes:
        evidence: The :class:`RegimeEvidence` that ruled the limits out.
    """

    def __init__(self, evidence: RegimeEvidence) -> None:
        self.evidence = evidence
        reasons = " ".join(evidence.reasons)
        super().__init__(
            f"no ODE or SDE limit: verdict {evidence.verdict!r} from "
            f"{evidence.source}. {reasons} Force a limit with regime='neural-ode', "
            "'linear-ode' or 'sde' to compare against it anyway."
        )
