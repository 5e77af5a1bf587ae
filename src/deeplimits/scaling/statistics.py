r"""Depth-scaling statistics of a per-layer weight sequence.

A trained residual network :math:`h_{k+1} = h_k + \delta_k \sigma(A_k h_k + b_k)`
gives per-layer sequences :math:`X_0, \dots, X_{L-1}`: :math:`A_k`, :math:`b_k`,
:math:`\delta_k`, :math:`\delta_k A_k` or :math:`\delta_k b_k`. Each function
here maps such a sequence to one number, with :math:`\|\cdot\|` the Frobenius
norm over the trailing axes (the absolute value for scalar sequences):

==============================  ===============================================
statistic                       definition
==============================  ===============================================
:func:`max_norm`                :math:`\max_k \|X_k\|`
:func:`root_ssq`                :math:`(\sum_k \|X_k\|^2)^{1/2}`
:func:`rms`                     :math:`(L^{-1} \sum_k \|X_k\|^2)^{1/2}`
:func:`sobolev_norm`            :math:`(L \sum_{k} \|X_{k+1} - X_k\|^2)^{1/2}`
:func:`quadratic_variation`     :math:`\sum_{k} \|X_{k+1} - X_k\|^2`
:func:`max_increment`           :math:`\max_{k} \|X_{k+1} - X_k\|`
:func:`max_cumulative_sum`      :math:`\max_{0 \le m \le L} \|S_m\|`,
                                :math:`S_m = \sum_{k<m} X_k`
:func:`max_detrended_cumulative_sum`  :math:`\max_m \|S_m - \bar S_m\|`, with
                                :math:`\bar S_m` a centred moving average
==============================  ===============================================

Increment sums run over :math:`k = 0, \dots, L-2`. Under a power law
:math:`\text{statistic} \sim C L^{-\beta}` the fitted exponent is :math:`\beta`
(:mod:`deeplimits.scaling.regression`).

Shape convention: every function takes ``x`` of shape ``(L, *trailing)`` and
returns a 0-d float64 tensor, or, with ``replicas=True``, ``x`` of shape
``(R, L, *trailing)`` and returns a float64 tensor of shape ``(R,)``, one value
per replica. ``trailing`` is ``(d, d)`` for :math:`A`, ``(d,)`` for :math:`b` and
empty for :math:`\delta`.

Reference: A.-S. Cohen, R. Cont, A. Rossier, R. Xu, "Scaling Properties of
Deep Residual Networks", ICML 2021 (section 3 defines the scaling statistics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._checks import check_int, describe

__all__ = [
    "STATISTICS",
    "DEFAULT_WINDOW",
    "max_norm",
    "root_ssq",
    "rms",
    "sobolev_norm",
    "quadratic_variation",
    "max_increment",
    "max_cumulative_sum",
    "max_detrended_cumulative_sum",
    "roughness_ratio",
    "effective_layer_count",
    "cumulative_sum",
]

DEFAULT_WINDOW = 5
"""Default number of points in the centred moving average of
:func:`max_detrended_cumulative_sum` (the point itself and 2 on each side)."""


def _as_layers(x: Any, replicas: bool, *, min_layers: int = 1) -> Tensor:
    """Return ``x`` as a float64 tensor of shape ``(R, L, n)``."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise TypeError(
            f"x must be a torch.Tensor or numpy array of shape (L, ...) or "
            f"(R, L, ...), got {describe(x)}."
        )
    if not isinstance(replicas, bool):
        raise TypeError(f"replicas must be a bool, got {describe(replicas)}.")
    minimum_ndim = 2 if replicas else 1
    if x.ndim < minimum_ndim:
        layout = "(R, L, ...)" if replicas else "(L, ...)"
        raise ValueError(
            f"x must have shape {layout} with replicas={replicas}, got shape "
            f"{tuple(x.shape)}. Pass replicas=False for a single sequence."
        )
    if x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"x must hold real numbers, got dtype {x.dtype}.")

    x = x.detach().to(device="cpu", dtype=torch.float64)
    if not replicas:
        x = x.unsqueeze(0)
    layers = x.shape[1]
    if layers < min_layers:
        raise ValueError(
            f"x must have at least {min_layers} layers along its layer axis for "
            f"this statistic, got shape {tuple(x.shape[int(not replicas) :])} with "
            f"{layers} layers."
        )

    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(
            f"x contains {bad} NaN or infinite entries; statistics of such a "
            "sequence are undefined. Check the weights for divergence."
        )
    return x.reshape(x.shape[0], layers, -1)


def _finish(values: Tensor, replicas: bool) -> Tensor:
    return values if replicas else values[0]


def _layer_norms(x: Tensor) -> Tensor:
    """Frobenius norms ``(R, L)`` of a ``(R, L, n)`` sequence."""
    return torch.linalg.vector_norm(x, dim=-1)


def _increment_norms(x: Tensor) -> Tensor:
    """Norms ``(R, L - 1)`` of :math:`X_{k+1} - X_k`."""
    return torch.linalg.vector_norm(x[:, 1:] - x[:, :-1], dim=-1)


def cumulative_sum(x: Any, *, replicas: bool = False) -> Tensor:
    r"""Return the cumulative path :math:`S_m = \sum_{k<m} X_k`, :math:`m = 0..L`.

    Returns:
        float64 tensor of shape ``(L + 1, *trailing)``, or ``(R, L + 1,
        *trailing)`` with ``replicas=True``; :math:`S_0 = 0`.
    """
    flat = _as_layers(x, replicas)
    path = torch.cat([flat.new_zeros(flat.shape[0], 1, flat.shape[2]), flat], 1)
    path = path.cumsum(dim=1)
    trailing = tuple(x.shape[2 if replicas else 1 :])
    path = path.reshape(path.shape[0], path.shape[1], *trailing)
    return _finish(path, replicas)


def max_norm(x: Any, *, replicas: bool = False) -> Tensor:
    r"""Compute the max norm :math:`\max_k \|X_k\|`.

    Under smooth scaling :math:`X_k = L^{-\beta} \bar X(k/L)` this behaves like
    :math:`L^{-\beta} \sup_t \|\bar X(t)\|`.

    Args:
        x: ``(L, *trailing)``, or ``(R, L, *trailing)`` with ``replicas=True``.
        replicas: Whether the first axis of ``x`` indexes replicas.

    Returns:
        float64 tensor of shape ``()``, or ``(R,)`` with replicas.

    Example:
        >>> float(max_norm(torch.tensor([1.0, -3.0, 2.0])))
        3.0
    """
    return _finish(_layer_norms(_as_layers(x, replicas)).amax(dim=1), replicas)


def root_ssq(x: Any, *, replicas: bool = False) -> Tensor:
    r"""Compute the root sum of squares :math:`(\sum_k \|X_k\|^2)^{1/2}`.

    For the effective weights :math:`X_k = \delta_k A_k` its square is the
    quadratic variation of the cumulative path :math:`S_m = \sum_{k<m} X_k`
    at resolution :math:`1/L`: it tends to 0 for smooth scaling
    (:math:`X_k = O(1/L)`) and to a positive limit for diffusive scaling
    (:math:`X_k = O(L^{-1/2})`).

    Args and returns as in :func:`max_norm`.
    """
    flat = _as_layers(x, replicas)
    return _finish(torch.linalg.vector_norm(flat, dim=(1, 2)), replicas)


def rms(x: Any, *, replicas: bool = False) -> Tensor:
    r"""Compute the root mean square :math:`(L^{-1} \sum_k \|X_k\|^2)^{1/2}`.

    This is the discrete :math:`L^2([0, 1])` norm of :math:`t \mapsto X_{\lfloor
    Lt \rfloor}`. It is the default statistic for exponents: under smooth
    scaling it behaves like :math:`L^{-\beta} \|\bar X\|_{L^2}`, and unlike
    :func:`max_norm` it carries no :math:`\sqrt{\log L}` extreme-value factor for
    i.i.d. (diffusive) layers.

    Args and returns as in :func:`max_norm`.
    """
    flat = _as_layers(x, replicas)
    mean_square = flat.pow(2).sum(dim=2).mean(dim=1)
    return _finish(mean_square.sqrt(), replicas)


def sobolev_norm(x: Any, *, replicas: bool = False) -> Tensor:
    r"""Compute the discrete Sobolev (:math:`H^1`) seminorm.

    .. math::

        \Big(L \sum_{k=0}^{L-2} \|X_{k+1} - X_k\|^2\Big)^{1/2},

    the :math:`L^2` norm of the finite-difference derivative
    :math:`L (X_{k+1} - X_k)` in :math:`t = k/L`. For smooth
    :math:`X_k = L^{-\beta} \bar X(k/L)` it behaves like
    :math:`L^{-\beta} \|\bar X'\|_{L^2}`. For i.i.d. layers it grows like
    :math:`L` times their spread.

    Args and returns as in :func:`max_norm`; needs :math:`L \ge 2`.
    """
    flat = _as_layers(x, replicas, min_layers=2)
    layers = flat.shape[1]
    squares = _increment_norms(flat).pow(2).sum(dim=1)
    return _finish((layers * squares).sqrt(), replicas)


def quadratic_variation(x: Any, *, replicas: bool = False) -> Tensor:
    r"""Compute the quadratic variation of the sequence itself.

    .. math::

        \sum_{k=0}^{L-2} \|X_{k+1} - X_k\|^2.

    This is the quadratic variation of :math:`k \mapsto X_k`, not of its
    cumulative path (that one is :func:`root_ssq` squared).

    Args and returns as in :func:`max_norm`; needs :math:`L \ge 2`.
    """
    flat = _as_layers(x, replicas, min_layers=2)
    return _finish(_increment_norms(flat).pow(2).sum(dim=1), replicas)


def max_increment(x: Any, *, replicas: bool = False) -> Tensor:
    r"""Compute the largest increment :math:`\max_{k} \|X_{k+1} - X_k\|`.

    Args and returns as in :func:`max_norm`; needs :math:`L \ge 2`.
    """
    flat = _as_layers(x, replicas, min_layers=2)
    return _finish(_increment_norms(flat).amax(dim=1), replicas)


def max_cumulative_sum(x: Any, *, replicas: bool = False) -> Tensor:
    r"""Compute :math:`\max_{0 \le m \le L} \|S_m\|` with :math:`S_m = \sum_{k<m} X_k`.

    The sup norm of the cumulative path, which converges to the effective path
    :math:`V_t = \lim_L S_{\lfloor Lt \rfloor}` under either scaling hypothesis.

    Args and returns as in :func:`max_norm`.
    """
    flat = _as_layers(x, replicas)
    path = flat.cumsum(dim=1)
    # S_0 = 0 never exceeds the others, so m = 1..L suffices.
    return _finish(torch.linalg.vector_norm(path, dim=2).amax(dim=1), replicas)


def _centred_moving_average(path: Tensor, window: int) -> Tensor:
    """Centred moving average along axis 1 of ``path`` ``(R, M, n)``.

    The half-width at index m is ``min(window // 2, m, M - 1 - m)``, so the
    window stays centred and shrinks near both ends.
    """
    points = path.shape[1]
    prefix = torch.cat([path.new_zeros(path.shape[0], 1, path.shape[2]), path], 1)
    prefix = prefix.cumsum(dim=1)
    index = torch.arange(points)
    half = torch.minimum(torch.full_like(index, window // 2), index)
    half = torch.minimum(half, points - 1 - index)
    upper = prefix[:, index + half + 1]
    lower = prefix[:, index - half]
    count = (2 * half + 1).to(path.dtype).reshape(1, points, 1)
    return (upper - lower) / count


def max_detrended_cumulative_sum(
    x: Any, *, replicas: bool = False, window: int = DEFAULT_WINDOW
) -> Tensor:
    r"""Compute the largest deviation of the cumulative path from its local mean.

    .. math::

        \max_{0 \le m \le L} \big\|S_m - \bar S_m\big\|, \qquad
        \bar S_m = \frac{1}{2h_m + 1} \sum_{j=m-h_m}^{m+h_m} S_j, \qquad
        h_m = \min\big(\lfloor w/2 \rfloor, m, L - m\big),

    with :math:`S_m = \sum_{k<m} X_k` and ``window`` :math:`= w` points. The
    half-width shrinks near both ends so the average stays centred; it is 0 at
    :math:`m = 0` and :math:`m = L`. A centred average reproduces a linear
    path exactly, so a constant sequence gives 0, a smooth sequence gives
    :math:`O(w^2 L^{-2})` times the scale of :math:`S`, and a sequence of i.i.d.
    layers of size :math:`s` gives order :math:`s\sqrt{w}`. The window is a
    number of layers, the same at every depth.

    Args:
        x: ``(L, *trailing)``, or ``(R, L, *trailing)`` with ``replicas=True``.
        replicas: Whether the first axis of ``x`` indexes replicas.
        window: Odd number of points :math:`w \ge 3` in the moving average.

    Returns:
        float64 tensor of shape ``()``, or ``(R,)`` with replicas.
    """
    check_int("window", window, minimum=3)
    if window % 2 == 0:
        raise ValueError(
            f"window must be odd so the moving average is centred, got {window}. "
            f"Pass {window + 1} or {window - 1}."
        )
    flat = _as_layers(x, replicas)
    path = torch.cat([flat.new_zeros(flat.shape[0], 1, flat.shape[2]), flat], 1)
    path = path.cumsum(dim=1)
    deviation = path - _centred_moving_average(path, window)
    return _finish(torch.linalg.vector_norm(deviation, dim=2).amax(dim=1), replicas)


def roughness_ratio(x: Any, *, replicas: bool = False) -> Tensor:
    r"""Compute the single-network roughness ratio of the cumulative path.

    With :math:`S_m = \sum_{k<m} X_k` and :math:`n = 2\lfloor L/2 \rfloor`, compare
    the quadratic variation of :math:`S` at resolution :math:`1/L` with that of
    :math:`S` sampled every second layer:

    .. math::

        Q_{\text{fine}} = \sum_{k=0}^{n-1} \|X_k\|^2, \qquad
        Q_{\text{coarse}} = \sum_{j=0}^{n/2-1} \|X_{2j} + X_{2j+1}\|^2, \qquad
        \rho = Q_{\text{coarse}} / Q_{\text{fine}}.

    For odd :math:`L` the last layer is left out of both sums. Convention:
    coarse over fine, so :math:`0 \le \rho \le 2` (by
    :math:`\|a+b\|^2 \le 2\|a\|^2 + 2\|b\|^2`). A smooth path
    (:math:`X_{2j+1} \approx X_{2j}`) gives :math:`\rho \approx 2`; independent
    centred increments (a Brownian path) give :math:`\rho \approx 1`; for
    increments of size :math:`L^{-H}` (Hurst index :math:`H`),
    :math:`\rho \approx 2^{2H - 1}`, so :math:`H \approx (1 + \log_2 \rho)/2`.
    For i.i.d. Gaussian layers with :math:`N` entries in all, the standard
    deviation of :math:`\rho` is about :math:`\sqrt{2/N}`.

    Args:
        x: The increments, usually :math:`\delta_k A_k`: ``(L, *trailing)``, or
            ``(R, L, *trailing)`` with ``replicas=True``.
        replicas: Whether the first axis of ``x`` indexes replicas.

    Returns:
        float64 tensor of shape ``()``, or ``(R,)`` with replicas.

    Raises:
        ValueError: if :math:`L < 2`, or if the first :math:`n` layers are all
            zero, so that :math:`\rho` is 0/0.
    """
    flat = _as_layers(x, replicas, min_layers=2)
    even = 2 * (flat.shape[1] // 2)
    flat = flat[:, :even]
    fine = flat.pow(2).sum(dim=(1, 2))
    coarse = (flat[:, 0::2] + flat[:, 1::2]).pow(2).sum(dim=(1, 2))
    if bool((fine == 0).any()):
        raise ValueError(
            "roughness ratio is undefined for a sequence whose first "
            f"{even} layers are all zero (0/0). Check that the network's "
            "effective weights are not identically zero."
        )
    return _finish(coarse / fine, replicas)


def effective_layer_count(x: Any, *, replicas: bool = False) -> Tensor:
    r"""Compute the effective number of layers that carry the weight.

    .. math::

        L_{\text{eff}} = \frac{(\sum_k \|X_k\|^2)^2}{\sum_k \|X_k\|^4},

    the participation ratio of the layer norms: :math:`L` when all layers have
    equal norm, :math:`m` when :math:`m` layers share the weight equally and the
    others are zero. Smooth and diffusive scaling give :math:`L_{\text{eff}}`
    proportional to :math:`L`. A sparse pattern, where a few layers carry all
    the weight, keeps it bounded as :math:`L` grows.

    Args and returns as in :func:`max_norm`.

    Raises:
        ValueError: if every layer is zero (0/0).
    """
    norms = _layer_norms(_as_layers(x, replicas))
    squares = norms.pow(2)
    fourth = squares.pow(2).sum(dim=1)
    if bool((fourth == 0).any()):
        raise ValueError(
            "effective layer count is undefined for a sequence whose layers are "
            "all zero (0/0)."
        )
    return _finish(squares.sum(dim=1).pow(2) / fourth, replicas)


STATISTICS: dict[str, Callable[..., Tensor]] = {
    "max_norm": max_norm,
    "root_ssq": root_ssq,
    "rms": rms,
    "sobolev": sobolev_norm,
    "quadratic_variation": quadratic_variation,
    "max_increment": max_increment,
    "cumulative_sum": max_cumulative_sum,
    "detrended_cumulative_sum": max_detrended_cumulative_sum,
}
"""The scaling statistics by the names used in results and files."""
