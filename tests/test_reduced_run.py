"""The reduced-model stage on a small run folder."""

from __future__ import annotations

import json

import pytest
import torch

from deeplimits.reduced import ReducedLimitModel, reduce_run
from deeplimits.sweep import depth_sweep


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("run")
    depth_sweep([4, 8], dim=4, epochs=2, out=folder, progress=False)
    yield folder
    torch.set_num_threads(threads)


def test_reduce_run_writes_outputs(run_dir) -> None:
    result = reduce_run(run_dir, basis="chebyshev", K=3, epochs=2, progress=False)
    assert result.depth == 8
    stored = json.loads((run_dir / "reduced.json").read_text())
    assert stored["model"]["basis"] == "chebyshev"
    assert stored["parameters"]["reduced"] == result.model.num_parameters()
    for key in ("network", "warm_start", "reduced", "reduced_fine"):
        assert stored["test"][key]["mse"] > 0
    assert stored["test"]["resampled_network"]["mse"] > 0
    # Default resolution for K = 3, and the fine solve at 8x the steps.
    assert stored["model"]["steps"] == 16
    assert stored["resolution"]["fine_solver"] == {"method": "rk4", "steps": 128}
    sampling = stored["sampling"]
    assert sampling["depth"] >= 8
    assert sampling["table"][0]["depth"] == 8
    assert stored["epochs_run"] == 2
    for name in ("reduced_weights.png", "reduced_loss.png"):
        assert (run_dir / "plots" / name).stat().st_size > 1000
    section = (run_dir / "sections" / "40-reduced.md").read_text()
    assert "## Reduced-form limit model" in section
    assert "## Reduced-form limit model" in (run_dir / "report.md").read_text()
    loaded = ReducedLimitModel.load(run_dir / "weights" / "reduced.safetensors")
    x = torch.randn(3, 4)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), result.model(x))


def test_reduce_run_states_agreement(run_dir) -> None:
    result = reduce_run(run_dir, basis="chebyshev", K=3, epochs=2, progress=False)
    resolution = result.metrics["resolution"]
    assert resolution["agrees"]
    section = (run_dir / "sections" / "40-reduced.md").read_text()
    assert "describe the continuous-time model" in section
    assert "Warning" not in section
    sampling = result.metrics["sampling"]
    assert sampling["met"]
    chosen = [row for row in sampling["table"] if row["depth"] == sampling["depth"]]
    assert chosen[0]["distance"] <= sampling["threshold"]
    assert f"sampled at depth {sampling['depth']} |" in section


def test_reduce_run_warns_coarse_training(run_dir) -> None:
    # Four Euler steps: training lowers the loss at that resolution, but
    # the finely solved ODE scores about 10x worse (measured 2.4e-3 and
    # 2.8e-2 with torch 2.13).
    result = reduce_run(
        run_dir,
        basis="chebyshev",
        K=3,
        method="euler",
        steps=4,
        epochs=2,
        progress=False,
    )
    test = result.metrics["test"]
    assert result.metrics["train_loss"][-1] < result.metrics["train_loss"][0]
    resolution = result.metrics["resolution"]
    assert not resolution["agrees"]
    assert resolution["mse_relative_difference"] > 0.05
    section = (run_dir / "sections" / "40-reduced.md").read_text()
    assert "depends on its solver resolution" in section
    fine_mse = f"{test['reduced_fine']['mse']:.3g}"
    assert f"its continuous-time accuracy is test MSE {fine_mse}" in section
    assert "(4 euler steps)" in section
    assert "(32 rk4 steps)" in section


def test_cli_reduce_command(run_dir, capsys) -> None:
    from deeplimits.cli import main

    code = main(
        ["reduce", str(run_dir), "--basis", "fourier", "--terms", "3", "--no-progress"]
    )
    assert code == 0
    stored = json.loads((run_dir / "reduced.json").read_text())
    assert stored["model"]["basis"] == "fourier"
    assert stored["model"]["K"] == 3


def test_reduce_run_missing_folder(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no sweep in"):
        reduce_run(tmp_path / "absent", progress=False)


def test_reduce_run_form_follows_verdict(run_dir) -> None:
    verdict = {"verdict": {"limit": {"kind": "linear-ode"}}}
    (run_dir / "scaling.json").write_text(json.dumps(verdict))
    try:
        result = reduce_run(run_dir, basis="chebyshev", K=3, epochs=1, progress=False)
    finally:
        (run_dir / "scaling.json").unlink()
    assert result.model.form == "linear-ode"
    section = (run_dir / "sections" / "40-reduced.md").read_text()
    assert "whose limit is `linear-ode`" in section
    default = reduce_run(run_dir, basis="chebyshev", K=3, epochs=1, progress=False)
    assert default.model.form == "neural-ode"
    section = (run_dir / "sections" / "40-reduced.md").read_text()
    assert "no scaling verdict" in section


def test_reduce_run_states_epochs(run_dir) -> None:
    result = reduce_run(run_dir, basis="chebyshev", K=3, epochs=1, progress=False)
    section = (run_dir / "sections" / "40-reduced.md").read_text()
    assert result.metrics["network_epochs_run"] == 2
    assert "The depth-8 network was trained for 2 epochs" in section
    assert "starts from that trained network" in section
    assert "for 1 more epochs, 3 epochs in all" in section
    assert result.metrics["test"]["warm_start_train"]["mse"] > 0


def test_gain_lines_report_large_edges() -> None:
    from deeplimits.reduced.run import _gain_lines

    assert _gain_lines(None) == []
    large = {
        "gain_min_edges": 0.05,
        "gain_median_middle": 1.0,
        "A_norm_max_edges": 40.0,
        "A_norm_median_middle": 2.0,
    }
    text = " ".join(_gain_lines(large))
    assert "||A(t)|| reaches 40" in text
    flat = {**large, "A_norm_max_edges": 2.5}
    assert "reaches" not in " ".join(_gain_lines(flat))
