r"""Fused forward and backward pass of a residual network.

The network :math:`h_{k+1} = h_k + \delta_k \sigma(A_k h_k + b_k)` is evaluated
by one :class:`torch.autograd.Function` instead of an autograd graph of
:math:`5L` small nodes. The forward pass stores the states :math:`h_k` and the
pre-activations :math:`z_k = A_k h_k + b_k`. The backward pass is the adjoint
recursion

.. math::

    g_k = g_{k+1} + A_k^\top \big(\delta_k\, \sigma'(z_k) \odot g_{k+1}\big)
          + \bar g_k, \qquad g_L = \bar g_L,

where :math:`\bar g_k` is the gradient of the loss with respect to :math:`h_k`
received from outside. Only the matrix-vector products of this recursion run
inside the loop over layers: :math:`\sigma(z_k)` and :math:`\sigma'(z_k)` are
evaluated for all layers at once, and all weight gradients,

.. math::

    \partial A_k = \gamma_k h_k^\top, \quad \partial b_k = \gamma_k, \quad
    \partial \delta_k = \langle g_{k+1}, \sigma(z_k) \rangle, \qquad
    \gamma_k = \delta_k \sigma'(z_k) \odot g_{k+1},

come from single batched products after the loop (summed over the batch).

All tensors carry a leading replicas axis ``R``; a network without replicas
uses ``R = 1``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .activations import Activation

__all__ = ["fused_states", "reference_states"]


class _FusedResNet(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, A: Tensor, b: Tensor, delta: Tensor, activation: Activation
    ) -> Tensor:
        replicas, depth = delta.shape
        batch, dim = x.shape[1], x.shape[2]
        states = x.new_empty(depth + 1, replicas, batch, dim)
        pre_activations = x.new_empty(depth, replicas, batch, dim)
        states[0] = x
        A_transposed = A.transpose(-1, -2)
        scale = delta.transpose(0, 1)[:, :, None, None]
        for k in range(depth):
            z = torch.baddbmm(b[:, k, None, :], states[k], A_transposed[:, k])
            pre_activations[k] = z
            torch.addcmul(states[k], scale[k], activation.fn(z), out=states[k + 1])
        ctx.activation = activation
        ctx.save_for_backward(states, pre_activations, A, delta)
        return states

    @staticmethod
    def backward(ctx: Any, grad_states: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        states, pre_activations, A, delta = ctx.saved_tensors
        activation: Activation = ctx.activation
        depth = delta.shape[1]
        scale = delta.transpose(0, 1)[:, :, None, None]

        # Local slopes delta_k sigma'(z_k) for all layers at once.
        slopes = scale * activation.derivative(pre_activations)

        # Adjoint sweep: gamma_k and g_{k+1} for every layer.
        gammas = torch.empty_like(pre_activations)
        upstream = torch.empty_like(pre_activations)
        g = grad_states[depth].clone()
        for k in range(depth - 1, -1, -1):
            upstream[k] = g
            gamma = torch.mul(g, slopes[k], out=gammas[k])
            g = torch.baddbmm(g, gamma, A[:, k]).add_(grad_states[k])

        # Weight gradients from batched products over all layers.
        grad_A = grad_b = grad_delta = None
        if ctx.needs_input_grad[1]:
            grad_A = torch.einsum("lrbi,lrbj->rlij", gammas, states[:-1])
        if ctx.needs_input_grad[2]:
            grad_b = gammas.sum(dim=2).transpose(0, 1)
        if ctx.needs_input_grad[3]:
            outputs = activation.fn(pre_activations)
            grad_delta = torch.einsum("lrbi,lrbi->rl", upstream, outputs)
        return g, grad_A, grad_b, grad_delta, None


def fused_states(
    x: Tensor, A: Tensor, b: Tensor, delta: Tensor, activation: Activation
) -> Tensor:
    r"""Return all hidden states of a batch of residual networks, fused.

    Args:
        x: Inputs, ``(R, batch, d)``.
        A: Weights, ``(R, L, d, d)``, with :math:`z_k = A_k h_k + b_k`.
        b: Biases, ``(R, L, d)``.
        delta: Layer scales :math:`\delta_k`, ``(R, L)``.
        activation: The activation :math:`\sigma`.

    Returns:
        States :math:`h_0, \dots, h_L` as ``(L + 1, R, batch, d)``.
    """
    return _FusedResNet.apply(x, A, b, delta, activation)


def reference_states(
    x: Tensor, A: Tensor, b: Tensor, delta: Tensor, activation: Activation
) -> Tensor:
    """Return the same states as :func:`fused_states` with a plain autograd loop.

    Kept as the reference that the fused kernel is tested against; it is
    several times slower for deep networks.
    """
    h = x
    states = [h]
    for k in range(delta.shape[1]):
        z = h @ A[:, k].transpose(-1, -2) + b[:, k, None, :]
        h = h + delta[:, k, None, None] * activation.fn(z)
        states.append(h)
    return torch.stack(states)
