"""Tests of depth sweeps: depth grids, run folders, resuming and refusals."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch

import deeplimits.sweep as sweep_module
from deeplimits import ResNet
from deeplimits.data import from_tensors, synthetic_ode
from deeplimits.sweep import (
    MissingWeightsWarning,
    RunConfigError,
    depth_seed,
    depth_sweep,
    finished_depths,
    geometric_depths,
    load_sweep,
    missing_weights,
    weights_path,
)
from deeplimits.training import (
    DivergenceWarning,
    IdenticalReplicasWarning,
    replica_spread,
)

_SOURCE = synthetic_ode(dim=3, n_train=40, n_test=1, seed=0)

# A sweep small enough to run in about a second, on user tensors.
TINY = {
    "dataset": from_tensors(_SOURCE.x_train, _SOURCE.y_train, seed=0),
    "replicas": 2,
    "epochs": 2,
    "batch_size": 16,
    "progress": False,
}


# ---------------------------------------------------------------------------
# depth grids and seeds


def test_geometric_depths_powers_of_two():
    assert geometric_depths(3, 256, 2) == [4, 8, 16, 32, 64, 128, 256]
    assert geometric_depths(1, 10, 2) == [1, 2, 4, 8]


def test_geometric_depths_match_direct_floor():
    expected = sorted({math.floor(1.5**n) for n in range(40)} & set(range(3, 301)))
    assert geometric_depths(3, 300, 1.5) == expected


def test_geometric_depths_absorb_rounding():
    # sqrt(2)^2 and sqrt(2)^4 evaluate to 2.0000000000000004 and 4.000000000000001
    # or just below; either way they must count as 2 and 4.
    assert geometric_depths(2, 8, math.sqrt(2)) == [2, 4, 5, 8]


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0, 10, 2), ValueError, "min_depth must be at least 1, got 0"),
        ((10, 3, 2), ValueError, "max_depth must be at least min_depth"),
        ((1, 10, 1.0), ValueError, "base must be greater than 1 .*, got 1.0"),
        ((1, 10, "2"), TypeError, "base must be a real number"),
        ((5, 7, 2), ValueError, r"no depth floor\(2.0\^n\) lies in \[5, 7\]"),
    ],
)
def test_geometric_depths_rejects(args, error, match):
    with pytest.raises(error, match=match):
        geometric_depths(*args)


def test_depth_seed_is_deterministic_and_distinct():
    assert depth_seed(0, 8) == depth_seed(0, 8)
    seeds = {depth_seed(0, depth) for depth in range(1, 200)}
    assert len(seeds) == 199
    assert depth_seed(1, 8) != depth_seed(0, 8)


# ---------------------------------------------------------------------------
# sweeps in memory and in a run folder


def test_sweep_in_memory():
    result = depth_sweep([2, 3], **TINY)
    assert result.run_dir is None
    assert result.depths == [2, 3]
    assert result.networks[3].A.shape == (2, 3, 3, 3)
    assert result.metrics[2]["epochs_run"] == 2
    assert len(result.metrics[2]["final_train_loss"]) == 2
    assert result.config["depth_seeds"]["3"] == depth_seed(0, 3)


def test_sweep_writes_run_folder(tmp_path):
    out = tmp_path / "run"
    result = depth_sweep([3, 2], out=out, **TINY)
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert config["depths"] == [2, 3]
    assert config["replicas"] == 2
    assert config["lr"] == 0.01
    assert set(config["versions"]) == {"python", "torch", "numpy", "deeplimits"}
    assert config["dataset"]["user_tensors"] is True
    assert config["dataset_size"] == {"n_train": 32, "n_test": 8, "task": "regression"}
    assert list(metrics["depths"]) == ["2", "3"]
    record = metrics["depths"]["3"]
    for key in ("train_loss", "test_loss", "final_train_loss", "stop_reason"):
        assert key in record
    assert record["wall_time_s"] > 0
    assert record["weights"] == "weights/depth_00003.safetensors"
    loaded = ResNet.load(weights_path(out, 3))
    assert torch.equal(loaded.A, result.networks[3].A.detach())
    assert not list(out.rglob("*.tmp"))


def test_depth_result_ignores_other_depths():
    alone = depth_sweep([3], **TINY)
    together = depth_sweep([2, 3], **TINY)
    assert torch.equal(alone.networks[3].A, together.networks[3].A)


def test_load_sweep_round_trip(tmp_path):
    out = tmp_path / "run"
    result = depth_sweep([2, 3], out=out, **TINY)
    loaded = load_sweep(out)
    assert loaded.depths == [2, 3]
    assert loaded.metrics[2] == result.metrics[2]
    assert torch.equal(loaded.networks[2].b, result.networks[2].b.detach())
    assert loaded.dataset.fingerprint() == TINY["dataset"].fingerprint()


def test_load_sweep_rebuilds_builtin_dataset(tmp_path):
    out = tmp_path / "run"
    options = dict(TINY, dataset="synthetic", dim=2, epochs=1)
    depth_sweep([2], out=out, **options)
    loaded = load_sweep(out)
    assert loaded.dataset.fingerprint() == synthetic_ode(dim=2).fingerprint()
    assert not (out / "data.safetensors").exists()


def test_load_sweep_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected .*config.json"):
        load_sweep(tmp_path / "missing")


# ---------------------------------------------------------------------------
# resuming, refusals, atomic writes


class _Interrupt(Exception):
    pass


def test_interrupted_sweep_resumes_without_retraining(tmp_path, monkeypatch):
    out = tmp_path / "run"
    real_train = sweep_module.train
    calls: list[int] = []

    def interrupt_after_first(net, *args, **kwargs):
        if calls:
            raise _Interrupt
        calls.append(net.depth)
        return real_train(net, *args, **kwargs)

    monkeypatch.setattr(sweep_module, "train", interrupt_after_first)
    with pytest.raises(_Interrupt):
        depth_sweep([2, 3, 4], out=out, **TINY)
    first_file = weights_path(out, 2)
    stamp = first_file.stat().st_mtime_ns
    assert not weights_path(out, 3).exists()

    def counting(net, *args, **kwargs):
        calls.append(net.depth)
        return real_train(net, *args, **kwargs)

    monkeypatch.setattr(sweep_module, "train", counting)
    resumed = depth_sweep([2, 3, 4], out=out, **TINY)
    assert calls == [2, 3, 4]
    assert first_file.stat().st_mtime_ns == stamp
    assert resumed.depths == [2, 3, 4]

    # The resumed sweep equals one that was never interrupted.
    monkeypatch.setattr(sweep_module, "train", real_train)
    straight = depth_sweep([2, 3, 4], **TINY)
    for depth in (2, 3, 4):
        assert torch.equal(resumed.networks[depth].A, straight.networks[depth].A)


def test_resume_can_add_depths(tmp_path):
    out = tmp_path / "run"
    depth_sweep([2], out=out, **TINY)
    result = depth_sweep([3], out=out, **TINY)
    config = json.loads((out / "config.json").read_text())
    assert config["depths"] == [2, 3]
    assert result.depths == [3]
    assert load_sweep(out).depths == [2, 3]


def test_different_configuration_is_rejected(tmp_path):
    out = tmp_path / "run"
    depth_sweep([2], out=out, **TINY)
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    options = dict(TINY, epochs=3)
    with pytest.raises(RunConfigError, match="epochs: stored 2, requested 3") as info:
        depth_sweep([2], out=out, lr=0.02, **options)
    assert "lr: stored 0.01, requested 0.02" in str(info.value)
    assert isinstance(info.value, ValueError)
    after = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert after == before


def test_other_data_is_rejected(tmp_path):
    out = tmp_path / "run"
    depth_sweep([2], out=out, **TINY)
    other = from_tensors(_SOURCE.x_train, _SOURCE.y_train, seed=1)
    with pytest.raises(RunConfigError, match="Differing keys: dataset"):
        depth_sweep([2], out=out, **dict(TINY, dataset=other))


def test_foreign_folder_is_rejected(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunConfigError, match="not a deeplimits run folder"):
        depth_sweep([2], out=tmp_path, **TINY)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "config.json").exists()


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    import deeplimits._io as io_module

    out = tmp_path / "run"
    depth_sweep([2], out=out, **TINY)
    metrics_before = (out / "metrics.json").read_text()
    real_replace = io_module.os.replace

    def failing_replace(source, target):
        if str(target).endswith("metrics.json"):
            raise OSError("disk full")
        real_replace(source, target)

    monkeypatch.setattr(io_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        depth_sweep([2, 3], out=out, **TINY)
    assert (out / "metrics.json").read_text() == metrics_before
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

    # Depth 3 has weights but no metrics entry, so it is not finished.
    assert weights_path(out, 3).exists()
    monkeypatch.setattr(io_module.os, "replace", real_replace)
    resumed = load_sweep(out)
    assert resumed.depths == [2]
    depth_sweep([2, 3], out=out, **TINY)
    assert load_sweep(out).depths == [2, 3]


def test_loss_growth_warning_names_the_depth(tmp_path):
    options = dict(TINY, lr=1e6, epochs=2)
    with pytest.warns(DivergenceWarning, match="depth 2: training diverged") as record:
        sweep = depth_sweep([2], out=tmp_path / "run", **options)
    assert record[0].filename == __file__
    assert sweep.metrics[2]["diverged"] is True
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert stored["depths"]["2"]["diverged"] is True


def test_resume_logs_reused_depths(tmp_path, caplog):
    out = tmp_path / "run"
    depth_sweep([2], out=out, **TINY)
    assert finished_depths(out) == [2]
    with caplog.at_level(logging.INFO, logger="deeplimits.sweep"):
        depth_sweep([2, 3], out=out, **TINY)
    expected = f"Resuming {out}: 1 depth already trained (2), training 3."
    assert caplog.messages == [expected]


def test_finished_depths_of_missing_folder(tmp_path):
    assert finished_depths(tmp_path / "nothing") == []


def test_divergence_names_the_depth(tmp_path):
    options = dict(TINY, optimizer="sgd", lr=1e8, epochs=5)
    with pytest.raises(FloatingPointError, match="depth 2: training diverged"):
        depth_sweep([2], activation="identity", delta="none", **options)


# ---------------------------------------------------------------------------
# bad arguments


@pytest.mark.parametrize(
    ("depths", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, "at least one depth"),
        ([2, 0], {}, ValueError, "each depth in depths must be at least 1"),
        ("4", {}, TypeError, "depths must be a list of ints"),
        ([2], {"delta": "both"}, ValueError, "delta must be one of"),
        ([2], {"replicas": 0}, ValueError, "replicas must be at least 1"),
        ([2], {"lr": -1.0}, ValueError, "lr must be a finite positive"),
        ([2], {"optimizer": "lbfgs"}, ValueError, "optimizer must be one of"),
        ([2], {"dim": 5}, ValueError, "dim=5 does not match the data set"),
        ([2], {"dtype": torch.int32}, TypeError, "dtype must be a floating"),
        ([2], {"activation": "swish"}, ValueError, "swish"),
    ],
)
def test_sweep_rejects_bad_arguments(tmp_path, depths, kwargs, error, match):
    options = dict(TINY, **kwargs)
    with pytest.raises(error, match=match):
        depth_sweep(depths, out=tmp_path / "run", **options)
    assert not (tmp_path / "run").exists()


def test_sweep_rejects_unequal_widths():
    data = from_tensors(torch.randn(10, 3), torch.randn(10, 2))
    with pytest.raises(ValueError, match="maps R\\^d to R\\^d"):
        depth_sweep([2], **dict(TINY, dataset=data))


def test_sweep_rejects_unknown_dataset_name():
    with pytest.raises(ValueError, match="dataset must be one of .* got 'cifar'"):
        depth_sweep([2], **dict(TINY, dataset="cifar"))


# ---------------------------------------------------------------------------
# replica spread and missing weight files


def test_sweep_records_replica_spread(tmp_path):
    sweep = depth_sweep([2, 3], out=tmp_path / "run", **TINY)
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for depth in (2, 3):
        value = stored["depths"][str(depth)]["replica_spread_A"]
        assert value == pytest.approx(replica_spread(sweep.networks[depth].A))
        # Independent shuffling and initialisation: far from copies.
        assert value > 1e-3
    single = depth_sweep([2], **(TINY | {"replicas": 1}))
    assert single.metrics[2]["replica_spread_A"] is None


def test_sweep_warns_identical_replicas():
    # Zero initialisation and full batches: every replica takes the same steps.
    options = TINY | {"init": "zero", "batch_size": 40}
    with pytest.warns(
        IdenticalReplicasWarning, match="depth 2: the 2 replicas"
    ) as caught:
        sweep = depth_sweep([2], **options)
    assert caught[0].filename == __file__
    assert sweep.metrics[2]["replica_spread_A"] < 1e-6


def test_missing_weight_file_warns(tmp_path):
    out = tmp_path / "run"
    depth_sweep([2, 3], out=out, **TINY)
    path = weights_path(out, 2)
    path.unlink()
    assert missing_weights(out) == {2: path}
    with pytest.warns(MissingWeightsWarning, match="depth 2 is recorded") as caught:
        loaded = load_sweep(out, load_data=False)
    assert caught[0].filename == __file__
    assert str(path) in str(caught[0].message)
    assert loaded.depths == [3]
    with pytest.warns(MissingWeightsWarning, match="depth_00002.safetensors") as caught:
        assert finished_depths(out) == [3]
    assert caught[0].filename == __file__


def test_complete_run_has_no_missing_weights(tmp_path, recwarn):
    out = tmp_path / "run"
    depth_sweep([2, 3], out=out, **TINY)
    assert missing_weights(out) == {}
    assert load_sweep(out, load_data=False).depths == [2, 3]
    assert not [w for w in recwarn if w.category is MissingWeightsWarning]
