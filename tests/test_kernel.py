"""The fused kernel against plain autograd, in float64."""

import itertools

import pytest
import torch

from deeplimits import ResNet, get_activation
from deeplimits.kernel import fused_states, reference_states

ACTIVATIONS = ["tanh", "relu", "identity", "gelu", "softplus-centred"]
DELTA_MODES = ["none", "shared", "per-layer"]


def _random_inputs(replicas, depth, dim, batch, seed):
    generator = torch.Generator().manual_seed(seed)

    def draw(*shape, scale=1.0):
        values = torch.randn(*shape, generator=generator, dtype=torch.float64)
        return (scale * values).requires_grad_(True)

    x = draw(replicas, batch, dim)
    A = draw(replicas, depth, dim, dim, scale=0.5)
    b = draw(replicas, depth, dim, scale=0.5)
    delta = draw(replicas, depth, scale=0.3)
    return x, A, b, delta


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_fused_gradcheck(name):
    activation = get_activation(name)
    inputs = _random_inputs(replicas=2, depth=4, dim=3, batch=5, seed=1)

    def states(x, A, b, delta):
        return fused_states(x, A, b, delta, activation)

    assert torch.autograd.gradcheck(states, inputs, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_fused_matches_reference(name):
    activation = get_activation(name)
    inputs = _random_inputs(replicas=3, depth=7, dim=4, batch=6, seed=2)
    fused = fused_states(*inputs, activation)
    reference = reference_states(*inputs, activation)
    torch.testing.assert_close(fused, reference, rtol=1e-12, atol=1e-12)

    weights = torch.randn_like(fused)
    fused_grads = torch.autograd.grad((fused * weights).sum(), inputs)
    reference_grads = torch.autograd.grad((reference * weights).sum(), inputs)
    for fused_grad, reference_grad in zip(fused_grads, reference_grads, strict=True):
        torch.testing.assert_close(fused_grad, reference_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "delta", "replicas"),
    list(itertools.product(ACTIVATIONS, DELTA_MODES, [1, 3])),
)
def test_resnet_gradcheck(name, delta, replicas):
    net = ResNet(
        3,
        4,
        activation=name,
        delta=delta,
        init="xavier",
        init_scale=1.5,
        replicas=replicas,
        seed=3,
        dtype=torch.float64,
    )
    if net.delta is not None:
        with torch.no_grad():
            net.delta.add_(0.2)  # keep the shared |delta| away from its kink at 0
    x = torch.randn(
        4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4)
    )
    params = [param for param in (net.A, net.b, net.delta) if param is not None]
    x.requires_grad_(True)

    def functional(x, *weights):
        return torch.func.functional_call(
            net, {name_: w for name_, w in zip(_names(net), weights, strict=True)}, (x,)
        )

    weights = tuple(param.detach().clone().requires_grad_(True) for param in params)
    assert torch.autograd.gradcheck(functional, (x, *weights), eps=1e-6, atol=1e-6)


def _names(net):
    return [name for name in ("A", "b", "delta") if getattr(net, name) is not None]


def test_user_activation_gradcheck():
    activation = get_activation(lambda z: torch.sin(z) + 0.1 * z**3)
    inputs = _random_inputs(replicas=1, depth=3, dim=2, batch=3, seed=5)

    def states(x, A, b, delta):
        return fused_states(x, A, b, delta, activation)

    assert torch.autograd.gradcheck(states, inputs, eps=1e-6, atol=1e-6)


def test_gradient_of_intermediate_states():
    activation = get_activation("tanh")
    inputs = _random_inputs(replicas=1, depth=5, dim=3, batch=2, seed=6)
    fused = fused_states(*inputs, activation)
    reference = reference_states(*inputs, activation)
    fused_grads = torch.autograd.grad(fused[2].sum() + fused[4].pow(2).sum(), inputs)
    reference_grads = torch.autograd.grad(
        reference[2].sum() + reference[4].pow(2).sum(), inputs
    )
    for fused_grad, reference_grad in zip(fused_grads, reference_grads, strict=True):
        torch.testing.assert_close(fused_grad, reference_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["tanh", "relu"])
def test_fused_output_gradcheck(name):
    from deeplimits.kernel import fused_output

    activation = get_activation(name)
    inputs = _random_inputs(replicas=2, depth=5, dim=3, batch=4, seed=7)

    def output(x, A, b, delta):
        return fused_output(x, A, b, delta, activation)

    assert torch.autograd.gradcheck(output, inputs, eps=1e-6, atol=1e-6)
    torch.testing.assert_close(
        output(*inputs),
        reference_states(*inputs, activation)[-1],
        rtol=1e-12,
        atol=1e-12,
    )
