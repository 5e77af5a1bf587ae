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

__all__ = ["fused_output", "fused_states", "reference_states"]


class _FusedResNet(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: Tensor,
        A: Tensor,
        b: Tensor,
        delta: Tensor,
        activation: Activation,
        all_states: bool,
    ) -> Tensor:
        replicas, depth = delta.shape
        batch, dim = x.shape[1], x.shape[2]
        states = x.new_empty(depth + 1, replicas, batch, dim)
        states[0] = x
        # With a slope that is a function of the output, the backward pass
        # needs sigma(z_k) only, so z_k goes to one scratch buffer.
        from_output = activation.derivative_from_output is not None
        if from_output:
            scratch = x.new_empty(replicas, batch, dim)
            scratch_storage = scratch.untyped_storage().data_ptr()
            z = [scratch] * depth
            outputs: list[Tensor] = []
        else:
            pre_activations = x.new_empty(depth, replicas, batch, dim)
            z = list(pre_activations.unbind(0))

        # Per-layer views made once, in layer-major layout, outside the loop.
        h = states.unbind(0)
        A_transposed = A.transpose(-1, -2).transpose(0, 1).contiguous().unbind(0)
        bias = b.transpose(0, 1).unsqueeze(2).contiguous().unbind(0)
        scale = delta.transpose(0, 1)[:, :, None, None].contiguous().unbind(0)
        for k in range(depth):
            torch.baddbmm(bias[k], h[k], A_transposed[k], out=z[k])
            s = activation.fn(z[k])
            torch.addcmul(h[k], scale[k], s, out=h[k + 1])
            if from_output:
                # An output that shares the scratch buffer (the identity) is
                # overwritten by the next layer, so it is copied.
                shares = s.untyped_storage().data_ptr() == scratch_storage
                outputs.append(s.clone() if shares else s)

        ctx.activation = activation
        ctx.all_states = all_states
        ctx.from_output = from_output
        saved = torch.stack(outputs) if from_output else pre_activations
        ctx.save_for_backward(states, saved, A, delta)
        # Returning only h_L keeps autograd from materialising a zero gradient
        # for every intermediate state.
        return states if all_states else states[depth].clone()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        states, saved, A, delta = ctx.saved_tensors
        activation: Activation = ctx.activation
        depth = delta.shape[1]
        scale = delta.transpose(0, 1)[:, :, None, None]
        interior = ctx.all_states and bool(grad_output[:-1].ne(0).any())
        last = grad_output[depth] if ctx.all_states else grad_output

        # Local slopes delta_k sigma'(z_k) for all layers at once; the sweep
        # below overwrites slope k with gamma_k = slope_k * g_{k+1} in place.
        slope_from_output = activation.derivative_from_output
        if ctx.from_output and slope_from_output is not None:
            gammas = slope_from_output(saved).mul_(scale)
        else:
            gammas = activation.derivative(saved).mul_(scale)

        # Adjoint sweep: adjoints[k] is the gradient with respect to h_k.
        adjoints = torch.empty_like(states)
        adjoints[depth] = last
        g = adjoints.unbind(0)
        gamma = gammas.unbind(0)
        weights = A.transpose(0, 1).contiguous().unbind(0)
        for k in range(depth - 1, -1, -1):
            gamma[k].mul_(g[k + 1])
            torch.baddbmm(g[k + 1], gamma[k], weights[k], out=g[k])
            if interior:
                g[k].add_(grad_output[k])

        # Weight gradients from batched products over all layers.
        grad_A = grad_b = grad_delta = None
        if ctx.needs_input_grad[1]:
            grad_A = torch.einsum("lrbi,lrbj->rlij", gammas, states[:-1])
        if ctx.needs_input_grad[2]:
            grad_b = gammas.sum(dim=2).transpose(0, 1)
        if ctx.needs_input_grad[3]:
            outputs = saved if ctx.from_output else activation.fn(saved)
            grad_delta = torch.einsum("lrbi,lrbi->rl", adjoints[1:], outputs)
        return adjoints[0], grad_A, grad_b, grad_delta, None, None


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
    return _FusedResNet.apply(x, A, b, delta, activation, True)


def fused_output(
    x: Tensor, A: Tensor, b: Tensor, delta: Tensor, activation: Activation
) -> Tensor:
    """Return the output :math:`h_L` only, ``(R, batch, d)``, fused.

    Same arguments as :func:`fused_states`. Cheaper in the backward pass when
    the loss depends on the output alone.
    """
    return _FusedResNet.apply(x, A, b, delta, activation, False)


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
