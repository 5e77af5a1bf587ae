"""Tests of the linear-quadratic SDE limit, pathwise and statistical."""

import math

import pytest
import torch

from deeplimits import ResNet
from deeplimits.activations import get_activation
from deeplimits.limits import LinearQuadraticSDELimit

torch.set_num_threads(1)
F64 = torch.float64


def _diffusive_network(depth, activation="identity", seed=0, dim=3, replicas=1):
    return ResNet(
        dim,
        depth,
        activation=activation,
        init="diffusive",
        init_scale=1.0,
        delta="none",
        replicas=replicas,
        seed=seed,
        dtype=F64,
    )


def _limit_of(net, **options):
    with torch.no_grad():
        return LinearQuadraticSDELimit(
            net.A, net.b, net.effective_delta(), activation=net.activation, **options
        )


def _inputs(batch=5, dim=3, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, dim, dtype=F64, generator=generator)


@pytest.mark.parametrize("backend", ["torchsde", "stepper"])
def test_pathwise_identity_reproduces_network(backend):
    net = _diffusive_network(64)
    x = _inputs()
    states = net.hidden_states(x).detach()
    solution = _limit_of(net).integrate(x, backend=backend)
    assert solution.ys.shape == (65, 5, 3)
    assert (solution.ys - states).abs().max().item() < 1e-13


@pytest.mark.parametrize("activation", ["gelu", "softplus-centred", "tanh"])
def test_pathwise_euler_is_second_order_expansion(activation):
    net = _diffusive_network(32, activation)
    act = get_activation(activation)
    x = _inputs()
    with torch.no_grad():
        h = x
        expected = [h]
        for k in range(32):
            z = h @ net.A[k].T + net.b[k]
            h = h + act.dsigma0 * z + 0.5 * act.d2sigma0 * z**2
            expected.append(h)
    solution = _limit_of(net).integrate(x)
    assert (solution.ys - torch.stack(expected)).abs().max().item() < 1e-13


def test_stepper_and_torchsde_agree_on_samples():
    net = _diffusive_network(16, "gelu", replicas=4)
    limit = _limit_of(net)
    x = _inputs()
    a = limit.sample(x, 7, seed=3, dt=1 / 32)
    b = limit.sample(x, 7, seed=3, dt=1 / 32, backend="stepper")
    assert a.ys.shape == (17, 7, 5, 3)
    assert torch.allclose(a.ys, b.ys, rtol=0, atol=1e-13)


def test_network_ensemble_has_gbm_moments():
    # h_L = x prod_k (1 + A_k) with A_k ~ N(0, s^2/L): E h_L = x exactly and
    # E h_L^2 = x^2 (1 + s^2/L)^L, within 3e-5 relative of x^2 e^{s^2} at L=1024.
    depth, replicas, s, x0 = 1024, 4000, 0.5, 1.5
    generator = torch.Generator().manual_seed(0)
    A = torch.randn(replicas, depth, 1, 1, dtype=F64, generator=generator) * s
    A = A / math.sqrt(depth)
    zeros = torch.zeros(replicas, depth, 1, dtype=F64)
    ones = torch.ones(replicas, depth, dtype=F64)
    limit = LinearQuadraticSDELimit(
        A[:1, :, :, :], zeros[:1], ones[:1], activation="identity"
    )
    net = ResNet.from_weights(
        A, zeros, ones, activation="identity", delta_mode="per-layer"
    )
    final = net(torch.full((1, 1), x0, dtype=F64)).detach().reshape(-1)
    # The pathwise limit of replica 0 reproduces that network.
    pathwise = limit.integrate(torch.full((1, 1), x0, dtype=F64)).final
    assert abs(pathwise.item() - final[0].item()) < 1e-12

    n = final.numel()
    for moment, exact in ((final, x0), (final**2, x0**2 * math.exp(s**2))):
        standard_error = moment.std().item() / math.sqrt(n)
        assert abs(moment.mean().item() - exact) < 4 * standard_error + 3e-5 * exact


def test_statistical_samples_have_gbm_moments():
    # Pooled estimates over replicas: drift mu_hat (~0) and variance s2_hat (~s^2).
    # The sampled SDE dH = H (mu_hat dt + s_hat dW) has E H_1 = x e^{mu_hat} and
    # E H_1^2 = x^2 e^{2 mu_hat + s2_hat}; the test checks the samples against
    # these within CLT bounds, and the estimates against the truth within their
    # own sampling error.
    depth, replicas, s, x0 = 64, 4000, 0.5, 1.0
    generator = torch.Generator().manual_seed(0)
    A = torch.randn(replicas, depth, 1, 1, dtype=F64, generator=generator) * s
    A = A / math.sqrt(depth)
    zeros = torch.zeros(replicas, depth, 1, dtype=F64)
    ones = torch.ones(replicas, depth, dtype=F64)
    limit = LinearQuadraticSDELimit(
        A, zeros, ones, activation="identity", window=2 * depth
    )
    stats = limit.statistics
    mu_hat = stats.drift[:, 0].mean().item()
    s2_hat = (stats.diffusion[:, 0, 0] ** 2).mean().item()
    assert abs(mu_hat) < 4 * s / math.sqrt(replicas)
    assert abs(s2_hat - s**2) < 4 * s**2 * math.sqrt(2 / (replicas * depth))

    n_paths = 20000
    x = torch.full((1, 1), x0, dtype=F64)
    sample = limit.sample(x, n_paths, dt=1 / (4 * depth), seed=1, backend="stepper")
    final = sample.final.reshape(-1)
    steps = 4 * depth
    for power in (1, 2):
        # Euler's own moments on this grid, to rule out discretisation bias.
        rate = power * mu_hat + power * (power - 1) / 2 * s2_hat
        exact = x0**power * (1 + rate / steps) ** steps
        values = final**power
        standard_error = values.std().item() / math.sqrt(n_paths)
        assert abs(values.mean().item() - exact) < 4 * standard_error


def test_float32_pathwise():
    net = _diffusive_network(16, "tanh")
    limit = _limit_of(net).to(torch.float32)
    solution = limit.integrate(_inputs().float())
    assert solution.ys.dtype == torch.float32
    reference = _limit_of(net).integrate(_inputs()).ys
    assert (solution.ys.double() - reference).abs().max().item() < 1e-5


def test_drift_and_diffusion_shapes():
    limit = _limit_of(_diffusive_network(8, "gelu"))
    h = _inputs()
    assert limit.f(torch.tensor(0.3), h).shape == (5, 3)
    g = limit.g(torch.tensor(0.3), h)
    assert g.shape == (5, 3, 12)
    v = torch.randn(5, 12, dtype=F64)
    product = torch.einsum("bdm,bm->bd", g, v)
    assert torch.allclose(
        product, limit._diffusion_product("pathwise", torch.tensor(2.4), h, v)
    )
    sde = limit.statistical_sde()
    assert sde.g(torch.tensor(0.3), h).shape == (5, 3, 12)


def test_sde_rejects_relu():
    net = _diffusive_network(4, "relu")
    with pytest.raises(ValueError, match=r"C\^2 near 0.*relu"):
        _limit_of(net)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "milstein"}, "method must be 'euler'"),
        ({"adjoint": True}, "adjoint=True is not supported"),
        ({"backend": "diffrax"}, "backend must be one of"),
    ],
)
def test_integrate_rejects_bad_options(options, message):
    limit = _limit_of(_diffusive_network(4, "tanh"))
    with pytest.raises(ValueError, match=message):
        limit.integrate(_inputs(), **options)


def test_sample_rejects_bad_path_count():
    limit = _limit_of(_diffusive_network(4, "tanh"))
    with pytest.raises(ValueError, match="n_paths must be at least 1"):
        limit.sample(_inputs(), 0)


def test_replica_out_of_range():
    net = _diffusive_network(4, "tanh", replicas=2)
    with pytest.raises(ValueError, match=r"replica must lie in \[0, 2\)"):
        _limit_of(net, replica=2)


def _identity_path_setup(depth=64, dim=3):
    generator = torch.Generator().manual_seed(0)
    A = torch.randn(depth, dim, dim, dtype=F64, generator=generator) / depth**0.5
    net = ResNet.from_weights(
        A,
        torch.zeros(depth, dim, dtype=F64),
        torch.ones(depth, dtype=F64),
        activation="identity",
    )
    return net, _limit_of(net), _inputs(dim=dim)


@pytest.mark.parametrize("backend", ["torchsde", "stepper"])
def test_pathwise_rejects_sub_layer_dt(backend):
    # Steps of 1/(4L) on the linear interpolation give prod (I + A_k/4)^4 x,
    # the road to the Stratonovich solution prod expm(A_k) x.
    _, limit, x = _identity_path_setup()
    with pytest.raises(ValueError, match=r"dt must be a multiple n/L .*Stratonovich"):
        limit.integrate(x, dt=1 / (4 * limit.depth), backend=backend)
    with pytest.raises(ValueError, match=r"got dt=0.0234375"):
        limit.integrate(x, dt=1.5 / limit.depth, backend=backend)


@pytest.mark.parametrize("backend", ["torchsde", "stepper"])
def test_pathwise_rejects_off_knot_ends(backend):
    _, limit, x = _identity_path_setup()
    half = 0.5 / limit.depth
    for ts in ([0.0, half], [half, 1.0]):
        with pytest.raises(ValueError, match="ts must start and end on layer knots"):
            limit.integrate(x, torch.tensor(ts, dtype=F64), backend=backend)


@pytest.mark.parametrize("backend", ["torchsde", "stepper"])
def test_pathwise_interpolates_inner_times(backend):
    net, limit, x = _identity_path_setup(depth=8)
    states = net.hidden_states(x).detach()
    ts = torch.tensor([0.0, 0.1, 0.25, 0.3, 1.0], dtype=F64)
    ys = limit.integrate(x, ts, backend=backend).ys
    torch.testing.assert_close(ys[0], states[0], rtol=0, atol=1e-14)
    torch.testing.assert_close(ys[2], states[2], rtol=0, atol=1e-14)
    torch.testing.assert_close(ys[4], states[8], rtol=0, atol=1e-13)
    # t = 0.1 is layer-clock time 0.8, t = 0.3 is 2.4.
    torch.testing.assert_close(
        ys[1], states[0] + 0.8 * (states[1] - states[0]), rtol=0, atol=1e-14
    )
    torch.testing.assert_close(
        ys[3], states[2] + 0.4 * (states[3] - states[2]), rtol=0, atol=1e-14
    )


def test_pathwise_coarse_dt_matches_knots():
    net, limit, x = _identity_path_setup(depth=8)
    states = net.hidden_states(x).detach()
    for backend in ("torchsde", "stepper"):
        solution = limit.integrate(x, dt=2 / limit.depth, backend=backend)
        assert solution.n_steps == 4
        # A two-layer Euler step is (I + A_k + A_{k+1}) h, not the network.
        assert (solution.final - states[-1]).abs().max() > 1e-3


def test_effective_path_rejects_sdeint_sub_layer_steps():
    import torchsde

    from deeplimits.limits.sde import _SDEFunctions

    _, limit, x = _identity_path_setup(depth=8)
    sde = _SDEFunctions(limit, "pathwise", clock=True)
    ts = torch.tensor([0.0, 8.0], dtype=F64)
    path = limit.effective_path(batch=x.shape[0])
    with pytest.raises(ValueError, match=r"got time 0.25.*Stratonovich"):
        torchsde.sdeint(sde, x, ts, bm=path, method="euler", dt=0.25)
    ys = torchsde.sdeint(sde, x, ts, bm=path, method="euler", dt=1.0)
    assert torch.isfinite(ys).all()


def test_window_above_two_depth_matches_full():
    net = _diffusive_network(16, seed=3)
    full = _limit_of(net, window=2 * 16 - 1).statistics
    wider = _limit_of(net, window=2 * 16).statistics
    assert wider.window == 2 * 16 - 1
    torch.testing.assert_close(wider.drift, full.drift, rtol=0, atol=0)
    torch.testing.assert_close(wider.diffusion, full.diffusion, rtol=0, atol=0)
    # Every position averages all layers, so the drift is the same everywhere.
    torch.testing.assert_close(
        full.drift, full.drift[:1].expand_as(full.drift), rtol=0, atol=1e-12
    )


def test_float32_solution_ts_dtype_and_repr():
    net = _diffusive_network(8)
    limit = _limit_of(net).to(torch.float32)
    solution = limit.integrate(_inputs().to(torch.float32))
    assert solution.ys.dtype == torch.float32
    assert solution.ts.dtype == torch.float32
    text = repr(solution)
    assert "tensor(" not in text
    assert "ys=(9, 5, 3)" in text
    assert "n_steps=8" in text
