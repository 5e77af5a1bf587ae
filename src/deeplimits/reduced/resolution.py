r"""Checks that a trained reduced model is a continuous-time model.

A model trained with a fixed-step solver can learn the solver's errors: its
test scores then hold only at the training resolution. Two checks expose
this.

- :func:`compare_resolutions` scores the model at its training resolution
  and at a much finer one (:meth:`ReducedLimitModel.refined`, by default
  rk4 with 8x the steps) and states whether the two agree.
- :func:`choose_sampling_depth` samples the model into networks of growing
  depth (:meth:`ReducedLimitModel.to_resnet`). The depth-:math:`L` network
  is the explicit Euler scheme of the ODE with step :math:`1/L`, so its
  output approaches the finely solved model at rate :math:`1/L`. The
  function returns the first depth whose relative output distance is below
  a threshold, and the distances on the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import check_int, check_positive_float
from .model import FIXED_STEP_METHODS, ReducedLimitModel

__all__ = [
    "FINE_FACTOR",
    "MSE_TOLERANCE",
    "ACCURACY_TOLERANCE",
    "DISTANCE_THRESHOLD",
    "MAX_SAMPLED_DEPTH",
    "compare_resolutions",
    "choose_sampling_depth",
    "score",
    "relative_distance",
]

# The fine evaluation takes FINE_FACTOR times the training steps.
FINE_FACTOR = 8
# Training and fine evaluation agree when their test MSEs differ by at most
# 5% (relative) and their accuracies by at most 1 percentage point.
MSE_TOLERANCE = 0.05
ACCURACY_TOLERANCE = 0.01
# A sampled network represents the model when its outputs are within 1%
# (relative Frobenius distance over the inputs) of the finely solved model.
DISTANCE_THRESHOLD = 1e-2
MAX_SAMPLED_DEPTH = 4096


def score(
    model: nn.Module, x: Tensor, y: Tensor, labels: Tensor | None
) -> dict[str, Any]:
    """Return the outputs, mean squared error and accuracy of ``model`` on ``x``.

    The accuracy is the fraction of rows whose ``argmax`` is the label, as in
    :func:`deeplimits.train`, or ``None`` without labels.
    """
    with torch.no_grad():
        output = model(x)
    mse = float((output - y).square().mean())
    accuracy = None
    if labels is not None:
        accuracy = float((output.argmax(dim=1) == labels).double().mean())
    return {"output": output, "mse": mse, "accuracy": accuracy}


def relative_distance(output: Tensor, reference: Tensor) -> float:
    r"""Return :math:`\|output - reference\|_F / \|reference\|_F`."""
    return float((output - reference).norm() / reference.norm())


@dataclass
class ResolutionCheck:
    """Scores of a model at its training resolution and at a fine one.

    Attributes:
        coarse, fine: ``{"mse", "accuracy"}`` at the training and the fine
            resolution.
        coarse_solver, fine_solver: ``{"method", "steps"}`` (and ``rtol``
            for adaptive methods).
        output_distance: relative Frobenius distance between the outputs.
        mse_relative_difference: ``|mse_coarse - mse_fine| / mse_fine``.
        accuracy_difference: ``|acc_coarse - acc_fine|`` (fractions), or
            ``None`` without labels.
        agrees: both differences are within :data:`MSE_TOLERANCE` and
            :data:`ACCURACY_TOLERANCE`.
        fine_model: the finely solved copy of the model.
        fine_output: its outputs on the inputs.
    """

    coarse: dict[str, float | None]
    fine: dict[str, float | None]
    coarse_solver: dict[str, Any]
    fine_solver: dict[str, Any]
    output_distance: float
    mse_relative_difference: float
    accuracy_difference: float | None
    agrees: bool
    fine_model: ReducedLimitModel
    fine_output: Tensor

    def to_json(self) -> dict[str, Any]:
        """Return the fields that go into ``reduced.json``."""
        return {
            "training_solver": self.coarse_solver,
            "fine_solver": self.fine_solver,
            "output_distance": self.output_distance,
            "mse_relative_difference": self.mse_relative_difference,
            "accuracy_difference": self.accuracy_difference,
            "mse_tolerance": MSE_TOLERANCE,
            "accuracy_tolerance": ACCURACY_TOLERANCE,
            "agrees": self.agrees,
        }


def _solver(model: ReducedLimitModel) -> dict[str, Any]:
    solver: dict[str, Any] = {"method": model.method, "steps": model.steps}
    if model.method not in FIXED_STEP_METHODS:
        solver = {"method": model.method, "rtol": model.rtol, "atol": model.atol}
    return solver


def compare_resolutions(
    model: ReducedLimitModel,
    x: Tensor,
    y: Tensor,
    labels: Tensor | None = None,
    *,
    factor: int = FINE_FACTOR,
) -> ResolutionCheck:
    """Score ``model`` at its training resolution and ``factor`` times finer.

    Args:
        model: a trained model.
        x, y: inputs and targets, shapes ``(n, d)``, in the model's dtype.
        labels: class labels ``(n,)`` for the accuracy, or ``None``.
        factor: resolution factor of the fine solve
            (:meth:`ReducedLimitModel.refined`).

    Returns:
        A :class:`ResolutionCheck`. For the SDE form both scores contain
        Monte Carlo noise, so a disagreement can come from the noise.
    """
    check_int("factor", factor, minimum=1)
    fine_model = model.refined(factor)
    coarse = score(model, x, y, labels)
    fine = score(fine_model, x, y, labels)
    mse_difference = abs(coarse["mse"] - fine["mse"]) / max(fine["mse"], 1e-300)
    accuracy_difference = None
    agrees = mse_difference <= MSE_TOLERANCE
    if coarse["accuracy"] is not None and fine["accuracy"] is not None:
        accuracy_difference = abs(coarse["accuracy"] - fine["accuracy"])
        agrees = agrees and accuracy_difference <= ACCURACY_TOLERANCE
    return ResolutionCheck(
        coarse={"mse": coarse["mse"], "accuracy": coarse["accuracy"]},
        fine={"mse": fine["mse"], "accuracy": fine["accuracy"]},
        coarse_solver=_solver(model),
        fine_solver=_solver(fine_model),
        output_distance=relative_distance(coarse["output"], fine["output"]),
        mse_relative_difference=mse_difference,
        accuracy_difference=accuracy_difference,
        agrees=agrees,
        fine_model=fine_model,
        fine_output=fine["output"],
    )


def choose_sampling_depth(
    model: ReducedLimitModel,
    x: Tensor,
    reference: Tensor,
    *,
    min_depth: int,
    threshold: float = DISTANCE_THRESHOLD,
    max_depth: int = MAX_SAMPLED_DEPTH,
    min_rows: int = 4,
    y: Tensor | None = None,
    labels: Tensor | None = None,
) -> dict[str, Any]:
    r"""Find the depth at which ``model.to_resnet`` represents the model.

    Tries :math:`L = 2^i L_0` for :math:`L_0` = ``min_depth`` up to
    ``max_depth``, and returns the first :math:`L` whose network output is
    within ``threshold`` of ``reference`` in relative Frobenius distance.
    It keeps doubling past that depth until the table has ``min_rows`` rows,
    so the table shows the convergence (the distance roughly halves per
    doubling, the first order of the Euler scheme).

    Args:
        model: an ODE-form model.
        x: inputs ``(n, d)``.
        reference: the finely solved model's outputs on ``x``.
        min_depth: the shallowest depth to try (the run's deepest network).
        threshold: the relative distance that counts as agreement.
        max_depth: the deepest network tried.
        min_rows: rows of the table, if ``max_depth`` allows.
        y, labels: targets and labels to score each network, or ``None``.

    Returns:
        ``{"depth", "threshold", "met", "table"}``: the chosen depth (the
        deepest tried when none meets the threshold, then ``met`` is
        ``False``) and one row ``{"depth", "distance", "mse", "accuracy"}``
        per depth tried.

    Raises:
        ValueError: for the SDE form, whose networks are random draws, or
            invalid bounds.
    """
    if model.form == "sde":
        raise ValueError(
            "choose_sampling_depth needs an ODE form; an SDE model samples a "
            "random network at each call, which does not converge to the "
            "model's mean output."
        )
    check_int("min_depth", min_depth, minimum=1)
    check_int("max_depth", max_depth, minimum=1)
    check_positive_float("threshold", threshold)
    table: list[dict[str, Any]] = []
    chosen = None
    depth = min_depth
    while True:
        net = model.to_resnet(depth)
        with torch.no_grad():
            output = net(x)
        row: dict[str, Any] = {
            "depth": depth,
            "distance": relative_distance(output, reference),
        }
        if y is not None:
            row["mse"] = float((output - y).square().mean())
            row["accuracy"] = None
            if labels is not None:
                hits = output.argmax(dim=1) == labels
                row["accuracy"] = float(hits.double().mean())
        table.append(row)
        if chosen is None and row["distance"] <= threshold:
            chosen = depth
        done = chosen is not None and len(table) >= min_rows
        if done or 2 * depth > max(max_depth, min_depth):
            break
        depth *= 2
    met = chosen is not None
    if chosen is None:
        chosen = table[-1]["depth"]
    return {"depth": chosen, "threshold": threshold, "met": met, "table": table}
