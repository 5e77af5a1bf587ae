r"""Activation functions with the Taylor data at zero that the deep limits need.

The limit of a residual network depends on the activation only through a few
numbers at the origin: :math:`\sigma(0)`, :math:`\sigma'(0)`, :math:`\sigma''(0)`,
whether :math:`\sigma` is :math:`C^2` near 0, and whether it is positively
homogeneous (:math:`\sigma(cz) = c\,\sigma(z)` for :math:`c > 0`). Each
:class:`Activation` carries these next to the function and its derivative.

Reference: A.-S. Cohen, R. Cont, A. Rossier, R. Xu, "Scaling Properties of
Deep Residual Networks", ICML 2021, sections 3 and 4.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ._checks import describe

__all__ = ["Activation", "get_activation", "ACTIVATION_NAMES"]

_LOG2 = math.log(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Activation:
    r"""An elementwise activation :math:`\sigma` and its data at zero.

    Attributes:
        name: Name used in files and reports.
        fn: :math:`z \mapsto \sigma(z)`, elementwise.
        derivative: :math:`z \mapsto \sigma'(z)`, elementwise.
        sigma0: :math:`\sigma(0)`.
        dsigma0: :math:`\sigma'(0)`, or ``None`` where it does not exist (ReLU).
        d2sigma0: :math:`\sigma''(0)`, or ``None`` where it does not exist.
        c2_at_zero: Whether :math:`\sigma` is twice continuously differentiable
            near 0, the condition for the linear ODE and SDE limits.
        homogeneous: Whether :math:`\sigma` is positively homogeneous, so that
            only :math:`\delta_k A_k` and :math:`\delta_k b_k` matter when
            :math:`\delta_k > 0`.
        derivative_from_output: Optional :math:`\sigma(z) \mapsto \sigma'(z)`,
            for activations whose slope is a function of their value (tanh:
            :math:`1 - \sigma^2`). With it the fused kernel stores
            :math:`\sigma(z_k)` instead of :math:`z_k` and never evaluates
            :math:`\sigma` twice.

    Example:
        >>> import torch
        >>> act = get_activation("tanh")
        >>> act.dsigma0
        1.0
        >>> act.fn(torch.zeros(2))
        tensor([0., 0.])
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    derivative: Callable[[Tensor], Tensor]
    sigma0: float
    dsigma0: float | None
    d2sigma0: float | None
    c2_at_zero: bool
    homogeneous: bool
    derivative_from_output: Callable[[Tensor], Tensor] | None = None

    def __call__(self, z: Tensor) -> Tensor:
        return self.fn(z)

    @classmethod
    def from_function(
        cls,
        fn: Callable[[Tensor], Tensor],
        *,
        name: str | None = None,
        derivative: Callable[[Tensor], Tensor] | None = None,
        c2_at_zero: bool = True,
        homogeneous: bool = False,
    ) -> Activation:
        r"""Wrap a user function, computing its data at zero with autograd.

        :math:`\sigma(0)`, :math:`\sigma'(0)` and :math:`\sigma''(0)` are
        evaluated in float64 by automatic differentiation at 0. Smoothness and
        homogeneity cannot be read off point values, so the caller states them.
        Without ``derivative``, :math:`\sigma'(z)` is also computed by autograd,
        which is slower than a closed form.

        Raises:
            TypeError: if ``fn`` is not callable.
            ValueError: if ``fn`` does not map a tensor to a tensor of the same
                shape, or its value or derivatives at 0 are not finite.
        """
        if not callable(fn):
            raise TypeError(f"activation must be callable, got {describe(fn)}.")
        label = str(name or getattr(fn, "__name__", "custom"))
        # Differentiates at 0 even when the caller runs under torch.no_grad().
        with torch.enable_grad():
            zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
            value = fn(zero)
            if not isinstance(value, Tensor) or value.shape != zero.shape:
                raise ValueError(
                    f"activation {label!r} must map a tensor to a tensor of the same "
                    f"shape, got {describe(value)} for an input of shape (3,)."
                )
            (first,) = torch.autograd.grad(value.sum(), zero, create_graph=True)
            if first.requires_grad:
                (second,) = torch.autograd.grad(first.sum(), zero, allow_unused=True)
                second = torch.zeros_like(zero) if second is None else second
            else:
                second = torch.zeros_like(zero)
        numbers = [float(v[0].detach()) for v in (value, first, second)]
        if not all(math.isfinite(number) for number in numbers):
            raise ValueError(
                f"activation {label!r} has non-finite value or derivatives at 0: "
                f"sigma(0), sigma'(0), sigma''(0) = {numbers}. Pass a function "
                "that is differentiable at 0, or build an Activation by hand."
            )
        return cls(
            name=label,
            fn=fn,
            derivative=derivative or _autograd_derivative(fn),
            sigma0=numbers[0],
            dsigma0=numbers[1],
            d2sigma0=numbers[2],
            c2_at_zero=c2_at_zero,
            homogeneous=homogeneous,
        )


def _autograd_derivative(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    def derivative(z: Tensor) -> Tensor:
        with torch.enable_grad():
            point = z.detach().requires_grad_(True)
            (slope,) = torch.autograd.grad(fn(point).sum(), point)
        return slope

    return derivative


def _tanh_derivative(z: Tensor) -> Tensor:
    return _tanh_slope_from_output(torch.tanh(z))


def _tanh_slope_from_output(s: Tensor) -> Tensor:
    # 1 - s^2, with one temporary the size of s.
    return torch.mul(s, s).neg_().add_(1.0)


def _relu_slope_from_output(s: Tensor) -> Tensor:
    return (s > 0).to(s.dtype)


def _softplus_centred_slope_from_output(s: Tensor) -> Tensor:
    # sigmoid(z) = 1 - exp(-softplus(z)) and softplus(z) = s + log 2.
    return torch.exp(-s).mul_(-0.5).add_(1.0)


def _relu_derivative(z: Tensor) -> Tensor:
    return (z > 0).to(z.dtype)


def _identity(z: Tensor) -> Tensor:
    return z


def _ones_like(z: Tensor) -> Tensor:
    return torch.ones_like(z)


def _gelu(z: Tensor) -> Tensor:
    return torch.nn.functional.gelu(z)


def _gelu_derivative(z: Tensor) -> Tensor:
    # d/dz [z Phi(z)] = Phi(z) + z phi(z) for the exact (erf) GELU.
    cdf = 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))
    pdf = _INV_SQRT_2PI * torch.exp(-0.5 * z * z)
    return cdf + z * pdf


def _softplus_centred(z: Tensor) -> Tensor:
    return torch.nn.functional.softplus(z) - _LOG2


_BUILT_IN: dict[str, Activation] = {
    "tanh": Activation(
        "tanh",
        torch.tanh,
        _tanh_derivative,
        0.0,
        1.0,
        0.0,
        True,
        False,
        derivative_from_output=_tanh_slope_from_output,
    ),
    "relu": Activation(
        "relu",
        torch.relu,
        _relu_derivative,
        0.0,
        None,
        None,
        False,
        True,
        derivative_from_output=_relu_slope_from_output,
    ),
    "identity": Activation(
        "identity",
        _identity,
        _ones_like,
        0.0,
        1.0,
        0.0,
        True,
        True,
        derivative_from_output=_ones_like,
    ),
    "gelu": Activation(
        "gelu", _gelu, _gelu_derivative, 0.0, 0.5, 2.0 * _INV_SQRT_2PI, True, False
    ),
    "softplus-centred": Activation(
        "softplus-centred",
        _softplus_centred,
        torch.sigmoid,
        0.0,
        0.5,
        0.25,
        True,
        False,
        derivative_from_output=_softplus_centred_slope_from_output,
    ),
}

ACTIVATION_NAMES: tuple[str, ...] = tuple(_BUILT_IN)


def get_activation(spec: str | Activation | Callable[[Tensor], Tensor]) -> Activation:
    """Return the :class:`Activation` for a name, an activation or a function.

    Args:
        spec: One of ``"tanh"``, ``"relu"``, ``"identity"``, ``"gelu"``,
            ``"softplus-centred"``; an :class:`Activation`; or a callable, which
            is wrapped with :meth:`Activation.from_function` (assumed
            :math:`C^2` and not homogeneous).

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything else.
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        if spec not in _BUILT_IN:
            listed = ", ".join(repr(name) for name in ACTIVATION_NAMES)
            raise ValueError(
                f"activation must be one of {listed}, got {spec!r}. For another "
                "function pass a callable or Activation.from_function(fn)."
            )
        return _BUILT_IN[spec]
    if callable(spec):
        return Activation.from_function(spec)
    raise TypeError(
        f"activation must be a name, an Activation or a callable, got {describe(spec)}."
    )
