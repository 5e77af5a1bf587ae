"""Tests of the command line, run in-process through deeplimits.cli.main."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
import torch

import deeplimits.cli as cli
from deeplimits.cli import StageUnavailableError, main, parse_depths

TINY_RUN = [
    "run",
    "--depths",
    "1,2,3",
    "--epochs",
    "2",
    "--replicas",
    "2",
    "--dim",
    "3",
    "--no-progress",
]


@pytest.fixture(autouse=True)
def _restore_threads():
    """main() sets torch's thread count; put it back after each test."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def stages(monkeypatch):
    """Replace the later stages by recorders, so only this package's code runs."""
    calls: list[tuple[str, str, dict]] = []

    def load(name):
        def entry(run_dir, **options):
            calls.append((name, str(run_dir), options))

        return entry

    monkeypatch.setattr(cli, "_load_stage", load)
    return calls


def test_parse_depths_forms():
    assert parse_depths("3:256:2") == [4, 8, 16, 32, 64, 128, 256]
    assert parse_depths("8, 2,4") == [2, 4, 8]
    assert parse_depths("3:300:1.5")[-1] == 291


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("3:256", "expected 3 fields, got 2"),
        ("a,b", "invalid depths 'a,b'"),
        ("0,4", "every depth must be an integer >= 1"),
        ("3:2:2", "max_depth must be at least min_depth"),
        ("", "invalid depths ''"),
        ("4,8", "at least 3 distinct depths, got 2: 4, 8"),
        ("4", "at least 3 distinct depths, got 1: 4"),
        ("3:9:2", "at least 3 distinct depths, got 2: 4, 8"),
        ("4,4", "depth 4 listed more than once"),
        ("4,4,8,16", "depth 4 listed more than once"),
        ("8,4,8,4,16", "depths 4, 8 listed more than once"),
    ],
)
def test_parse_depths_rejects(text, match):
    with pytest.raises(argparse.ArgumentTypeError, match=match):
        parse_depths(text)


def test_run_end_to_end(tmp_path, stages, capsys):
    out = tmp_path / "run"
    status = main([*TINY_RUN, "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert config["depths"] == [1, 2, 3]
    assert config["dim"] == 3
    assert config["activation"] == "tanh"
    assert config["delta"] == "shared"
    assert config["init"] == "xavier-depth"
    assert config["replicas"] == 2
    assert list(metrics["depths"]) == ["1", "2", "3"]
    assert (out / "weights" / "depth_00003.safetensors").is_file()
    assert "## Training" in (out / "report.md").read_text()
    assert [call[0] for call in stages] == ["analyze", "compare"]
    assert stages[0][1] == str(out)
    assert stages[0][2] == {"progress": False}
    assert f"report: {out / 'report.md'}" in printed
    assert "train loss" in printed


def test_run_options_reach_the_sweep(tmp_path, stages):
    out = tmp_path / "run"
    args = [
        "--activation",
        "relu",
        "--delta",
        "per-layer",
        "--init",
        "xavier",
        "--init-scale",
        "0.5",
        "--lr",
        "0.003",
        "--batch-size",
        "8",
        "--seed",
        "4",
        "--optimizer",
        "sgd",
        "--reduce",
    ]
    assert main([*TINY_RUN, "--out", str(out), *args]) == 0

    config = json.loads((out / "config.json").read_text())
    assert config["activation"] == "relu"
    assert config["delta"] == "per-layer"
    assert config["init"] == "xavier"
    assert config["init_scale"] == 0.5
    assert config["lr"] == 0.003
    assert config["batch_size"] == 8
    assert config["seed"] == 4
    assert config["optimizer"] == "sgd"
    assert [call[0] for call in stages] == ["analyze", "compare", "reduce"]


def test_run_on_digits(tmp_path, stages):
    out = tmp_path / "run"
    argv = ["run", "--dataset", "digits", "--depths", "1,2,3", "--epochs", "1"]
    assert main([*argv, "--replicas", "1", "--no-progress", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["depths"]["2"]["final_test_accuracy"][0] <= 1.0


def test_run_default_out_folder(tmp_path, stages, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(TINY_RUN) == 0
    folders = list((tmp_path / "runs").glob("run-*"))
    assert len(folders) == 1
    assert (folders[0] / "config.json").is_file()
    assert str(folders[0].relative_to(tmp_path)) in capsys.readouterr().out


def test_run_skips_missing_stage(tmp_path, monkeypatch, capsys):
    def unavailable(name):
        raise StageUnavailableError(f"{name} is not installed")

    monkeypatch.setattr(cli, "_load_stage", unavailable)
    assert main([*TINY_RUN, "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    assert "note: skipping the scaling analysis: analyze is not installed" in printed
    assert "note: skipping the comparison with the limit" in printed


def test_run_reports_failed_stage(tmp_path, monkeypatch, capsys):
    def load(name):
        def entry(run_dir, **options):
            raise RuntimeError(f"{name} broke")

        return entry

    monkeypatch.setattr(cli, "_load_stage", load)
    assert main([*TINY_RUN, "--out", str(tmp_path / "run")]) == 1
    captured = capsys.readouterr()
    assert "error: the scaling analysis failed" in captured.err
    assert "RuntimeError: analyze broke" in captured.err
    assert (tmp_path / "run" / "report.md").is_file()


def test_run_resumes_same_folder(tmp_path, stages, monkeypatch):
    out = tmp_path / "run"
    assert main([*TINY_RUN, "--out", str(out)]) == 0
    stamp = (out / "weights" / "depth_00002.safetensors").stat().st_mtime_ns

    import deeplimits.sweep as sweep_module

    def no_training(*args, **kwargs):
        raise AssertionError("a finished depth was trained again")

    monkeypatch.setattr(sweep_module, "train", no_training)
    assert main([*TINY_RUN, "--out", str(out)]) == 0
    assert (out / "weights" / "depth_00002.safetensors").stat().st_mtime_ns == stamp


def test_too_few_depths_rejected_before_work(tmp_path, stages, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        main(["run", "--depths", "4,8", "--no-progress", "--out", str(out)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "the scaling analysis needs at least 3 distinct depths" in err
    assert not out.exists()
    assert stages == []


def _interrupt_at_call(monkeypatch, call: int) -> None:
    """Make the sweep's training raise KeyboardInterrupt at the given call."""
    import deeplimits.sweep as sweep_module

    real_train = sweep_module.train
    calls = []

    def train(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "train", train)


def test_run_interrupted_then_resumed(tmp_path, stages, monkeypatch, capsys):
    out = tmp_path / "run"
    _interrupt_at_call(monkeypatch, 2)
    assert main([*TINY_RUN, "--out", str(out)]) == 130
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert (
        f"Interrupted. The finished depth (1) is saved in {out}; rerun the same "
        f"command with --out {out} to resume." in captured.err
    )
    assert stages == []

    monkeypatch.undo()
    monkeypatch.setattr(cli, "_load_stage", lambda name: lambda run_dir, **kw: None)
    assert main([*TINY_RUN, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"Resuming {out}: 1 depth already trained (1), training 2, 3." in printed


def test_run_interrupted_before_first_depth(tmp_path, stages, monkeypatch, capsys):
    out = tmp_path / "run"
    _interrupt_at_call(monkeypatch, 1)
    assert main([*TINY_RUN, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert (
        f"Interrupted before the first depth finished, so nothing is saved in {out}"
        in err
    )


def test_run_interrupted_during_stage(tmp_path, monkeypatch, capsys):
    def load(name):
        def entry(run_dir, **options):
            raise KeyboardInterrupt

        return entry

    monkeypatch.setattr(cli, "_load_stage", load)
    out = tmp_path / "run"
    assert main([*TINY_RUN, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "Interrupted during the scaling analysis" in err
    assert f"run `deeplimits analyze {out}`" in err


def test_run_prints_divergence_warning(tmp_path, stages, capsys):
    out = tmp_path / "run"
    argv = [*TINY_RUN, "--lr", "1e6", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "deeplimits run: warning: depth 1: training diverged" in captured.err
    assert "diverged: lower --lr" in captured.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["depths"]["1"]["diverged"] is True


def test_version_prints_package_version(capsys):
    import deeplimits

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"deeplimits {deeplimits.__version__}"


def test_run_rejects_other_configuration(tmp_path, stages, capsys):
    out = tmp_path / "run"
    assert main([*TINY_RUN, "--out", str(out)]) == 0
    assert main([*TINY_RUN, "--out", str(out), "--lr", "0.5"]) == 2
    assert "lr: stored 0.01, requested 0.5" in capsys.readouterr().err


def test_run_missing_mnist_folder(tmp_path, stages, capsys):
    missing = tmp_path / "nothing"
    argv = ["run", "--dataset", "mnist", "--data-dir", str(missing)]
    depths = ["--depths", "1,2,3"]
    status = main([*argv, *depths, "--no-progress", "--out", str(tmp_path)])
    assert status == 2
    err = capsys.readouterr().err
    assert str(missing / "MNIST" / "raw" / "train-images-idx3-ubyte") in err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--delta", "both"], "argument --delta: invalid choice: 'both'"),
        (["--activation", "swish"], "argument --activation: invalid choice: 'swish'"),
        (["--dataset", "cifar"], "argument --dataset: invalid choice: 'cifar'"),
        (["--depths", "3:2:2"], "argument --depths: invalid depths '3:2:2'"),
        (["--depths", "4,8"], "argument --depths: invalid depths '4,8'"),
        (["--depths", "4,4,8"], "argument --depths: invalid depths '4,4,8'"),
        (["--epochs", "0"], "argument --epochs: must be an integer >= 1, got '0'"),
        (["--replicas", "two"], "argument --replicas: must be an integer >= 1"),
        (["--lr", "-1"], "argument --lr: must be a finite number > 0, got '-1'"),
        (["--lr", "nan"], "argument --lr: must be a finite number > 0, got 'nan'"),
        (["--init-scale", "-0.1"], "argument --init-scale: must be a finite number"),
        (["--seed", "-2"], "argument --seed: must be an integer >= 0, got '-2'"),
        (["--dataset", "mnist"], "argument --data-dir: required with --dataset mnist"),
        (["--data-dir", "/x"], "argument --data-dir: only used with --dataset mnist"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_run_rejects_bad_options(argv, match, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", *argv])
    assert info.value.code == 2
    assert match in capsys.readouterr().err


def test_help_names_units(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "depths L in layers" in text
    assert "passes over the training set" in text
    assert "samples per optimizer step" in text
    assert "3:300:1.5" in text


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "run" in capsys.readouterr().out


def test_stage_command_calls_entry_point(tmp_path, stages):
    out = tmp_path / "run"
    assert main([*TINY_RUN, "--out", str(out)]) == 0
    stages.clear()
    assert main(["reduce", str(out), "--basis", "fourier", "--terms", "5"]) == 0
    assert stages == [
        ("reduce", str(out), {"progress": True, "basis": "fourier", "K": 5})
    ]
    stages.clear()
    assert main(["reduce", str(out), "--steps", "40"]) == 0
    assert stages == [("reduce", str(out), {"progress": True, "steps": 40})]
    stages.clear()
    arguments = ["--form", "sde", "--rank", "2", "--epochs", "3", "--lr", "0.05"]
    assert main(["reduce", str(out), *arguments]) == 0
    expected = {"progress": True, "form": "sde", "rank": 2, "epochs": 3, "lr": 0.05}
    assert stages == [("reduce", str(out), expected)]


def test_reduce_help_lists_choices(capsys):
    from deeplimits.reduced.basis import BASIS_NAMES

    with pytest.raises(SystemExit):
        main(["reduce", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    choices = text.split("--basis {", 1)[1].split("}", 1)[0]
    assert sorted(choices.split(",")) == sorted(BASIS_NAMES)
    assert "default: legendre" in text
    assert "{neural-ode,linear-ode,sde}" in text
    with pytest.raises(SystemExit):
        main(["reduce", "RUN", "--form", "relu-ode"])
    assert "invalid choice" in capsys.readouterr().err


def test_reduce_rejects_negative_lr(capsys):
    with pytest.raises(SystemExit):
        main(["reduce", "RUN", "--lr", "-0.1"])
    assert "argument --lr" in capsys.readouterr().err


def test_stage_command_rejects_non_run_folder(tmp_path, capsys):
    assert main(["analyze", str(tmp_path)]) == 2
    assert "is not a run folder (no config.json)" in capsys.readouterr().err


def test_stage_command_unavailable(tmp_path, monkeypatch, capsys):
    (tmp_path / "config.json").write_text("{}")

    def unavailable(name):
        raise StageUnavailableError("deeplimits.compare is not installed")

    monkeypatch.setattr(cli, "_load_stage", unavailable)
    assert main(["compare", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "comparison with the limit is not available" in err


def test_load_stage_reports_missing_module(monkeypatch):
    monkeypatch.setitem(
        cli.STAGES, "analyze", ("deeplimits.no_such_module", "analyze_run", "x")
    )
    with pytest.raises(StageUnavailableError, match="no_such_module is not installed"):
        cli._load_stage("analyze")
    monkeypatch.setitem(cli.STAGES, "analyze", ("deeplimits.data", "analyze_run", "x"))
    with pytest.raises(StageUnavailableError, match="has no function analyze_run"):
        cli._load_stage("analyze")


def test_python_dash_m_runs():
    completed = subprocess.run(
        [sys.executable, "-m", "deeplimits", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0
    assert "--depths" in completed.stdout


def _loading_stage(monkeypatch) -> None:
    """Make every stage read the run folder with load_sweep, as the real ones do."""
    from deeplimits.sweep import load_sweep

    monkeypatch.setattr(
        cli, "_load_stage", lambda name: lambda run_dir, **kw: load_sweep(run_dir)
    )


def test_stage_truncated_weights_prints_one_line(tmp_path, monkeypatch, capsys):
    from deeplimits.sweep import weights_path

    out = tmp_path / "run"
    monkeypatch.setattr(cli, "_load_stage", lambda name: lambda run_dir, **kw: None)
    assert main([*TINY_RUN, "--out", str(out)]) == 0
    path = weights_path(out, 2)
    path.write_bytes(path.read_bytes()[:40])
    _loading_stage(monkeypatch)
    monkeypatch.delenv(cli.TRACEBACK_VARIABLE, raising=False)
    capsys.readouterr()
    assert main(["analyze", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("deeplimits analyze: error: ")
    assert "is not a readable safetensors file" in err
    assert "depth_00002.safetensors" in err
    assert "Traceback" not in err

    monkeypatch.setenv(cli.TRACEBACK_VARIABLE, "1")
    assert main(["compare", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("deeplimits compare: error: ")
    assert "Traceback" in err


def test_stage_unexpected_error_keeps_traceback(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")

    def broken(run_dir, **options):
        raise RuntimeError("analyze broke")

    monkeypatch.setattr(cli, "_load_stage", lambda name: broken)
    with pytest.raises(RuntimeError, match="analyze broke"):
        main(["analyze", str(tmp_path)])


def test_stage_reports_missing_weights(tmp_path, monkeypatch, capsys, recwarn):
    from deeplimits.sweep import MissingWeightsWarning, weights_path

    out = tmp_path / "run"
    monkeypatch.setattr(cli, "_load_stage", lambda name: lambda run_dir, **kw: None)
    assert main([*TINY_RUN, "--out", str(out)]) == 0
    path = weights_path(out, 2)
    path.unlink()
    _loading_stage(monkeypatch)
    capsys.readouterr()
    assert main(["analyze", str(out)]) == 0
    err = capsys.readouterr().err
    expected = "deeplimits analyze: warning: depth 2 is recorded in metrics.json"
    assert expected in err
    assert str(path) in err
    assert err.count("warning:") == 1
    assert not [w for w in recwarn if w.category is MissingWeightsWarning]
    section = (out / "sections" / "10-training.md").read_text()
    row = next(line for line in section.splitlines() if line.startswith("| 2 |"))
    assert "weight file missing" in row


def test_run_prints_identical_replicas_warning(tmp_path, stages, capsys):
    options = ["--init", "zero", "--batch-size", "100000"]
    assert main([*TINY_RUN, *options, "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "deeplimits run: warning: depth 1: the 2 replicas ended" in err
