"""Tests of the warm start (network -> model) and sampling (model -> network)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deeplimits import ResNet
from deeplimits.reduced import BASIS_NAMES, ReducedLimitModel

F64 = torch.float64


def inputs(batch: int, dim: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, dim, generator=generator, dtype=F64)


def coefficients(model: ReducedLimitModel) -> dict[str, torch.Tensor]:
    return {name: p.detach() for name, p in model.field.named_parameters()}


@pytest.mark.parametrize("basis", BASIS_NAMES)
@pytest.mark.parametrize("form", ["neural-ode", "linear-ode"])
def test_projection_recovers_weights_in_basis(basis: str, form: str) -> None:
    model = ReducedLimitModel(
        3, basis=basis, K=5, form=form, init_scale=1.0, seed=11, dtype=F64
    )
    if model.field.has_gain:
        with torch.no_grad():
            model.field.gain_coef.add_(0.3 * torch.randn(5, dtype=F64))
    net = model.to_resnet(40)
    recovered = ReducedLimitModel.from_network(net, basis, 5, form=form)
    expected = coefficients(model)
    got = coefficients(recovered)
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=1e-10, rtol=0)


@pytest.mark.parametrize("low_rank", ["factors", "core"])
def test_projection_recovers_low_rank_path(low_rank: str) -> None:
    # A(t) = U C(t) V^T lies in the span of K basis functions and has rank 2
    # with fixed row and column spaces, the case the projection recovers.
    # (A factors model U(t) V(t)^T has degree 2(K - 1) and is not in the span.)
    model = ReducedLimitModel(
        5, K=4, rank=2, low_rank="core", init_scale=1.0, seed=3, dtype=F64
    )
    net = model.to_resnet(32)
    recovered = ReducedLimitModel.from_network(
        net, "legendre", 4, rank=2, low_rank=low_rank
    )
    times = torch.linspace(0, 1, 9, dtype=F64)
    A_model, b_model = model.weights(times)
    A_back, b_back = recovered.weights(times)
    # The factors are only defined up to an invertible r x r change of basis,
    # so compare the matrices A(t) themselves.
    torch.testing.assert_close(A_back, A_model, atol=1e-10, rtol=0)
    torch.testing.assert_close(b_back, b_model, atol=1e-10, rtol=0)


def test_relu_network_absorbs_delta_without_gain() -> None:
    # For ReLU, delta_k relu(A_k h + b_k) = relu(delta_k A_k h + delta_k b_k)
    # when delta_k > 0, so L delta_k A_k is what the projection must recover.
    model = ReducedLimitModel(
        3, K=4, activation="relu", gain=False, init_scale=1.0, seed=2, dtype=F64
    )
    L = 30
    A, b = model.weights(torch.arange(L, dtype=F64) / L)
    generator = torch.Generator().manual_seed(0)
    delta = (0.5 + torch.rand(L, generator=generator, dtype=F64)) / L
    net = ResNet.from_weights(
        (A / (L * delta[:, None, None])).detach(),
        (b / (L * delta[:, None])).detach(),
        delta,
        activation="relu",
    )
    recovered = ReducedLimitModel.from_network(net, "legendre", 4)
    assert not recovered.field.has_gain
    expected = coefficients(model)
    for name, value in coefficients(recovered).items():
        torch.testing.assert_close(value, expected[name], atol=1e-10, rtol=0)
    x = inputs(5, 3)
    with torch.no_grad():
        torch.testing.assert_close(recovered.to_resnet(L)(x), net(x))
    tanh_net = ResNet.from_weights(A.detach(), b.detach(), delta, activation="tanh")
    assert ReducedLimitModel.from_network(tanh_net, "legendre", 3).field.has_gain


def _flow_error(model: ReducedLimitModel, depths: list[int]) -> list[float]:
    x = inputs(8, model.dim, seed=1)
    with torch.no_grad():
        model.steps = 2048
        exact = model(x)
        errors = []
        for depth in depths:
            output = model.to_resnet(depth)(x)
            errors.append(float((output - exact).norm() / exact.norm()))
    return errors


@pytest.mark.parametrize("form", ["neural-ode", "linear-ode"])
def test_network_converges_to_model_at_first_order(form: str) -> None:
    model = ReducedLimitModel(
        4, basis="legendre", K=4, form=form, init_scale=1.0, seed=3, dtype=F64
    )
    depths = [8, 16, 32, 64, 128, 256]
    errors = _flow_error(model, depths)
    for earlier, later in zip(errors, errors[1:], strict=False):
        assert later < earlier
    # The network is explicit Euler with step 1/L: error ~ C / L.
    slope = np.polyfit(np.log(depths), np.log(errors), 1)[0]
    assert -1.15 < slope < -0.85
    assert errors[-1] < 0.01


def test_shared_delta_network_matches_per_layer() -> None:
    model = ReducedLimitModel(3, K=3, gain=False, seed=0, dtype=F64)
    x = inputs(4, 3)
    shared = model.to_resnet(16, delta="shared")
    per_layer = model.to_resnet(16, delta="per-layer")
    assert shared.delta_mode == "shared"
    with torch.no_grad():
        torch.testing.assert_close(shared(x), per_layer(x))


def test_sde_network_equals_euler_maruyama_on_same_path() -> None:
    model = ReducedLimitModel(
        3, K=4, form="sde", steps=32, init_scale=1.0, seed=5, dtype=F64
    )
    generator = torch.Generator().manual_seed(2)
    m = model.field.noise_dim
    increments = torch.randn(32, m, generator=generator, dtype=F64) / 32**0.5
    net = model.to_resnet(32, increments=increments)
    assert net.delta_mode == "none"
    x = inputs(6, 3)
    with torch.no_grad():
        paths = model.sample_paths(x, increments=increments)
        torch.testing.assert_close(net(x), paths[-1], atol=1e-12, rtol=0)
        torch.testing.assert_close(net.hidden_states(x), paths, atol=1e-12, rtol=0)


@pytest.mark.parametrize("noise", ["full", "diagonal"])
def test_sde_warm_start_estimates_diffusion(noise: str) -> None:
    # A diffusive identity network: delta_k A_k = Abar / L + Sigma * xi_k / sqrt(L)
    # with constant Abar and Sigma; the fitted drift and diffusion recover them.
    L, d = 4000, 2
    generator = torch.Generator().manual_seed(0)
    Abar = torch.tensor([[0.5, -1.0], [1.0, 0.2]], dtype=F64)
    Sigma = torch.tensor([[0.8, 0.3], [0.4, 1.2]], dtype=F64)
    if noise == "diagonal":
        Sigma = torch.diag(torch.diagonal(Sigma))
    bbar = torch.tensor([0.1, -0.2], dtype=F64)
    s = torch.tensor([0.5, 0.7], dtype=F64)
    xi = torch.randn(L, d, d, generator=generator, dtype=F64)
    zeta = torch.randn(L, d, generator=generator, dtype=F64)
    A = Abar / L + Sigma * xi / L**0.5
    b = bbar / L + s * zeta / L**0.5
    net = ResNet.from_weights(A, b, None, activation="identity")
    model = ReducedLimitModel.from_network(net, "legendre", 2, form="sde", noise=noise)
    t = torch.tensor(0.5, dtype=F64)
    S_fit = model.field.S(t).detach()
    expected_S = Sigma if noise == "full" else torch.diagonal(Sigma)
    # Relative standard error of a variance from L samples: sqrt(2 / L) ~ 2%.
    torch.testing.assert_close(S_fit, expected_S, atol=0.08, rtol=0)
    torch.testing.assert_close(model.field.s(t).detach(), s, atol=0.05, rtol=0)
    # The drift has standard error |Sigma| / sqrt(1) per entry: one path.
    drift_error = float((model.field.A(t).detach() - Abar).abs().max())
    assert drift_error < 4 * float(Sigma.max())
    assert model.field.quadratic == 0.0


def test_sde_quadratic_coefficient_from_activation() -> None:
    net = ResNet(3, 8, activation="softplus-centred", delta="none", seed=0, dtype=F64)
    model = ReducedLimitModel.from_network(net, "legendre", 2, form="sde")
    # sigma'(0) = 1/2, sigma''(0) = 1/4: c = (1/4) / (2 * 1/4) = 1/2.
    assert model.field.quadratic == pytest.approx(0.5)
    sampled = model.to_resnet(8, generator=torch.Generator().manual_seed(0))
    assert sampled.activation.d2sigma0 == pytest.approx(1.0)


def test_warm_start_rejects_bad_input() -> None:
    relu = ResNet(3, 8, activation="relu", seed=0)
    with pytest.raises(ValueError, match="sigma'\\(0\\), which does not exist"):
        ReducedLimitModel.from_network(relu, "legendre", 3, form="linear-ode")
    with pytest.raises(ValueError, match="has no SDE limit"):
        ReducedLimitModel.from_network(relu, "legendre", 3, form="sde")
    replicated = ResNet(3, 8, replicas=2, seed=0)
    with pytest.raises(ValueError, match="net.replica"):
        ReducedLimitModel.from_network(replicated, "legendre", 3)
    with pytest.raises(TypeError, match="must be a deeplimits.ResNet"):
        ReducedLimitModel.from_network(torch.nn.Linear(3, 3), "legendre", 3)
    with pytest.raises(ValueError, match="K must be at least 1"):
        ReducedLimitModel.from_network(relu, "legendre", 0)
    with pytest.raises(ValueError, match="unknown basis"):
        ReducedLimitModel.from_network(relu, "wavelet", 3)
    with pytest.raises(ValueError, match="rank must be between 1 and dim=3"):
        ReducedLimitModel.from_network(relu, "legendre", 3, rank=5)
    negative = ResNet(3, 8, activation="relu", delta="per-layer", seed=1)
    with torch.no_grad():
        negative.delta[0] = -0.1
    with pytest.raises(ValueError, match="every delta_k > 0"):
        ReducedLimitModel.from_network(negative, "legendre", 3, gain=False)
    tanh = ResNet(3, 8, activation="tanh", delta="shared", seed=0)
    with torch.no_grad():
        tanh.delta.fill_(0.5)
    with pytest.warns(UserWarning, match="gain=False drops L\\*delta_k"):
        ReducedLimitModel.from_network(tanh, "legendre", 3, gain=False)


def test_to_resnet_rejects_bad_input() -> None:
    model = ReducedLimitModel(3, K=2, seed=0)
    with pytest.raises(ValueError, match="depth must be at least 1"):
        model.to_resnet(0)
    with pytest.raises(TypeError, match="depth must be an int"):
        model.to_resnet(2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot carry the gain"):
        model.to_resnet(4, delta="shared")
    with pytest.raises(ValueError, match="delta must be one of"):
        model.to_resnet(4, delta="none")
    sde = ReducedLimitModel(3, K=2, form="sde", seed=0)
    with pytest.raises(ValueError, match="delta must be None or 'none'"):
        sde.to_resnet(4, delta="per-layer")
    with pytest.raises(ValueError, match="increments must have shape"):
        sde.to_resnet(4, increments=torch.zeros(3, 12))


def test_shallow_network_warns_once() -> None:
    import warnings

    from deeplimits import ReducedLimitModel, ResNet

    net = ResNet(4, 3, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ReducedLimitModel.from_network(net, "legendre", 8)
    messages = [str(w.message) for w in caught if "underdetermined" in str(w.message)]
    assert len(messages) == 1
    assert "depth 3 onto K=8" in messages[0]
    assert caught[0].filename == __file__
