r"""Fixed-grid torch solvers on the layer clock, the fast path for aligned grids.

These loops do what ``torchdiffeq.odeint(method="euler" | "midpoint" | "rk4")``
and ``torchsde.sdeint(method="euler")`` do on a fixed grid, without their
per-step bookkeeping. Step boundaries are integers or simple fractions on the
layer clock :math:`s = L t`, so every step lies inside one layer interval and
piecewise constant weights are read from the right piece. Output times between
grid points do not change the steps and are interpolated linearly between
them. An evaluation at the end of a step uses the time just before the step
end, as torchdiffeq does with ``perturb=True``. The tests check agreement
with torchdiffeq and torchsde.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["STEPPER_ODE_METHODS", "layer_grid", "sde_euler", "solve_ode_fixed"]

STEPPER_ODE_METHODS: tuple[str, ...] = ("euler", "midpoint", "rk4")


def layer_grid(clock_ts: Tensor, spacing: float, *, origin: float = 0.0) -> Tensor:
    r"""Return the solver grid: the output interval cut at multiples of ``spacing``.

    Output times between grid points are not added to the grid, so a fixed-grid
    solve takes the same steps whatever ``ts`` contains. The solvers return
    those outputs by linear interpolation between the neighbouring steps, as
    torchdiffeq's fixed-grid solvers and torchsde do.

    Args:
        clock_ts: Output times on the layer clock, float64, increasing.
        spacing: Step on the layer clock: ``1/n`` or an integer ``n``, so that
            grid points are exact binary fractions or integers.
        origin: Layer-clock time of one grid point; the grid is
            ``origin + j * spacing``.

    Returns:
        Sorted float64 grid that starts at ``clock_ts[0]``, ends at
        ``clock_ts[-1]`` and contains every ``origin + j * spacing`` in between.
    """
    if spacing <= 1:
        per_layer = round(1.0 / spacing)
        if not math.isclose(per_layer * spacing, 1.0, rel_tol=1e-9):
            raise ValueError(
                f"dt * depth must be 1/n or an integer n so that steps stay "
                f"aligned with the layer knots, got dt * depth = {spacing}."
            )
        scale, factor = per_layer, 1.0
    else:
        factor = float(round(spacing))
        if not math.isclose(factor, spacing, rel_tol=1e-9):
            raise ValueError(
                f"dt * depth must be 1/n or an integer n so that steps stay "
                f"aligned with the layer knots, got dt * depth = {spacing}."
            )
        scale = 1
    start, end = float(clock_ts[0]), float(clock_ts[-1])
    first = math.ceil((start - origin) * scale / factor)
    last = math.floor((end - origin) * scale / factor)
    indices = torch.arange(first, last + 1, dtype=torch.float64)
    points = origin + indices * factor / scale
    points = points[(points > start) & (points < end)].to(clock_ts.device)
    return torch.cat([clock_ts[:1], points, clock_ts[-1:]])


def _interpolate_outputs(
    clock_ts: Tensor, grid: Tensor, states: list[Tensor]
) -> Tensor:
    r"""Read the outputs off the steps by linear interpolation.

    ``states[j]`` is the solution at ``grid[j]``. An output time equal to a
    grid point returns that state unchanged, so outputs on the grid are exact.
    """
    outputs = []
    for t in clock_ts.tolist():
        j = int(torch.searchsorted(grid, torch.tensor(t, dtype=grid.dtype)))
        j = min(j, grid.numel() - 1)
        if float(grid[j]) == t:
            outputs.append(states[j])
            continue
        s0, s1 = grid[j - 1], grid[j]
        weight = ((t - s0) / (s1 - s0)).to(states[j].dtype)
        outputs.append(states[j - 1] + weight * (states[j] - states[j - 1]))
    return torch.stack(outputs)


def _before(s: Tensor, start: Tensor) -> Tensor:
    """Return the representable number just below ``s``, towards ``start``."""
    return torch.nextafter(s, start)


def solve_ode_fixed(
    field: Callable[[Tensor, Tensor], Tensor],
    y0: Tensor,
    clock_ts: Tensor,
    grid: Tensor,
    method: str,
) -> tuple[Tensor, int, int]:
    r"""Integrate :math:`dy/ds = F(s, y)` with a fixed-grid Runge-Kutta method.

    Args:
        field: :math:`F(s, y)` with ``s`` a 0-d float64 tensor and ``y`` of
            shape ``(batch, d)``.
        y0: Initial state at ``clock_ts[0]``, shape ``(batch, d)``.
        clock_ts: Output times on the layer clock, float64, shape ``(T,)``.
        grid: Solver grid from :func:`layer_grid`, from ``clock_ts[0]`` to
            ``clock_ts[-1]``.
        method: ``"euler"``, ``"midpoint"`` or ``"rk4"``.

    Returns:
        ``(ys, nfe, n_steps)`` with ``ys`` of shape ``(T, batch, d)``; outputs
        between grid points are linearly interpolated between the steps.
    """
    evaluations = {"euler": 1, "midpoint": 2, "rk4": 4}[method]
    ys = [y0]
    y = y0
    dtype = y0.dtype
    for s0, s1 in zip(grid[:-1], grid[1:], strict=True):
        ds = (s1 - s0).to(dtype)
        if method == "euler":
            y = y + ds * field(s0, y)
        elif method == "midpoint":
            k1 = field(s0, y)
            y = y + ds * field(0.5 * (s0 + s1), y + 0.5 * ds * k1)
        else:
            middle = 0.5 * (s0 + s1)
            k1 = field(s0, y)
            k2 = field(middle, y + 0.5 * ds * k1)
            k3 = field(middle, y + 0.5 * ds * k2)
            k4 = field(_before(s1, s0), y + ds * k3)
            y = y + ds * (k1 + 2 * k2 + 2 * k3 + k4) / 6
        ys.append(y)
    n_steps = grid.numel() - 1
    return _interpolate_outputs(clock_ts, grid, ys), evaluations * n_steps, n_steps


def sde_euler(
    drift: Callable[[Tensor, Tensor], Tensor],
    diffusion_product: Callable[[Tensor, Tensor, Tensor], Tensor],
    y0: Tensor,
    clock_ts: Tensor,
    grid: Tensor,
    bm: Callable[[Tensor, Tensor], Tensor],
) -> tuple[Tensor, int, int]:
    r"""Integrate the Ito SDE :math:`dy = f\,ds + g\,dW` by Euler-Maruyama.

    Each step is :math:`y \leftarrow y + f(s_0, y)\,\Delta s +
    g(s_0, y)\,(W(s_1) - W(s_0))`, the left-point rule that defines the Ito
    integral, on the fixed ``grid``.

    Args:
        drift: :math:`f(s, y)`, shape ``(batch, d)``.
        diffusion_product: :math:`(s, y, v) \mapsto g(s, y) v`, shape
            ``(batch, d)`` for ``v`` of shape ``(batch, m)``.
        y0: Initial state, shape ``(batch, d)``.
        clock_ts: Output times on the layer clock, float64.
        grid: Solver grid from ``clock_ts[0]`` to ``clock_ts[-1]``; outputs
            between grid points are linearly interpolated between the steps.
        bm: ``bm(s0, s1)`` returns :math:`W(s_1) - W(s_0)`, shape ``(batch, m)``.

    Returns:
        ``(ys, nfe, n_steps)`` with ``ys`` of shape ``(T, batch, d)``.
    """
    ys = [y0]
    y = y0
    for s0, s1 in zip(grid[:-1], grid[1:], strict=True):
        ds = (s1 - s0).to(y0.dtype)
        y = y + drift(s0, y) * ds + diffusion_product(s0, y, bm(s0, s1))
        ys.append(y)
    n_steps = grid.numel() - 1
    return _interpolate_outputs(clock_ts, grid, ys), n_steps, n_steps
