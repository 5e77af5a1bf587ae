r"""Neural ODE and linear ODE limits of residual networks.

Both limits are ODEs :math:`dH/dt = F(t, H)`, :math:`H(0) = x`, on
:math:`t \in [0, 1]` with weights that depend on time through tables on the
layer grid :math:`t_k = k/L` (:class:`~deeplimits.limits.paths.PiecewiseFunction`).
They are integrated with torchdiffeq on the layer clock :math:`s = Lt`, where
the knots are integers, and adaptive solvers are given the knots as
``jump_t`` (piecewise constant weights) or ``step_t`` (piecewise linear
weights) so that no step straddles a discontinuity.

References:
    Chen, Rubanova, Bettencourt, Duvenaud, "Neural ordinary differential
    equations", NeurIPS 2018.
    Cohen, Cont, Rossier, Xu, "Scaling properties of deep residual networks",
    ICML 2021.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torchdiffeq import odeint, odeint_adjoint

from .._checks import check_choice, check_positive_float, check_tensor, describe
from ..activations import Activation, get_activation
from .paths import PiecewiseFunction, to_layer_clock
from .results import LimitSolution, RegimeEvidence
from .stepper import STEPPER_ODE_METHODS, layer_grid, solve_ode_fixed

__all__ = ["LinearODELimit", "NeuralODELimit", "ODE_METHODS"]

_ADAPTIVE = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
_FIXED = ("euler", "midpoint", "rk4", "heun2", "heun3", "explicit_adams")
ODE_METHODS: tuple[str, ...] = _ADAPTIVE + _FIXED
_BACKENDS = ("torchdiffeq", "stepper")


def check_state(x: object, dim: int, reference: Tensor) -> Tensor:
    """Check an input batch ``x`` of shape ``(batch, dim)`` against the limit."""
    check_tensor("x", x, ndim=2)
    assert isinstance(x, Tensor)
    if x.shape[1] != dim:
        raise ValueError(
            f"x must have shape (batch, {dim}) to match the limit's dimension, "
            f"got {tuple(x.shape)}."
        )
    if x.device != reference.device:
        raise ValueError(
            f"x is on device {x.device} but the limit is on {reference.device}. "
            f"Move one of them, e.g. limit.to('{x.device}')."
        )
    return x


class _CountedField(nn.Module):
    """Vector field on the layer clock that counts its evaluations."""

    def __init__(self, limit: _ODELimit) -> None:
        super().__init__()
        self.limit = limit
        self.nfe = 0

    def forward(self, s: Tensor, y: Tensor) -> Tensor:
        self.nfe += 1
        return self.limit.clock_field(s, y)


class _ODELimit(nn.Module):
    """Shared integration code of the ODE limits."""

    dim: int
    # Set by :func:`~deeplimits.limits.fit_limit` on the limits it builds.
    evidence: RegimeEvidence

    def _tables(self) -> tuple[PiecewiseFunction, ...]:
        raise NotImplementedError

    @property
    def depth(self) -> int:
        """Number :math:`L` of knots of the weight tables."""
        return self._tables()[0].depth

    @property
    def interpolation(self) -> str:
        """``"constant"`` or ``"linear"``: how the tables are read between knots."""
        return self._tables()[0].interpolation

    def vector_field(self, t: Tensor | float, h: Tensor) -> Tensor:
        r"""Evaluate :math:`F(t, h)` for ``h`` of shape ``(batch, d)``."""
        s = torch.as_tensor(t, dtype=torch.float64) * self.depth
        return self.clock_field(s, h) * self.depth

    def clock_field(self, s: Tensor, h: Tensor) -> Tensor:
        r"""Evaluate :math:`F(s/L, h)/L`, the field on the layer clock."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """Return :math:`H(1)` for inputs ``x`` of shape ``(batch, d)`` (dopri5)."""
        return self.integrate(x, torch.tensor([0.0, 1.0], dtype=torch.float64)).final

    def integrate(
        self,
        x: Tensor,
        ts: Tensor | None = None,
        *,
        method: str = "dopri5",
        adjoint: bool = False,
        rtol: float = 1e-7,
        atol: float = 1e-9,
        backend: str = "torchdiffeq",
        dt: float | None = None,
    ) -> LimitSolution:
        r"""Solve the limit ODE from :math:`H(t_0) = x`.

        Args:
            x: Initial states, shape ``(batch, d)``, float32 or float64, on the
                device of the limit. The solve runs in the dtype of ``x``.
            ts: Increasing output times in :math:`[0, 1]`, shape ``(T,)``; the
                first is the start time. ``None`` gives the knots :math:`k/L`.
            method: A torchdiffeq method: adaptive ``"dopri5"``, ``"dopri8"``,
                ``"bosh3"``, ``"fehlberg2"``, ``"adaptive_heun"`` (given the
                knots as ``jump_t``/``step_t``), or fixed-grid ``"euler"``,
                ``"midpoint"``, ``"rk4"``, ``"heun2"``, ``"heun3"``,
                ``"explicit_adams"`` (stepping on the knots).
            adjoint: Use ``torchdiffeq.odeint_adjoint``, so memory does not grow
                with the number of steps; gradients reach ``x`` and the weight
                tables.
            rtol, atol: Tolerances of adaptive methods.
            backend: ``"torchdiffeq"`` or ``"stepper"`` (the fixed-grid torch loop
                of :mod:`deeplimits.limits.stepper`, methods ``"euler"``,
                ``"midpoint"``, ``"rk4"``, faster for many knots).
            dt: Step of fixed-grid methods in units of :math:`t`; ``dt * L``
                must be ``1/n`` or an integer ``n``. ``None`` steps once per
                layer.

        Returns:
            A :class:`~deeplimits.limits.results.LimitSolution` with ``ys`` of
            shape ``(T, batch, d)``.

        Raises:
            ValueError: for an unknown method or backend, a bad ``dt``, or
                ``ts`` outside :math:`[0, 1]`.
        """
        tables = self._tables()
        reference = tables[0].values
        x = check_state(x, self.dim, reference)
        check_choice("backend", backend, _BACKENDS)
        allowed = STEPPER_ODE_METHODS if backend == "stepper" else ODE_METHODS
        check_choice("method", method, allowed)
        if adjoint and backend == "stepper":
            raise ValueError(
                "adjoint=True needs backend='torchdiffeq'; the stepper "
                "backpropagates through its steps. Drop one of the two options."
            )
        clock_ts = to_layer_clock(ts, self.depth).to(reference.device)
        spacing = 1.0 if dt is None else check_positive_float("dt", dt) * self.depth

        field = _CountedField(self)
        start = time.perf_counter()
        n_steps: int | None
        if backend == "stepper":
            grid = layer_grid(clock_ts, spacing)
            ys, nfe, n_steps = solve_ode_fixed(field, x, clock_ts, grid, method)
        else:
            options, n_steps = self._solver_options(clock_ts, method, spacing)
            solve: Callable[..., Tensor] = odeint_adjoint if adjoint else odeint
            ys = solve(
                field, x, clock_ts, rtol=rtol, atol=atol, method=method, options=options
            )
            nfe = field.nfe
        return LimitSolution(
            ts=(clock_ts / self.depth).to(ys.dtype),
            ys=ys,
            method=method,
            backend=backend,
            nfe=nfe,
            n_steps=n_steps,
            adjoint=adjoint,
            wall_time=time.perf_counter() - start,
        )

    def _solver_options(
        self, clock_ts: Tensor, method: str, spacing: float
    ) -> tuple[dict, int | None]:
        if method in _ADAPTIVE:
            knots, kind = self._tables()[0].knots()
            start, end = float(clock_ts[0]), float(clock_ts[-1])
            inside = knots[(knots > start) & (knots < end)]
            return {kind: inside.to(clock_ts.device)}, None
        grid = layer_grid(clock_ts, spacing)
        options = {
            "grid_constructor": lambda func, y0, t: grid.to(t.device),
            "perturb": True,
        }
        return options, grid.numel() - 1


class NeuralODELimit(_ODELimit):
    r"""Neural ODE limit :math:`dH/dt = \bar\delta(t) \sigma(\bar A(t) H + \bar b(t))`.

    This is the limit of :math:`h_{k+1} = h_k + \delta_k \sigma(A_k h_k + b_k)`
    when the weights converge to functions of :math:`t = k/L` and
    :math:`L \delta_k \to \bar\delta(t)` (Hypothesis 1 with :math:`\beta = 0`),
    and for positively homogeneous :math:`\sigma` (ReLU) for any
    :math:`\beta`, because then only :math:`\delta_k A_k` and
    :math:`\delta_k b_k` matter. With the network's own weights
    (:meth:`from_network`), Euler with :math:`dt = 1/L` is the network
    exactly.

    Args:
        Abar: :math:`\bar A(t_k)`, shape ``(L, d, d)``, orientation
            :math:`z = \bar A h + \bar b`.
        bbar: :math:`\bar b(t_k)`, shape ``(L, d)``.
        deltabar: :math:`\bar\delta(t_k)`, shape ``(L,)``.
        activation: Name, :class:`~deeplimits.activations.Activation` or
            callable.
        interpolation: ``"constant"`` or ``"linear"`` between knots.
        smoothing: Gaussian smoothing width in layers applied to the tables, or
            ``None``.

    Attributes:
        Abar, bbar, deltabar: The weight tables as
            :class:`~deeplimits.limits.paths.PiecewiseFunction` modules.

    Example:
        >>> import torch
        >>> limit = NeuralODELimit(torch.zeros(4, 2, 2), torch.ones(4, 2),
        ...                        torch.ones(4), activation="identity")
        >>> limit.integrate(torch.zeros(1, 2)).final
        tensor([[1., 1.]])
    """

    def __init__(
        self,
        Abar: Tensor,
        bbar: Tensor,
        deltabar: Tensor,
        *,
        activation: str | Activation | Callable[[Tensor], Tensor] = "tanh",
        interpolation: str = "constant",
        smoothing: float | None = None,
    ) -> None:
        super().__init__()
        Abar, bbar, deltabar = _check_tables(Abar, bbar, deltabar)
        self.dim = int(Abar.shape[-1])
        self.activation = get_activation(activation)
        self.Abar = PiecewiseFunction(
            Abar, interpolation=interpolation, smoothing=smoothing
        )
        self.bbar = PiecewiseFunction(
            bbar, interpolation=interpolation, smoothing=smoothing
        )
        self.deltabar = PiecewiseFunction(
            deltabar, interpolation=interpolation, smoothing=smoothing
        )

    def _tables(self) -> tuple[PiecewiseFunction, ...]:
        return (self.Abar, self.bbar, self.deltabar)

    def clock_field(self, s: Tensor, h: Tensor) -> Tensor:
        A = self.Abar.at_clock(s).to(h.dtype)
        b = self.bbar.at_clock(s).to(h.dtype)
        delta = self.deltabar.at_clock(s).to(h.dtype)
        return (delta / self.depth) * self.activation.fn(h @ A.T + b)

    @classmethod
    def from_weights(
        cls,
        A: Tensor,
        b: Tensor,
        delta: Tensor,
        *,
        activation: str | Activation | Callable[[Tensor], Tensor] = "tanh",
        interpolation: str = "constant",
        smoothing: float | None = None,
    ) -> NeuralODELimit:
        r"""Build the limit whose Euler scheme with :math:`dt = 1/L` is the network.

        The tables are :math:`\bar A = A_k`, :math:`\bar b = b_k`,
        :math:`\bar\delta = L \delta_k`. For a positively homogeneous
        activation they are folded into :math:`\bar A = L |\delta_k| A_k`,
        :math:`\bar b = L|\delta_k| b_k`, :math:`\bar\delta =
        \operatorname{sign} \delta_k`, which converge whenever
        :math:`\delta_k A_k` does.

        Args:
            A: ``(L, d, d)``. b: ``(L, d)``. delta: ``(L,)``, the
                :math:`\delta_k` used in the forward pass.
        """
        act = get_activation(activation)
        A, b, delta = _check_tables(A, b, delta)
        depth = A.shape[0]
        if act.homogeneous:
            scale = depth * delta.abs()
            Abar, bbar = scale[:, None, None] * A, scale[:, None] * b
            deltabar = torch.sign(delta)
        else:
            Abar, bbar, deltabar = A, b, depth * delta
        return cls(
            Abar,
            bbar,
            deltabar,
            activation=act,
            interpolation=interpolation,
            smoothing=smoothing,
        )


class LinearODELimit(_ODELimit):
    r"""Linear ODE limit :math:`dH/dt = \sigma'(0)\,(W(t) H + c(t))`.

    Here :math:`W(t) = \bar\delta(t) \bar A(t) = \lim L \delta_k A_k` and
    :math:`c(t) = \bar\delta(t) \bar b(t) = \lim L \delta_k b_k`. This is the
    limit under Hypothesis 1 with :math:`0 < \beta < 1`
    (:math:`A_k \sim L^{-\beta}`, :math:`\delta_k \sim L^{-\alpha}`,
    :math:`\alpha + \beta = 1`) for an activation that is :math:`C^2` near 0
    with :math:`\sigma(0) = 0`: the pre-activations :math:`z_k = A_k h + b_k`
    are :math:`O(L^{-\beta})`, and the Taylor expansion
    :math:`\sigma(z) = \sigma'(0) z + \tfrac12 \sigma''(0) z^2 + \tfrac16
    \sigma'''(0) z^3 + \dots` leaves only the linear term.

    Rate of convergence. Write :math:`\bar A, \bar b, \bar\delta` for smooth
    functions with :math:`A_k = L^{-\beta} \bar A(t_k)`,
    :math:`\delta_k = L^{-\alpha} \bar\delta(t_k)`. One layer differs from one
    Euler step :math:`h + L^{-1} \sigma'(0) \bar\delta (\bar A h + \bar b)` of
    the linear ODE by :math:`\delta_k (\tfrac12 \sigma''(0) z_k^2 + O(z_k^3))
    = O(L^{-\alpha - 2\beta}) = O(L^{-1-\beta})` per layer, and Euler itself is
    first order. Summed over :math:`L` stable layers the global error is

    .. math::

        \sup_k |h_k - H(t_k)| = O(L^{-1}) + O(L^{-\beta}) \,[\sigma''(0) \ne 0]
        + O(L^{-2\beta}),

    so :math:`\eta = \min(1, \beta)` when :math:`\sigma''(0) \ne 0` and
    :math:`\eta = \min(1, 2\beta)` for odd activations such as tanh
    (:math:`\sigma''(0) = 0`, cubic remainder :math:`-z^3/3`). The tests
    check :math:`\eta = 1/2` for tanh with :math:`\beta = 1/4`.

    Args:
        weight: :math:`W(t_k)`, shape ``(L, d, d)``.
        bias: :math:`c(t_k)`, shape ``(L, d)``.
        activation: The network's activation; it must satisfy
            :math:`\sigma(0) = 0` and have a derivative at 0.
        interpolation, smoothing: As for :class:`NeuralODELimit`.

    Raises:
        ValueError: if :math:`\sigma(0) \ne 0` (the term
            :math:`L \delta_k \sigma(0) \sim L^{\beta}` makes the drift blow up)
            or :math:`\sigma'(0)` does not exist (ReLU, whose limit is the ReLU
            neural ODE).
    """

    def __init__(
        self,
        weight: Tensor,
        bias: Tensor,
        *,
        activation: str | Activation | Callable[[Tensor], Tensor] = "tanh",
        interpolation: str = "constant",
        smoothing: float | None = None,
    ) -> None:
        super().__init__()
        act = get_activation(activation)
        check_linear_activation(act)
        ones = torch.ones(weight.shape[:1], dtype=weight.dtype, device=weight.device)
        weight, bias, _ = _check_tables(weight, bias, ones)
        self.dim = int(weight.shape[-1])
        self.activation = act
        self.gain = float(act.dsigma0)  # type: ignore[arg-type]
        self.weight = PiecewiseFunction(
            weight, interpolation=interpolation, smoothing=smoothing
        )
        self.bias = PiecewiseFunction(
            bias, interpolation=interpolation, smoothing=smoothing
        )

    def _tables(self) -> tuple[PiecewiseFunction, ...]:
        return (self.weight, self.bias)

    def clock_field(self, s: Tensor, h: Tensor) -> Tensor:
        W = self.weight.at_clock(s).to(h.dtype)
        c = self.bias.at_clock(s).to(h.dtype)
        return (self.gain / self.depth) * (h @ W.T + c)

    @classmethod
    def from_weights(
        cls,
        A: Tensor,
        b: Tensor,
        delta: Tensor,
        *,
        activation: str | Activation | Callable[[Tensor], Tensor] = "tanh",
        interpolation: str = "constant",
        smoothing: float | None = None,
    ) -> LinearODELimit:
        r"""Build the limit with :math:`W = L\delta_k A_k`, :math:`c = L\delta_k b_k`.

        Args:
            A: ``(L, d, d)``. b: ``(L, d)``. delta: ``(L,)``.
        """
        A, b, delta = _check_tables(A, b, delta)
        scale = A.shape[0] * delta
        return cls(
            scale[:, None, None] * A,
            scale[:, None] * b,
            activation=activation,
            interpolation=interpolation,
            smoothing=smoothing,
        )


def check_linear_activation(act: Activation) -> None:
    """Raise ``ValueError`` unless ``act`` admits the linear ODE limit."""
    if act.sigma0 != 0.0:
        raise ValueError(
            f"the linear ODE limit needs sigma(0) = 0, but activation "
            f"{act.name!r} has sigma(0) = {act.sigma0}. With A_k ~ L^-beta and "
            "delta_k ~ L^-alpha the layer sum of delta_k * sigma(0) grows like "
            "L^beta, so the drift blows up. Centre the activation "
            "(sigma - sigma(0)) or use regime='neural-ode'."
        )
    if act.dsigma0 is None:
        raise ValueError(
            f"the linear ODE limit needs sigma'(0), which activation {act.name!r} "
            "does not have. A positively homogeneous activation such as ReLU has "
            "the ReLU neural ODE in deltabar * Abar as its limit for any beta: "
            "use regime='neural-ode'."
        )


def _check_tables(A: object, b: object, delta: object) -> tuple[Tensor, Tensor, Tensor]:
    check_tensor("A", A, ndim=3)
    check_tensor("b", b, ndim=2)
    check_tensor("delta", delta, ndim=1)
    assert isinstance(A, Tensor) and isinstance(b, Tensor)
    assert isinstance(delta, Tensor)
    depth, rows, cols = A.shape
    if rows != cols or rows < 1 or depth < 1:
        raise ValueError(
            f"A must have shape (L, d, d) with L, d >= 1, got {tuple(A.shape)}."
        )
    if tuple(b.shape) != (depth, rows) or tuple(delta.shape) != (depth,):
        raise ValueError(
            f"b and delta must have shapes ({depth}, {rows}) and ({depth},) to "
            f"match A of shape {tuple(A.shape)}, got {tuple(b.shape)} and "
            f"{tuple(delta.shape)}."
        )
    if b.dtype != A.dtype or delta.dtype != A.dtype:
        raise TypeError(
            f"A, b and delta must share one dtype, got {A.dtype}, {b.dtype}, "
            f"{delta.dtype} ({describe(delta)}). Convert them with .to(A.dtype)."
        )
    return A, b, delta
