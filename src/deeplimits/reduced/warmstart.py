r"""Conversions between residual networks and reduced-form limit models.

Warm start (:func:`from_network`)
    The weights of a trained network of depth :math:`L` are read on the
    layer grid :math:`t_k = k / L`, ``k = 0..L-1``, rescaled as the limit
    requires, and projected onto the basis by least squares
    (:func:`~deeplimits.reduced.projection.project_onto_basis`). The grid
    is the same one :func:`to_resnet` samples on, so a model converted to a
    network and back is recovered exactly when ``L >= K``.

    Projected quantities, with :math:`\sigma` the network's activation:

    ========================  =============================================
    form                      :math:`A(t_k)`, :math:`b(t_k)`, gain
    ========================  =============================================
    neural ODE with gain      :math:`A_k`, :math:`b_k`, :math:`g = L\delta_k`
    neural ODE, no gain       :math:`L\delta_k A_k`, :math:`L\delta_k b_k`
                              (exact for homogeneous :math:`\sigma`,
                              :math:`\delta_k > 0`)
    linear ODE                :math:`\sigma'(0) L\delta_k A_k`,
                              :math:`L\delta_k(\sigma(0) + \sigma'(0) b_k)`
    SDE (drift)               as the linear ODE
    ========================  =============================================

    For the SDE the diffusion is the local quadratic variation: with
    :math:`X_k = \sigma'(0)\delta_k A_k` and the fitted drift,
    :math:`S(t)^2` is the projection of :math:`L (X_k - A(t_k)/L)^2`
    (entrywise), and :math:`S` the projection of its clamped square root;
    :math:`s` likewise from :math:`b`. The quadratic coefficient is
    :math:`c = \sigma''(0) / (2 \sigma'(0)^2 \bar\delta)` with
    :math:`\bar\delta` the mean of :math:`\delta_k`, exact when
    :math:`\delta_k` is constant.

    Low rank: the full coefficients :math:`A_j` are projected first. Then
    :math:`U_0` (:math:`V_0`) holds the top ``r`` left singular vectors of
    :math:`[A_0, \dots, A_{K-1}]` (of :math:`[A_0^\top, \dots]`), the core is
    :math:`C_j = U_0^\top A_j V_0`, and the ``"factors"`` form uses
    :math:`U_j = U_0 C_j` with :math:`V(t) \equiv V_0`. Both are exact when
    every :math:`A_j` has its row and column spaces in those of rank ``r``.

Sampling (:func:`to_resnet`)
    ODE forms give :math:`A_k = A(t_k)`, :math:`b_k = b(t_k)` and
    :math:`\delta_k = g(t_k) / L`, so the network is the explicit Euler
    scheme of the ODE with step :math:`1/L` and its output approaches the
    flow at rate :math:`O(1/L)`. The SDE form gives one sampled network:
    :math:`A_k = A(t_k)/L + S(t_k) \odot \Delta W^A_k`,
    :math:`b_k = b(t_k)/L + s(t_k) \odot \Delta W^b_k`, :math:`\delta_k = 1`
    and :math:`\sigma(z) = z + c z^2`, which equals Euler-Maruyama on the
    same Brownian increments when :math:`c = 0`.
"""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .._checks import check_choice, check_int, describe
from ..activations import Activation
from .basis import Basis, get_basis
from .projection import constant_coefficients, evaluate_path, project_onto_basis

if TYPE_CHECKING:
    from ..network import ResNet
    from .model import ReducedLimitModel

__all__ = ["from_network", "to_resnet"]


def from_network(
    net: ResNet,
    basis: str | Basis = "legendre",
    K: int = 8,
    *,
    form: str = "neural-ode",
    gain: bool | None = None,
    rank: int | None = None,
    low_rank: str = "factors",
    noise: str = "full",
    method: str | None = None,
    steps: int | None = None,
    adjoint: bool | None = None,
    sde_samples: int = 1,
) -> ReducedLimitModel:
    r"""Build a reduced model whose coefficients fit a trained network.

    Args:
        net: a :class:`~deeplimits.ResNet` without replicas (use
            ``net.replica(r)`` for one replica).
        basis, K: the basis and its size.
        form: ``"neural-ode"``, ``"linear-ode"`` or ``"sde"``.
        gain: neural ODE only. ``None`` chooses: no gain when the activation
            is positively homogeneous and every :math:`\delta_k > 0` (then
            :math:`L\delta_k` is absorbed exactly), a gain otherwise.
        rank, low_rank, noise, method, steps, adjoint, sde_samples: as in
            :class:`~deeplimits.reduced.ReducedLimitModel`.

    Returns:
        The model, in the network's dtype and on its device.

    Raises:
        TypeError: if ``net`` is not a ResNet.
        ValueError: for a network with replicas, a form the activation has
            no limit of (linear ODE or SDE without :math:`\sigma'(0)`), or
            ``gain=False`` with a homogeneous activation and some
            :math:`\delta_k \le 0`.

    Warns:
        UserWarning: with ``gain=False``, a non-homogeneous activation and
            :math:`L\delta_k` away from 1, because the gain is then dropped.
    """
    from ..network import ResNet
    from .model import ReducedLimitModel

    if not isinstance(net, ResNet):
        raise TypeError(f"net must be a deeplimits.ResNet, got {describe(net)}.")
    if net.has_replicas:
        raise ValueError(
            f"net has {net.replicas} replicas; project one network at a time. "
            "Pass net.replica(r)."
        )
    check_int("K", K, minimum=1)
    basis_obj = get_basis(basis, K)
    if form == "neural-ode":
        gain = _choose_gain(net, gain)
    model = ReducedLimitModel(
        net.dim,
        basis=basis_obj,
        K=K,
        form=form,
        activation=net.activation,
        rank=rank,
        low_rank=low_rank,
        gain=bool(gain) if form == "neural-ode" else False,
        noise=noise,
        quadratic=_quadratic_coefficient(net) if form == "sde" else 0.0,
        method=method,
        steps=steps,
        adjoint=adjoint,
        sde_samples=sde_samples,
        init_scale=0.0,
        seed=0,
        dtype=net.A.dtype,
        device=net.A.device,
    )
    coefficients = _projected_coefficients(net, model)
    _load_coefficients(model, coefficients)
    return model


def _choose_gain(net: ResNet, gain: bool | None) -> bool:
    delta = net.effective_delta().detach()
    positive = bool((delta > 0).all())
    homogeneous = net.activation.homogeneous
    if gain is None:
        return not (homogeneous and positive)
    if not isinstance(gain, bool):
        raise TypeError(f"gain must be a bool or None, got {describe(gain)}.")
    if gain:
        return True
    if homogeneous and not positive:
        raise ValueError(
            "gain=False absorbs L*delta_k into A and b, which is exact for the "
            f"homogeneous activation {net.activation.name!r} only when every "
            f"delta_k > 0; this network has min delta_k = {float(delta.min()):.3g}. "
            "Pass gain=True or gain=None."
        )
    scaled = net.depth * delta
    if not homogeneous and float((scaled - 1.0).abs().max()) > 1e-3:
        warnings.warn(
            f"gain=False drops L*delta_k (range {float(scaled.min()):.3g} to "
            f"{float(scaled.max()):.3g}) because the activation "
            f"{net.activation.name!r} is not homogeneous. Pass gain=True to "
            "keep it.",
            UserWarning,
            stacklevel=3,
        )
    return False


def _linear_data(net: ResNet, *, name: str) -> tuple[Tensor, Tensor, Tensor]:
    r"""Per-layer :math:`X_k = \sigma'(0)\delta_k A_k`, :math:`Y_k`, delta."""
    activation = net.activation
    if activation.dsigma0 is None:
        raise ValueError(
            f"form={name!r} needs sigma'(0), which does not exist for the "
            f"activation {activation.name!r}. Use form='neural-ode'."
        )
    delta = net.effective_delta().detach().double()
    A, b = net.A.detach().double(), net.b.detach().double()
    X = activation.dsigma0 * delta[:, None, None] * A
    Y = delta[:, None] * (activation.sigma0 + activation.dsigma0 * b)
    return X, Y, delta


def _quadratic_coefficient(net: ResNet) -> float:
    activation = net.activation
    if activation.dsigma0 is None or activation.d2sigma0 is None:
        raise ValueError(
            f"form='sde' needs sigma'(0) and sigma''(0), which do not both exist "
            f"for the activation {activation.name!r}: a network with this "
            "activation and diffusive weights has no SDE limit. Use form="
            "'neural-ode'."
        )
    if activation.dsigma0 == 0.0:
        raise ValueError(
            f"form='sde' needs sigma'(0) != 0, got 0 for {activation.name!r}."
        )
    mean_delta = float(net.effective_delta().detach().double().mean())
    return activation.d2sigma0 / (2.0 * activation.dsigma0**2 * mean_delta)


def _projected_coefficients(net: ResNet, model: ReducedLimitModel) -> dict[str, Tensor]:
    """Coefficients (float64, CPU) keyed by the field's parameter names."""
    L = net.depth
    times = torch.arange(L, dtype=torch.float64) / L
    basis = model.basis
    coefficients: dict[str, Tensor] = {}
    if L < basis.K:
        # One warning for the network, not one per projected weight.
        warnings.warn(
            f"projecting a network of depth {L} onto K={basis.K} basis functions "
            "is underdetermined; the minimum-norm coefficients are used. Use a "
            "deeper network or a smaller K.",
            UserWarning,
            stacklevel=4,
        )
    project = functools.partial(project_onto_basis, warn_underdetermined=False)

    if model.form == "neural-ode":
        delta = net.effective_delta().detach().double()
        A, b = net.A.detach().double(), net.b.detach().double()
        if model.field.has_gain:
            coefficients["gain_coef"] = project(L * delta, times, basis)
        else:
            A = L * delta[:, None, None] * A
            b = L * delta[:, None] * b
        A_coef = project(A, times, basis)
        coefficients["b_coef"] = project(b, times, basis)
    else:
        X, Y, _ = _linear_data(net, name=model.form)
        A_coef = project(L * X, times, basis)
        coefficients["b_coef"] = project(L * Y, times, basis)
        if model.form == "sde":
            diagonal = model.field.noise == "diagonal"
            drift_A = evaluate_path(A_coef, times, basis) / L
            drift_b = evaluate_path(coefficients["b_coef"], times, basis) / L
            residual_A = X - drift_A
            if diagonal:
                residual_A = torch.diagonal(residual_A, dim1=-2, dim2=-1)
            coefficients["S_coef"] = _diffusion_coefficients(residual_A, times, basis)
            coefficients["s_coef"] = _diffusion_coefficients(Y - drift_b, times, basis)

    coefficients.update(_rank_coefficients(A_coef, model))
    return coefficients


def _diffusion_coefficients(residual: Tensor, times: Tensor, basis: Basis) -> Tensor:
    """Project the square root of the local quadratic variation rate."""
    L = residual.shape[0]
    variance = project_onto_basis(
        L * residual**2, times, basis, warn_underdetermined=False
    )
    rate = evaluate_path(variance, times, basis).clamp(min=0.0)
    return project_onto_basis(rate.sqrt(), times, basis, warn_underdetermined=False)


def _rank_coefficients(A_coef: Tensor, model: ReducedLimitModel) -> dict[str, Tensor]:
    rank = model.rank
    if rank is None:
        return {"A_coef": A_coef}
    K, d, _ = A_coef.shape
    columns = A_coef.permute(1, 0, 2).reshape(d, K * d)
    rows = A_coef.transpose(1, 2).permute(1, 0, 2).reshape(d, K * d)
    U0 = torch.linalg.svd(columns, full_matrices=False).U[:, :rank]
    V0 = torch.linalg.svd(rows, full_matrices=False).U[:, :rank]
    core = U0.T @ A_coef @ V0
    if model.field.low_rank == "core":
        return {"U": U0, "V": V0, "C_coef": core}
    constant = constant_coefficients(model.basis)
    return {
        "U_coef": U0 @ core,
        "V_coef": constant[:, None, None] * V0,
    }


def _load_coefficients(
    model: ReducedLimitModel, coefficients: dict[str, Tensor]
) -> None:
    parameters = dict(model.field.named_parameters())
    with torch.no_grad():
        for name, value in coefficients.items():
            target = parameters[name]
            target.copy_(value.to(dtype=target.dtype, device=target.device))


def to_resnet(
    model: ReducedLimitModel,
    depth: int,
    *,
    delta: str | None = None,
    increments: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> ResNet:
    r"""Sample a reduced model into a residual network of depth ``depth``.

    Args:
        model: the reduced model.
        depth: number of layers :math:`L \ge 1`.
        delta: ODE forms: ``"per-layer"`` (default, :math:`\delta_k =
            g(t_k)/L`) or ``"shared"`` (:math:`\delta = 1/L`, only without a
            gain). The SDE form uses ``"none"`` and accepts only that or
            ``None``.
        increments: SDE form: Brownian increments of shape ``(depth, m)``;
            default drawn with ``generator``.
        generator: SDE form: torch generator for the increments.

    Returns:
        A :class:`~deeplimits.ResNet` in the model's dtype and on its device,
        detached from the model's parameters.

    Raises:
        ValueError: for ``depth < 1``, an unknown ``delta`` or one that does
            not fit the model, or increments of the wrong shape.
    """
    from ..network import ResNet

    check_int("depth", depth, minimum=1)
    L = depth
    times = (torch.arange(L, dtype=torch.float64) / L).to(model.dtype)
    times = times.to(model.device)
    with torch.no_grad():
        A, b = model.weights(times)
        if model.form == "sde":
            return _sample_sde_network(model, A, b, times, delta, increments, generator)
        mode = check_choice("delta", delta or "per-layer", ("per-layer", "shared"))
        activation: str | Activation = "identity"
        if model.form == "neural-ode" and model.activation is not None:
            activation = model.activation
        if mode == "shared":
            if model.field.has_gain:
                raise ValueError(
                    "delta='shared' cannot carry the gain g(t) of this model; "
                    "pass delta='per-layer'."
                )
            shared = torch.tensor(1.0 / L, dtype=model.dtype, device=model.device)
            return ResNet.from_weights(A, b, shared, activation=activation)
        gains = torch.stack([model.field.gain(t) for t in times])
        return ResNet.from_weights(
            A, b, gains / L, activation=activation, delta_mode="per-layer"
        )


def _sample_sde_network(
    model: ReducedLimitModel,
    A: Tensor,
    b: Tensor,
    times: Tensor,
    delta: str | None,
    increments: Tensor | None,
    generator: torch.Generator | None,
) -> ResNet:
    from ..network import ResNet

    if delta not in (None, "none"):
        raise ValueError(
            f"delta must be None or 'none' for form='sde' (a sampled network "
            f"has delta_k = 1), got {delta!r}."
        )
    L, d = A.shape[0], model.dim
    m = model.field.noise_dim
    if increments is None:
        noise = torch.randn(L, m, generator=generator, dtype=torch.float64)
        increments = (noise / L**0.5).to(dtype=model.dtype, device=model.device)
    elif tuple(increments.shape) != (L, m):
        raise ValueError(
            f"increments must have shape (depth, m) = {(L, m)}, got "
            f"{tuple(increments.shape)}."
        )
    field = model.field
    S = torch.stack([field.S(t) for t in times])
    s = torch.stack([field.s(t) for t in times])
    split = d * d if field.noise == "full" else d
    dW_A, dW_b = increments[:, :split], increments[:, split:]
    if field.noise == "full":
        noise_A = S * dW_A.reshape(L, d, d)
    else:
        noise_A = torch.diag_embed(S * dW_A)
    A_net = A / L + noise_A
    b_net = b / L + s * dW_b
    return ResNet.from_weights(
        A_net, b_net, None, activation=_quadratic_activation(field.quadratic)
    )


def _quadratic_activation(c: float) -> str | Activation:
    r""":math:`\sigma(z) = z + c z^2`, the identity when :math:`c = 0`."""
    if c == 0.0:
        return "identity"

    def quadratic(z: Tensor) -> Tensor:
        return z + c * z * z

    def derivative(z: Tensor) -> Tensor:
        return 1.0 + 2.0 * c * z

    # from_function differentiates at 0, and to_resnet runs under no_grad.
    with torch.enable_grad():
        return Activation.from_function(
            quadratic, name=f"quadratic({c:.6g})", derivative=derivative
        )
