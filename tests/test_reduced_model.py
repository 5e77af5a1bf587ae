"""Tests of ReducedLimitModel: solvers, gradients, SDE paths, storage, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchsde
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from deeplimits.reduced import ReducedLimitModel

F64 = torch.float64


def inputs(batch: int, dim: int, seed: int = 0, dtype: torch.dtype = F64):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, dim, generator=generator, dtype=dtype)


def set_coefficients(model: ReducedLimitModel, **values: torch.Tensor) -> None:
    parameters = dict(model.field.named_parameters())
    with torch.no_grad():
        for name, value in values.items():
            parameters[name].copy_(value)


@pytest.mark.parametrize("form", ["neural-ode", "linear-ode", "sde"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_shape_and_dtype(form: str, dtype: torch.dtype) -> None:
    model = ReducedLimitModel(5, K=3, form=form, seed=0, dtype=dtype)
    x = inputs(7, 5, dtype=dtype)
    y = model(x)
    assert y.shape == (7, 5)
    assert y.dtype == dtype
    y.square().sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_linear_ode_constant_matches_matrix_exponential() -> None:
    # Legendre P_0 = 1, so only the first coefficient gives a constant A.
    model = ReducedLimitModel(
        3, K=4, form="linear-ode", steps=32, init_scale=0.0, dtype=F64
    )
    A = torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.5], [0.2, 0.0, -0.3]], dtype=F64)
    A_coef = torch.zeros(4, 3, 3, dtype=F64)
    A_coef[0] = A
    set_coefficients(model, A_coef=A_coef)
    x = inputs(4, 3)
    expected = x @ torch.from_numpy(expm(A.numpy())).T
    with torch.no_grad():
        # rk4 with h = 1/32 and |A| ~ 1.2: global error ~ h^4 ~ 1e-6 or less.
        torch.testing.assert_close(model(x), expected, atol=1e-7, rtol=0)


def test_neural_ode_rk4_converges_to_scipy_reference() -> None:
    model = ReducedLimitModel(
        3, basis="chebyshev", K=4, init_scale=1.0, seed=2, dtype=F64
    )
    x = inputs(1, 3, seed=5)

    def rhs(t: float, h: np.ndarray) -> np.ndarray:
        state = torch.from_numpy(h).reshape(1, 3)
        with torch.no_grad():
            return model.field(torch.tensor(t, dtype=F64), state).numpy().ravel()

    reference = solve_ivp(
        rhs, (0.0, 1.0), x[0].numpy(), method="DOP853", rtol=1e-13, atol=1e-13
    ).y[:, -1]
    errors = []
    steps_list = (32, 64, 128)
    for steps in steps_list:
        model.steps = steps
        with torch.no_grad():
            output = model(x)[0].numpy()
        errors.append(float(np.abs(output - reference).max()))
    assert errors[-1] < 1e-8
    # Fourth order: the log-log slope of the error against steps is about -4.
    slope = np.polyfit(np.log(steps_list), np.log(errors), 1)[0]
    assert -4.5 < slope < -3.7


def test_adaptive_solver_with_piecewise_linear_knots() -> None:
    fixed = ReducedLimitModel(
        3, basis="piecewise-linear", K=5, steps=1024, init_scale=1.0, seed=4, dtype=F64
    )
    adaptive = ReducedLimitModel(
        3,
        basis="piecewise-linear",
        K=5,
        method="dopri5",
        rtol=1e-10,
        atol=1e-10,
        init_scale=1.0,
        seed=4,
        dtype=F64,
    )
    x = inputs(4, 3)
    with torch.no_grad():
        torch.testing.assert_close(adaptive(x), fixed(x), atol=1e-8, rtol=0)


def _gradients(model: ReducedLimitModel, x: torch.Tensor) -> torch.Tensor:
    model.zero_grad()
    model(x).square().sum().backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


@pytest.mark.parametrize("rank", [None, 2])
def test_adjoint_and_direct_gradients_agree(rank: int | None) -> None:
    # The adjoint solves the backward equation with rk4 on the same grid, so
    # it differs from the exact gradient of the discrete forward pass by
    # O(h^4): about 1e-8 relative with 64 steps, 1e-5 with 16.
    x = inputs(6, 4)
    kwargs = dict(K=4, steps=64, rank=rank, init_scale=1.0, seed=3, dtype=F64)
    adjoint = _gradients(ReducedLimitModel(4, adjoint=True, **kwargs), x)
    direct = _gradients(ReducedLimitModel(4, adjoint=False, **kwargs), x)
    relative = float((adjoint - direct).norm() / direct.norm())
    assert relative < 1e-6


def test_adjoint_gradient_error_shrinks_like_fourth_order() -> None:
    x = inputs(6, 4)
    errors = []
    for steps in (8, 16, 32):
        kwargs = dict(K=4, steps=steps, init_scale=1.0, seed=3, dtype=F64)
        adjoint = _gradients(ReducedLimitModel(4, adjoint=True, **kwargs), x)
        direct = _gradients(ReducedLimitModel(4, adjoint=False, **kwargs), x)
        errors.append(float((adjoint - direct).norm() / direct.norm()))
    slope = np.polyfit(np.log([8, 16, 32]), np.log(errors), 1)[0]
    assert -5.5 < slope < -3.5


def test_direct_gradient_passes_gradcheck() -> None:
    model = ReducedLimitModel(
        2, K=2, steps=4, adjoint=False, init_scale=1.0, seed=0, dtype=F64
    )
    x = inputs(3, 2)
    parameters = tuple(model.parameters())
    names = [name for name, _ in model.field.named_parameters()]

    def output(*values: torch.Tensor) -> torch.Tensor:
        state = dict(zip(names, values, strict=True))
        return torch.func.functional_call(model.field, state, (torch.tensor(0.3), x))

    assert torch.autograd.gradcheck(output, parameters)


@pytest.mark.parametrize("low_rank", ["factors", "core"])
def test_low_rank_matrix_has_requested_rank(low_rank: str) -> None:
    model = ReducedLimitModel(6, K=3, rank=2, low_rank=low_rank, seed=0, dtype=F64)
    for t in (0.0, 0.4, 1.0):
        A = model.field.A(torch.tensor(t, dtype=F64))
        assert int(torch.linalg.matrix_rank(A)) == 2
    expected = 2 * 3 * 6 * 2 if low_rank == "factors" else 2 * 6 * 2 + 3 * 4
    assert model.num_parameters() == expected + 3 * 6 + 3  # + b and gain


@pytest.mark.parametrize("noise", ["full", "diagonal"])
def test_euler_maruyama_matches_torchsde(noise: str) -> None:
    # torchsde advances time as t + dt. With dt = 1/16 every grid time is exact
    # in binary floating point; with dt = 1/20 the times drift by about 1e-17
    # and the Brownian bridge over that gap changes the increments by ~1e-8.
    steps = 16
    model = ReducedLimitModel(
        3,
        K=3,
        form="sde",
        noise=noise,
        quadratic=0.3,
        steps=steps,
        init_scale=1.0,
        seed=1,
        dtype=F64,
    )
    x = inputs(4, 3)
    m = model.field.noise_dim
    bm = torchsde.BrownianInterval(
        t0=0.0,
        t1=1.0,
        size=(4, m),
        dtype=F64,
        entropy=7,
        levy_area_approximation="none",
    )
    grid = torch.arange(steps + 1, dtype=F64) / steps
    increments = torch.stack([bm(grid[k], grid[k + 1]) for k in range(steps)])
    with torch.no_grad():
        ours = model.sample_paths(x, increments=increments)
        theirs = torchsde.sdeint(
            model.torchsde_sde(), x, grid, bm=bm, method="euler", dt=1 / steps
        )
    torch.testing.assert_close(ours, theirs, atol=1e-13, rtol=0)


def test_sde_geometric_brownian_second_moment() -> None:
    # d = 1, dH = S H dW: Euler-Maruyama gives E[H_n^2] = x^2 (1 + S^2 dt)^n
    # exactly, and E[H_n] = x.
    steps, S, n_paths = 16, 0.5, 20000
    model = ReducedLimitModel(
        1, K=2, form="sde", steps=steps, init_scale=0.0, dtype=F64
    )
    set_coefficients(model, S_coef=torch.tensor([[[S]], [[0.0]]], dtype=F64))
    x = torch.ones(n_paths, 1, dtype=F64)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        final = model.sample_paths(x, generator=generator)[-1, :, 0]
    second = (1 + S**2 / steps) ** steps
    variance_of_square = float(final.square().var())
    assert abs(float(final.mean()) - 1.0) < 4 * math.sqrt((second - 1) / n_paths)
    assert abs(float(final.square().mean()) - second) < 4 * math.sqrt(
        variance_of_square / n_paths
    )


def test_sde_quadratic_term_shifts_mean() -> None:
    # dH = c s^2 dt + s dW with constant s: E[H_1] = x + c s^2.
    model = ReducedLimitModel(
        1, K=1, form="sde", quadratic=0.5, steps=8, init_scale=0.0, dtype=F64
    )
    set_coefficients(model, s_coef=torch.tensor([[0.8]], dtype=F64))
    x = torch.zeros(40000, 1, dtype=F64)
    with torch.no_grad():
        final = model.sample_paths(x, generator=torch.Generator().manual_seed(1))[-1]
    assert abs(float(final.mean()) - 0.5 * 0.64) < 4 * 0.8 / math.sqrt(40000)
    assert abs(float(final.var()) - 0.64) < 0.03


def test_sde_samples_average_reduces_variance() -> None:
    single = ReducedLimitModel(2, K=2, form="sde", seed=0, init_scale=1.0, dtype=F64)
    mean = ReducedLimitModel(
        2, K=2, form="sde", seed=0, init_scale=1.0, sde_samples=16, dtype=F64
    )
    x = torch.ones(2000, 2, dtype=F64)
    torch.manual_seed(0)
    with torch.no_grad():
        spread_single = float(single(x).var(dim=0).sum())
        spread_mean = float(mean(x).var(dim=0).sum())
    assert spread_mean < spread_single / 8


def test_save_and_load_round_trip(tmp_path) -> None:
    model = ReducedLimitModel(
        4, basis="fourier", K=5, rank=2, low_rank="core", seed=1, dtype=F64
    )
    path = tmp_path / "reduced.safetensors"
    model.save(path)
    loaded = ReducedLimitModel.load(path)
    x = inputs(3, 4)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)
    assert loaded.config() == model.config()


def test_load_rejects_other_file(tmp_path) -> None:
    from deeplimits import ResNet

    path = tmp_path / "net.safetensors"
    ResNet(3, 4, seed=0).save(path)
    with pytest.raises(ValueError, match="not a reduced-model file"):
        ReducedLimitModel.load(path)


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="K must be at least 1"):
        ReducedLimitModel(3, K=0)
    with pytest.raises(ValueError, match="unknown basis 'spline'"):
        ReducedLimitModel(3, basis="spline")
    with pytest.raises(ValueError, match="rank must be between 1 and dim=3"):
        ReducedLimitModel(3, rank=4)
    with pytest.raises(ValueError, match="rank must be between 1 and dim=3"):
        ReducedLimitModel(3, rank=0)
    with pytest.raises(TypeError, match="rank must be None or an int"):
        ReducedLimitModel(3, rank=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="form must be one of"):
        ReducedLimitModel(3, form="pde")
    with pytest.raises(ValueError, match="method must be 'euler'"):
        ReducedLimitModel(3, form="sde", method="rk4")
    with pytest.raises(ValueError, match="adjoint=True is not supported"):
        ReducedLimitModel(3, form="sde", adjoint=True)
    with pytest.raises(ValueError, match="gain=True is only for"):
        ReducedLimitModel(3, form="linear-ode", gain=True)
    with pytest.raises(ValueError, match="steps must be at least 1"):
        ReducedLimitModel(3, steps=0)
    with pytest.raises(ValueError, match="method must be one of"):
        ReducedLimitModel(3, method="leapfrog")
    with pytest.raises(ValueError, match="noise must be one of"):
        ReducedLimitModel(3, form="sde", noise="scalar")


def test_forward_rejects_bad_input() -> None:
    model = ReducedLimitModel(3, K=2, seed=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        model(torch.zeros(2, 4))
    with pytest.raises(TypeError, match="dtype torch.float64"):
        model(torch.zeros(2, 3, dtype=F64))
    with pytest.raises(ValueError, match="sample_paths integrates the SDE form"):
        model.sample_paths(torch.zeros(2, 3))
    sde = ReducedLimitModel(3, K=2, form="sde", steps=4, seed=0)
    with pytest.raises(ValueError, match="increments must have shape"):
        sde.sample_paths(torch.zeros(2, 3), increments=torch.zeros(3, 12))
    with pytest.raises(ValueError, match="solve integrates ODE forms only"):
        sde.solve(torch.zeros(2, 3))


@pytest.mark.parametrize(
    ("option", "value"), [("noise", "diagonal"), ("quadratic", 0.3)]
)
@pytest.mark.parametrize("form", ["neural-ode", "linear-ode"])
def test_sde_options_rejected_on_ode(form, option, value) -> None:
    with pytest.raises(ValueError, match=rf"{option}=.*form='sde'.*{form}"):
        ReducedLimitModel(5, form=form, **{option: value})


def test_to_resnet_increments_rejected_on_ode() -> None:
    model = ReducedLimitModel(3, K=2, seed=0)
    with pytest.raises(ValueError, match="increments=.*form='sde'.*neural-ode"):
        model.to_resnet(8, increments=torch.zeros(8, 12))
    with pytest.raises(ValueError, match="generator=.*form='sde'"):
        model.to_resnet(8, generator=torch.Generator())


def test_load_user_activation_needs_activation(tmp_path) -> None:
    model = ReducedLimitModel(3, K=2, activation=torch.sin, seed=0)
    path = tmp_path / "sin.safetensors"
    model.save(path)
    with pytest.raises(ValueError, match="saved with the user activation 'sin'"):
        ReducedLimitModel.load(path)
    loaded = ReducedLimitModel.load(path, activation=torch.sin)
    x = torch.randn(2, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_from_network_explicit_keywords() -> None:
    import inspect

    from deeplimits.reduced import warmstart

    method = inspect.signature(ReducedLimitModel.from_network).parameters
    function = inspect.signature(warmstart.from_network).parameters
    kinds = {p.kind for p in method.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds
    assert list(method) == list(function)
