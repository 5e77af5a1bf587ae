"""Tests of the layer clock, piecewise weight tables and the effective path."""

import pytest
import torch

from deeplimits.limits.paths import (
    EffectivePath,
    PiecewiseFunction,
    smooth_table,
    to_layer_clock,
)

torch.set_num_threads(1)


def test_layer_clock_snaps_float32_grid():
    depth = 1000
    ts = torch.linspace(0, 1, depth + 1, dtype=torch.float32)
    clock = to_layer_clock(ts, depth)
    assert clock.dtype == torch.float64
    assert torch.equal(clock, torch.arange(depth + 1, dtype=torch.float64))


def test_layer_clock_keeps_off_knot_times():
    clock = to_layer_clock(torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64), 4)
    assert clock[1].item() == pytest.approx(1.2, abs=1e-12)


def test_layer_clock_default_is_knots():
    assert torch.equal(
        to_layer_clock(None, 3), torch.tensor([0.0, 1.0, 2.0, 3.0]).double()
    )


@pytest.mark.parametrize(
    ("ts", "message"),
    [
        (torch.tensor([0.5]), "at least 2"),
        (torch.tensor([0.0, 0.5, 0.5]), "strictly increasing"),
        (torch.tensor([0.0, 1.5]), r"inside \[0, 1\]"),
        (torch.tensor([[0.0, 1.0]]), "1 dimensions"),
    ],
)
def test_layer_clock_rejects_bad_times(ts, message):
    with pytest.raises(ValueError, match=message):
        to_layer_clock(ts, 4)


def test_piecewise_constant_lookup():
    table = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    f = PiecewiseFunction(table)
    assert f(0.0).item() == 1.0
    assert f(1 / 3).item() == 2.0
    assert f(0.99).item() == 3.0
    assert f(1.0).item() == 3.0
    # Just below a knot reads the previous piece, as torchdiffeq's perturbation needs.
    below = torch.nextafter(torch.tensor(1.0).double(), torch.tensor(0.0).double())
    assert f.at_clock(below).item() == 1.0


def test_piecewise_linear_lookup_and_extrapolation():
    f = PiecewiseFunction(
        torch.tensor([0.0, 2.0, 6.0]).double(), interpolation="linear"
    )
    assert f(1 / 6).item() == pytest.approx(1.0)
    assert f(0.5).item() == pytest.approx(4.0)
    # Last slope (4 per layer) continues on [t_2, 1].
    assert f(1.0).item() == pytest.approx(10.0)


def test_piecewise_gradient_reaches_table():
    f = PiecewiseFunction(torch.ones(4, 2, dtype=torch.float64), interpolation="linear")
    f(0.3).sum().backward()
    assert f.values.grad is not None
    assert f.values.grad.abs().sum().item() == pytest.approx(2.0)


def test_piecewise_knots_kinds():
    constant = PiecewiseFunction(torch.ones(5))
    linear = PiecewiseFunction(torch.ones(5), interpolation="linear")
    knots, kind = constant.knots()
    assert kind == "jump_t"
    assert knots.tolist() == [1.0, 2.0, 3.0, 4.0]
    knots, kind = linear.knots()
    assert kind == "step_t"
    assert knots.tolist() == [1.0, 2.0, 3.0]


def test_piecewise_rejects_unknown_interpolation():
    with pytest.raises(ValueError, match="interpolation must be one of"):
        PiecewiseFunction(torch.ones(3), interpolation="cubic")


def test_smoothing_keeps_constant_and_reduces_noise():
    constant = torch.full((50, 3), 2.0, dtype=torch.float64)
    assert torch.allclose(smooth_table(constant, 3.0), constant)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(400, dtype=torch.float64, generator=generator)
    assert smooth_table(noise, 4.0).std() < 0.4 * noise.std()


def test_smoothing_rejects_negative_width():
    with pytest.raises(ValueError, match="smoothing must be a finite width"):
        smooth_table(torch.ones(4), -1.0)


def test_effective_path_increments_and_shape():
    generator = torch.Generator().manual_seed(1)
    increments = torch.randn(6, 5, dtype=torch.float64, generator=generator)
    path = EffectivePath(increments, batch=3)
    assert path.shape == (3, 5)
    step = path(torch.tensor(2.0).double(), torch.tensor(3.0).double())
    assert torch.equal(step, increments[2].expand(3, 5))
    total = path(torch.tensor(0.0).double(), torch.tensor(6.0).double())
    assert torch.allclose(total[0], increments.sum(0))
    half = path(torch.tensor(1.0).double(), torch.tensor(1.5).double())
    assert torch.allclose(half[0], 0.5 * increments[1])


def test_effective_path_rejects_levy_area():
    path = EffectivePath(torch.zeros(2, 2), batch=1)
    with pytest.raises(ValueError, match="Levy area"):
        path(0.0, 1.0, return_A=True)
