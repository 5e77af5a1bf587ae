"""estimate_scaling: accepted sources, result contents, serialisation, bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch

from deeplimits import ResNet
from deeplimits.scaling import (
    SEQUENCES,
    STATISTICS,
    RegimeThresholds,
    ScalingResult,
    estimate_scaling,
    fit_power_law,
    rms,
)

F64 = torch.float64
DEPTHS = (8, 16, 32, 64)


def smooth_network(depth: int, *, replicas: int = 1, dim: int = 3) -> ResNet:
    """A_k = L^-0.25 cos-profile, b_k likewise, shared delta = L^-0.75."""
    t = torch.arange(depth, dtype=F64) / depth
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(replicas, 1, dim, dim, generator=generator, dtype=F64)
    profile = (1.0 + 0.5 * torch.cos(math.pi * t))[None, :, None, None]
    A = depth**-0.25 * (base + profile)
    b = A[..., 0]
    delta = torch.full((replicas,), depth**-0.75, dtype=F64)
    if replicas == 1:
        A, b, delta = A[0], b[0], delta[0]
    return ResNet.from_weights(A, b, delta)


def networks(**kwargs) -> dict[int, ResNet]:
    return {depth: smooth_network(depth, **kwargs) for depth in DEPTHS}


def test_sources_mapping_list_and_sweep_agree() -> None:
    nets = networks()
    from_mapping = estimate_scaling(nets)
    from_list = estimate_scaling(list(reversed(nets.values())))

    class Sweep:  # the attribute estimate_scaling reads from a SweepResult
        pass

    sweep = Sweep()
    sweep.networks = nets  # type: ignore[attr-defined]
    from_sweep = estimate_scaling(sweep)
    assert from_mapping.depths == DEPTHS
    assert from_list.beta.exponent == from_mapping.beta.exponent
    assert from_sweep.beta.exponent == from_mapping.beta.exponent


def test_exponents_match_direct_fits() -> None:
    result = estimate_scaling(networks())
    expected = fit_power_law(
        DEPTHS, [float(rms(smooth_network(depth).A.detach())) for depth in DEPTHS]
    )
    assert result.beta.exponent == pytest.approx(expected.exponent, rel=1e-12)
    assert result.alpha.exponent == pytest.approx(0.75, abs=1e-12)
    # Shared delta: rms(delta A) = |delta| rms(A), so gamma = alpha + beta exactly.
    assert result.beta_effective.exponent == pytest.approx(
        result.alpha.exponent + result.beta.exponent, abs=1e-12
    )


def test_every_sequence_and_statistic_present() -> None:
    result = estimate_scaling(networks(replicas=3))
    assert set(result.fits) == {(s, n) for s in SEQUENCES for n in STATISTICS}
    fit = result.fit("A", "max_norm")
    assert fit.pooled is not None
    assert fit.pooled.n_replicas == 3
    assert fit.pooled.n_points == 3 * len(DEPTHS)
    assert len(fit.per_replica) == 3
    assert all(item.n_replicas == 1 for item in fit.per_replica)
    assert len(fit.values) == 3
    assert len(fit.values[0]) == len(DEPTHS)
    assert result.replicas == 3
    assert len(result.roughness[0].ratios) == 3


def test_shared_delta_increments_unavailable() -> None:
    result = estimate_scaling(networks())
    fit = result.fit("delta", "quadratic_variation")
    assert fit.pooled is None
    assert "zero at every depth" in fit.unavailable
    # The detrended sum of a constant is rounding error, so it is treated as 0.
    assert result.fit("delta", "detrended_cumulative_sum").pooled is None


def test_zero_bias_everywhere_gives_no_beta_b() -> None:
    nets = {}
    for depth, net in networks().items():
        nets[depth] = ResNet.from_weights(
            net.A.detach(), torch.zeros_like(net.b.detach()), net.delta.detach()
        )
    result = estimate_scaling(nets)
    assert result.beta_b is None
    assert result.fit("delta*b").pooled is None


def test_to_dict_is_strict_json() -> None:
    result = estimate_scaling(networks(replicas=2))
    data = json.loads(result.to_json())
    assert data["verdict"]["regime"] == "smooth"
    assert data["exponents"]["beta"]["exponent"] == pytest.approx(result.beta.exponent)
    assert data["depths"] == list(DEPTHS)
    assert len(data["fits"]) == len(SEQUENCES) * len(STATISTICS)
    assert len(data["profiles"]["delta*A"]["64"][1]) == 64
    assert len(data["paths"]["64"][0]) == 65
    assert data["thresholds"]["smooth_min_ratio"] == 1.6


def test_summary_names_regime_and_exponents() -> None:
    result = estimate_scaling(networks())
    text = result.summary()
    assert "Verdict: smooth" in text
    assert f"{result.beta.exponent:.3f}" in text
    assert "Limit: linear-ode" in text
    assert str(result) == text
    assert isinstance(result, ScalingResult)


def test_fit_lookup_rejects_unknown_name() -> None:
    result = estimate_scaling(networks())
    with pytest.raises(KeyError, match="no fit for sequence 'W'"):
        result.fit("W")


def test_result_is_frozen() -> None:
    result = estimate_scaling(networks())
    with pytest.raises(AttributeError):
        result.depths = (1, 2, 3)  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.fits[("A", "rms")] = None  # type: ignore[index]


def test_rejects_fewer_than_three_depths() -> None:
    nets = networks()
    two = {8: nets[8], 16: nets[16]}
    with pytest.raises(ValueError, match=r"3 or more depths.*got depths \[8, 16\]"):
        estimate_scaling(two)


def test_rejects_nan_weight_naming_depth_and_tensor() -> None:
    nets = networks()
    with torch.no_grad():
        nets[32].A[3, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="depth 32 has 1 NaN or infinite entries in A"):
        estimate_scaling(nets)
    nets = networks()
    with torch.no_grad():
        nets[16].delta.fill_(float("inf"))
    with pytest.raises(ValueError, match="depth 16 has 16 NaN or infinite .* delta"):
        estimate_scaling(nets)


def test_rejects_statistic_zero_at_one_depth() -> None:
    nets = networks()
    nets[32] = ResNet.from_weights(
        nets[32].A.detach(), torch.zeros(32, 3, dtype=F64), nets[32].delta.detach()
    )
    with pytest.raises(ValueError, match="max_norm of b is zero at depth 32, so log"):
        estimate_scaling(nets)


def test_rejects_zero_effective_weights() -> None:
    nets = {}
    for depth in DEPTHS:
        nets[depth] = ResNet.from_weights(
            torch.zeros(depth, 2, 2, dtype=F64), torch.ones(depth, 2, dtype=F64)
        )
    with pytest.raises(ValueError, match="delta_k A_k are zero at every depth"):
        estimate_scaling(nets)


def test_rejects_mixed_widths() -> None:
    nets = networks()
    nets[64] = smooth_network(64, dim=4)
    with pytest.raises(ValueError, match=r"same dim.*mixed widths.*L=64: 4"):
        estimate_scaling(nets)


def test_rejects_mixed_replicas_activations_and_modes() -> None:
    nets = networks()
    nets[64] = smooth_network(64, replicas=2)
    with pytest.raises(ValueError, match="mixed replica counts"):
        estimate_scaling(nets)
    nets = networks()
    net = nets[64]
    nets[64] = ResNet.from_weights(
        net.A.detach(), net.b.detach(), net.delta.detach(), activation="relu"
    )
    with pytest.raises(ValueError, match=r"mixed activations.*L=64: relu"):
        estimate_scaling(nets)
    nets = networks()
    nets[64] = ResNet.from_weights(nets[64].A.detach(), nets[64].b.detach())
    with pytest.raises(ValueError, match="mixed delta modes"):
        estimate_scaling(nets)


def test_rejects_bad_source_and_options() -> None:
    nets = networks()
    with pytest.raises(TypeError, match="source must be a SweepResult"):
        estimate_scaling(42)
    with pytest.raises(TypeError, match=r"source\[8\] must be a deeplimits.ResNet"):
        estimate_scaling({8: "net", 16: nets[16], 32: nets[32]})
    with pytest.raises(ValueError, match="network of depth 16, not 8"):
        estimate_scaling({8: nets[16], 32: nets[32], 64: nets[64]})
    with pytest.raises(ValueError, match="two networks of depth 8"):
        estimate_scaling([nets[8], nets[8], nets[16], nets[32]])
    with pytest.raises(ValueError, match="statistic must be one of"):
        estimate_scaling(nets, statistic="L2")
    with pytest.raises(TypeError, match="thresholds must be a RegimeThresholds"):
        estimate_scaling(nets, thresholds={"smooth_min_ratio": 1.5})
    with pytest.raises(FileNotFoundError, match="no sweep in"):
        estimate_scaling("/nonexistent/run")


def test_thresholds_validated() -> None:
    with pytest.raises(ValueError, match="roughness bands must satisfy"):
        RegimeThresholds(smooth_min_ratio=1.1)
    with pytest.raises(ValueError, match="beta_zero_tolerance must be a finite"):
        RegimeThresholds(beta_zero_tolerance=-0.1)


def test_statistic_option_changes_headline_exponent() -> None:
    result = estimate_scaling(networks(), statistic="max_norm")
    assert result.statistic == "max_norm"
    assert result.beta.exponent == result.fit("A", "max_norm").pooled.exponent
