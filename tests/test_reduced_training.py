"""Training reduced models through deeplimits.train on every data set."""

from __future__ import annotations

import pytest
import torch

from deeplimits import ResNet
from deeplimits.data import digits, from_tensors, synthetic_ode
from deeplimits.reduced import ReducedLimitModel
from deeplimits.training import train


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_reduced_model_matches_deep_resnet_on_synthetic() -> None:
    # Same budget for both: 10 epochs of Adam, lr 1e-2, batch 32, seed 0.
    data = synthetic_ode(seed=0)
    budget = dict(epochs=10, lr=1e-2, batch_size=32, seed=0, progress=False)
    net = ResNet(10, 64, seed=0)
    net_result = train(net, data, **budget)
    model = ReducedLimitModel(10, basis="legendre", K=8, steps=8, seed=0)
    model_result = train(model, data, **budget)
    assert model.num_parameters() < net.A.numel() / 5
    assert model_result.test_loss[-1] < 2 * net_result.test_loss[-1]
    # Both models learn: the loss falls well below the identity map's.
    assert model_result.test_loss[-1] < 0.05 * model_result.initial_train_loss


def test_digits_training_lowers_loss_and_classifies() -> None:
    data = digits(dim=10, seed=0)
    model = ReducedLimitModel(10, basis="chebyshev", K=4, steps=4, seed=0)
    result = train(model, data, epochs=3, lr=1e-2, progress=False)
    assert result.test_loss[-1] < 0.7 * result.initial_train_loss
    assert result.test_accuracy is not None
    # Ten classes: chance is 10%.
    assert result.test_accuracy[-1] > 0.5


def test_sde_model_trains_by_backpropagation() -> None:
    torch.manual_seed(0)
    data = synthetic_ode(dim=4, n_train=256, n_test=64, seed=1)
    model = ReducedLimitModel(
        4, form="sde", noise="diagonal", K=3, steps=8, sde_samples=4, seed=0
    )
    result = train(model, data, epochs=4, lr=1e-2, progress=False)
    assert result.train_loss[-1] < 0.5 * result.initial_train_loss


def test_user_tensors_linear_ode_low_rank() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=generator)
    target = x @ torch.linalg.matrix_exp(0.5 * torch.randn(5, 5, generator=generator))
    data = from_tensors(x, target, seed=0)
    model = ReducedLimitModel(
        5, form="linear-ode", K=2, rank=3, low_rank="core", steps=4, seed=0
    )
    result = train(model, data, epochs=15, lr=3e-2, progress=False)
    assert result.test_loss[-1] < 0.5 * result.initial_train_loss


def test_warm_start_keeps_network_loss() -> None:
    data = synthetic_ode(dim=10, seed=0)
    net = ResNet(10, 32, seed=0)
    train(net, data, epochs=3, progress=False)
    model = ReducedLimitModel.from_network(net, "legendre", 8, steps=8)
    with torch.no_grad():
        net_loss = float((net(data.x_test) - data.y_test).square().mean())
        model_loss = float((model(data.x_test) - data.y_test).square().mean())
    # The trained weights are smooth in k/L, so K = 8 keeps the loss.
    assert model_loss < 1.5 * net_loss
