r"""Function bases on the depth interval :math:`t \in [0, 1]`.

A reduced-form limit model writes each weight path as a finite expansion

.. math::

    A(t) = \sum_{j=0}^{K-1} \varphi_j(t)\, A_j, \qquad
    b(t) = \sum_{j=0}^{K-1} \varphi_j(t)\, b_j,

in one of the bases below. Every basis is evaluated in torch, so gradients
flow through the coefficients, and works in the dtype and on the device of
the time tensor it is given.

- ``"piecewise-linear"``: hat functions on the uniform knots
  :math:`\tau_i = i / (K - 1)`. They form a partition of unity and
  :math:`A(\tau_i) = A_i`. With :math:`K = 1` the basis is the constant 1.
- ``"legendre"``: shifted Legendre polynomials :math:`P_j(2t - 1)`, with
  :math:`\int_0^1 P_m(2t-1) P_n(2t-1)\,dt = \delta_{mn} / (2n + 1)`.
- ``"chebyshev"``: shifted Chebyshev polynomials of the first kind
  :math:`T_j(2t - 1)`, so :math:`T_j(\cos\theta) = \cos(j\theta)`.
- ``"fourier"``: :math:`1, \cos 2\pi t, \sin 2\pi t, \cos 4\pi t,
  \sin 4\pi t, \dots` (integer frequencies, period 1). Index
  :math:`2m - 1` is :math:`\cos 2\pi m t` and index :math:`2m` is
  :math:`\sin 2\pi m t`.

References: Abramowitz and Stegun, *Handbook of Mathematical Functions*,
chapter 22 (orthogonal polynomials and their three-term recurrences).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor

__all__ = [
    "BASIS_NAMES",
    "Basis",
    "ChebyshevBasis",
    "FourierBasis",
    "LegendreBasis",
    "PiecewiseLinearBasis",
    "get_basis",
]


class Basis(ABC):
    r"""A family of K real functions :math:`\varphi_0, \dots, \varphi_{K-1}`
    on :math:`[0, 1]`.

    Subclasses implement :meth:`_evaluate`. Call the basis on a tensor of
    times of shape ``(n,)`` to get the values of shape ``(n, K)``.

    Args:
        K: number of basis functions, an integer ``>= 1``.

    Raises:
        TypeError: if ``K`` is not an integer.
        ValueError: if ``K < 1``.
    """

    name: str = ""

    def __init__(self, K: int) -> None:
        if isinstance(K, bool) or not isinstance(K, int):
            raise TypeError(
                f"K must be an int (the number of basis functions), got "
                f"{K!r} of type {type(K).__name__}"
            )
        if K < 1:
            raise ValueError(
                f"K must be >= 1 (the number of basis functions), got K={K}; "
                "pass K=1 for a constant-in-time model"
            )
        self.K = K

    def __call__(self, t: Tensor) -> Tensor:
        r"""Evaluate every basis function at the times ``t``.

        Args:
            t: times in :math:`[0, 1]`, a tensor of shape ``(n,)`` or a
                0-d tensor.

        Returns:
            Tensor of shape ``(n, K)`` (or ``(K,)`` for a 0-d ``t``) in the
            dtype and on the device of ``t``.
        """
        if not isinstance(t, Tensor):
            raise TypeError(
                f"t must be a torch.Tensor of times in [0, 1], got {type(t).__name__}"
            )
        if not t.is_floating_point():
            raise TypeError(
                f"t must be a floating-point tensor, got dtype {t.dtype}; "
                "convert it with t.double() or t.float()"
            )
        if t.ndim == 0:
            return self._evaluate(t.reshape(1))[0]
        if t.ndim != 1:
            raise ValueError(
                f"t must have shape (n,) or be 0-d, got shape {tuple(t.shape)}"
            )
        return self._evaluate(t)

    @abstractmethod
    def _evaluate(self, t: Tensor) -> Tensor:
        """Values of shape (n, K) for times of shape (n,)."""

    @property
    def knots(self) -> tuple[float, ...]:
        """Interior times where the basis functions are not smooth.

        Adaptive ODE solvers receive them as times to step on. Empty for the
        smooth bases.
        """
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(K={self.K})"


class PiecewiseLinearBasis(Basis):
    r"""Hat functions on the uniform knots :math:`\tau_i = i / (K - 1)`.

    .. math::

        \varphi_i(t) = \max\bigl(0,\; 1 - (K - 1)\,|t - \tau_i|\bigr),

    a partition of unity on :math:`[0, 1]` with :math:`\varphi_i(\tau_j) =
    \delta_{ij}`. With ``K = 1`` the single function is the constant 1.
    """

    name = "piecewise-linear"

    def _evaluate(self, t: Tensor) -> Tensor:
        if self.K == 1:
            return torch.ones(t.shape[0], 1, dtype=t.dtype, device=t.device)
        intervals = self.K - 1
        centres = torch.arange(self.K, dtype=t.dtype, device=t.device) / intervals
        distance = (t[:, None] - centres[None, :]).abs() * intervals
        return torch.clamp(1.0 - distance, min=0.0)

    @property
    def knots(self) -> tuple[float, ...]:
        return tuple(i / (self.K - 1) for i in range(1, self.K - 1))


class LegendreBasis(Basis):
    r"""Shifted Legendre polynomials :math:`P_j(2t - 1)`, ``j = 0..K-1``.

    Evaluated with Bonnet's recurrence :math:`(n + 1) P_{n+1}(x) = (2n + 1)
    x P_n(x) - n P_{n-1}(x)`. They are orthogonal on :math:`[0, 1]` with
    :math:`\int_0^1 P_m P_n\, dt = \delta_{mn} / (2n + 1)`; they are not
    normalised, so :math:`P_j(1) = 1`.
    """

    name = "legendre"

    def _evaluate(self, t: Tensor) -> Tensor:
        x = 2.0 * t - 1.0
        values = [torch.ones_like(x)]
        if self.K > 1:
            values.append(x)
        for n in range(1, self.K - 1):
            values.append(((2 * n + 1) * x * values[n] - n * values[n - 1]) / (n + 1))
        return torch.stack(values, dim=-1)


class ChebyshevBasis(Basis):
    r"""Shifted Chebyshev polynomials of the first kind :math:`T_j(2t - 1)`.

    Evaluated with the recurrence :math:`T_{n+1}(x) = 2 x T_n(x) -
    T_{n-1}(x)`, so :math:`T_j(\cos\theta) = \cos(j\theta)`.
    """

    name = "chebyshev"

    def _evaluate(self, t: Tensor) -> Tensor:
        x = 2.0 * t - 1.0
        values = [torch.ones_like(x)]
        if self.K > 1:
            values.append(x)
        for n in range(1, self.K - 1):
            values.append(2.0 * x * values[n] - values[n - 1])
        return torch.stack(values, dim=-1)


class FourierBasis(Basis):
    r"""Trigonometric functions with integer frequencies on :math:`[0, 1]`.

    :math:`\varphi_0 = 1`, :math:`\varphi_{2m-1}(t) = \cos(2\pi m t)` and
    :math:`\varphi_{2m}(t) = \sin(2\pi m t)` for :math:`m \ge 1`. An even
    ``K`` ends with a cosine whose sine partner is left out. Every function
    has period 1, so :math:`\varphi_j(0) = \varphi_j(1)`: a weight path
    whose values at the two ends differ is fitted with a Gibbs overshoot.
    """

    name = "fourier"

    def _evaluate(self, t: Tensor) -> Tensor:
        values = [torch.ones_like(t)]
        for j in range(1, self.K):
            frequency = (j + 1) // 2
            phase = 2.0 * math.pi * frequency * t
            values.append(torch.cos(phase) if j % 2 == 1 else torch.sin(phase))
        return torch.stack(values, dim=-1)


_BASES: dict[str, type[Basis]] = {
    cls.name: cls
    for cls in (PiecewiseLinearBasis, LegendreBasis, ChebyshevBasis, FourierBasis)
}

BASIS_NAMES: tuple[str, ...] = tuple(_BASES)
"""Names accepted by :func:`get_basis`."""


def get_basis(spec: str | Basis, K: int | None = None) -> Basis:
    """Build a basis from its name, or check a :class:`Basis` instance.

    Args:
        spec: one of :data:`BASIS_NAMES` (``"piecewise-linear"``,
            ``"legendre"``, ``"chebyshev"``, ``"fourier"``), or a
            :class:`Basis`.
        K: number of basis functions. Required with a name; with an
            instance it must be ``None`` or equal to ``spec.K``.

    Returns:
        The basis.

    Raises:
        ValueError: for an unknown name, a missing ``K``, ``K < 1`` or a
            ``K`` that disagrees with the instance.
        TypeError: if ``spec`` is neither a string nor a :class:`Basis`.
    """
    if isinstance(spec, Basis):
        if K is not None and K != spec.K:
            raise ValueError(
                f"K={K} disagrees with the basis instance {spec!r}; pass K=None "
                "or a basis built with the same K"
            )
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            f"basis must be a name in {list(BASIS_NAMES)} or a Basis instance, "
            f"got {spec!r} of type {type(spec).__name__}"
        )
    key = spec.strip().lower().replace("_", "-")
    if key not in _BASES:
        raise ValueError(f"unknown basis {spec!r}; expected one of {list(BASIS_NAMES)}")
    if K is None:
        raise ValueError(
            f"K (the number of basis functions) is required with basis={spec!r}"
        )
    return _BASES[key](K)
