"""Tests of the run report: training plots, training section, assembly."""

from __future__ import annotations

import pytest

from deeplimits import ResNet
from deeplimits.data import synthetic_ode
from deeplimits.report import (
    plot_final_loss,
    plot_weights,
    write_report,
    write_training_section,
)
from deeplimits.sweep import MissingWeightsWarning, depth_sweep, weights_path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    data = synthetic_ode(dim=3, n_train=32, n_test=8)
    depth_sweep([2, 4], dataset=data, replicas=2, epochs=2, out=out, progress=False)
    return out


def test_training_section_and_report(run_dir):
    section = write_training_section(run_dir)
    text = section.read_text()
    assert section.name == "10-training.md"
    assert text.startswith("## Training")
    assert "Data: synthetic (32 train, 8 test samples, width d = 3)" in text
    assert "| 2 | 2 | 2 |" in text
    assert "| 4 | 2 | 2 |" in text
    assert "plots/training_loss.png" in text
    assert "plots/training_weights_depth_00004.png" in text
    for name in ("training_loss.png", "training_weights_depth_00004.png"):
        assert (run_dir / "plots" / name).read_bytes()[:8] == PNG_MAGIC
    report = (run_dir / "report.md").read_text()
    assert report.startswith("# deeplimits report: run")
    assert "## Training" in report


def test_report_orders_sections_by_name(tmp_path):
    sections = tmp_path / "sections"
    sections.mkdir()
    (sections / "30-limits.md").write_text("## Limits\n")
    (sections / "10-training.md").write_text("## Training\n")
    (sections / "20-scaling.md").write_text("## Scaling\n")
    report = write_report(tmp_path, title="Run A").read_text()
    assert report.startswith("# Run A\n")
    assert report.index("## Training") < report.index("## Scaling")
    assert report.index("## Scaling") < report.index("## Limits")
    assert not list(tmp_path.glob(".*.tmp"))


def test_report_without_sections(tmp_path):
    text = write_report(tmp_path).read_text()
    assert "No report sections have been written yet." in text


def test_report_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_report(tmp_path / "missing")


def test_plot_weights_with_replicas(tmp_path):
    net = ResNet(3, 6, replicas=2, init="xavier", seed=0)
    path = plot_weights(net, tmp_path / "w.png", entries=2, replica=1)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_plot_final_loss_handles_missing_values(tmp_path):
    metrics = {
        2: {"replicas": 2, "final_train_loss": [0.1, None], "final_test_loss": [0.2]},
        4: {"replicas": 2, "final_train_loss": [0.05, 0.06], "final_test_loss": [0.1]},
    }
    path = plot_final_loss(metrics, tmp_path / "loss.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="at least one depth"):
        plot_final_loss({}, tmp_path / "empty.png")


def test_plain_log_ticks_have_no_powers_of_ten():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from deeplimits.report import _plain_log_ticks

    figure = Figure()
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    depths = [4, 8, 16, 64]
    axes.plot(depths, [0.0515, 0.06, 0.07, 0.08])
    axes.set_xscale("log")
    axes.set_yscale("log")
    _plain_log_ticks(axes, depths)
    figure.canvas.draw()
    x_labels = [t.get_text() for t in axes.get_xticklabels()]
    assert x_labels == ["4", "8", "16", "64"]
    y_labels = [t.get_text() for t in axes.get_yticklabels(which="both")]
    y_labels = [label for label in y_labels if label]
    assert y_labels, "a y range within one decade must still get tick labels"
    for label in x_labels + y_labels:
        assert "times" not in label
        assert "^" not in label
        float(label)


def test_training_section_needs_finished_depth(tmp_path):
    depth_sweep(
        [2],
        dataset=synthetic_ode(dim=2, n_train=8, n_test=2),
        epochs=1,
        out=tmp_path / "run",
        progress=False,
    )
    (tmp_path / "run" / "metrics.json").unlink()
    with pytest.raises(ValueError, match="no finished depth"):
        write_training_section(tmp_path / "run")


def test_training_table_marks_diverged_depth():
    from deeplimits.report import _training_table

    record = {
        "replicas": 1,
        "epochs_run": 2,
        "stop_reason": "epochs",
        "final_train_loss": [2e13],
        "final_test_loss": [3e13],
        "wall_time_s": 0.5,
    }
    lines = _training_table({4: record | {"diverged": True}, 8: record})
    assert "| 4 | 1 | 2 | epochs, diverged: lower the learning rate |" in lines[2]
    assert "| 8 | 1 | 2 | epochs |" in lines[3]


def test_training_section_marks_missing_weights(tmp_path):
    out = tmp_path / "run"
    data = synthetic_ode(dim=3, n_train=32, n_test=8)
    depth_sweep([2, 4], dataset=data, replicas=2, epochs=2, out=out, progress=False)
    weights_path(out, 2).unlink()
    with pytest.warns(MissingWeightsWarning, match="depth 2 is recorded") as caught:
        section = write_training_section(out)
    assert caught[0].filename == __file__
    assert "depth_00002.safetensors" in str(caught[0].message)
    rows = {
        line.split("|")[1].strip(): line
        for line in section.read_text().split("\n")
        if line.startswith("| ") and line.split("|")[1].strip().isdigit()
    }
    assert "weight file missing" in rows["2"]
    assert "weight file missing" not in rows["4"]
    text = section.read_text()
    assert "Weight files missing: L = 2 (`weights/depth_00002.safetensors`)" in text
    assert "replica spread of A" in text
