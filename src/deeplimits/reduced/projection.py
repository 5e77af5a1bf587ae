r"""Least-squares projection of sampled weight paths onto a basis.

Given samples :math:`X_0, \dots, X_{n-1}` of a path at times
:math:`t_0, \dots, t_{n-1}` (each :math:`X_k` a tensor of any shape), the
coefficients :math:`C_0, \dots, C_{K-1}` minimise

.. math::

    \sum_{k=0}^{n-1} \Bigl\| \sum_{j=0}^{K-1} \varphi_j(t_k) C_j - X_k
    \Bigr\|_F^2 .

With the design matrix :math:`\Phi_{kj} = \varphi_j(t_k)` of shape
``(n, K)`` the minimiser solves the normal equations
:math:`\Phi^\top \Phi\, C = \Phi^\top X`. They are not formed: the problem
is solved in float64 on the CPU by ``torch.linalg.lstsq`` with the SVD-based
LAPACK driver ``gelsd``, which is accurate when :math:`\Phi` is
ill-conditioned and returns the minimum-norm solution when it is rank
deficient (fewer distinct times than basis functions).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from .basis import Basis

__all__ = ["constant_coefficients", "evaluate_path", "project_onto_basis"]


def project_onto_basis(
    values: Tensor, times: Tensor, basis: Basis, *, warn_underdetermined: bool = True
) -> Tensor:
    r"""Fit basis coefficients to samples of a path by least squares.

    Args:
        values: samples :math:`X_k`, shape ``(n, *shape)``.
        times: sample times :math:`t_k \in [0, 1]`, shape ``(n,)``.
        basis: the basis :math:`\varphi_0, \dots, \varphi_{K-1}`.
        warn_underdetermined: whether to warn when ``n < K``; callers that
            project several paths on one grid warn once themselves.

    Returns:
        Coefficients of shape ``(K, *shape)``, float64 on the CPU.

    Raises:
        ValueError: if ``values`` and ``times`` disagree in length.

    Warns:
        UserWarning: when ``n < K``; the fit is then underdetermined and the
            minimum-norm coefficients are returned.
    """
    if times.ndim != 1 or values.shape[0] != times.shape[0]:
        raise ValueError(
            f"values must have one sample per time: got values of shape "
            f"{tuple(values.shape)} and times of shape {tuple(times.shape)}"
        )
    n = times.shape[0]
    if n < basis.K and warn_underdetermined:
        warnings.warn(
            f"projecting {n} samples onto K={basis.K} basis functions is "
            "underdetermined; the minimum-norm coefficients are used. Use a "
            "deeper network or a smaller K.",
            UserWarning,
            stacklevel=2,
        )
    design = basis(times.detach().to("cpu", torch.float64))
    targets = values.detach().to("cpu", torch.float64).reshape(n, -1)
    solution = torch.linalg.lstsq(design, targets, driver="gelsd").solution
    return solution.reshape(basis.K, *values.shape[1:])


def evaluate_path(coefficients: Tensor, times: Tensor, basis: Basis) -> Tensor:
    r"""Evaluate :math:`\sum_j \varphi_j(t) C_j` at each time.

    Args:
        coefficients: shape ``(K, *shape)``.
        times: shape ``(n,)``.
        basis: the basis the coefficients belong to.

    Returns:
        Tensor of shape ``(n, *shape)`` in the dtype of ``coefficients``.
    """
    phi = basis(times.to(coefficients.dtype).to(coefficients.device))
    flat = coefficients.reshape(basis.K, -1)
    return (phi @ flat).reshape(times.shape[0], *coefficients.shape[1:])


def constant_coefficients(basis: Basis) -> Tensor:
    r"""Coefficients :math:`c` with :math:`\sum_j c_j \varphi_j(t) = 1`.

    Every basis here contains the constants exactly: :math:`c = e_0` for the
    polynomial and Fourier bases and :math:`c = (1, \dots, 1)` for the
    piecewise-linear one. The coefficients are found by projecting the
    constant 1 sampled at ``4 K`` points, so a user basis works too.

    Returns:
        Tensor of shape ``(K,)``, float64 on the CPU.
    """
    n = 4 * basis.K
    times = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return project_onto_basis(torch.ones(n, dtype=torch.float64), times, basis)
