"""Activations: values, derivatives and the data at zero."""

import math

import pytest
import torch

from deeplimits import Activation, get_activation
from deeplimits.activations import ACTIVATION_NAMES

EXPECTED_AT_ZERO = {
    # name: (sigma(0), sigma'(0), sigma''(0), C^2 at 0, positively homogeneous)
    "tanh": (0.0, 1.0, 0.0, True, False),
    "relu": (0.0, None, None, False, True),
    "identity": (0.0, 1.0, 0.0, True, True),
    "gelu": (0.0, 0.5, math.sqrt(2.0 / math.pi), True, False),
    "softplus-centred": (0.0, 0.5, 0.25, True, False),
}


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_data_at_zero(name):
    activation = get_activation(name)
    sigma0, dsigma0, d2sigma0, c2, homogeneous = EXPECTED_AT_ZERO[name]
    assert activation.sigma0 == pytest.approx(sigma0, abs=1e-15)
    if dsigma0 is None:
        assert activation.dsigma0 is None
        assert activation.d2sigma0 is None
    else:
        assert activation.dsigma0 == pytest.approx(dsigma0, rel=1e-14)
        assert activation.d2sigma0 == pytest.approx(d2sigma0, rel=1e-14, abs=1e-15)
    assert activation.c2_at_zero is c2
    assert activation.homogeneous is homogeneous


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_derivative_matches_autograd(name):
    activation = get_activation(name)
    z = torch.linspace(-3, 3, 61, dtype=torch.float64)
    z = z[z.abs() > 1e-9]  # ReLU has no derivative at 0
    point = z.clone().requires_grad_(True)
    (slope,) = torch.autograd.grad(activation.fn(point).sum(), point)
    torch.testing.assert_close(activation.derivative(z), slope, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["gelu", "softplus-centred", "tanh"])
def test_data_at_zero_matches_from_function(name):
    built_in = get_activation(name)
    wrapped = Activation.from_function(built_in.fn, name="copy")
    assert wrapped.sigma0 == pytest.approx(built_in.sigma0, abs=1e-14)
    assert wrapped.dsigma0 == pytest.approx(built_in.dsigma0, rel=1e-12)
    assert wrapped.d2sigma0 == pytest.approx(built_in.d2sigma0, rel=1e-10, abs=1e-14)


def test_user_function_shifted_sigmoid():
    activation = get_activation(torch.sigmoid)
    assert activation.name == "sigmoid"
    assert activation.sigma0 == pytest.approx(0.5)
    assert activation.dsigma0 == pytest.approx(0.25)
    assert activation.d2sigma0 == pytest.approx(0.0, abs=1e-15)
    z = torch.linspace(-2, 2, 9, dtype=torch.float64)
    expected = torch.sigmoid(z) * (1 - torch.sigmoid(z))
    torch.testing.assert_close(activation.derivative(z), expected)


def test_unknown_name_rejected():
    with pytest.raises(
        ValueError, match=r"activation must be one of .*'tanh'.*got 'sigmoid'"
    ):
        get_activation("sigmoid")


def test_non_callable_rejected():
    with pytest.raises(TypeError, match=r"activation must be a name.*got 3 \(int\)"):
        get_activation(3)


def test_shape_changing_function_rejected():
    with pytest.raises(
        ValueError, match="must map a tensor to a tensor of the same shape"
    ):
        Activation.from_function(lambda z: z.sum())


def test_non_differentiable_at_zero_rejected():
    with pytest.raises(ValueError, match="non-finite value or derivatives at 0"):
        Activation.from_function(lambda z: z.abs().sqrt())


def test_from_function_under_no_grad():
    with torch.no_grad():
        activation = Activation.from_function(torch.sin)
    assert activation.dsigma0 == pytest.approx(1.0)
    assert activation.d2sigma0 == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("name", ["tanh", "relu", "identity", "softplus-centred"])
def test_slope_from_output_matches_derivative(name):
    activation = get_activation(name)
    z = torch.linspace(-4, 4, 81, dtype=torch.float64)
    z = z[z.abs() > 1e-9]  # ReLU has no derivative at 0
    slope = activation.derivative_from_output(activation.fn(z))
    torch.testing.assert_close(slope, activation.derivative(z), rtol=1e-12, atol=1e-14)
