r"""Time-dependent weights on the layer grid and effective weight paths.

Every limit is integrated on the *layer clock* :math:`s = L t \in [0, L]`, in
which the layer knots :math:`t_k = k/L` are the integers :math:`s = k`.
Integers are exact in float32 and float64, so solver times that land on a knot
stay on it at any depth. Converting user times :math:`t` to the layer clock is
done in float64, and values within a few rounding errors of an integer are
snapped to it (:func:`to_layer_clock`).

Two objects live on this grid:

* :class:`PiecewiseFunction`, a table :math:`v_0, \dots, v_{L-1}` read as a
  piecewise constant function (value :math:`v_k` on :math:`[t_k, t_{k+1})`)
  or a piecewise linear one (value :math:`v_k` at :math:`t_k`). The linear
  form continues its last slope on the last interval. Lookups use torch
  indexing, so gradients flow to the table.
* :class:`EffectivePath`, the continuous piecewise linear path through the
  cumulative sums of increments on a uniform grid, with the interface of
  torchsde's ``BaseBrownian`` so that ``torchsde.sdeint`` can be driven by it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as functional
from torch import Tensor, nn
from torchsde import BaseBrownian

from .._checks import check_choice, check_tensor

__all__ = [
    "INTERPOLATIONS",
    "EffectivePath",
    "PiecewiseFunction",
    "smooth_table",
    "to_layer_clock",
]

INTERPOLATIONS: tuple[str, ...] = ("constant", "linear")

# Relative distance, in units of the dtype's machine epsilon, under which a time
# counts as lying on a knot.
_SNAP_EPSILONS = 64


def to_layer_clock(ts: Tensor | None, depth: int) -> Tensor:
    r"""Convert output times :math:`t \in [0, 1]` to the layer clock :math:`s = Lt`.

    The product is formed in float64. Values within
    :math:`64\, \varepsilon\, L` of an integer (with :math:`\varepsilon` the
    machine epsilon of the dtype of ``ts``) are replaced by that integer, so
    a float32 grid such as ``torch.linspace(0, 1, L + 1)`` lands exactly on
    the knots.

    Args:
        ts: Increasing times, shape ``(T,)`` with ``T >= 2``, inside
            :math:`[0, 1]`; ``None`` gives the knots :math:`k/L`, ``k = 0..L``.
        depth: Number of layers :math:`L`.

    Returns:
        Layer-clock times, float64, shape ``(T,)``, on the device of ``ts``.

    Raises:
        TypeError: if ``ts`` is not a floating tensor.
        ValueError: if ``ts`` is not one-dimensional with at least two
            strictly increasing values inside :math:`[0, 1]`.
    """
    if ts is None:
        return torch.arange(depth + 1, dtype=torch.float64)
    check_tensor("ts", ts, ndim=1)
    if ts.numel() < 2:
        raise ValueError(
            f"ts must contain at least 2 times (start and end), got {ts.numel()}. "
            "Pass e.g. torch.tensor([0.0, 1.0]), or ts=None for the layer knots."
        )
    tolerance = _SNAP_EPSILONS * torch.finfo(ts.dtype).eps * max(depth, 1)
    clock = ts.detach().to(torch.float64) * depth
    nearest = clock.round()
    clock = torch.where((clock - nearest).abs() <= tolerance, nearest, clock)
    if bool((clock[1:] <= clock[:-1]).any()):
        raise ValueError(
            "ts must be strictly increasing, got values "
            f"{ts.detach().cpu().tolist()[:8]}... Sort them and drop repeats."
        )
    if float(clock[0]) < 0.0 or float(clock[-1]) > depth:
        raise ValueError(
            f"ts must lie inside [0, 1], got the range [{float(ts[0])}, "
            f"{float(ts[-1])}]. The limits are defined on the unit interval."
        )
    return clock


def smooth_table(values: Tensor, width: float) -> Tensor:
    r"""Smooth a table along its first axis with a Gaussian kernel.

    Each entry becomes the kernel-weighted mean of its neighbours, with a
    Gaussian of standard deviation ``width`` layers truncated at four standard
    deviations. Near the ends the weights are renormalised over the layers that
    exist, so a constant table stays constant. The operation is linear in
    ``values`` and differentiable.

    Args:
        values: Table of shape ``(L, ...)``.
        width: Standard deviation of the kernel, in layers; 0 returns
            ``values`` unchanged.

    Returns:
        Smoothed table of the same shape and dtype.
    """
    if width < 0 or not math.isfinite(width):
        raise ValueError(
            f"smoothing must be a finite width >= 0 in layers, got {width!r}. "
            "Pass None or 0 for no smoothing."
        )
    if width == 0 or values.shape[0] == 1:
        return values
    depth = values.shape[0]
    radius = min(int(math.ceil(4 * width)), depth - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=values.dtype)
    kernel = torch.exp(-0.5 * (offsets / width) ** 2).to(values.device)
    flat = values.reshape(depth, -1).T.unsqueeze(1)
    weighted = functional.conv1d(flat, kernel.view(1, 1, -1), padding=radius)
    mass = functional.conv1d(
        torch.ones_like(flat[:1]), kernel.view(1, 1, -1), padding=radius
    )
    return (weighted / mass).squeeze(1).T.reshape(values.shape)


class PiecewiseFunction(nn.Module):
    r"""Weights that depend on time through a table on the layer grid.

    With ``interpolation="constant"`` the value on :math:`[t_k, t_{k+1})` is
    :math:`v_k` (the value at :math:`t = 1` is :math:`v_{L-1}`). With
    ``"linear"`` the function passes through :math:`(t_k, v_k)` for
    ``k = 0..L-1``, is linear in between, and continues the last slope on
    :math:`[t_{L-1}, 1]`. Lookups use torch indexing, so gradients flow to the
    table, and they never move data between devices.

    Args:
        values: Table :math:`v`, shape ``(L, *shape)``.
        interpolation: ``"constant"`` or ``"linear"``.
        smoothing: Standard deviation, in layers, of a Gaussian smoothing
            applied to the table once (:func:`smooth_table`); ``None`` for none.
        trainable: Register the table as a parameter (``True``) or a buffer.

    Example:
        >>> import torch
        >>> f = PiecewiseFunction(torch.tensor([1.0, 3.0]), interpolation="linear")
        >>> f(torch.tensor(0.25))
        tensor(2.)
    """

    def __init__(
        self,
        values: Tensor,
        *,
        interpolation: str = "constant",
        smoothing: float | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__()
        check_tensor("values", values)
        if values.ndim < 1 or values.shape[0] < 1:
            raise ValueError(
                "values must have a leading layer axis of length >= 1, got shape "
                f"{tuple(values.shape)}."
            )
        self.interpolation = check_choice(
            "interpolation", interpolation, INTERPOLATIONS
        )
        table = values.detach().clone()
        if smoothing is not None:
            table = smooth_table(table, float(smoothing))
        self.smoothing = smoothing
        if trainable:
            self.values = nn.Parameter(table)
        else:
            self.register_buffer("values", table)

    @property
    def depth(self) -> int:
        """Number :math:`L` of layers in the table."""
        return int(self.values.shape[0])

    def extra_repr(self) -> str:
        return (
            f"depth={self.depth}, shape={tuple(self.values.shape[1:])}, "
            f"interpolation={self.interpolation!r}, smoothing={self.smoothing}"
        )

    def at_clock(self, s: Tensor) -> Tensor:
        """Return the value at layer-clock time ``s`` (0-d), shape ``(*shape)``."""
        depth = self.depth
        values = self.values
        s = s.to(device=values.device, dtype=torch.float64)
        if self.interpolation == "constant" or depth == 1:
            index = s.floor().clamp(0, depth - 1).long().reshape(1)
            return values.index_select(0, index)[0]
        index = s.floor().clamp(0, depth - 2).long().reshape(1)
        weight = (s - index.to(s.dtype)).to(values.dtype)
        pair = values.index_select(0, torch.cat([index, index + 1]))
        return pair[0] + weight * (pair[1] - pair[0])

    def forward(self, t: Tensor | float) -> Tensor:
        """Return the value at time ``t`` in :math:`[0, 1]`, shape ``(*shape)``."""
        t_tensor = torch.as_tensor(t, dtype=torch.float64, device=self.values.device)
        return self.at_clock(t_tensor * self.depth)

    def knots(self) -> tuple[Tensor, str]:
        """Return the interior non-smooth points on the layer clock and their kind.

        A piecewise constant function jumps at ``1..L-1`` (kind ``"jump_t"`` in
        torchdiffeq's options); a piecewise linear one has kinks at
        ``1..L-2`` (kind ``"step_t"``).
        """
        if self.interpolation == "constant":
            return torch.arange(1, self.depth, dtype=torch.float64), "jump_t"
        return torch.arange(1, max(self.depth - 1, 1), dtype=torch.float64), "step_t"


# Relative distance from a grid point, in grid steps, that counts as on the grid
# for ``EffectivePath(grid_only=True)``; it absorbs float accumulation in
# torchsde's step loop.
_GRID_TOLERANCE = 1e-7


class EffectivePath(BaseBrownian):
    r"""A continuous path through cumulative increments, usable as torchsde's ``bm``.

    Given increments :math:`X_0, \dots, X_{N-1}` on a uniform grid of spacing
    ``spacing`` (layer-clock units), the path is :math:`V(s_j) = \sum_{i<j} X_i`
    at :math:`s_j = j \cdot \text{spacing}`, linear in between, and constant
    after the last grid point. Called as ``path(sa, sb)`` it returns
    :math:`V(s_b) - V(s_a)` with shape ``(n_paths * batch, channels)``: each of
    the ``n_paths`` paths is repeated for the ``batch`` inputs that share it,
    path-major, matching a state of shape ``(n_paths * batch, d)``.

    For the network's own path (``n_paths = 1``, spacing 1) the increments are
    :math:`(\delta_k A_k, \delta_k b_k)` flattened to ``d * d + d`` channels, and
    an Euler step of one layer reads exactly one increment.

    Args:
        increments: ``(N, channels)`` or ``(N, n_paths, channels)``.
        batch: Number of inputs that share each path.
        spacing: Grid spacing on the layer clock.
        start: Layer-clock time of the first grid point.
        grid_only: Raise ``ValueError`` when asked for the path at a time
            off its grid, in place of interpolating linearly. Set it for the
            network's own path, which is known only at the layer knots: an
            Euler step finer than the grid would read the linear
            interpolation, and those steps converge to the Stratonovich
            solution, not the Ito one.
    """

    def __init__(
        self,
        increments: Tensor,
        *,
        batch: int,
        spacing: float = 1.0,
        start: float = 0.0,
        grid_only: bool = False,
    ) -> None:
        check_tensor("increments", increments, ndim=(2, 3), finite=False)
        if increments.ndim == 2:
            increments = increments.unsqueeze(1)
        if batch < 1 or spacing <= 0:
            raise ValueError(
                f"batch must be >= 1 and spacing > 0, got batch={batch}, "
                f"spacing={spacing}."
            )
        zero = increments.new_zeros((1, *increments.shape[1:]))
        self.cumulative = torch.cat([zero, increments.cumsum(0)], dim=0)
        self.increments = increments
        self.batch = int(batch)
        self.spacing = float(spacing)
        self.start = float(start)
        self.grid_only = bool(grid_only)

    def _locate(self, s: Tensor | float) -> tuple[int, float]:
        steps = self.increments.shape[0]
        position = (float(s) - self.start) / self.spacing
        if self.grid_only and abs(position - round(position)) > _GRID_TOLERANCE:
            raise ValueError(
                f"the path is known only at its grid points start + j * spacing "
                f"(start={self.start}, spacing={self.spacing} on the layer clock), "
                f"got time {float(s)}. Linear interpolation inside a layer would "
                "turn Euler steps finer than one layer into the Stratonovich "
                "solution. Step on the grid (dt = 1/L or a multiple of it)."
            )
        index = min(max(int(position // 1), 0), steps - 1)
        return index, min(max(position - index, 0.0), 1.0)

    def _difference(self, sa: Tensor | float, sb: Tensor | float) -> Tensor:
        # Increments inside one or two grid steps are read from the table
        # directly, so a one-layer Euler step reads exactly (delta_k A_k, delta_k b_k).
        ka, wa = self._locate(sa)
        kb, wb = self._locate(sb)
        increments = self.increments
        if ka == kb:
            return (wb - wa) * increments[ka]
        if kb == ka + 1:
            head = increments[ka] if wa == 0.0 else (1.0 - wa) * increments[ka]
            return head if wb == 0.0 else head + wb * increments[kb]
        middle = self.cumulative[kb] - self.cumulative[ka + 1]
        return middle + (1.0 - wa) * increments[ka] + wb * increments[kb]

    def _spread(self, value: Tensor) -> Tensor:
        n_paths, channels = value.shape
        expanded = value.unsqueeze(1).expand(n_paths, self.batch, channels)
        return expanded.reshape(n_paths * self.batch, channels)

    def __call__(self, ta, tb=None, return_U=False, return_A=False):  # noqa: N803
        if return_U or return_A:
            raise ValueError(
                "EffectivePath carries no space-time or Levy area; use a solver "
                "that needs only increments (method='euler' for Ito general noise)."
            )
        if tb is None:
            return self._spread(self._difference(self.start, ta))
        return self._spread(self._difference(ta, tb))

    def __repr__(self) -> str:
        steps, n_paths, channels = self.increments.shape
        return (
            f"EffectivePath(steps={steps}, n_paths={n_paths}, channels={channels}, "
            f"batch={self.batch}, spacing={self.spacing})"
        )

    @property
    def dtype(self) -> torch.dtype:
        return self.increments.dtype

    @property
    def device(self) -> torch.device:
        return self.increments.device

    @property
    def shape(self) -> tuple[int, int]:
        _, n_paths, channels = self.increments.shape
        return (n_paths * self.batch, channels)

    @property
    def levy_area_approximation(self) -> str:
        return "none"
