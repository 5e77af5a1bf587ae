"""Tests of deeplimits.training.train: losses, stopping rules, replicas, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deeplimits import ResNet
from deeplimits.data import Dataset, from_tensors, synthetic_ode
from deeplimits.training import (
    DivergenceWarning,
    IdenticalReplicasWarning,
    replica_shuffle_seed,
    replica_spread,
    train,
)


def _linear_data(n: int = 64, seed: int = 0) -> Dataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=generator)
    weight = torch.randn(3, 2, generator=generator)
    return from_tensors(x, x @ weight, seed=seed)


def _mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(((model(x) - y) ** 2).double().mean())


def test_train_losses_match_direct_evaluation():
    data = _linear_data()
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    initial = _mse(model, data.x_train, data.y_train)
    result = train(model, data, lr=0.1, epochs=4, batch_size=8, tol=0.0, progress=False)
    assert result.initial_train_loss == pytest.approx(initial, rel=1e-6)
    assert result.epochs_run == 4
    assert len(result.train_loss) == 4
    assert len(result.test_loss) == 4
    final_train = _mse(model, data.x_train, data.y_train)
    final_test = _mse(model, data.x_test, data.y_test)
    assert result.train_loss[-1] == pytest.approx(final_train, rel=1e-6)
    assert result.test_loss[-1] == pytest.approx(final_test, rel=1e-6)
    assert result.final_train_loss_per_replica == pytest.approx([final_train])
    assert result.train_loss[-1] < 0.5 * initial
    assert result.train_accuracy is None
    assert result.wall_time > 0.0


def test_stop_reason_tol():
    data = _linear_data()
    torch.manual_seed(1)
    model = nn.Linear(3, 2)
    result = train(model, data, lr=0.05, epochs=200, tol=1e-3, patience=50)
    assert result.stop_reason == "tol"
    assert result.train_loss[-1] < 1e-3
    assert all(loss >= 1e-3 for loss in result.train_loss[:-1])
    assert result.epochs_run < 200


def test_stop_reason_patience_after_exactly_patience_epochs():
    # A learning rate of 1e-12 cannot improve the loss by 1% in an epoch.
    data = _linear_data()
    model = nn.Linear(3, 2)
    result = train(
        model, data, optimizer="sgd", lr=1e-12, epochs=50, patience=3, progress=False
    )
    assert result.stop_reason == "patience"
    assert result.epochs_run == 3


def test_stop_reason_epochs():
    data = _linear_data()
    model = nn.Linear(3, 2)
    result = train(
        model, data, lr=0.01, epochs=2, tol=0.0, patience=100, progress=False
    )
    assert result.stop_reason == "epochs"
    assert result.epochs_run == 2


def test_patience_counts_only_stalled_epochs():
    from deeplimits.training import _stop_reason

    # Each entry improves on the best so far by more than 1% except the last two.
    history = [1.0, 0.5, 0.4, 0.399, 0.398]
    assert _stop_reason(history, 0.0, 2) == "patience"
    assert _stop_reason(history, 0.0, 3) is None
    assert _stop_reason([1.0, 0.5], 0.6, 5) == "tol"


def test_replicas_train_like_separate_networks():
    data = synthetic_ode(dim=4, n_train=48, n_test=16, seed=0, dtype=torch.float64)
    net = ResNet(4, 5, replicas=3, init="xavier", init_scale=0.5, seed=2)
    net = net.double()
    singles = [net.replica(r) for r in range(3)]
    together = train(
        net, data, lr=0.02, epochs=3, batch_size=16, tol=0.0, seed=4, progress=False
    )
    for r, single in enumerate(singles):
        alone = train(
            single,
            data,
            lr=0.02,
            epochs=3,
            batch_size=16,
            tol=0.0,
            seed=replica_shuffle_seed(4, r),
            progress=False,
        )
        assert torch.allclose(net.A[r], single.A, rtol=0, atol=1e-12)
        assert torch.allclose(net.b[r], single.b, rtol=0, atol=1e-12)
        assert together.final_train_loss_per_replica[r] == pytest.approx(
            alone.final_train_loss_per_replica[0], rel=1e-10
        )
    mean = sum(together.final_train_loss_per_replica) / 3
    assert together.train_loss[-1] == pytest.approx(mean, rel=1e-12)
    assert len(together.train_loss_per_replica[-1]) == 3


def _identical_replicas(replicas: int, init_scale: float = 0.5) -> ResNet:
    """A float64 ResNet whose replicas all start from replica 0's weights."""
    net = ResNet(4, 5, replicas=replicas, init="xavier", init_scale=init_scale, seed=2)
    net = net.double()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(parameter[:1].expand_as(parameter))
    return net


def test_replicas_get_their_own_shuffling():
    data = synthetic_ode(dim=4, n_train=48, n_test=16, seed=0, dtype=torch.float64)
    net = _identical_replicas(3)
    assert replica_spread(net.A) == 0.0
    result = train(
        net, data, lr=0.02, epochs=3, batch_size=16, tol=0.0, seed=4, progress=False
    )
    # Same start, different minibatch orders: the replicas must separate.
    # A shared order would leave them equal up to rounding (spread ~1e-16).
    assert result.replica_spread is not None
    assert result.replica_spread > 1e-3
    assert replica_spread(net.A) > 1e-3
    losses = result.final_train_loss_per_replica
    assert max(losses) - min(losses) > 1e-6 * max(losses)


def test_replica_shuffle_seeds_are_distinct():
    seeds = [replica_shuffle_seed(0, r) for r in range(8)]
    assert len(set(seeds)) == 8
    assert replica_shuffle_seed(0, 1) != replica_shuffle_seed(1, 0)
    with pytest.raises(ValueError, match="replica"):
        replica_shuffle_seed(0, -1)


def test_replica_spread_analytic():
    stacked = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    # Mean (2, 0); each row is 1 away from it.
    assert replica_spread(stacked) == pytest.approx(0.5, rel=1e-15)
    assert replica_spread(torch.ones(1, 3)) == 0.0
    assert replica_spread(torch.tensor([[1.0], [-1.0]])) == math.inf


def test_identical_replicas_warn():
    # A full batch makes every permutation give the same step, so replicas
    # that start equal stay equal.
    data = synthetic_ode(dim=4, n_train=32, n_test=8, seed=0, dtype=torch.float64)
    net = _identical_replicas(2)
    with pytest.warns(IdenticalReplicasWarning, match="2 replicas ended") as caught:
        result = train(
            net, data, lr=0.02, epochs=2, batch_size=32, tol=0.0, progress=False
        )
    assert result.replica_spread is not None
    assert result.replica_spread < 1e-12
    assert caught[0].filename == __file__


def test_distinct_replicas_do_not_warn(recwarn):
    data = synthetic_ode(dim=4, n_train=32, n_test=8, seed=0, dtype=torch.float64)
    net = ResNet(4, 5, replicas=2, init="xavier", init_scale=0.5, seed=2).double()
    result = train(net, data, lr=0.02, epochs=2, batch_size=32, progress=False)
    assert result.replica_spread > 1e-3
    assert not [w for w in recwarn if w.category is IdenticalReplicasWarning]


class _StackedLinear(nn.Module):
    """Two linear maps applied to the same (batch, 3) input, output (2, batch, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(2, 2, 3, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("roi,bi->rbo", self.weight, x)


def test_other_replica_models_share_the_order():
    data = _linear_data().to(dtype=torch.float64)
    model = _StackedLinear()
    with torch.no_grad():
        model.weight[1] = model.weight[0]
    result = train(model, data, lr=0.05, epochs=2, tol=0.0, progress=False)
    # Without has_replicas the model gets (batch, d) inputs in one order.
    assert result.replica_spread is None
    assert torch.allclose(model.weight[0], model.weight[1], rtol=0, atol=1e-14)


def test_classification_accuracy_matches_argmax():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(80, 3, generator=generator)
    labels = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    data = from_tensors(x, labels, seed=0)
    model = nn.Linear(3, 3)
    result = train(model, data, lr=0.05, epochs=3, tol=0.0, progress=False)
    with torch.no_grad():
        predicted = model(data.x_test).argmax(dim=1)
    expected = float((predicted == data.labels_test).double().mean())
    assert result.test_accuracy[-1] == pytest.approx(expected)
    assert result.final_test_accuracy_per_replica == pytest.approx([expected])
    assert len(result.train_accuracy) == 3


def test_seeded_shuffling_is_reproducible():
    data = _linear_data()
    weights = []
    for seed in (5, 5, 6):
        torch.manual_seed(0)
        model = nn.Linear(3, 2)
        train(model, data, lr=0.05, epochs=2, tol=0.0, seed=seed, progress=False)
        weights.append(model.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


class _FailingLinear(nn.Linear):
    """A linear map whose ``fail_at``-th forward call returns NaN."""

    def __init__(self, fail_at: int) -> None:
        super().__init__(3, 2)
        self.fail_at = fail_at
        self.calls = 0
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.seen.append(self.weight.detach().clone())
        out = super().forward(x)
        return out * math.nan if self.calls == self.fail_at else out


def test_non_finite_loss_restores_last_finite_weights():
    data = _linear_data()
    # Call 1 checks the output shape, call 2 evaluates the initial loss, calls
    # 3, 4, ... are training steps.
    model = _FailingLinear(fail_at=6)
    with pytest.raises(FloatingPointError, match="training diverged.*epoch 1, batch 4"):
        train(model, data, lr=0.05, epochs=3, batch_size=8, progress=False)
    assert torch.equal(model.weight, model.seen[4])
    assert not torch.equal(model.weight, model.seen[5])


def test_divergence_with_huge_learning_rate_keeps_finite_weights():
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0)) * 1e3
    data = from_tensors(x, x[:, :2] * 1e3)
    model = nn.Linear(3, 2)
    with pytest.raises(FloatingPointError, match="Lower lr"):
        train(model, data, optimizer="sgd", lr=1e6, epochs=50, progress=False)
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


def test_loss_growth_warns_and_sets_diverged():
    data = synthetic_ode(n_train=64, n_test=16)
    with pytest.warns(DivergenceWarning, match="more than 10 times") as record:
        result = train(ResNet(10, 4, seed=0), data, epochs=2, lr=1e6, progress=False)
    assert result.diverged
    assert result.train_loss[-1] > 10 * result.initial_train_loss
    message = str(record[0].message)
    assert f"final training loss {result.train_loss[-1]:.3g}" in message
    assert f"before training, {result.initial_train_loss:.3g}" in message
    assert "Lower lr" in message
    assert issubclass(record[0].category, RuntimeWarning)
    assert record[0].filename == __file__


def test_loss_growth_names_replicas():
    data = synthetic_ode(n_train=64, n_test=16)
    net = ResNet(10, 4, seed=0, replicas=2)
    with pytest.warns(DivergenceWarning, match=r"in replicas \[0, 1\]"):
        result = train(net, data, epochs=2, lr=1e6, progress=False)
    assert len(result.initial_train_loss_per_replica) == 2
    assert result.diverged


def test_converging_run_is_not_diverged(recwarn):
    result = train(nn.Linear(3, 2), _linear_data(), epochs=3, progress=False)
    assert not result.diverged
    assert not [w for w in recwarn if issubclass(w.category, DivergenceWarning)]


def test_progress_bar_can_be_turned_off(capsys):
    data = _linear_data()
    train(nn.Linear(3, 2), data, epochs=1, progress=False)
    assert capsys.readouterr().err == ""
    train(nn.Linear(3, 2), data, epochs=1, progress=True)
    assert "train" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"optimizer": "rmsprop"},
            ValueError,
            "optimizer must be one of 'adam', 'sgd'",
        ),
        ({"lr": 0.0}, ValueError, "lr must be a finite positive number, got 0.0"),
        ({"lr": "fast"}, TypeError, "lr must be a real number"),
        ({"epochs": 0}, ValueError, "epochs must be at least 1, got 0"),
        ({"batch_size": 1.5}, TypeError, "batch_size must be an int"),
        ({"tol": -1.0}, ValueError, "tol must be a finite non-negative number"),
        ({"patience": 0}, ValueError, "patience must be at least 1"),
        ({"seed": -3}, ValueError, "seed must be at least 0"),
    ],
)
def test_train_rejects_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        train(nn.Linear(3, 2), _linear_data(), progress=False, **kwargs)


def test_train_rejects_bad_model_and_data():
    data = _linear_data()
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        train(lambda x: x, data)
    with pytest.raises(TypeError, match="data must be a deeplimits.data.Dataset"):
        train(nn.Linear(3, 2), (data.x_train, data.y_train))
    with pytest.raises(ValueError, match="model has no parameters"):
        train(nn.Identity(), data)
    with pytest.raises(ValueError, match=r"model output must have shape .*\(32, 2\)"):
        train(nn.Linear(3, 4), data, progress=False)


def test_train_rejects_nan_in_dataset():
    data = _linear_data()
    x_bad = data.x_train.clone()
    x_bad[0, 0] = math.nan
    broken = Dataset(
        name="broken",
        x_train=x_bad,
        y_train=data.y_train,
        x_test=data.x_test,
        y_test=data.y_test,
        task="regression",
        labels_train=None,
        labels_test=None,
        description="",
    )
    with pytest.raises(ValueError, match="data.x_train contains NaN"):
        train(nn.Linear(3, 2), broken)


def test_train_casts_data_to_model_dtype():
    data = _linear_data()
    model = nn.Linear(3, 2).double()
    result = train(model, data, epochs=1, device="cpu", progress=False)
    assert result.epochs_run == 1
    assert model.weight.dtype == torch.float64
