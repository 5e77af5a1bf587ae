"""Checks that qualify the scaling result: an approximate Hypothesis 1,
near-copy replicas, curvature over the depth range, too-shallow networks."""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

import pytest
import torch

from deeplimits import ResNet
from deeplimits.activations import get_activation
from deeplimits.scaling import estimate_scaling, write_section
from deeplimits.scaling.plots import paths_caption
from deeplimits.scaling.regimes import RoughnessAtDepth, decide_regime
from deeplimits.scaling.regression import PowerLawFit

sys.path.insert(0, str(Path(__file__).parent))
from test_scaling_validation import smooth_network  # noqa: E402

F64 = torch.float64


def _fit(exponent: float, low: float, high: float) -> PowerLawFit:
    return PowerLawFit(
        exponent=exponent,
        stderr=(high - low) / 4,
        ci_low=low,
        ci_high=high,
        confidence=0.95,
        r2=0.99,
        prefactor=1.0,
        min_depth=3,
        max_depth=291,
        n_depths=7,
        n_replicas=1,
        n_points=7,
        log_depth_mean=3.0,
        log_depth_sxx=10.0,
        residual_std=0.01,
        t_quantile=2.57,
    )


def _smooth_verdict(gamma: PowerLawFit):
    roughness = [
        RoughnessAtDepth(
            depth=291,
            ratios=(2.0,),
            ratio=2.0,
            hurst=1.0,
            band="smooth",
            effective_layers=280.0,
            largest_layer_share=0.01,
        )
    ]
    return decide_regime(
        roughness,
        activation=get_activation("tanh"),
        alpha=_fit(0.67, 0.66, 0.68),
        beta=_fit(0.26, 0.25, 0.27),
        beta_effective=gamma,
        effective_layers_growth=None,
    )


def test_verdict_approximate_when_interval_excludes_one() -> None:
    verdict = _smooth_verdict(_fit(0.933, 0.924, 0.942))
    expected = (
        "smooth, approximately: alpha + beta = 0.933 [0.924, 0.942] excludes 1, "
        "so L delta_k A_k grows like L^0.067 over L = 3..291 and the limit is an "
        "approximation on this depth range"
    )
    assert verdict.label == expected
    assert verdict.limit.kind == "linear-ode"
    assert verdict.hypothesis_1_consistent
    assert not verdict.hypothesis_1_exact
    data = verdict.to_dict()
    assert data["hypothesis_1_exact"] is False
    assert data["caveats"] == [expected.removeprefix("smooth, approximately: ")]


def test_verdict_approximate_when_gamma_above_one() -> None:
    verdict = _smooth_verdict(_fit(1.05, 1.03, 1.07))
    assert "L delta_k A_k decays like L^-0.050" in verdict.label


def test_verdict_exact_when_interval_contains_one() -> None:
    verdict = _smooth_verdict(_fit(0.99, 0.97, 1.01))
    assert verdict.hypothesis_1_exact
    assert verdict.caveats == ()
    assert verdict.label == "smooth"


def _off_networks() -> dict[int, ResNet]:
    """beta = 0.25 and delta = L^-0.68, so gamma = 0.93 and L delta A ~ L^0.07."""
    nets = {}
    for depth in (16, 32, 64, 128, 256):
        net = smooth_network(depth, 0.25, seed=0)
        delta = torch.tensor(depth**-0.68, dtype=F64)
        nets[depth] = ResNet.from_weights(net.A.detach(), net.b.detach(), delta)
    return nets


def test_estimate_reports_approximate_smooth_verdict() -> None:
    result = estimate_scaling(_off_networks())
    gamma = result.beta_effective
    assert result.regime == "smooth"
    assert not gamma.contains(1.0)
    assert not result.verdict.hypothesis_1_exact
    assert result.caveats[0] == result.verdict.caveats[0]
    growth = f"grows like L^{1 - gamma.exponent:.3f}"
    assert growth in result.caveats[0]
    assert "Verdict: smooth, approximately: alpha + beta" in result.summary()
    assert "**Verdict: smooth, approximately: alpha + beta" in write_section(result)
    data = json.loads(result.to_json())
    assert data["verdict"]["hypothesis_1_exact"] is False
    assert data["caveats"] == list(result.caveats)


def test_estimate_flags_growing_cumulative_path() -> None:
    result = estimate_scaling(_off_networks())
    cumulative = result.fit("delta*A", "cumulative_sum").pooled
    assert cumulative.ci_high < 0.0
    assert any("cumulative sum max_m" in text for text in result.caveats)


def test_paths_caption_names_hidden_growth() -> None:
    result = estimate_scaling(_off_networks())
    shift = 1.0 - result.beta_effective.exponent
    caption = paths_caption(result)
    assert "rescaled by L^(gamma - 1.00)" in caption
    assert f"hides that the unscaled paths grow like L^{shift:.3f}" in caption


def _replica_networks(spread: float) -> dict[int, ResNet]:
    """Three replicas per depth: replica 0 and two copies moved by ``spread``."""
    nets = {}
    for depth in (16, 32, 64, 128):
        net = smooth_network(depth, 0.25, seed=1)
        generator = torch.Generator().manual_seed(depth)
        A = net.A.detach().expand(3, -1, -1, -1).clone()
        b = net.b.detach().expand(3, -1, -1).clone()
        for replica in (1, 2):
            noise = torch.randn(A.shape[1:], generator=generator, dtype=F64)
            A[replica] += spread * A[0].norm() * noise / noise.norm()
        delta = torch.full((3,), depth**-0.75, dtype=F64)
        nets[depth] = ResNet.from_weights(A, b, delta)
    return nets


def test_identical_replicas_warn_and_add_caveat() -> None:
    with pytest.warns(UserWarning, match="near-copies") as record:
        result = estimate_scaling(_replica_networks(0.0))
    assert Path(record[0].filename).name == Path(__file__).name
    assert dict(result.distinct_replicas) == {16: 1, 32: 1, 64: 1, 128: 1}
    assert any("near-copies" in text for text in result.caveats)
    assert "Distinct replicas per depth (of 3): L = 16: 1" in result.summary()
    assert json.loads(result.to_json())["distinct_replicas"]["16"] == 1


def test_copy_threshold_separates_replicas() -> None:
    with pytest.warns(UserWarning, match="near-copies"):
        below = estimate_scaling(_replica_networks(1e-8))
    assert set(below.distinct_replicas.values()) == {1}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        above = estimate_scaling(_replica_networks(1e-4))
    assert set(above.distinct_replicas.values()) == {3}
    assert not any("near-copies" in text for text in above.caveats)


def test_curvature_flagged_by_deeper_half() -> None:
    # Depths from 3: the discretised profile bends the log-log plot at small L.
    depths = (3, 6, 12, 24, 48, 96, 192)
    result = estimate_scaling({L: smooth_network(L, 0.25, seed=0) for L in depths})
    full, deep = result.beta, result.deep_half["beta"]
    assert not full.contains(0.25)
    assert (deep.min_depth, deep.max_depth) == (24, 192)
    assert abs(deep.exponent - 0.25) < abs(full.exponent - 0.25)
    assert not full.contains(deep.exponent)
    assert any(text.startswith("beta (A_k): the fit over") for text in result.caveats)
    data = json.loads(result.to_json())
    assert data["deep_half_exponents"]["beta"]["min_depth"] == 24


def test_exact_power_law_has_no_curvature_caveat() -> None:
    nets = {}
    for depth in (8, 16, 32, 64, 128):
        A = depth**-0.5 * torch.eye(2, dtype=F64).expand(depth, 2, 2).clone()
        nets[depth] = ResNet.from_weights(
            A, A[:, 0], torch.tensor(depth**-0.5, dtype=F64)
        )
    result = estimate_scaling(nets)
    assert math.isclose(result.deep_half["beta"].exponent, 0.5, abs_tol=1e-9)
    assert not any("deeper half" in text for text in result.caveats)
    assert result.verdict.hypothesis_1_exact


def test_three_depths_have_no_deeper_half() -> None:
    nets = {L: smooth_network(L, 0.25, seed=0) for L in (16, 32, 64)}
    result = estimate_scaling(nets)
    assert set(result.deep_half.values()) == {None}


def test_rejects_depth_below_two_layers() -> None:
    nets = {L: smooth_network(L, 0.25, seed=0) for L in (1, 2, 4)}
    with pytest.raises(
        ValueError, match=r"at least 2 layers.*got depth 1 in depths \[1, 2, 4\]"
    ):
        estimate_scaling(nets)
