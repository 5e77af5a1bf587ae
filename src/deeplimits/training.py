"""Mean-squared-error training of residual networks (and any ``nn.Module``)."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from deeplimits._checks import check_choice, check_int, check_positive_float, describe
from deeplimits.data import Dataset

__all__ = [
    "DIVERGENCE_FACTOR",
    "IDENTICAL_REPLICAS_SPREAD",
    "OPTIMIZERS",
    "STOP_REASONS",
    "DivergenceWarning",
    "IdenticalReplicasWarning",
    "TrainResult",
    "check_train_options",
    "replica_shuffle_seed",
    "replica_spread",
    "train",
]

#: Optimizer names accepted by :func:`train`.
OPTIMIZERS = ("adam", "sgd")

#: Values of :attr:`TrainResult.stop_reason`.
STOP_REASONS = ("tol", "patience", "epochs")

#: Relative decrease of the training loss that counts as an improvement.
IMPROVEMENT = 0.01

#: A final training loss above this multiple of the loss before training
#: marks the run as diverged (:attr:`TrainResult.diverged`).
DIVERGENCE_FACTOR = 10.0

#: Replicas whose parameters have a relative spread (:func:`replica_spread`)
#: below this value after training count as copies of one network.
IDENTICAL_REPLICAS_SPREAD = 1e-6

_EVAL_BATCH = 4096


class DivergenceWarning(RuntimeWarning):
    """Training ended with a finite loss far above the loss before training."""


class IdenticalReplicasWarning(UserWarning):
    """Replicas ended training as near-copies, so their spread is no error bar."""


def replica_shuffle_seed(seed: int, replica: int) -> int:
    """Return the seed of one replica's shuffling in :func:`train`.

    ``numpy.random.SeedSequence([seed, replica])`` mixes the two integers, so
    each replica gets its own stream of permutations. Training a replica
    alone with ``train(..., seed=replica_shuffle_seed(seed, r))`` visits the
    samples in the same order as replica ``r`` of a batched run.
    """
    check_int("seed", seed, minimum=0)
    check_int("replica", replica, minimum=0)
    state = np.random.SeedSequence([seed, replica]).generate_state(1, dtype=np.uint32)
    return int(state[0])


def replica_spread(tensor: Tensor) -> float:
    r"""Return the relative spread of replicas stacked on the first axis.

    For replicas :math:`W_1, \dots, W_R` with mean :math:`\bar W`, the spread is
    :math:`\max_r \lVert W_r - \bar W \rVert_F / \lVert \bar W \rVert_F`
    (0 for a single replica, ``inf`` when the mean is zero but the replicas
    differ, NaN for non-finite entries).

    Args:
        tensor: shape ``(R, ...)``, one replica per row.
    """
    values = tensor.detach().double().reshape(tensor.shape[0], -1)
    mean = values.mean(dim=0)
    largest = float((values - mean).norm(dim=1).max())
    scale = float(mean.norm())
    if largest == 0.0:
        return 0.0
    return largest / scale if scale > 0.0 else math.inf


@dataclass
class TrainResult:
    """Record of one call to :func:`train`.

    Losses are mean squared errors, averaged over samples and output
    entries. With replicas, the per-epoch lists hold the mean over replicas
    and the ``*_per_replica`` fields keep each replica's value.

    Attributes:
        train_loss: training loss after each epoch, over the whole training
            split with the weights at the end of the epoch.
        test_loss: test loss after each epoch.
        train_accuracy: share of training samples whose output argmax equals
            the label, after each epoch; ``None`` for regression.
        test_accuracy: the same on the test split, or ``None``.
        train_loss_per_replica: one list per epoch with each replica's
            training loss (one entry when the model has no replicas).
        final_train_loss_per_replica: training loss of each replica at the end.
        final_test_loss_per_replica: test loss of each replica at the end.
        final_train_accuracy_per_replica: accuracies at the end, or ``None``.
        final_test_accuracy_per_replica: accuracies at the end, or ``None``.
        stop_reason: ``"tol"`` (mean training loss below ``tol``),
            ``"patience"`` (no 1% improvement for ``patience`` epochs) or
            ``"epochs"`` (epoch cap reached).
        epochs_run: number of epochs trained.
        initial_train_loss: mean training loss before the first step.
        initial_train_loss_per_replica: training loss of each replica before
            the first step.
        replica_spread: relative spread of the trained parameters over
            replicas (:func:`replica_spread` of all parameters stacked per
            replica), or ``None`` for a model without a replicas axis.
        diverged: ``True`` when some replica's final training loss is more
            than :data:`DIVERGENCE_FACTOR` (10) times its loss before
            training; :func:`train` then also issues a
            :class:`DivergenceWarning`.
        wall_time: seconds spent in :func:`train`.
    """

    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] | None = None
    test_accuracy: list[float] | None = None
    train_loss_per_replica: list[list[float]] = field(default_factory=list)
    final_train_loss_per_replica: list[float] = field(default_factory=list)
    final_test_loss_per_replica: list[float] = field(default_factory=list)
    final_train_accuracy_per_replica: list[float] | None = None
    final_test_accuracy_per_replica: list[float] | None = None
    stop_reason: str = "epochs"
    epochs_run: int = 0
    initial_train_loss: float = math.nan
    initial_train_loss_per_replica: list[float] = field(default_factory=list)
    replica_spread: float | None = None
    diverged: bool = False
    wall_time: float = 0.0


def _replica_count(model: nn.Module) -> int:
    """Return R for a model that takes inputs ``(R, batch, d)``, else 1.

    A model opts in with the attributes ``has_replicas = True`` and
    ``replicas = R``, as :class:`deeplimits.ResNet` with ``replicas > 1`` has.
    """
    replicas = getattr(model, "replicas", 1)
    if getattr(model, "has_replicas", False) is True and isinstance(replicas, int):
        return max(replicas, 1)
    return 1


def _parameter_spread(model: nn.Module, replicas: int) -> float:
    """Return :func:`replica_spread` of the parameters with a leading R axis."""
    rows = [
        p.detach().reshape(replicas, -1)
        for p in model.parameters()
        if p.ndim >= 1 and p.shape[0] == replicas
    ]
    return replica_spread(torch.cat(rows, dim=1))


def _check_identical_replicas(result: TrainResult, stacklevel: int) -> None:
    spread = result.replica_spread
    if spread is None or not spread < IDENTICAL_REPLICAS_SPREAD:
        return
    replicas = len(result.final_train_loss_per_replica)
    warnings.warn(
        f"the {replicas} replicas ended training nearly identical: the relative "
        f"spread of their parameters is {spread:.3g}, below "
        f"{IDENTICAL_REPLICAS_SPREAD:g}, so error bars over them do not measure "
        "independent runs. Use a larger init_scale or a smaller learning rate, "
        "or train replicas with different seeds.",
        IdenticalReplicasWarning,
        stacklevel=stacklevel + 1,
    )


def _reference_parameter(model: nn.Module) -> Tensor:
    for tensor in model.parameters():
        return tensor
    raise ValueError(
        f"model has no parameters to train ({type(model).__name__}). Pass a "
        "module with at least one parameter."
    )


def _per_replica_sq_error(output: Tensor, target: Tensor) -> Tensor:
    """Return the summed squared error per replica, shape ``(R,)``."""
    if output.ndim == 2:
        output = output.unsqueeze(0)
    return (output - target).pow(2).sum(dim=(1, 2))


def _check_output(output: Any, batch: int, d_out: int) -> None:
    if not isinstance(output, Tensor):
        raise TypeError(f"model must return a tensor, got {describe(output)}.")
    ok_2d = output.ndim == 2 and tuple(output.shape) == (batch, d_out)
    ok_3d = output.ndim == 3 and tuple(output.shape[1:]) == (batch, d_out)
    if not (ok_2d or ok_3d):
        raise ValueError(
            f"model output must have shape (batch, d_out) = ({batch}, {d_out}) or "
            f"(replicas, {batch}, {d_out}), got {tuple(output.shape)}. Make the "
            "model's output width match the targets (data.y_train.shape[1])."
        )


@torch.no_grad()
def _evaluate(
    model: nn.Module, x: Tensor, y: Tensor, labels: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """Return per-replica MSE and accuracy (or None) over ``(x, y)``."""
    total: Tensor | None = None
    correct: Tensor | None = None
    for start in range(0, x.shape[0], _EVAL_BATCH):
        output = model(x[start : start + _EVAL_BATCH])
        if output.ndim == 2:
            output = output.unsqueeze(0)
        part = _per_replica_sq_error(output, y[start : start + _EVAL_BATCH])
        total = part if total is None else total + part
        if labels is not None:
            hits = output.argmax(dim=2) == labels[start : start + _EVAL_BATCH]
            count = hits.sum(dim=1)
            correct = count if correct is None else correct + count
    assert total is not None
    mse = total.double() / (y.shape[0] * y.shape[1])
    accuracy = None if correct is None else correct.double() / x.shape[0]
    return mse, accuracy


def _make_optimizer(
    name: str, params: Sequence[Tensor], lr: float
) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr)


def _check_data(data: Any) -> None:
    if not isinstance(data, Dataset):
        raise TypeError(
            f"data must be a deeplimits.data.Dataset, got {describe(data)}. Wrap "
            "tensors with deeplimits.data.from_tensors(x, y)."
        )
    if data.n_train < 1 or data.n_test < 1:
        raise ValueError(
            f"data must have at least one train and one test sample, got "
            f"{data.n_train} and {data.n_test}."
        )
    for name in ("x_train", "y_train", "x_test", "y_test"):
        tensor = getattr(data, name)
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(
                f"data.{name} contains NaN or infinite entries. Remove or "
                "replace them before training."
            )


def _stop_reason(history: list[float], tol: float, patience: int) -> str | None:
    """Apply the stopping rules to the mean training losses.

    ``history`` starts with the loss before training, then one entry per epoch.
    """
    if history[-1] < tol:
        return "tol"
    best_before = math.inf
    stale = 0
    for loss in history:
        if loss < (1.0 - IMPROVEMENT) * best_before:
            best_before = loss
            stale = 0
        else:
            stale += 1
    return "patience" if stale >= patience else None


def _check_growth(
    result: TrainResult, optimizer: str, lr: float, stacklevel: int
) -> None:
    """Set ``result.diverged`` and warn when a final loss grew past the factor."""
    before = result.initial_train_loss_per_replica
    after = result.final_train_loss_per_replica
    pairs = enumerate(zip(before, after, strict=True))
    grown = [i for i, (first, last) in pairs if last > DIVERGENCE_FACTOR * first]
    if not grown:
        return
    result.diverged = True
    final_text = ", ".join(f"{after[i]:.3g}" for i in grown)
    initial_text = ", ".join(f"{before[i]:.3g}" for i in grown)
    if len(before) == 1:
        what = f"the final training loss {final_text} is"
        reference = f"the loss before training, {initial_text}"
    else:
        what = f"in replicas {grown} the final training losses {final_text} are"
        reference = f"their losses before training, {initial_text}"
    warnings.warn(
        f"training diverged: {what} more than {DIVERGENCE_FACTOR:g} times "
        f"{reference} (optimizer={optimizer!r}, lr={lr}). Lower lr, for example "
        "by a factor of 10, and train again.",
        DivergenceWarning,
        stacklevel=stacklevel + 1,
    )


def check_train_options(
    *,
    optimizer: str,
    lr: float,
    epochs: int,
    batch_size: int,
    tol: float,
    patience: int,
    seed: int,
) -> None:
    """Check the options of :func:`train`, raising ValueError or TypeError."""
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_positive_float("lr", lr)
    check_int("epochs", epochs, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_positive_float("tol", tol, allow_zero=True)
    check_int("patience", patience, minimum=1)
    check_int("seed", seed, minimum=0)


def train(
    model: nn.Module,
    data: Dataset,
    *,
    optimizer: str = "adam",
    lr: float = 1e-2,
    epochs: int = 100,
    batch_size: int = 32,
    tol: float = 1e-6,
    patience: int = 5,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> TrainResult:
    r"""Train ``model`` on ``data`` by minimising the mean squared error.

    The loss of a model :math:`f` on samples :math:`(x_i, y_i)_{i \le n}` with
    targets in :math:`\mathbb{R}^{d_{out}}` is

    .. math::

        \ell(f) = \frac{1}{n\, d_{out}} \sum_{i=1}^n \lVert f(x_i) - y_i \rVert^2 .

    A model whose output has shape ``(R, batch, d_out)`` has ``R``
    replicas: each replica gets its own loss and the step minimises their
    sum, so the replicas train independently with one optimizer (Adam's
    statistics are per entry, so this equals R separate runs).

    Each epoch visits the training samples once in a random order. A model
    without replicas draws it from ``torch.Generator().manual_seed(seed)``.
    A model with the attributes ``has_replicas = True`` and ``replicas = R``
    (such as :class:`deeplimits.ResNet` with ``replicas > 1``) must accept
    inputs of shape ``(R, batch, d_in)``: replica ``r`` then gets its own
    permutation each epoch, from a generator seeded with
    :func:`replica_shuffle_seed` ``(seed, r)``, so replica ``r`` trains
    exactly like a single network trained with that seed.

    NOTE: any other model that returns ``(R, batch, d_out)`` gets the same
    order for all replicas, so its replicas differ only through their
    initialisation.

    After the epoch, the training and test losses are evaluated over the
    whole splits (mean over replicas). Training stops at the first of:

    - ``"tol"``: the mean training loss is below ``tol``;
    - ``"patience"``: for ``patience`` epochs in a row the training loss has
      not fallen below 99% of the best earlier value (a 1% improvement);
    - ``"epochs"``: ``epochs`` epochs have run.

    Args:
        model: any ``nn.Module`` mapping ``(batch, d_in)`` to ``(batch, d_out)``
            or ``(R, batch, d_out)``, such as :class:`deeplimits.ResNet`.
        data: a :class:`deeplimits.data.Dataset`; its tensors are cast to the
            dtype and device of the model's first parameter.
        optimizer: ``"adam"`` or ``"sgd"`` (plain gradient descent, no momentum).
        lr: learning rate, a positive float.
        epochs: maximum number of epochs, at least 1.
        batch_size: samples per step, at least 1 (the last batch of an epoch
            can be smaller).
        tol: stop once the mean training loss falls below this value (>= 0;
            0 turns the rule off).
        patience: number of epochs without a 1% improvement before stopping,
            at least 1.
        seed: seed of the shuffling (per replica through
            :func:`replica_shuffle_seed`).
        device: move the model there first (``None`` keeps its device).
        progress: show a tqdm progress bar over epochs.

    Returns:
        A :class:`TrainResult`. If some replica ends with a training loss more
        than 10 times its loss before training, ``diverged`` is ``True`` and a
        :class:`DivergenceWarning` (a ``RuntimeWarning``) names both losses.
        If the replicas of a model with ``R > 1`` end with a relative
        parameter spread below :data:`IDENTICAL_REPLICAS_SPREAD` (``1e-6``),
        an :class:`IdenticalReplicasWarning` gives the spread.

    Raises:
        FloatingPointError: if the training loss of a step or of an epoch is NaN
            or infinite. Before raising, the model gets back the last weights
            whose loss was finite, so it can be inspected or trained further
            with a smaller ``lr``.
        ValueError, TypeError: for invalid arguments or a model output of the
            wrong shape.

    Example:
        >>> import torch
        >>> from deeplimits.data import from_tensors
        >>> x = torch.randn(64, 3)
        >>> data = from_tensors(x, x @ torch.randn(3, 2))
        >>> result = train(torch.nn.Linear(3, 2), data, epochs=3, progress=False)
        >>> result.epochs_run
        3
    """
    from tqdm.auto import tqdm

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}.")
    check_train_options(
        optimizer=optimizer,
        lr=lr,
        epochs=epochs,
        batch_size=batch_size,
        tol=tol,
        patience=patience,
        seed=seed,
    )
    if device is not None:
        model.to(device)
    reference = _reference_parameter(model)
    _check_data(data)
    started = time.perf_counter()

    # Data on the model's device and dtype.
    data = data.to(device=reference.device, dtype=reference.dtype)
    x, y, labels = data.x_train, data.y_train, data.labels_train
    n, d_out = data.n_train, data.dim_out
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _make_optimizer(optimizer, params, lr)
    replicas = _replica_count(model)
    if replicas > 1:
        seeds = [replica_shuffle_seed(seed, r) for r in range(replicas)]
    else:
        seeds = [seed]
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    result = TrainResult()
    classify = data.task == "classification" and labels is not None
    if classify:
        result.train_accuracy, result.test_accuracy = [], []

    # The last weights whose loss was finite, restored on divergence.
    snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def diverge(where: str, losses: Tensor) -> FloatingPointError:
        model.load_state_dict(snapshot)
        bad = [i for i, v in enumerate(losses.tolist()) if not math.isfinite(v)]
        return FloatingPointError(
            f"training diverged: the loss became {losses.tolist()} {where} "
            f"(replicas {bad} not finite) with optimizer={optimizer!r}, lr={lr}. "
            "The model now contains the last weights with a finite loss. Lower lr "
            "(for example by a factor of 10) or use a smaller init_scale."
        )

    with torch.no_grad():
        probe = min(n, batch_size)
        _check_output(model(x[:probe]), probe, d_out)
    initial, _ = _evaluate(model, x, y, labels)
    if not bool(torch.isfinite(initial).all()):
        raise diverge("before the first step", initial)
    result.initial_train_loss = float(initial.mean())
    result.initial_train_loss_per_replica = initial.tolist()
    bar = tqdm(total=epochs, disable=not progress, desc="train", unit="epoch")
    try:
        model.train()
        for epoch in range(epochs):
            # One permutation per replica, shape (R, n); a single order when
            # the model has no replicas axis.
            orders = [torch.randperm(n, generator=g) for g in generators]
            order = torch.stack(orders).to(x.device)
            if replicas == 1:
                order = order[0]
            for batch, start in enumerate(range(0, n, batch_size)):
                # (batch,) or (R, batch) indices give inputs (batch, d_in) or
                # (R, batch, d_in).
                index = order[..., start : start + batch_size]
                output = model(x[index])
                per_replica = _per_replica_sq_error(output, y[index])
                per_replica = per_replica / (index.shape[-1] * d_out)
                if not bool(torch.isfinite(per_replica).all()):
                    raise diverge(
                        f"at epoch {epoch + 1}, batch {batch + 1}", per_replica
                    )
                for key, value in model.state_dict().items():
                    snapshot[key].copy_(value)
                opt.zero_grad(set_to_none=True)
                per_replica.sum().backward()
                opt.step()

            # End of epoch: losses over the whole splits, then the stopping rules.
            train_mse, train_acc = _evaluate(model, x, y, labels)
            if not bool(torch.isfinite(train_mse).all()):
                raise diverge(f"after epoch {epoch + 1}", train_mse)
            for key, value in model.state_dict().items():
                snapshot[key].copy_(value)
            test_mse, test_acc = _evaluate(
                model, data.x_test, data.y_test, data.labels_test
            )
            result.train_loss.append(float(train_mse.mean()))
            result.test_loss.append(float(test_mse.mean()))
            result.train_loss_per_replica.append(train_mse.tolist())
            if classify:
                assert train_acc is not None and test_acc is not None
                assert result.train_accuracy is not None
                assert result.test_accuracy is not None
                result.train_accuracy.append(float(train_acc.mean()))
                result.test_accuracy.append(float(test_acc.mean()))
            result.epochs_run = epoch + 1
            bar.update(1)
            bar.set_postfix(
                train=f"{result.train_loss[-1]:.3g}", test=f"{result.test_loss[-1]:.3g}"
            )
            history = [result.initial_train_loss, *result.train_loss]
            reason = _stop_reason(history, tol, patience)
            if reason is not None:
                result.stop_reason = reason
                break
        else:
            result.stop_reason = "epochs"
    finally:
        bar.close()
        model.eval()

    # Final per-replica values (the weights of the last epoch).
    result.final_train_loss_per_replica = train_mse.tolist()
    result.final_test_loss_per_replica = test_mse.tolist()
    if classify:
        assert train_acc is not None and test_acc is not None
        result.final_train_accuracy_per_replica = train_acc.tolist()
        result.final_test_accuracy_per_replica = test_acc.tolist()
    if replicas > 1:
        result.replica_spread = _parameter_spread(model, replicas)
    result.wall_time = time.perf_counter() - started
    _check_growth(result, optimizer, lr, stacklevel=2)
    _check_identical_replicas(result, stacklevel=2)
    return result
