r"""The linear-quadratic Ito SDE limit of a residual network with diffusive weights.

Under the diffusive hypothesis the cumulative effective weights
:math:`V^A_t = \lim \sum_{k < Lt} \delta_k A_k` and
:math:`V^b_t = \lim \sum_{k < Lt} \delta_k b_k` converge to continuous paths
with non-zero quadratic variation. Expanding
:math:`\delta_k \sigma(z_k) = \delta_k(\sigma'(0) z_k + \tfrac12 \sigma''(0)
z_k^2 + O(z_k^3))` with :math:`z_k = A_k h_k + b_k = O(L^{-1/2})` gives, for
:math:`\sigma` twice continuously differentiable near 0 with
:math:`\sigma(0) = 0`, the Ito (left-point) SDE, component :math:`i`:

.. math::

    dH^i_t = \sigma'(0) \Big(\sum_j H^j_t\, dV^{A,ij}_t + dV^{b,i}_t\Big)
             + \frac{\sigma''(0)}{2}\, dQ^i(H)_t,
    \qquad Q^i(H)_t = \lim \sum_{k < Lt} \delta_k (A_k h + b_k)_i^2 .

:math:`Q` is a finite-variation term, quadratic in :math:`H`, computed from the
weights. Dropping it, or reading the SDE in the Stratonovich sense, gives a
wrong limit.

In torchsde terms the noise is ``"general"`` with :math:`m = d^2 + d` channels
(the entries of :math:`dV^A` row by row, then :math:`dV^b`), the diffusion
:math:`g(t, h)` has shape ``(batch, d, m)`` and the only Ito solver that accepts
general noise in torchsde 0.2.6 is Euler-Maruyama (``method="euler"``).

References:
    Cohen, Cont, Rossier, Xu, "Scaling properties of deep residual networks",
    ICML 2021. Marion, Fermanian, Biau, Vert, "Scaling ResNets in the large-depth
    regime", 2022.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torchsde
from torch import Tensor, nn

from .._checks import check_choice, check_int, check_positive_float, check_tensor
from ..activations import Activation, get_activation
from .estimation import PathStatistics, default_window, estimate_path_statistics
from .ode import check_state
from .paths import EffectivePath, to_layer_clock
from .results import LimitSolution, RegimeEvidence
from .stepper import layer_grid, sde_euler

__all__ = ["LinearQuadraticSDELimit", "check_sde_activation"]

_MODES = ("pathwise", "statistical")
_BACKENDS = ("torchsde", "stepper")
# Drift lookups snap a clock time this close below a knot onto the knot, so
# float accumulation in torchsde's step loop cannot select the previous layer.
_KNOT_TOLERANCE = 1e-7


def check_sde_activation(act: Activation) -> None:
    """Raise ``ValueError`` unless ``act`` admits the linear-quadratic SDE limit."""
    if not act.c2_at_zero or act.dsigma0 is None or act.d2sigma0 is None:
        raise ValueError(
            f"the SDE limit needs an activation that is C^2 near 0, but "
            f"{act.name!r} is not (sigma'(0) = {act.dsigma0}, sigma''(0) = "
            f"{act.d2sigma0}). With increments of order L^-1/2 the second-order "
            "Taylor expansion of sigma at 0 defines the limit. ReLU with "
            "diffusive weights has no ODE or SDE limit of this kind."
        )
    if act.sigma0 != 0.0:
        raise ValueError(
            f"the SDE limit needs sigma(0) = 0, but activation {act.name!r} has "
            f"sigma(0) = {act.sigma0}, so the layer sum of delta_k * sigma(0) "
            "diverges. Centre the activation (sigma - sigma(0))."
        )


class _SDEFunctions(nn.Module):
    """torchsde-ready drift and diffusion of one mode, on the layer clock or in t."""

    noise_type = "general"
    sde_type = "ito"

    def __init__(self, limit: LinearQuadraticSDELimit, mode: str, clock: bool) -> None:
        super().__init__()
        self.limit = limit
        self.mode = mode
        self.clock = clock
        self.nfe = 0

    def _clock_time(self, t: Tensor | float) -> Tensor:
        s = torch.as_tensor(t, dtype=torch.float64)
        return s if self.clock else s * self.limit.depth

    def f(self, t: Tensor, y: Tensor) -> Tensor:
        self.nfe += 1
        drift = self.limit._clock_drift(self.mode, self._clock_time(t), y)
        return drift if self.clock else drift * self.limit.depth

    def g(self, t: Tensor, y: Tensor) -> Tensor:
        return self.limit._diffusion(self.mode, self._clock_time(t), y)

    def g_prod(self, t: Tensor, y: Tensor, v: Tensor) -> Tensor:
        return self.limit._diffusion_product(self.mode, self._clock_time(t), y, v)


class LinearQuadraticSDELimit(nn.Module):
    r"""Ito SDE limit :math:`dH = \sigma'(0)(dV^A H + dV^b) + \sigma''(0) dQ(H)/2`.

    Two ways to drive it:

    * **pathwise** (:meth:`integrate`): the driving path is the network's own
      effective path :math:`V_t = \sum_{k<Lt} (\delta_k A_k, \delta_k b_k)`,
      given to torchsde as its ``bm`` (:class:`~deeplimits.limits.paths.EffectivePath`),
      and the drift is :math:`\tfrac12 \sigma''(0)\, dQ/dt`, equal to
      :math:`\tfrac12 \sigma''(0) L \delta_k (A_k h + b_k)^2` on layer
      :math:`k`. Euler with :math:`dt = 1/L` on this path is the second-order
      Taylor expansion of the network, and with the identity activation it is
      the network exactly.
    * **statistical** (:meth:`sample`): drift :math:`\hat\mu` and diffusion
      :math:`\hat\Sigma^{1/2}` of the path are estimated from the weights by
      local averages and local quadratic variation over ``window`` layers
      (pooled over replicas), :math:`dV = \hat\mu\,dt + \hat\Sigma^{1/2} dW`,
      and fresh Brownian motion :math:`W` samples new networks from the limit;
      :math:`Q` uses the locally averaged coefficients
      (:mod:`deeplimits.limits.estimation`).

    The methods :meth:`f` and :meth:`g` are the pathwise drift and diffusion in
    torchsde's naming; :meth:`statistical_sde` returns the statistical pair as
    a torchsde-ready module.

    Args:
        A: ``(L, d, d)`` or ``(R, L, d, d)``; with replicas the pathwise path
            is replica ``replica`` and the statistics pool all of them.
        b: ``(L, d)`` or ``(R, L, d)``.
        delta: ``(L,)`` or ``(R, L)``, the :math:`\delta_k` of the forward pass.
        activation: Must be :math:`C^2` near 0 with :math:`\sigma(0) = 0`.
        replica: Replica that defines the pathwise path.
        window: Estimation window of the statistical mode in layers, at
            least 1; ``None`` uses :math:`\max(2, \lceil L/8 \rceil)`. Any
            window of :math:`2L - 1` or more averages every layer at every
            position, so larger values give the same estimates as
            :math:`2L - 1`.

    Raises:
        ValueError: for an activation without the SDE limit
            (:func:`check_sde_activation`) or inconsistent shapes.
    """

    noise_type = "general"
    sde_type = "ito"

    A: Tensor
    b: Tensor
    delta: Tensor
    # Set by :func:`~deeplimits.limits.fit_limit` on the limits it builds.
    evidence: RegimeEvidence

    def __init__(
        self,
        A: Tensor,
        b: Tensor,
        delta: Tensor,
        *,
        activation: str | Activation | Callable[[Tensor], Tensor] = "tanh",
        replica: int = 0,
        window: int | None = None,
    ) -> None:
        super().__init__()
        act = get_activation(activation)
        check_sde_activation(act)
        A, b, delta = _with_replica_axis(A, b, delta)
        replicas, depth, dim, _ = A.shape
        check_int("replica", replica)
        if not 0 <= replica < replicas:
            raise ValueError(
                f"replica must lie in [0, {replicas}) for weights with {replicas} "
                f"replicas, got {replica}."
            )
        self.activation = act
        self.dim = dim
        self.replica = replica
        self.window = default_window(depth) if window is None else window
        check_int("window", self.window, minimum=1)
        self.gain = float(act.dsigma0)  # type: ignore[arg-type]
        self.curvature = float(act.d2sigma0)  # type: ignore[arg-type]
        self.register_buffer("A", A.detach().clone())
        self.register_buffer("b", b.detach().clone())
        self.register_buffer("delta", delta.detach().clone())
        self._statistics: PathStatistics | None = None

    # Shapes and the effective path.

    @property
    def depth(self) -> int:
        """Number :math:`L` of layers behind the path."""
        return int(self.A.shape[1])

    @property
    def channels(self) -> int:
        """Number :math:`m = d^2 + d` of driving channels."""
        return self.dim * self.dim + self.dim

    def increments(self) -> Tensor:
        r"""Return the increments :math:`(\delta_k A_k, \delta_k b_k)` of the path."""
        A, b, delta = (
            self.A[self.replica],
            self.b[self.replica],
            self.delta[self.replica],
        )
        flat = (delta[:, None, None] * A).reshape(self.depth, -1)
        return torch.cat([flat, delta[:, None] * b], dim=1)

    def effective_path(self, batch: int = 1) -> EffectivePath:
        """Return the network's path on the layer clock, usable as torchsde's ``bm``.

        The path is known only at the layer knots, so it raises ``ValueError``
        when a solver requests it between knots (``grid_only=True``).
        """
        return EffectivePath(self.increments(), batch=batch, grid_only=True)

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        self._statistics = None
        return super()._apply(fn, recurse)

    @property
    def statistics(self) -> PathStatistics:
        """Local drift, diffusion and quadratic coefficients (computed once)."""
        if self._statistics is None:
            self._statistics = estimate_path_statistics(
                self.A,
                self.b,
                self.delta,
                window=self.window,
                quadratic=self.curvature != 0.0,
            )
        return self._statistics

    # Drift and diffusion on the layer clock.

    def _layer(self, s: Tensor) -> Tensor:
        s = s.to(device=self.A.device, dtype=torch.float64)
        index = (s + _KNOT_TOLERANCE).floor().clamp(0, self.depth - 1)
        return index.long().reshape(1)

    def _linear_map(self, h: Tensor, v: Tensor) -> Tensor:
        """Apply :math:`v \\mapsto \\sigma'(0)(v^A h + v^b)` to ``v`` (batch, m)."""
        d = self.dim
        weight = v[:, : d * d].reshape(-1, d, d)
        return self.gain * (torch.einsum("bij,bj->bi", weight, h) + v[:, d * d :])

    def _clock_drift(self, mode: str, s: Tensor, h: Tensor) -> Tensor:
        k = self._layer(s)
        if mode == "pathwise":
            if self.curvature == 0.0:
                return torch.zeros_like(h)
            A = self.A[self.replica].index_select(0, k)[0].to(h.dtype)
            b = self.b[self.replica].index_select(0, k)[0].to(h.dtype)
            delta = self.delta[self.replica].index_select(0, k)[0].to(h.dtype)
            return 0.5 * self.curvature * delta * (h @ A.T + b) ** 2
        stats = self.statistics
        mu = stats.drift.index_select(0, k).to(h.dtype).expand(h.shape[0], -1)
        drift = self._linear_map(h, mu)
        if stats.quadratic is not None:
            coefficients = stats.quadratic.index_select(0, k)[0].to(h.dtype)
            extended = torch.cat([h, torch.ones_like(h[:, :1])], dim=1)
            quadratic = torch.einsum("bp,ipq,bq->bi", extended, coefficients, extended)
            drift = drift + 0.5 * self.curvature * quadratic
        return drift / self.depth

    def _diffusion(self, mode: str, s: Tensor, h: Tensor) -> Tensor:
        batch, d = h.shape
        eye = torch.eye(d, dtype=h.dtype, device=h.device)
        weight_part = torch.einsum("il,bj->bilj", eye, h).reshape(batch, d, d * d)
        bias_part = eye.expand(batch, d, d)
        g = self.gain * torch.cat([weight_part, bias_part], dim=2)
        if mode == "pathwise":
            return g
        root = self.statistics.diffusion.index_select(0, self._layer(s))[0]
        return g @ root.to(h.dtype)

    def _diffusion_product(self, mode: str, s: Tensor, h: Tensor, v: Tensor) -> Tensor:
        if mode == "statistical":
            root = self.statistics.diffusion.index_select(0, self._layer(s))[0]
            v = v @ root.to(v.dtype)
        return self._linear_map(h, v)

    # Public torchsde-style interface.

    def f(self, t: Tensor, y: Tensor) -> Tensor:
        r"""Pathwise drift :math:`\sigma''(0) (dQ(y)/dt) / 2`, shape ``(batch, d)``."""
        return _SDEFunctions(self, "pathwise", clock=False).f(t, y)

    def g(self, t: Tensor, y: Tensor) -> Tensor:
        r"""Diffusion :math:`g(t, y)`, the ``(batch, d, m)`` map from dV to dH."""
        return _SDEFunctions(self, "pathwise", clock=False).g(t, y)

    def statistical_sde(self) -> nn.Module:
        """Return the statistical drift ``f`` and diffusion ``g`` as a module.

        The result has ``noise_type="general"``, ``sde_type="ito"`` and can be
        passed to ``torchsde.sdeint`` with any Brownian motion of ``m``
        channels; :meth:`sample` does this with a precomputed path.
        """
        return _SDEFunctions(self, "statistical", clock=False)

    def integrate(
        self,
        x: Tensor,
        ts: Tensor | None = None,
        *,
        method: str = "euler",
        adjoint: bool = False,
        backend: str = "torchsde",
        dt: float | None = None,
    ) -> LimitSolution:
        r"""Solve the pathwise SDE, driven by the network's own effective path.

        Args:
            x: Initial states, shape ``(batch, d)``, float32 or float64.
            ts: Increasing output times in :math:`[0, 1]`; ``None`` gives the
                knots :math:`k/L`. The first and last must be knots, and
                times in between that are not on the step grid are linearly
                interpolated between the neighbouring steps.
            method: ``"euler"`` (Euler-Maruyama), the Ito solver for general
                noise.
            adjoint: Not supported: torchsde's stochastic adjoint with general
                noise is orders of magnitude slower than backpropagating
                through Euler, which this method does.
            backend: ``"torchsde"`` or ``"stepper"`` (same Euler steps in a plain
                torch loop).
            dt: Step in units of :math:`t`; ``dt * L`` must be an integer.
                ``None`` steps once per layer.

        Returns:
            :class:`~deeplimits.limits.results.LimitSolution`, ``ys`` of shape
            ``(T, batch, d)``.

        Raises:
            ValueError: for ``dt < 1/L``, or a first or last output time that
                is not a knot. The path is known only at the knots, and Euler
                steps inside a layer on its linear interpolation converge to
                the Stratonovich solution (Wong-Zakai), not to this Ito SDE.
        """
        x = check_state(x, self.dim, self.A)
        self._check_solver(method, adjoint, backend)
        clock_ts = to_layer_clock(ts, self.depth).to(x.device)
        spacing = 1.0 if dt is None else check_positive_float("dt", dt) * self.depth
        self._check_pathwise_grid(clock_ts, spacing, dt)
        path = EffectivePath(
            self.increments().to(x.dtype), batch=x.shape[0], grid_only=True
        )
        return self._solve("pathwise", x, clock_ts, spacing, path, backend)

    def sample(
        self,
        x: Tensor,
        n_paths: int,
        ts: Tensor | None = None,
        *,
        dt: float | None = None,
        backend: str = "torchsde",
        seed: int | None = None,
    ) -> LimitSolution:
        r"""Sample the statistical SDE: new networks drawn from the limit.

        Each of the ``n_paths`` Brownian paths stands for one network and drives
        every input of ``x``. Increments are drawn up front on the step grid
        (``steps * n_paths * m`` numbers), which is faster than torchsde's
        ``BrownianInterval``.

        Args:
            x: Inputs, shape ``(batch, d)``.
            n_paths: Number of sampled paths (networks).
            ts, dt, backend: As for :meth:`integrate`.
            seed: Seed of the Brownian increments; ``None`` uses torch's global
                generator.

        Returns:
            :class:`~deeplimits.limits.results.LimitSolution` with ``ys`` of
            shape ``(T, n_paths, batch, d)``.
        """
        x = check_state(x, self.dim, self.A)
        check_int("n_paths", n_paths, minimum=1)
        self._check_solver("euler", False, backend)
        clock_ts = to_layer_clock(ts, self.depth).to(x.device)
        spacing = 1.0 if dt is None else check_positive_float("dt", dt) * self.depth

        # Brownian increments in units of t: variance spacing / L per step.
        start, end = float(clock_ts[0]), float(clock_ts[-1])
        steps = max(1, int(torch.tensor((end - start) / spacing).ceil()))
        generator = torch.Generator(device=x.device)
        generator.manual_seed(seed if seed is not None else int(torch.seed() % 2**63))
        noise = (
            torch.randn(
                (steps, n_paths, self.channels),
                generator=generator,
                dtype=x.dtype,
                device=x.device,
            )
            * (spacing / self.depth) ** 0.5
        )
        path = EffectivePath(noise, batch=x.shape[0], spacing=spacing, start=start)
        y0 = x.unsqueeze(0).expand(n_paths, -1, -1).reshape(-1, self.dim)
        solution = self._solve("statistical", y0, clock_ts, spacing, path, backend)
        ys = solution.ys.reshape(clock_ts.numel(), n_paths, x.shape[0], self.dim)
        return LimitSolution(**{**solution.__dict__, "ys": ys})

    def forward(self, x: Tensor) -> Tensor:
        """Return :math:`H(1)` of the pathwise SDE (Euler, one step per layer)."""
        return self.integrate(x, torch.tensor([0.0, 1.0], dtype=torch.float64)).final

    def _check_pathwise_grid(
        self, clock_ts: Tensor, spacing: float, dt: float | None
    ) -> None:
        """Reject pathwise steps that would fall inside a layer."""
        if spacing < 1.0 - 1e-9 or abs(spacing - round(spacing)) > 1e-9 * spacing:
            raise ValueError(
                f"dt must be a multiple n/L of 1/L = {1 / self.depth} for the "
                f"pathwise SDE, got dt={dt}. The network's path is known only at the "
                "layer knots, and Euler steps inside a layer on its linear "
                "interpolation converge to the Stratonovich solution, not to "
                "this Ito SDE. Use dt=None (one step per layer) or a multiple "
                "of 1/L."
            )
        ends = torch.stack([clock_ts[0], clock_ts[-1]])
        if bool((ends != ends.round()).any()):
            raise ValueError(
                "ts must start and end on layer knots k/L for the pathwise SDE, "
                f"got ts[0]={float(ends[0]) / self.depth}, ts[-1]="
                f"{float(ends[1]) / self.depth} with L={self.depth}. A partial "
                "first or last step would read the linear interpolation of the "
                "path inside a layer, whose Euler limit is the Stratonovich "
                "solution. Times between the ends may be anywhere."
            )

    def _check_solver(self, method: str, adjoint: bool, backend: str) -> None:
        if method != "euler":
            raise ValueError(
                f"method must be 'euler' for this Ito SDE with general noise, got "
                f"{method!r}. torchsde 0.2.6 rejects Milstein and SRK for general "
                "noise."
            )
        if adjoint:
            raise ValueError(
                "adjoint=True is not supported for the SDE limit: torchsde's "
                "stochastic adjoint with general noise is orders of magnitude "
                "slower than backpropagating through Euler. Call with "
                "adjoint=False; gradients flow through the Euler steps."
            )
        check_choice("backend", backend, _BACKENDS)

    def _solve(
        self,
        mode: str,
        y0: Tensor,
        clock_ts: Tensor,
        spacing: float,
        path: EffectivePath,
        backend: str,
    ) -> LimitSolution:
        sde = _SDEFunctions(self, mode, clock=True)
        start = time.perf_counter()
        if backend == "stepper":
            # torchsde steps from the first output time, so the grid starts there.
            grid = layer_grid(clock_ts, spacing, origin=float(clock_ts[0]))
            ys, nfe, n_steps = sde_euler(sde.f, sde.g_prod, y0, clock_ts, grid, path)
        else:
            ys = torchsde.sdeint(sde, y0, clock_ts, bm=path, method="euler", dt=spacing)
            assert isinstance(ys, Tensor)
            nfe = sde.nfe
            n_steps = max(nfe - 1, 0)
        return LimitSolution(
            ts=(clock_ts / self.depth).to(ys.dtype),
            ys=ys,
            method="euler",
            backend=backend,
            nfe=nfe,
            n_steps=n_steps,
            adjoint=False,
            wall_time=time.perf_counter() - start,
        )


def _with_replica_axis(
    A: object, b: object, delta: object
) -> tuple[Tensor, Tensor, Tensor]:
    check_tensor("A", A, ndim=(3, 4))
    check_tensor("b", b, ndim=(2, 3))
    check_tensor("delta", delta, ndim=(1, 2))
    assert isinstance(A, Tensor) and isinstance(b, Tensor)
    assert isinstance(delta, Tensor)
    if A.ndim == 3:
        A, b, delta = A.unsqueeze(0), b.unsqueeze(0), delta.unsqueeze(0)
    replicas, depth, rows, cols = A.shape
    if rows != cols:
        raise ValueError(
            f"A must have square layers (d, d), got shape {tuple(A.shape)}."
        )
    if tuple(b.shape) != (replicas, depth, rows) or tuple(delta.shape) != (
        replicas,
        depth,
    ):
        raise ValueError(
            f"b and delta must match A of shape {tuple(A.shape)} (with the same "
            f"replica axis), got {tuple(b.shape)} and {tuple(delta.shape)}."
        )
    return A, b.to(A.dtype), delta.to(A.dtype)
