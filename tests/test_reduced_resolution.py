"""Default resolution, fine evaluation and sampling depth of reduced models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from deeplimits.reduced import ReducedLimitModel, get_basis
from deeplimits.reduced.model import default_steps
from deeplimits.reduced.resolution import (
    DISTANCE_THRESHOLD,
    choose_sampling_depth,
    compare_resolutions,
    relative_distance,
)

F64 = torch.float64


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(**kwargs) -> ReducedLimitModel:
    # init_scale 1.5 gives weights of order 1, so the flow is far from the
    # identity and coarse solvers make visible errors.
    options = dict(basis="legendre", K=4, init_scale=1.5, seed=0, dtype=F64)
    options.update(kwargs)
    return ReducedLimitModel(3, **options)


def _scipy_flow(model: ReducedLimitModel, x: torch.Tensor) -> torch.Tensor:
    """H(1) by scipy's DOP853 at rtol 1e-12, one input at a time."""

    def rhs(t: float, h: np.ndarray) -> np.ndarray:
        state = torch.from_numpy(h).reshape(1, -1)
        with torch.no_grad():
            return model.field(torch.tensor(t, dtype=F64), state).numpy().ravel()

    finals = []
    for row in x:
        solution = solve_ivp(
            rhs, (0.0, 1.0), row.numpy(), method="DOP853", rtol=1e-12, atol=1e-14
        )
        assert solution.success
        finals.append(solution.y[:, -1])
    return torch.from_numpy(np.stack(finals))


@pytest.mark.parametrize("K", range(1, 13))
def test_default_steps_rule(K) -> None:
    steps = default_steps(get_basis("piecewise-linear", K))
    assert steps >= 16
    assert steps >= 4 * (K - 1)
    # The grid k / steps contains the knots i / (K - 1).
    assert steps % max(K - 1, 1) == 0


def test_default_steps_values() -> None:
    assert default_steps(get_basis("legendre", 8)) == 28
    assert default_steps(get_basis("fourier", 1)) == 16
    assert default_steps(get_basis("chebyshev", 4)) == 18
    assert _model(K=8).steps == 28
    assert _model(K=8, steps=5).steps == 5


def test_fine_solve_matches_scipy() -> None:
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    reference = _scipy_flow(_model(), x)
    coarse = _model(steps=2)
    fine = _model().refined(8)
    assert fine.method == "rk4"
    assert fine.steps == 8 * 18
    with torch.no_grad():
        coarse_error = relative_distance(coarse(x), reference)
        fine_error = relative_distance(fine(x), reference)
    # The check can fail: 2 rk4 steps are far from the flow.
    assert coarse_error > 1e-3
    assert fine_error < 1e-6


def test_refined_adaptive_and_euler() -> None:
    adaptive = _model(method="dopri5", rtol=1e-6, atol=1e-8).refined(10)
    assert adaptive.method == "dopri5"
    assert adaptive.rtol == pytest.approx(1e-10)
    assert adaptive.atol == 1e-12
    euler = _model(method="euler", steps=4).refined(8)
    assert (euler.method, euler.steps) == ("rk4", 32)
    sde = _model(form="sde", steps=4).refined(8)
    assert (sde.method, sde.steps) == ("euler", 32)


def test_refined_rejects_factor_zero() -> None:
    with pytest.raises(ValueError, match="factor"):
        _model().refined(0)


def test_compare_resolutions_flags_coarse_solver() -> None:
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(200, 3, generator=generator, dtype=F64)
    # Targets: the flow plus noise, so the MSE of an accurate solve is 0.01.
    with torch.no_grad():
        y = _model(steps=64)(x) + 0.1 * torch.randn(
            x.shape, generator=generator, dtype=F64
        )
    coarse = compare_resolutions(_model(method="euler", steps=2), x, y)
    assert not coarse.agrees
    assert coarse.fine_solver == {"method": "rk4", "steps": 16}
    accurate = compare_resolutions(_model(), x, y)
    assert accurate.agrees
    assert accurate.output_distance < 1e-3


def test_sampling_depth_meets_threshold() -> None:
    model = _model()
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(3), dtype=F64)
    reference = _scipy_flow(model, x)
    result = choose_sampling_depth(model, x, reference, min_depth=4)
    table = {row["depth"]: row["distance"] for row in result["table"]}
    depth = result["depth"]
    assert result["met"]
    assert depth > 4
    # Recomputed independently of the table.
    with torch.no_grad():
        distance = relative_distance(model.to_resnet(depth)(x), reference)
    assert distance <= DISTANCE_THRESHOLD
    assert table[depth // 2] > DISTANCE_THRESHOLD
    assert len(table) >= 4
    # First order: the distance roughly halves per doubling of the depth.
    depths = sorted(table)
    for shallow, deep in zip(depths[2:-1], depths[3:], strict=True):
        assert 1.6 < table[shallow] / table[deep] < 2.4


def test_sampling_depth_unmet_and_errors() -> None:
    model = _model()
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(4), dtype=F64)
    with torch.no_grad():
        reference = model.refined()(x)
    result = choose_sampling_depth(model, x, reference, min_depth=2, max_depth=8)
    assert not result["met"]
    assert result["depth"] == 8
    assert [row["depth"] for row in result["table"]] == [2, 4, 8]
    with pytest.raises(ValueError, match="min_depth"):
        choose_sampling_depth(model, x, reference, min_depth=0)
    with pytest.raises(ValueError, match="ODE form"):
        choose_sampling_depth(_model(form="sde"), x, reference, min_depth=4)
