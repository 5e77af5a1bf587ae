"""Plots, the report section and the run-folder stage analyze_run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from deeplimits import ResNet
from deeplimits.scaling import analyze_run, estimate_scaling, write_section
from deeplimits.scaling.plots import (
    PLOT_FILES,
    plot_all,
    plot_delta,
    plot_fits,
    plot_paths,
    plot_profiles,
    plot_roughness,
)

F64 = torch.float64
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def diffusive_result():
    nets = {}
    for depth in (16, 32, 64, 128):
        generator = torch.Generator().manual_seed(depth)
        A = torch.randn(2, depth, 3, 3, generator=generator, dtype=F64)
        b = torch.randn(2, depth, 3, generator=generator, dtype=F64)
        delta = 1.0 + 0.1 * torch.randn(2, depth, generator=generator, dtype=F64)
        nets[depth] = ResNet.from_weights(
            A / math.sqrt(depth), b / math.sqrt(depth), delta
        )
    return estimate_scaling(nets)


def test_plot_functions_draw_expected_panels(diffusive_result) -> None:
    cases = [
        (plot_fits, 5),
        (plot_profiles, 4),
        (plot_paths, 3),
        (plot_delta, 1),
        (plot_roughness, 1),
    ]
    for make, panels in cases:
        fig = make(diffusive_result)
        assert len(fig.axes) == panels, make.__name__
        plt.close(fig)


def test_fit_plot_band_matches_fit(diffusive_result) -> None:
    fig = plot_fits(diffusive_result)
    axis = fig.axes[3]  # delta*A
    fitted = axis.lines[0].get_ydata()
    pooled = diffusive_result.fit("delta*A").pooled
    assert fitted[0] == pytest.approx(pooled.predict([16])[0])
    assert "exponent" in axis.get_title()
    plt.close(fig)


def test_paths_plot_has_three_deepest_depths(diffusive_result) -> None:
    fig = plot_paths(diffusive_result)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["L=32", "L=64", "L=128"]
    plt.close(fig)


def test_plot_all_writes_png_files(tmp_path: Path, diffusive_result) -> None:
    written = plot_all(diffusive_result, tmp_path / "plots")
    assert set(written) == set(PLOT_FILES)
    for path in written.values():
        assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_section_lists_verdict_and_table(diffusive_result) -> None:
    text = write_section(diffusive_result, {"fits": Path("plots/scaling_fits.png")})
    assert text.startswith("## Scaling of the trained weights")
    assert "**Verdict: diffusive.** Limit: `ito-sde`." in text
    assert "| 128 |" in text
    assert "![fits](plots/scaling_fits.png)" in text
    assert "| gamma (alpha + beta) | delta_k A_k |" in text


def test_analyze_run_writes_all_outputs(tmp_path: Path) -> None:
    from deeplimits.sweep import depth_sweep

    torch.set_num_threads(1)
    run_dir = tmp_path / "run"
    depth_sweep(
        [4, 8, 16], epochs=2, replicas=2, dim=4, out=run_dir, progress=False, seed=1
    )
    result = analyze_run(run_dir, progress=False)

    stored = json.loads((run_dir / "scaling.json").read_text())
    assert stored["depths"] == [4, 8, 16]
    assert stored["verdict"]["regime"] == result.regime
    assert stored["exponents"]["beta"]["exponent"] == pytest.approx(
        result.beta.exponent
    )
    for name in PLOT_FILES.values():
        assert (run_dir / "plots" / name).read_bytes()[:8] == PNG_SIGNATURE
    section = (run_dir / "sections" / "20-scaling.md").read_text()
    assert f"**Verdict: {result.regime}.**" in section
    report = (run_dir / "report.md").read_text()
    assert "## Scaling of the trained weights" in report
    assert "](plots/scaling_fits.png)" in report


def test_analyze_run_progress_prints_summary(tmp_path: Path, capsys) -> None:
    from deeplimits.sweep import depth_sweep

    torch.set_num_threads(1)
    run_dir = tmp_path / "run"
    depth_sweep([2, 4, 8], epochs=1, dim=3, out=run_dir, progress=False)
    analyze_run(run_dir, progress=True)
    err = capsys.readouterr().err
    assert "[scaling] wrote" in err
    assert "Verdict:" in err


def test_analyze_run_rejects_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        analyze_run(tmp_path / "missing", progress=False)


def test_linear_ode_equation_names_sigma_prime():
    from deeplimits.activations import get_activation
    from deeplimits.scaling.regimes import limit_equation

    beta = _power_fit(0.25, 0.23, 0.27)
    limit = limit_equation("smooth", get_activation("tanh"), beta=beta)
    assert limit.kind == "linear-ode"
    assert "dH/dt = sigma'(0) deltabar(t) (Abar(t) H + bbar(t))" in limit.equation
    assert "sigma'(0) = 1" in limit.equation
    assert r"\sigma'(0)\,\bar\delta(t)" in limit.latex
    assert r"= 1\," not in limit.latex
    sde = limit_equation("diffusive", get_activation("tanh"), beta=None)
    assert "sigma'(0) (sum_j" in sde.equation


def _power_fit(exponent, low, high):
    from deeplimits.scaling.regression import PowerLawFit

    return PowerLawFit(
        exponent=exponent,
        stderr=(high - low) / 4,
        ci_low=low,
        ci_high=high,
        confidence=0.95,
        r2=0.99,
        prefactor=1.0,
        min_depth=4,
        max_depth=64,
        n_depths=5,
        n_replicas=1,
        n_points=5,
        log_depth_mean=2.0,
        log_depth_sxx=3.0,
        residual_std=0.01,
        t_quantile=3.18,
    )


def test_verdict_says_when_tolerance_used():
    from deeplimits.activations import get_activation
    from deeplimits.scaling.regimes import RoughnessAtDepth, decide_regime

    roughness = [
        RoughnessAtDepth(
            depth=64,
            ratios=(2.0,),
            ratio=2.0,
            hurst=1.0,
            band="smooth",
            effective_layers=60.0,
            largest_layer_share=0.02,
        )
    ]
    common = {
        "activation": get_activation("tanh"),
        "alpha": _power_fit(0.67, 0.66, 0.68),
        "beta": _power_fit(0.26, 0.25, 0.27),
        "effective_layers_growth": None,
    }
    outside = decide_regime(
        roughness, beta_effective=_power_fit(0.933, 0.924, 0.942), **common
    )
    assert outside.regime == "smooth"
    assert outside.hypothesis_1_consistent
    expected = (
        "alpha + beta = 0.933 [0.924, 0.942] excludes 1; accepted within the "
        "tolerance 0.2"
    )
    assert any(expected in line for line in outside.evidence)
    inside = decide_regime(
        roughness, beta_effective=_power_fit(0.99, 0.97, 1.01), **common
    )
    assert not any("excludes 1" in line for line in inside.evidence)
