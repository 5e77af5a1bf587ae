r"""Basis-expanded coefficients and the drift and diffusion built from them.

:class:`ReducedField` holds every trainable coefficient of a reduced-form
limit model and evaluates

- the weights :math:`A(t) = \sum_j \varphi_j(t) A_j` (or a low-rank form)
  and :math:`b(t) = \sum_j \varphi_j(t) b_j`;
- the drift :math:`f(t, H)` of the ODE or SDE, in the ``forward(t, h)``
  signature that ``torchdiffeq.odeint`` and ``odeint_adjoint`` call;
- for the SDE form, the diffusion applied to a Brownian increment, and the
  full diffusion matrix of shape ``(batch, d, m)`` that ``torchsde`` uses.

Forms (all states have shape ``(batch, d)``):

``"neural-ode"``
    :math:`f(t, H) = g(t)\,\sigma(A(t) H + b(t))`, with an optional scalar
    gain :math:`g(t) = \sum_j \varphi_j(t) g_j` that plays the role of
    :math:`L \delta_k` (the limit :math:`\bar\delta(t)`). Without the gain,
    :math:`g \equiv 1` and :math:`A, b` absorb :math:`\bar\delta`, which is
    exact for a positively homogeneous activation such as ReLU.
``"linear-ode"``
    :math:`f(t, H) = A(t) H + b(t)`.
``"sde"``
    the linear-quadratic Ito SDE, component :math:`i`,

    .. math::

        dH^i = \Bigl(\sum_j A_{ij}(t) H^j + b_i(t)
               + c\, q_i(t, H)\Bigr) dt
               + \sum_j S_{ij}(t) H^j\, dW^{ij} + s_i(t)\, dW^{b,i},

    with :math:`q_i(t, H) = \sum_j S_{ij}(t)^2 (H^j)^2 + s_i(t)^2` the rate
    of the quadratic variation of the noise in component :math:`i`, and a
    fixed coefficient :math:`c` (``quadratic``). The :math:`W^{ij}` and
    :math:`W^{b,i}` are independent Brownian motions, so ``noise="full"``
    has :math:`m = d^2 + d` noise channels (torchsde noise type
    ``"general"``). ``noise="diagonal"`` keeps only :math:`S_{ii}`, giving
    :math:`m = 2d` channels and :math:`q_i = S_{ii}^2 (H^i)^2 + s_i^2`.

This is the Ito limit of a diffusive network whose per-layer increments
:math:`\delta_k A_k` have independent entries: a Taylor expansion of
:math:`\sigma` to second order gives the drift term
:math:`(\sigma''(0)/2)\, dQ^i` with :math:`dQ^i = q_i\, dt / \sigma'(0)^2`
once :math:`\sigma'(0)` is absorbed into :math:`A, b, S, s`, so
:math:`c = \sigma''(0) / (2 \sigma'(0)^2)`. Reference: A.-S. Cohen,
R. Cont, A. Rossier, R. Xu, "Scaling Properties of Deep Residual Networks",
ICML 2021, section 4.

Low rank (``rank=r``): ``low_rank="factors"`` writes
:math:`A(t) = U(t) V(t)^\top` with :math:`U(t), V(t)` of shape ``(d, r)``
each expanded in the basis (``2 K d r`` numbers); ``low_rank="core"`` writes
:math:`A(t) = U\, C(t)\, V^\top` with fixed :math:`U, V` of shape ``(d, r)``
and a time-dependent ``(r, r)`` core (``2 d r + K r^2`` numbers).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..activations import Activation
from .basis import Basis
from .projection import constant_coefficients

__all__ = ["FORMS", "LOW_RANK_MODES", "NOISE_TYPES", "ReducedField"]

FORMS: tuple[str, ...] = ("neural-ode", "linear-ode", "sde")
LOW_RANK_MODES: tuple[str, ...] = ("factors", "core")
NOISE_TYPES: tuple[str, ...] = ("full", "diagonal")


class ReducedField(nn.Module):
    r"""Trainable coefficients of a reduced-form model and its vector fields.

    Parameters (``K`` basis functions, dimension ``d``, rank ``r``):

    - full rank: ``A_coef`` ``(K, d, d)``;
      ``low_rank="factors"``: ``U_coef``, ``V_coef`` ``(K, d, r)``;
      ``low_rank="core"``: ``U``, ``V`` ``(d, r)`` and ``C_coef``
      ``(K, r, r)``;
    - ``b_coef`` ``(K, d)``;
    - ``gain_coef`` ``(K,)`` for the neural ODE with a gain;
    - SDE: ``S_coef`` ``(K, d, d)`` (``noise="full"``) or ``(K, d)``
      (``"diagonal"``) and ``s_coef`` ``(K, d)``.

    The caller validates the arguments; :class:`ReducedLimitModel` does.
    """

    def __init__(
        self,
        dim: int,
        basis: Basis,
        *,
        form: str,
        activation: Activation | None,
        rank: int | None,
        low_rank: str,
        gain: bool,
        noise: str,
        quadratic: float,
        init_scale: float,
        generator: torch.Generator,
        dtype: torch.dtype,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.basis = basis
        self.form = form
        self.activation = activation
        self.rank = rank
        self.low_rank = low_rank
        self.has_gain = gain
        self.noise = noise
        self.quadratic = quadratic
        K, d = basis.K, dim

        def normal(*shape: int, std: float) -> nn.Parameter:
            values = torch.randn(*shape, generator=generator, dtype=torch.float64)
            return nn.Parameter((std * values).to(dtype))

        # A(t): entries of order init_scale / sqrt(d), whatever the form.
        std = init_scale / math.sqrt(d)
        if rank is None:
            self.A_coef = normal(K, d, d, std=std)
        elif low_rank == "factors":
            factor_std = math.sqrt(init_scale / math.sqrt(d * rank))
            self.U_coef = normal(K, d, rank, std=factor_std)
            self.V_coef = normal(K, d, rank, std=factor_std)
        else:
            self.U = normal(d, rank, std=1.0 / math.sqrt(d))
            self.V = normal(d, rank, std=1.0 / math.sqrt(d))
            self.C_coef = normal(K, rank, rank, std=std * math.sqrt(d / rank))
        self.b_coef = normal(K, d, std=std)

        if gain:
            ones = constant_coefficients(basis).to(dtype)
            self.gain_coef = nn.Parameter(ones)
        if form == "sde":
            shape = (K, d, d) if noise == "full" else (K, d)
            self.S_coef = normal(*shape, std=std)
            self.s_coef = normal(K, d, std=std)

    # ------------------------------------------------------------------
    # Coefficient paths
    # ------------------------------------------------------------------

    def basis_values(self, t: Tensor) -> Tensor:
        """Basis values ``(K,)`` at a 0-d time, in the parameters' dtype."""
        reference = self.b_coef
        return self.basis(t.to(device=reference.device, dtype=reference.dtype))

    def A(self, t: Tensor) -> Tensor:
        r"""The matrix :math:`A(t)`, shape ``(d, d)``, at a 0-d time ``t``."""
        phi = self.basis_values(t)
        return self._A_from_phi(phi)

    def _A_from_phi(self, phi: Tensor) -> Tensor:
        if self.rank is None:
            return torch.einsum("k,kij->ij", phi, self.A_coef)
        if self.low_rank == "factors":
            U = torch.einsum("k,kir->ir", phi, self.U_coef)
            V = torch.einsum("k,kir->ir", phi, self.V_coef)
            return U @ V.T
        core = torch.einsum("k,krs->rs", phi, self.C_coef)
        return self.U @ core @ self.V.T

    def b(self, t: Tensor) -> Tensor:
        r"""The vector :math:`b(t)`, shape ``(d,)``."""
        return self.basis_values(t) @ self.b_coef

    def gain(self, t: Tensor) -> Tensor:
        r"""The scalar gain :math:`g(t)` (1 when the model has none)."""
        if not self.has_gain:
            return self.b_coef.new_ones(())
        return self.basis_values(t) @ self.gain_coef

    def S(self, t: Tensor) -> Tensor:
        r"""Diffusion of :math:`A`: ``(d, d)`` (full noise) or ``(d,)``."""
        return torch.tensordot(self.basis_values(t), self.S_coef, dims=1)

    def s(self, t: Tensor) -> Tensor:
        r"""Diffusion of :math:`b`, shape ``(d,)``."""
        return self.basis_values(t) @ self.s_coef

    # ------------------------------------------------------------------
    # Drift and diffusion
    # ------------------------------------------------------------------

    def _linear_part(self, phi: Tensor, h: Tensor) -> Tensor:
        """``A(t) h + b(t)`` for row batches h of shape (batch, d)."""
        b = phi @ self.b_coef
        if self.rank is None:
            A = torch.einsum("k,kij->ij", phi, self.A_coef)
            return h @ A.T + b
        if self.low_rank == "factors":
            U = torch.einsum("k,kir->ir", phi, self.U_coef)
            V = torch.einsum("k,kir->ir", phi, self.V_coef)
            return (h @ V) @ U.T + b
        core = torch.einsum("k,krs->rs", phi, self.C_coef)
        return ((h @ self.V) @ core.T) @ self.U.T + b

    def forward(self, t: Tensor, h: Tensor) -> Tensor:
        """Drift :math:`f(t, h)`, shape ``(batch, d)``; the torchdiffeq call."""
        phi = self.basis_values(t)
        z = self._linear_part(phi, h)
        if self.form == "linear-ode":
            return z
        if self.form == "neural-ode":
            assert self.activation is not None
            out = self.activation.fn(z)
            if self.has_gain:
                out = (phi @ self.gain_coef) * out
            return out
        if self.quadratic != 0.0:
            z = z + self.quadratic * self._quadratic_rate(phi, h)
        return z

    def _quadratic_rate(self, phi: Tensor, h: Tensor) -> Tensor:
        r""":math:`q_i(t, h)`, shape ``(batch, d)``."""
        S = torch.tensordot(phi, self.S_coef, dims=1)
        s = phi @ self.s_coef
        if self.noise == "full":
            return (h * h) @ (S * S).T + s * s
        return (S * S) * (h * h) + s * s

    @property
    def noise_dim(self) -> int:
        """Number of Brownian channels m: ``d*d + d`` or ``2*d``."""
        d = self.dim
        return d * d + d if self.noise == "full" else 2 * d

    def diffusion_increment(self, t: Tensor, h: Tensor, dW: Tensor) -> Tensor:
        r"""The noise term :math:`G(t, h)\, \Delta W`, shape ``(batch, d)``.

        ``dW`` has shape ``(batch, m)`` or ``(m,)`` (one path for the whole
        batch). The first ``d*d`` channels (``d`` for diagonal noise) drive
        :math:`A` in row-major order :math:`(i, j) \mapsto i d + j`, the last
        ``d`` drive :math:`b`. The ``(batch, d, m)`` matrix is never formed.
        """
        phi = self.basis_values(t)
        S = torch.tensordot(phi, self.S_coef, dims=1)
        s = phi @ self.s_coef
        d = self.dim
        split = d * d if self.noise == "full" else d
        dW_A, dW_b = dW[..., :split], dW[..., split:]
        if self.noise == "full":
            weights = S * dW_A.reshape(*dW_A.shape[:-1], d, d)
            term = (weights @ h.unsqueeze(-1)).squeeze(-1)
        else:
            term = S * h * dW_A
        return term + s * dW_b

    def diffusion_matrix(self, t: Tensor, h: Tensor) -> Tensor:
        """Diffusion :math:`G(t, h)` of shape ``(batch, d, m)`` for torchsde."""
        phi = self.basis_values(t)
        S = torch.tensordot(phi, self.S_coef, dims=1)
        s = phi @ self.s_coef
        batch, d = h.shape
        eye = torch.eye(d, dtype=h.dtype, device=h.device)
        noise_b = (eye * s).expand(batch, d, d)
        if self.noise == "full":
            rows = S * h[:, None, :]
            noise_A = eye[None, :, :, None] * rows[:, :, None, :]
            noise_A = noise_A.reshape(batch, d, d * d)
        else:
            noise_A = torch.diag_embed(S * h)
        return torch.cat([noise_A, noise_b], dim=-1)

    def num_coefficients(self) -> int:
        """Number of trainable numbers."""
        return sum(p.numel() for p in self.parameters())
