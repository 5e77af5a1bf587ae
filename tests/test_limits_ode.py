"""Tests of the neural ODE and linear ODE limits against analytic references."""

import math

import numpy as np
import pytest
import torch

from deeplimits import ResNet
from deeplimits.activations import Activation
from deeplimits.limits import LinearODELimit, NeuralODELimit

torch.set_num_threads(1)
F64 = torch.float64


def _random_network(depth, activation="tanh", seed=0, dim=3):
    return ResNet(
        dim,
        depth,
        activation=activation,
        init="xavier",
        init_scale=1.0,
        delta="per-layer",
        seed=seed,
        dtype=F64,
    )


def _limit_of(net, **options):
    with torch.no_grad():
        return NeuralODELimit.from_weights(
            net.A, net.b, net.effective_delta(), activation=net.activation, **options
        )


def _inputs(batch=6, dim=3, seed=1):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, dim, dtype=F64, generator=generator)
    return x / x.norm(dim=1, keepdim=True)


def _slope(depths, errors):
    return -np.polyfit(np.log(depths), np.log(errors), 1)[0]


@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu"])
@pytest.mark.parametrize("backend", ["torchdiffeq", "stepper"])
def test_neural_ode_euler_is_network(activation, backend):
    net = _random_network(16, activation)
    x = _inputs()
    states = net.hidden_states(x).detach()
    solution = _limit_of(net).integrate(x, method="euler", backend=backend)
    assert solution.ys.shape == (17, 6, 3)
    assert torch.allclose(solution.ys, states, rtol=0, atol=1e-13)


def test_identity_network_converges_to_matrix_exponential():
    generator = torch.Generator().manual_seed(0)
    A = torch.randn(3, 3, dtype=F64, generator=generator) * 0.7
    x = _inputs()
    exact = x @ torch.linalg.matrix_exp(A).T
    depths = [8, 16, 32, 64, 128, 256]
    errors = []
    for depth in depths:
        net = ResNet.from_weights(
            A.expand(depth, 3, 3).clone(),
            torch.zeros(depth, 3, dtype=F64),
            torch.full((depth,), 1.0 / depth, dtype=F64),
            activation="identity",
        )
        errors.append(float((net(x).detach() - exact).norm(dim=1).max()))
    assert 0.9 <= _slope(depths, errors) <= 1.1

    # The fitted limit itself is the matrix exponential up to solver tolerance.
    limit = _limit_of(net)
    final = limit.integrate(x, rtol=1e-10, atol=1e-12).final.detach()
    assert (final - exact).abs().max().item() < 1e-8


@pytest.mark.parametrize(("beta", "band"), [(0.25, (0.42, 0.56)), (0.5, (0.95, 1.05))])
def test_linear_ode_rate_for_tanh(beta, band):
    # Constant weights A_k = L^-beta M, b_k = L^-beta c, delta_k = L^-(1-beta):
    # tanh(z) = z - z^3/3 + ..., so the error is O(1/L) + O(L^-2beta).
    generator = torch.Generator().manual_seed(0)
    M = torch.randn(3, 3, dtype=F64, generator=generator) * 0.5
    c = torch.randn(3, dtype=F64, generator=generator) * 0.5
    x = _inputs(8)
    limit = LinearODELimit(M[None].clone(), c[None].clone(), activation="tanh")

    # The limit is the affine flow exp(t [[M, c], [0, 0]]).
    augmented = torch.zeros(4, 4, dtype=F64)
    augmented[:3, :3], augmented[:3, 3] = M, c
    lifted = torch.cat([x, torch.ones(8, 1, dtype=F64)], dim=1)
    exact = (lifted @ torch.linalg.matrix_exp(augmented).T)[:, :3]
    final = limit.integrate(x, rtol=1e-11, atol=1e-13).final.detach()
    assert (final - exact).abs().max().item() < 1e-9

    depths = [256, 1024, 4096]
    errors = []
    for depth in depths:
        net = ResNet.from_weights(
            (depth**-beta * M).expand(depth, 3, 3).clone(),
            (depth**-beta * c).expand(depth, 3).clone(),
            torch.full((depth,), depth ** (beta - 1), dtype=F64),
            activation="tanh",
        )
        states = net.hidden_states(x).detach()
        ts = torch.arange(depth + 1, dtype=F64) / depth
        solution = limit.integrate(x, ts, rtol=1e-11, atol=1e-13).ys.detach()
        errors.append(float((states - solution).norm(dim=2).max()))
    gamma = _slope(depths, errors)
    assert band[0] <= gamma <= band[1]


@pytest.mark.parametrize("interpolation", ["constant", "linear"])
def test_stepper_rk4_agrees_with_dopri5(interpolation):
    net = _random_network(12)
    x = _inputs()
    limit = _limit_of(net, interpolation=interpolation)
    reference = limit.integrate(x, method="dopri8", rtol=1e-12, atol=1e-14).ys.detach()
    fast = limit.integrate(x, method="rk4", backend="stepper", dt=1 / 384).ys.detach()
    assert (fast - reference).abs().max().item() < 1e-8


def test_stepper_rk4_matches_torchdiffeq_midpoint_grid():
    net = _random_network(10)
    x = _inputs()
    limit = _limit_of(net)
    ours = limit.integrate(x, method="midpoint", backend="stepper").ys.detach()
    theirs = limit.integrate(x, method="midpoint").ys.detach()
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-14)


def test_adaptive_solver_is_told_the_knots():
    # Without jump_t, dopri5 would shrink its steps at every discontinuity.
    net = _random_network(64)
    limit = _limit_of(net)
    solution = limit.integrate(_inputs(), rtol=1e-8, atol=1e-10)
    assert solution.nfe < 12 * 64


def test_float32_solution_close_to_float64():
    net = _random_network(12)
    limit = _limit_of(net)
    x = _inputs()
    single = limit.integrate(x.float(), rtol=1e-6, atol=1e-7)
    double = limit.integrate(x, rtol=1e-10, atol=1e-12)
    assert single.ys.dtype == torch.float32
    assert (single.ys.double() - double.ys).abs().max().item() < 1e-5


def test_module_moves_with_to():
    limit = _limit_of(_random_network(4)).to(torch.float32)
    assert limit.Abar.values.dtype == torch.float32
    assert limit.integrate(_inputs().float()).ys.dtype == torch.float32


def test_adjoint_gradients_match_direct():
    net = _random_network(8)
    x = _inputs().requires_grad_(True)
    grads = []
    for adjoint in (False, True):
        limit = _limit_of(net)
        x.grad = None
        loss = limit.integrate(x, adjoint=adjoint, rtol=1e-10, atol=1e-12).final.pow(2)
        loss.sum().backward()
        grads.append((x.grad.clone(), limit.Abar.values.grad.clone()))
    assert torch.allclose(grads[0][0], grads[1][0], rtol=1e-6, atol=1e-8)
    assert torch.allclose(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-7)


def test_stepper_gradient_passes_gradcheck():
    limit = _limit_of(_random_network(4))
    x = _inputs(2).requires_grad_(True)

    def final(inputs):
        return limit.integrate(inputs, method="rk4", backend="stepper").final

    assert torch.autograd.gradcheck(final, (x,))


def test_vector_field_matches_definition():
    net = _random_network(5)
    limit = _limit_of(net)
    h = _inputs()
    k = 2
    expected = 5 * net.effective_delta()[k] * torch.tanh(h @ net.A[k].T + net.b[k])
    assert torch.allclose(limit.vector_field(0.45, h), expected.detach())


def test_relu_tables_fold_delta():
    net = _random_network(6, "relu")
    limit = _limit_of(net)
    delta = net.effective_delta().detach()
    assert torch.equal(limit.deltabar.values.detach(), torch.sign(delta))
    expected = 6 * delta.abs()[:, None, None] * net.A.detach()
    assert torch.allclose(limit.Abar.values.detach(), expected)


def test_linear_ode_rejects_nonzero_sigma0():
    sigmoid = Activation.from_function(torch.sigmoid, name="sigmoid")
    with pytest.raises(ValueError, match=r"needs sigma\(0\) = 0.*blows up"):
        LinearODELimit(torch.zeros(2, 3, 3), torch.zeros(2, 3), activation=sigmoid)


def test_linear_ode_rejects_relu():
    with pytest.raises(ValueError, match=r"needs sigma'\(0\).*neural-ode"):
        LinearODELimit(torch.zeros(2, 3, 3), torch.zeros(2, 3), activation="relu")


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"method": "rk45"}, ValueError, "method must be one of"),
        ({"backend": "scipy"}, ValueError, "backend must be one of"),
        (
            {"method": "dopri5", "backend": "stepper"},
            ValueError,
            "method must be one of",
        ),
        (
            {"adjoint": True, "backend": "stepper", "method": "rk4"},
            ValueError,
            "adjoint",
        ),
        ({"method": "rk4", "backend": "stepper", "dt": 0.3}, ValueError, "1/n or an"),
    ],
)
def test_integrate_rejects_bad_options(options, error, message):
    limit = _limit_of(_random_network(4))
    with pytest.raises(error, match=message):
        limit.integrate(_inputs(), **options)


def test_integrate_rejects_bad_state():
    limit = _limit_of(_random_network(4))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3\)"):
        limit.integrate(torch.zeros(2, 4, dtype=F64))
    with pytest.raises(TypeError, match="floating dtype"):
        limit.integrate(torch.zeros(2, 3, dtype=torch.int64))


def test_tables_must_match():
    with pytest.raises(ValueError, match="b and delta must have shapes"):
        NeuralODELimit(torch.zeros(3, 2, 2), torch.zeros(2, 2), torch.zeros(3))


def test_forward_returns_final_state():
    net = _random_network(4)
    limit = _limit_of(net)
    x = _inputs()
    assert torch.allclose(limit(x), limit.integrate(x).final)
    assert math.isfinite(float(limit(x).detach().sum()))


@pytest.mark.parametrize("backend", ["torchdiffeq", "stepper"])
def test_euler_off_knot_outputs_keep_network(backend):
    net = ResNet(3, 5, activation="tanh", init_scale=1.0, seed=0, dtype=F64)
    limit = NeuralODELimit.from_weights(
        net.A.detach(), net.b.detach(), net.effective_delta().detach()
    )
    x = torch.randn(4, 3, dtype=F64, generator=torch.Generator().manual_seed(1))
    states = net.hidden_states(x).detach()
    ts = torch.tensor([0.0, 0.1, 0.2, 0.4, 0.5, 1.0], dtype=F64)
    solution = limit.integrate(x, ts, method="euler", backend=backend)
    assert solution.n_steps == 5
    for i, knot in ((0, 0), (2, 1), (3, 2), (5, 5)):
        torch.testing.assert_close(solution.ys[i], states[knot], rtol=0, atol=1e-14)
    # t = 0.1 and 0.5 are halfway between knots: linear interpolation.
    middle = 0.5 * (states[0] + states[1])
    torch.testing.assert_close(solution.ys[1], middle, rtol=0, atol=1e-14)
    middle = 0.5 * (states[2] + states[3])
    torch.testing.assert_close(solution.ys[4], middle, rtol=0, atol=1e-14)


def test_fixed_grid_partial_end_step():
    # A constant field is integrated exactly by any step, so a last output
    # time inside a layer checks the partial step against b * t.
    b = torch.tensor([[0.3, -0.2]], dtype=F64).expand(4, 2).clone()
    limit = NeuralODELimit(
        torch.zeros(4, 2, 2, dtype=F64),
        b,
        torch.ones(4, dtype=F64),
        activation="identity",
    )
    ts = torch.tensor([0.1, 0.3, 0.65], dtype=F64)
    x = torch.zeros(1, 2, dtype=F64)
    for backend in ("torchdiffeq", "stepper"):
        solution = limit.integrate(x, ts, method="rk4", backend=backend)
        expected = (ts - 0.1)[:, None, None] * b[:1]
        torch.testing.assert_close(solution.ys, expected, rtol=0, atol=1e-15)


def test_float32_ts_dtype_and_concise_repr():
    net = ResNet(3, 6, init_scale=1.0, seed=0)
    limit = NeuralODELimit.from_weights(
        net.A.detach(), net.b.detach(), net.effective_delta().detach()
    )
    solution = limit.integrate(torch.ones(2, 3), method="euler")
    assert solution.ys.dtype == torch.float32
    assert solution.ts.dtype == torch.float32
    text = repr(solution)
    assert "tensor(" not in text
    assert "ts=(7,)" in text
    assert "dtype=torch.float32" in text
    assert "nfe=6" in text
