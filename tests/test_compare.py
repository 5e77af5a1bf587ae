"""Tests of compare, compare_sweep, the rate fit and compare_run."""

import json
import math

import pytest
import torch

from deeplimits import ResNet
from deeplimits.compare import (
    compare,
    compare_run,
    compare_sweep,
    fit_rate,
    plot_error_vs_depth,
)
from deeplimits.limits import NeuralODELimit, fit_limit

torch.set_num_threads(1)
F64 = torch.float64


def _matrix_exponential_setup():
    generator = torch.Generator().manual_seed(0)
    A = torch.randn(3, 3, dtype=F64, generator=generator) * 0.7
    x = torch.randn(6, 3, dtype=F64, generator=generator)
    limit = NeuralODELimit(
        A[None].clone(),
        torch.zeros(1, 3, dtype=F64),
        torch.ones(1, dtype=F64),
        activation="identity",
    )
    networks = {
        depth: ResNet.from_weights(
            A.expand(depth, 3, 3).clone(),
            torch.zeros(depth, 3, dtype=F64),
            torch.full((depth,), 1.0 / depth, dtype=F64),
            activation="identity",
        )
        for depth in (8, 16, 32, 64, 128)
    }
    return A, x, limit, networks


def test_compare_identity_against_matrix_exponential():
    A, x, limit, networks = _matrix_exponential_setup()
    result = compare(networks[64], limit, x, x)
    exact = x @ torch.linalg.matrix_exp(A).T
    direct = (networks[64](x).detach() - exact).norm(dim=1) / x.norm(dim=1)
    assert result.output_error == pytest.approx(direct.max().item(), rel=1e-6)
    assert result.trajectory_error >= result.output_error
    assert result.network_accuracy is None
    mean = compare(networks[64], limit, x, reduction="mean")
    assert mean.trajectory_error <= result.trajectory_error


def test_compare_sweep_fits_first_order_rate():
    _, x, limit, networks = _matrix_exponential_setup()
    sweep = compare_sweep(networks, limit, x)
    assert sweep.rate is not None
    assert 0.9 <= sweep.rate.gamma <= 1.1
    assert sweep.rate.ci_low <= 1.0 <= sweep.rate.ci_high + 0.05
    assert sweep.rate.r2 > 0.99


def test_fit_rate_recovers_exact_power_law():
    depths = [4, 8, 16, 32]
    rate = fit_rate(depths, [3.0 * d**-0.7 for d in depths])
    assert rate.gamma == pytest.approx(0.7, abs=1e-12)
    assert rate.stderr == pytest.approx(0.0, abs=1e-10)
    assert fit_rate([4, 8], [1.0, 0.5]) is None
    assert fit_rate([4, 8, 16], [1.0, 0.0, 0.5]) is None


def test_compare_accuracy_with_labels():
    _, x, limit, networks = _matrix_exponential_setup()
    labels = networks[128](x).detach().argmax(dim=1)
    result = compare(networks[128], limit, x, labels=labels)
    assert result.network_accuracy == 1.0
    assert 0.0 <= result.limit_accuracy <= 1.0


def test_compare_pathwise_sde_needs_same_depth():
    net = ResNet(3, 8, init="diffusive", init_scale=1.0, seed=0, dtype=F64)
    limit = fit_limit(net, "sde")
    x = torch.randn(4, 3, dtype=F64)
    assert compare(net, limit, x).trajectory_error < 0.1
    other = ResNet(3, 16, init="diffusive", init_scale=1.0, seed=0, dtype=F64)
    with pytest.raises(ValueError, match="pathwise SDE limit"):
        compare(other, limit, x)


def test_compare_rejects_bad_arguments():
    _, x, limit, networks = _matrix_exponential_setup()
    with pytest.raises(ValueError, match="reduction must be one of"):
        compare(networks[8], limit, x, reduction="median")
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3\)"):
        compare(networks[8], limit, torch.zeros(2, 4, dtype=F64))
    with pytest.raises(ValueError, match="y must have the shape of x"):
        compare(networks[8], limit, x, torch.zeros(2, 3, dtype=F64))


def test_error_plot_written(tmp_path):
    _, x, limit, networks = _matrix_exponential_setup()
    path = plot_error_vs_depth(compare_sweep(networks, limit, x), tmp_path / "e.png")
    assert path.stat().st_size > 1000


def test_compare_run_writes_outputs(tmp_path):
    from deeplimits.sweep import depth_sweep

    depth_sweep(
        [4, 8, 16],
        dim=4,
        epochs=2,
        init="smooth",
        init_scale=1.0,
        out=tmp_path,
        progress=False,
    )
    record = compare_run(tmp_path, progress=False)
    stored = json.loads((tmp_path / "limits.json").read_text())
    assert stored["regime"] == record["regime"]
    assert set(stored["per_depth"]) == {"4", "8", "16"}
    assert all(
        math.isfinite(row["trajectory_error"]) for row in stored["per_depth"].values()
    )
    assert (tmp_path / "plots" / "limits_trajectories.png").is_file()
    assert (tmp_path / "plots" / "limits_error_vs_depth.png").is_file()
    section = (tmp_path / "sections" / "30-limits.md").read_text()
    assert "## Deep limit and convergence" in section
    assert "30-limits" not in (tmp_path / "report.md").read_text()
    assert "Deep limit and convergence" in (tmp_path / "report.md").read_text()
