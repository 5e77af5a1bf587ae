"""Tests of fit_limit: regime choice, sources and forced limits."""

import json

import pytest
import torch

from deeplimits import ResNet
from deeplimits.activations import Activation
from deeplimits.limits import (
    LinearODELimit,
    LinearQuadraticSDELimit,
    NeuralODELimit,
    NoLimitError,
    fit_limit,
    roughness_ratio,
)

torch.set_num_threads(1)
F64 = torch.float64


def _net(init, activation="tanh", depth=64, **options):
    return ResNet(
        6,
        depth,
        activation=activation,
        init=init,
        init_scale=1.0,
        seed=0,
        dtype=F64,
        **options,
    )


def test_roughness_ratio_bands():
    generator = torch.Generator().manual_seed(0)
    smooth = torch.sin(torch.linspace(0, 3, 256, dtype=F64))[:, None] / 256
    noise = torch.randn(256, 4, dtype=F64, generator=generator)
    assert roughness_ratio(smooth)[0] == pytest.approx(2.0, abs=0.01)
    assert roughness_ratio(noise)[0] == pytest.approx(1.0, abs=0.2)
    assert roughness_ratio(torch.zeros(8, 2)) == (2.0, 0.0)


def test_auto_smooth_gives_neural_ode():
    limit = fit_limit(_net("smooth"))
    assert isinstance(limit, NeuralODELimit)
    assert limit.evidence.verdict == "smooth"
    assert limit.evidence.source == "roughness"


def test_auto_diffusive_tanh_gives_sde():
    limit = fit_limit(_net("diffusive"))
    assert isinstance(limit, LinearQuadraticSDELimit)
    assert limit.evidence.roughness_ratio == pytest.approx(1.0, abs=0.2)


def test_auto_diffusive_relu_has_no_limit():
    with pytest.raises(NoLimitError, match="no ODE or SDE limit") as info:
        fit_limit(_net("diffusive", "relu"))
    assert info.value.evidence.verdict == "diffusive"
    assert info.value.evidence.regime == "none"


def test_auto_sparse_weights_have_no_limit():
    net = _net("zero", depth=32)
    with torch.no_grad():
        net.A[5] = torch.eye(6, dtype=F64)
    with pytest.raises(NoLimitError) as info:
        fit_limit(net)
    assert info.value.evidence.verdict == "neither"
    assert info.value.evidence.details["max_layer_share"] == 1.0


def test_forced_limits_and_raw_weights():
    net = _net("smooth", depth=16)
    A, b, delta = net.A.detach(), net.b.detach(), net.effective_delta().detach()
    limit = fit_limit((A, b, delta), "linear-ode")
    assert isinstance(limit, LinearODELimit)
    assert torch.allclose(limit.weight.values, 16 * delta[:, None, None] * A)
    from_dict = fit_limit({"A": A, "b": b, "delta": delta}, "sde")
    assert isinstance(from_dict, LinearQuadraticSDELimit)
    assert from_dict.evidence.source == "forced"


def test_weights_file_source(tmp_path):
    net = _net("smooth", depth=8)
    net.save(tmp_path / "net.safetensors")
    limit = fit_limit(tmp_path / "net.safetensors", "neural-ode")
    x = torch.zeros(2, 6, dtype=F64)
    states = net.hidden_states(x).detach()
    assert torch.allclose(limit.integrate(x, method="euler").ys, states, atol=1e-13)


def test_run_folder_uses_scaling_json(tmp_path):
    (tmp_path / "weights").mkdir()
    net = _net("diffusive", depth=16)
    net.save(tmp_path / "weights" / "depth_00016.safetensors")
    _net("diffusive", depth=8).save(tmp_path / "weights" / "depth_00008.safetensors")
    verdict = {
        "regime": "smooth",
        "evidence": ["test verdict"],
        "limit": {"kind": "linear-ode", "reason": "beta > 0"},
    }
    record = {
        "exponents": {"alpha": {"exponent": 0.5}, "beta": {"exponent": 0.5}},
        "verdict": verdict,
    }
    (tmp_path / "scaling.json").write_text(json.dumps(record))
    limit = fit_limit(tmp_path)
    assert isinstance(limit, LinearODELimit)
    assert limit.depth == 16
    assert limit.evidence.source == "scaling"
    assert limit.evidence.beta == 0.5


def test_forced_linear_ode_rejects_sigmoid():
    sigmoid = Activation.from_function(torch.sigmoid, name="sigmoid")
    net = _net("smooth", activation=sigmoid, depth=8)
    with pytest.raises(ValueError, match=r"sigma\(0\) = 0"):
        fit_limit(net, "linear-ode")


def test_forced_sde_rejects_relu():
    with pytest.raises(ValueError, match=r"C\^2"):
        fit_limit(_net("diffusive", "relu", depth=8), "sde")


def test_bad_regime_and_source():
    with pytest.raises(ValueError, match="regime must be one of"):
        fit_limit(_net("smooth", depth=4), "ode")
    with pytest.raises(TypeError, match="source must be a ResNet"):
        fit_limit(42)
    with pytest.raises(FileNotFoundError, match="neither a weights file"):
        fit_limit("/nonexistent/run")


def test_replica_choice():
    net = _net("smooth", depth=8, replicas=3)
    limit = fit_limit(net, "neural-ode", replica=2)
    assert torch.allclose(limit.Abar.values, net.A[2].detach())
    with pytest.raises(ValueError, match=r"replica must lie in \[0, 3\)"):
        fit_limit(net, "neural-ode", replica=3)


@pytest.mark.parametrize(
    ("regime", "options", "message"),
    [
        ("auto", {"interpolation": "cubic-spline-x"}, "interpolation must be one of"),
        ("sde", {"interpolation": "cubic"}, "interpolation must be one of"),
        ("auto", {"smoothing": -1.0}, r"smoothing must be None .* got -1.0"),
        ("sde", {"smoothing": float("nan")}, "smoothing must be None"),
        ("neural-ode", {"window": -5}, r"window must be None .* got -5"),
        ("neural-ode", {"window": 0}, r"window must be None .* got 0"),
        ("linear-ode", {"window": 2.5}, "window must be None"),
    ],
)
def test_fit_limit_checks_every_option(regime, options, message):
    net = ResNet(10, 8, seed=0)
    with pytest.raises(ValueError, match=message):
        fit_limit(net, regime, **options)
