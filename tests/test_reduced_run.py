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
    for key in ("network", "warm_start", "reduced", "resampled_network"):
        assert stored["test"][key]["mse"] > 0
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
