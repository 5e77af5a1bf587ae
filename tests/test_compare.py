"""Tests of compare, compare_sweep, the rate fit and compare_run."""

import json
import math

import pytest
import torch

from deeplimits import ResNet
from deeplimits.compare import (
    CONVERGENCE_MIN_R2,
    CONVERGENCE_MIN_RATE,
    SOURCE_ERROR_THRESHOLD,
    SOURCE_LABEL,
    _section,
    compare,
    compare_run,
    compare_sweep,
    convergence_verdict,
    error_figure,
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
    assert 0.9 <= sweep.rate.eta <= 1.1
    assert sweep.rate.ci_low <= 1.0 <= sweep.rate.ci_high + 0.05
    assert sweep.rate.r2 > 0.99


def test_fit_rate_recovers_exact_power_law():
    depths = [4, 8, 16, 32]
    rate = fit_rate(depths, [3.0 * d**-0.7 for d in depths])
    assert rate.eta == pytest.approx(0.7, abs=1e-12)
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
    assert stored["source_error"] == stored["per_depth"]["16"]["trajectory_error"]
    assert stored["rate"] is None or "eta" in stored["rate"]
    assert "fitted from the deepest network (L = 16" in section or "SDE" in section
    assert "**Verdict:" in section or "Too few depths" in section


def test_convergence_verdict_thresholds():
    depths = [4, 8, 16, 32, 64]
    first_order = fit_rate(depths, [2.0 / d for d in depths])
    assert convergence_verdict(first_order) == "converges"
    # Flat errors with scatter, as in the default run: eta about 0.06.
    flat = fit_rate(depths, [0.33, 0.29, 0.31, 0.25, 0.27])
    assert flat.ci_low < CONVERGENCE_MIN_RATE
    assert convergence_verdict(flat) == "no clear convergence"
    assert convergence_verdict(None) == "undetermined"
    # A steep but scattered fit fails on R^2 alone.
    noisy = fit_rate(depths, [1.0, 0.1, 0.5, 0.02, 0.1])
    assert noisy.r2 < CONVERGENCE_MIN_R2
    assert convergence_verdict(noisy, min_rate=-10.0) == "no clear convergence"


def test_error_figure_marks_source_depth():
    _, x, limit, networks = _matrix_exponential_setup()
    result = compare_sweep(networks, limit, x, exclude_depths=(128,))
    assert result.excluded_depths == (128,)
    assert 128 not in result.rate.depths
    lines = {line.get_label(): line for line in error_figure(result).axes[0].lines}
    source = lines[SOURCE_LABEL]
    assert list(source.get_xdata()) == [128]
    assert source.get_marker() == "x"
    trajectory = lines["max_k |h_k - H(t_k)| / |x|"]
    assert 128 not in list(trajectory.get_xdata())
    assert any(label.startswith("fit L^-eta, eta = ") for label in lines)


def test_compare_rejects_non_limit():
    _, x, _, networks = _matrix_exponential_setup()
    with pytest.raises(TypeError, match="limit must be a NeuralODELimit.*Linear"):
        compare(networks[8], torch.nn.Linear(3, 3).double(), x)


def test_comparison_repr_is_concise():
    _, x, limit, networks = _matrix_exponential_setup()
    big_x = torch.randn(256, 3, dtype=F64, generator=torch.Generator().manual_seed(1))
    result = compare(networks[8], limit, big_x)
    text = repr(result)
    assert str(result) == text
    assert "<tensor of shape (256,)>" in text
    assert "tensor([" not in text
    assert len(text) < 400
    assert "tensor([" not in repr(compare_sweep(networks, limit, big_x))


def test_compare_relu_fixed_steps_accurate():
    net = ResNet(4, 32, activation="relu", init="diffusive", init_scale=1.0, seed=0)
    net = net.double()
    limit = fit_limit(net, "neural-ode")
    x = torch.randn(64, 4, dtype=F64, generator=torch.Generator().manual_seed(2))
    result = compare(net, limit, x)
    assert result.solver.startswith("rk4")
    # Reference: the same limit with 64 rk4 steps per layer.
    with torch.no_grad():
        reference = limit.integrate(
            x, None, method="rk4", backend="stepper", dt=1.0 / (64 * 32)
        ).ys
        states = net.hidden_states(x)
    expected = (states - reference).norm(dim=2).amax(dim=0) / x.norm(dim=1)
    assert result.trajectory_error == pytest.approx(float(expected.max()), abs=1e-5)


def _record(**changes):
    record = {
        "regime": "linear-ode",
        "has_limit": True,
        "limit_class": "LinearODELimit",
        "limit_depth": 16,
        "activation": "tanh",
        "sigma_prime_0": 1.0,
        "evidence": {"source": "scaling", "reasons": ["verdict smooth."]},
        "reduction": "max",
        "per_depth": {
            "4": {"trajectory_error": 0.3, "output_error": 0.2},
            "16": {"trajectory_error": 0.152, "output_error": 0.152},
        },
        "rate": None,
        "rate_excludes": [16],
        "convergence": {"verdict": "undetermined", "min_rate": 0.25, "min_r2": 0.9},
        "source_error": 0.152,
        "source_error_threshold": SOURCE_ERROR_THRESHOLD,
    }
    for row in record["per_depth"].values():
        row.update(network_loss=None, limit_loss=None)
        row.update(network_accuracy=None, limit_accuracy=None)
    record.update(changes)
    return record


def test_section_warns_on_source_error():
    text = _section(_record())
    assert "does not reproduce its own source network" in text
    assert "0.152" in text
    assert "fitted from the deepest network (L = 16" in text
    assert "sigma'(0) deltabar(t) (Abar(t) H + bbar(t)), sigma'(0) = 1" in text
    assert "| 16 (source, not in fit) |" in text
    good = _section(_record(source_error=0.01))
    assert "does not reproduce" not in good
    assert "reproduces its source network" in good


def test_section_accuracy_as_percent_and_replica():
    record = _record()
    record["per_depth"]["4"].update(network_accuracy=0.803, limit_accuracy=0.5)
    text = _section(record)
    assert "| 80.3% | 50.0% |" in text
    assert "0.803" not in text
    assert "Each row compares replica 0 of the network" in text


def test_error_figure_has_title():
    _, x, limit, networks = _matrix_exponential_setup()
    result = compare_sweep(networks, limit, x)
    title = error_figure(result).axes[0].get_title()
    assert title.startswith("Network against limit")


def test_section_no_limit_wording():
    text = _section(_record(has_limit=False, regime="none", limit_class=None))
    assert "No ODE or SDE limit follows from the scaling" in text
    assert "neural ODE whose Euler scheme is the deepest network" in text
    assert "compared with the limit fitted from" not in text


def test_section_states_verdict():
    rate = {"eta": 0.063, "ci_low": 0.025, "ci_high": 0.102, "r2": 0.61}
    rate["depths"] = [3, 5, 7]
    convergence = {"verdict": "no clear convergence", "min_rate": 0.25}
    convergence["min_r2"] = 0.9
    text = _section(_record(rate=rate, convergence=convergence))
    assert "error ~ L^-eta with eta = 0.063" in text
    assert "**Verdict: no clear convergence**" in text
    assert "need not approach the limit fitted from the deepest one" in text
    assert "gamma" not in text


def test_plot_trajectories_rejects_non_limit(tmp_path):
    from deeplimits.compare import plot_trajectories

    net = ResNet(3, 4, seed=0)
    x = torch.zeros(2, 3)
    with pytest.raises(TypeError, match=r"limit must be a NeuralODELimit.*got Linear"):
        plot_trajectories({4: net}, torch.nn.Linear(3, 3), x, tmp_path / "p.png")


def _constant_field_setup():
    # With A = 0 the field is the constant tanh(b): Euler and dopri5 are both
    # exact, so every error is round-off (about 3e-15 relative).
    generator = torch.Generator().manual_seed(0)
    b = torch.randn(3, dtype=F64, generator=generator)
    limit = NeuralODELimit(
        torch.zeros(1, 3, 3, dtype=F64),
        b[None].clone(),
        torch.ones(1, dtype=F64),
        activation="tanh",
    )
    networks = {
        depth: ResNet.from_weights(
            torch.zeros(depth, 3, 3, dtype=F64),
            b.expand(depth, 3).clone(),
            torch.full((depth,), 1.0 / depth, dtype=F64),
            activation="tanh",
        )
        for depth in (8, 16, 32, 64, 128)
    }
    x = torch.randn(6, 3, dtype=F64, generator=generator)
    return limit, networks, x


def test_compare_sweep_roundoff_errors_not_fitted():
    limit, networks, x = _constant_field_setup()
    result = compare_sweep(networks, limit, x)
    errors = [c.trajectory_error for c in result.comparisons.values()]
    assert max(errors) < 1e-13
    assert fit_rate(list(networks), errors) is not None
    assert result.rate is None
    assert result.rate_note == "errors at round-off level"
    assert result.roundoff_depths == (8, 16, 32, 64, 128)
    assert result.verdict == "undetermined"
    assert "rate: undetermined (errors at round-off level)" in str(result)


def test_sweep_comparison_summary_states_verdict():
    _, x, limit, networks = _matrix_exponential_setup()
    result = compare_sweep(networks, limit, x)
    text = str(result)
    assert result.roundoff_depths == ()
    assert result.rate_note is None
    assert "verdict: converges" in text
    assert "rate: eta = " in text
    assert "L = 128: trajectory error" in text
    assert "tensor(" not in text


def test_comparison_error_floor_by_solver():
    limit, networks, x = _constant_field_setup()
    ode = compare(networks[8], limit, x)
    assert ode.error_floor == pytest.approx(1e-8)
    identity = ResNet(3, 8, activation="identity", init="diffusive", seed=0, dtype=F64)
    sde = compare(identity, fit_limit(identity, "sde"), x)
    eps = torch.finfo(F64).eps
    assert sde.error_floor == pytest.approx(1e3 * eps)


def test_kinked_steps_put_knots_on_grid():
    from deeplimits.compare import KINKED_STEPS_PER_LAYER, _kinked_steps

    assert _kinked_steps(64, 128) == KINKED_STEPS_PER_LAYER
    assert _kinked_steps(128, 64) == KINKED_STEPS_PER_LAYER
    assert _kinked_steps(16, 256) == 16
    assert _kinked_steps(64, 100) == 200
