r"""Local estimates of the drift, diffusion and quadratic term of a weight path.

Under the diffusive hypothesis the increments :math:`X_k = (\delta_k A_k,
\delta_k b_k)` (flattened to :math:`m = d^2 + d` channels) of the effective
path behave like :math:`X_k \approx \mu(t_k)/L + \Sigma(t_k)^{1/2}
\xi_k / \sqrt{L}` with :math:`\xi_k` standard normal. Averaging over a window
of :math:`w` layers (and over replicas, when the network has them) gives

.. math::

    \hat\mu_k = L\, \overline{X}, \qquad
    \hat\Sigma_k = L\, \frac{n}{n - 1} \left(\overline{X X^\top}
    - \overline{X}\,\overline{X}^\top\right),

with :math:`n` the number of increments in the window. The drift estimate is
noisy: its standard error is about :math:`\sqrt{\Sigma L / n}`, so a single
network needs a wide window (or replicas) before its drift means anything.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as functional
from torch import Tensor

__all__ = ["local_mean", "PathStatistics", "estimate_path_statistics"]


def local_mean(table: Tensor, window: int) -> tuple[Tensor, Tensor]:
    """Average a table ``(L, ...)`` over a centred window of ``window`` layers.

    The window is cut at the ends, so every entry is a plain mean of the layers
    that exist inside it; a window of ``2 L - 1`` or more averages every layer
    for every entry.

    Returns:
        ``(means, counts)``: means of shape ``(L, ...)`` and the number of
        layers averaged for each entry, shape ``(L,)``.
    """
    depth = table.shape[0]
    window = max(1, min(int(window), 2 * depth - 1))
    left = (window - 1) // 2
    right = window - 1 - left
    flat = table.reshape(depth, -1).T.unsqueeze(1)
    kernel = torch.ones(1, 1, window, dtype=table.dtype, device=table.device)
    padded = functional.pad(flat, (left, right))
    sums = functional.conv1d(padded, kernel).squeeze(1).T
    ones = functional.pad(torch.ones_like(flat[:1]), (left, right))
    counts = functional.conv1d(ones, kernel).reshape(depth)
    means = sums / counts[:, None]
    return means.reshape(table.shape), counts


class PathStatistics:
    """Local drift, diffusion factor and quadratic-term coefficients of a path.

    Attributes:
        drift: :math:`\\hat\\mu_k`, shape ``(L, m)``.
        diffusion: :math:`\\hat\\Sigma_k^{1/2}` (symmetric square root),
            shape ``(L, m, m)``.
        quadratic: Coefficients :math:`\\hat Q_k` of the quadratic term,
            shape ``(L, d, d + 1, d + 1)``, or ``None`` when
            :math:`\\sigma''(0) = 0`.
        window: Window width in layers actually used, at most :math:`2L - 1`.
    """

    def __init__(
        self,
        drift: Tensor,
        diffusion: Tensor,
        quadratic: Tensor | None,
        window: int,
    ) -> None:
        self.drift = drift
        self.diffusion = diffusion
        self.quadratic = quadratic
        self.window = window


def estimate_path_statistics(
    A: Tensor,
    b: Tensor,
    delta: Tensor,
    *,
    window: int,
    quadratic: bool,
) -> PathStatistics:
    r"""Estimate the local drift, diffusion and quadratic term from weights.

    Args:
        A: ``(R, L, d, d)``, ``b``: ``(R, L, d)``, ``delta``: ``(R, L)``, with
            ``R`` replicas pooled in every average.
        window: Window width in layers. A window of :math:`2L - 1` or more
            averages every layer at every position, so larger values act as
            :math:`2L - 1`.
        quadratic: Also estimate :math:`\hat Q_k^{i} = L\,
            \overline{\delta_k w_k^i (w_k^i)^\top}` with
            :math:`w_k^i = (A_k^{i\cdot}, b_k^i)`, so that the density of
            :math:`Q^i(H)` is :math:`(H, 1)^\top \hat Q_k^i (H, 1)`.
    """
    replicas, depth, dim, _ = A.shape
    increments = torch.cat(
        [
            (delta[..., None, None] * A).reshape(replicas, depth, dim * dim),
            delta[..., None] * b,
        ],
        dim=-1,
    )

    # Pool replicas first, then average over the window.
    first = increments.mean(0)
    second = torch.einsum("rki,rkj->kij", increments, increments) / replicas
    mean, counts = local_mean(first, window)
    moment, _ = local_mean(second, window)
    n = counts * replicas
    correction = torch.where(n > 1, n / (n - 1).clamp(min=1), torch.ones_like(n))
    outer = mean[:, :, None] * mean[:, None, :]
    covariance = depth * correction[:, None, None] * (moment - outer)
    covariance = 0.5 * (covariance + covariance.transpose(-1, -2))

    # Symmetric square root; rounding can leave tiny negative eigenvalues.
    values, vectors = torch.linalg.eigh(covariance)
    roots = values.clamp(min=0).sqrt()
    diffusion = (vectors * roots[:, None, :]) @ vectors.transpose(-1, -2)

    coefficients = None
    if quadratic:
        rows = torch.cat([A, b[..., None]], dim=-1)
        products = torch.einsum("rk,rkip,rkiq->kipq", delta, rows, rows) / replicas
        coefficients, _ = local_mean(depth * products, window)
    used = min(int(window), 2 * depth - 1)
    return PathStatistics(depth * mean, diffusion, coefficients, used)


def default_window(depth: int) -> int:
    """Return the default estimation window, about an eighth of the depth."""
    return max(2, math.ceil(depth / 8))
