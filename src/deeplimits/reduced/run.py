"""The reduced-model stage of a run folder: ``deeplimits reduce RUN_DIR``.

:func:`reduce_run` warm-starts a :class:`ReducedLimitModel` from the deepest
network of a finished depth sweep, trains it on the run's data set with the
run's optimiser settings, and writes

- ``RUN_DIR/reduced.json``: configuration, parameter counts, losses and
  accuracies of the network, the warm start, the trained model at its
  training resolution and solved finely, and the trained model sampled
  back into a network deep enough to represent it (``resolution`` and
  ``sampling`` hold the two checks);
- ``RUN_DIR/weights/reduced.safetensors``: the trained model
  (:meth:`ReducedLimitModel.save`);
- ``RUN_DIR/plots/reduced_weights.png`` and ``reduced_loss.png``;
- ``RUN_DIR/sections/40-reduced.md``, then the assembled ``report.md``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .._io import atomic_save_figure, atomic_write_json, atomic_write_text
from .basis import Basis
from .model import ReducedLimitModel
from .resolution import (
    ACCURACY_TOLERANCE,
    MSE_TOLERANCE,
    choose_sampling_depth,
    compare_resolutions,
)

__all__ = ["ReduceResult", "reduce_run", "section_text", "SECTION_NAME"]

SECTION_NAME = "40-reduced.md"
_TRAIN_KEYS = ("optimizer", "lr", "epochs", "batch_size", "tol", "patience", "seed")


@dataclass
class ReduceResult:
    """Outcome of :func:`reduce_run`.

    Attributes:
        run_dir: the run folder.
        model: the trained reduced model.
        depth: depth of the network it was warm-started from.
        metrics: the content written to ``reduced.json``.
        files: paths written, keyed by role.
    """

    run_dir: Path
    model: ReducedLimitModel
    depth: int
    metrics: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


def reduce_run(
    run_dir: str | os.PathLike[str],
    *,
    basis: str | Basis = "legendre",
    K: int = 8,
    form: str = "neural-ode",
    rank: int | None = None,
    method: str | None = None,
    steps: int | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> ReduceResult:
    """Fit and train the reduced-form model of a run and add it to the report.

    After training, the model is scored at its training resolution and
    solved 8x finer (:func:`~deeplimits.reduced.resolution.compare_resolutions`).
    The section warns when the two disagree. The trained model is then
    sampled into networks of depth ``D, 2D, 4D, ...`` from the run's deepest
    depth ``D`` until one is within 1% of the finely solved model
    (:func:`~deeplimits.reduced.resolution.choose_sampling_depth`), and that
    network is scored as ``resampled_network``.

    Args:
        run_dir: a folder written by :func:`deeplimits.sweep.depth_sweep` or
            ``deeplimits run``.
        basis, K, form, rank, method: of the model (see
            :class:`ReducedLimitModel`).
        steps: solver steps (resolution) of the model during training.
            ``None`` uses :func:`~deeplimits.reduced.model.default_steps`
            (28 for K = 8).
        epochs, lr: override the run's training settings.
        device: where to train (``None``: CPU).
        progress: show the training progress bar.

    Returns:
        A :class:`ReduceResult`.

    Raises:
        FileNotFoundError: if ``run_dir`` is not a run folder.
        ValueError: if the run has no finished depth, or its data set has
            different input and output sizes.
    """
    from ..sweep import load_sweep
    from ..training import train

    folder = Path(run_dir)
    sweep = load_sweep(folder, device=device)
    if not sweep.depths:
        raise ValueError(
            f"run folder {str(folder)!r} has no finished depth to reduce. Finish "
            "the sweep first (deeplimits run resumes it)."
        )
    data = sweep.dataset
    assert data is not None
    if data.x_train.shape[1] != data.y_train.shape[1]:
        raise ValueError(
            f"the reduced model maps R^d to R^d, but this run's data set has "
            f"inputs of size {data.x_train.shape[1]} and targets of size "
            f"{data.y_train.shape[1]}."
        )
    depth = max(sweep.depths)
    net = sweep.networks[depth]
    if net.has_replicas:
        net = net.replica(0)
    started = time.perf_counter()

    # Warm start, then training with the run's own settings.
    model = ReducedLimitModel.from_network(
        net, basis, K, form=form, rank=rank, method=method, steps=steps
    )
    warm = ReducedLimitModel.from_network(
        net, basis, K, form=form, rank=rank, method=method, steps=steps
    )
    options = {key: sweep.config[key] for key in _TRAIN_KEYS if key in sweep.config}
    if epochs is not None:
        options["epochs"] = epochs
    if lr is not None:
        options["lr"] = lr
    history = train(model, data, device=device, progress=progress, **options)
    trained = time.perf_counter()

    # The trained model at its training resolution and solved finely.
    x, y, labels = _test_split(model, data)
    check = compare_resolutions(model, x, y, labels)
    checked = time.perf_counter()

    # The network sampled at a depth that represents the model.
    sampling: dict[str, Any]
    if model.form == "sde":
        sampling = {"depth": depth, "threshold": None, "met": None, "table": []}
    else:
        sampling = choose_sampling_depth(
            model, x, check.fine_output, min_depth=depth, y=y, labels=labels
        )
    resampled = model.to_resnet(sampling["depth"])
    finished = time.perf_counter()

    metrics: dict[str, Any] = {
        "format": "deeplimits.reduced/2",
        "depth": depth,
        "model": model.config(),
        "training": options,
        "parameters": {
            "network": sum(p.numel() for p in net.parameters()),
            "reduced": model.num_parameters(),
        },
        "test": {
            "network": _evaluate(net, data),
            "warm_start": _evaluate(warm, data),
            "reduced": check.coarse,
            "reduced_fine": check.fine,
            "resampled_network": _evaluate(resampled, data),
        },
        "resolution": check.to_json(),
        "sampling": sampling,
        "epochs_run": history.epochs_run,
        "stop_reason": history.stop_reason,
        "train_loss": history.train_loss,
        "test_loss": history.test_loss,
        "wall_time": finished - started,
        "timings": {
            "training": trained - started,
            "fine_evaluation": checked - trained,
            "sampling": finished - checked,
        },
    }

    # Files: metrics, weights, plots, report section and report.
    files = {
        "metrics": atomic_write_json(folder / "reduced.json", _finite(metrics)),
    }
    weights = folder / "weights" / "reduced.safetensors"
    model.save(weights)
    files["weights"] = weights
    files["weights_plot"] = _plot_weights(folder, net, warm, model)
    files["loss_plot"] = _plot_loss(folder, metrics)
    files["section"] = atomic_write_text(
        folder / "sections" / SECTION_NAME, section_text(metrics)
    )
    try:
        from ..report import write_report
    except ModuleNotFoundError:  # pragma: no cover - report.py ships with the package
        pass
    else:
        files["report"] = write_report(folder)
    return ReduceResult(folder, model, depth, metrics, files)


def _test_split(
    model: ReducedLimitModel, data: Any
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The test inputs, targets and labels in the model's dtype and device."""
    x = data.x_test.to(dtype=model.dtype, device=model.device)
    y = data.y_test.to(dtype=model.dtype, device=model.device)
    labels = data.labels_test
    if labels is not None:
        labels = labels.to(model.device)
    return x, y, labels


def _evaluate(model: nn.Module, data: Any) -> dict[str, float | None]:
    """Test mean squared error and accuracy, computed as deeplimits.train does."""
    reference = next(model.parameters())
    x = data.x_test.to(dtype=reference.dtype, device=reference.device)
    y = data.y_test.to(dtype=reference.dtype, device=reference.device)
    with torch.no_grad():
        output = model(x)
    mse = float((output - y).square().mean())
    accuracy = None
    if data.labels_test is not None:
        labels = data.labels_test.to(reference.device)
        accuracy = float((output.argmax(dim=1) == labels).double().mean())
    return {"mse": mse, "accuracy": accuracy}


def _finite(value: Any) -> Any:
    """Replace NaN and infinities by None so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _format(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if percent else f"{value:.3g}"


def _solver_text(solver: dict[str, Any]) -> str:
    if "steps" in solver:
        return f"{solver['steps']} {solver['method']} steps"
    return f"{solver['method']} at rtol {solver['rtol']:.0e}"


def section_text(metrics: dict[str, Any]) -> str:
    """Build the report section ``40-reduced.md`` from ``reduced.json``."""
    config, test = metrics["model"], metrics["test"]
    counts, depth = metrics["parameters"], metrics["depth"]
    resolution, sampling = metrics["resolution"], metrics["sampling"]
    coarse = _solver_text(resolution["training_solver"])
    fine = _solver_text(resolution["fine_solver"])
    rows = [
        ("network", f"trained ResNet, depth {depth}"),
        ("warm_start", f"reduced model, projected, before training ({coarse})"),
        ("reduced", f"reduced model, trained, at its training resolution ({coarse})"),
        ("reduced_fine", f"reduced model, trained, solved finely ({fine})"),
        ("resampled_network", f"trained model sampled at depth {sampling['depth']}"),
    ]
    lines = [
        "## Reduced-form limit model",
        "",
        f"A {config['form']} with {config['basis']} basis, K = {config['K']}"
        f", rank {config['rank'] or 'full'}, trained with {coarse}, "
        f"warm-started from the depth-{depth} network and trained for "
        f"{metrics['epochs_run']} epochs (stop: {metrics['stop_reason']}).",
        "",
        f"Parameters: {counts['reduced']} (reduced) against {counts['network']} "
        "(network).",
        "",
        "| model | test MSE | test accuracy |",
        "|---|---|---|",
    ]
    for key, label in rows:
        entry = test[key]
        accuracy = _format(entry["accuracy"], percent=True)
        lines.append(f"| {label} | {_format(entry['mse'])} | {accuracy} |")
    lines += ["", *_resolution_lines(metrics, coarse, fine), ""]
    lines += _sampling_lines(metrics)
    lines += [
        "",
        "![reduced weights](plots/reduced_weights.png)",
        "",
        "![reduced training](plots/reduced_loss.png)",
        "",
    ]
    return "\n".join(lines)


def _scores_text(entry: dict[str, Any]) -> str:
    if entry["accuracy"] is None:
        return f"test MSE {_format(entry['mse'])}"
    accuracy = _format(entry["accuracy"], percent=True)
    return f"{accuracy} (test MSE {_format(entry['mse'])})"


def _resolution_lines(metrics: dict[str, Any], coarse: str, fine: str) -> list[str]:
    test, resolution = metrics["test"], metrics["resolution"]
    tolerance = (
        f"{100 * MSE_TOLERANCE:.0f}% in test MSE and "
        f"{100 * ACCURACY_TOLERANCE:.0f} point in accuracy"
    )
    noise = ""
    if metrics["model"]["form"] == "sde":
        noise = " Both scores of the SDE form contain Monte Carlo noise."
    if resolution["agrees"]:
        return [
            f"The trained model scores the same at its training resolution "
            f"({coarse}) and solved finely ({fine}), within {tolerance}, so "
            f"these numbers describe the continuous-time model.{noise}"
        ]
    return [
        f"> **Warning.** The model depends on its solver resolution; its "
        f"continuous-time accuracy is {_scores_text(test['reduced_fine'])}, "
        f"solved with {fine}, against {_scores_text(test['reduced'])} with "
        f"the {coarse} it was trained with (allowed difference: {tolerance}). "
        f"The optimiser has fitted the solver's errors. Train with more "
        f"steps, for example `reduce_run(run_dir, steps=...)`.{noise}"
    ]


def _sampling_lines(metrics: dict[str, Any]) -> list[str]:
    sampling = metrics["sampling"]
    depth = sampling["depth"]
    if not sampling["table"]:
        return [
            f"The sampled network is one random draw of depth {depth} from the "
            "SDE: its weights contain one Brownian path, so its scores vary "
            "from draw to draw."
        ]
    threshold = _format(sampling["threshold"])
    lines = [
        "### Sampled network",
        "",
        "`to_resnet(L)` sets the weights of layer k to A(k/L), b(k/L) and "
        "delta_k = g(k/L)/L, so the network is the explicit Euler scheme of the "
        "ODE with step 1/L, and its outputs approach the model's at rate 1/L. "
        "The distance below is ||net(x) - H(1)|| / ||H(1)|| over the test "
        "inputs, with H(1) the finely solved model. A network whose distance "
        "is large is a coarser model, and its scores say little about the "
        "reduced model.",
        "",
        "| depth | distance to the model | test MSE | test accuracy |",
        "|---|---|---|---|",
    ]
    for row in sampling["table"]:
        accuracy = _format(row.get("accuracy"), percent=True)
        lines.append(
            f"| {row['depth']} | {_format(row['distance'])} | "
            f"{_format(row.get('mse'))} | {accuracy} |"
        )
    lines.append("")
    if sampling["met"]:
        lines.append(
            f"The sampled network of the first table has depth {depth}: the "
            f"shallowest depth from the run's deepest ({metrics['depth']}) "
            f"doubling up whose distance is at most {threshold}."
        )
    else:
        lines.append(
            f"> **Warning.** No depth up to {depth} comes within {threshold} "
            f"of the model, so the sampled network (depth {depth}) does not "
            "represent it."
        )
    return lines


def _figure(columns: int) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2 * columns, 3.2), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(1, columns)


def _norms(values: Tensor) -> Any:
    return values.detach().double().flatten(1).norm(dim=1).cpu().numpy()


def _plot_weights(
    folder: Path, net: Any, warm: ReducedLimitModel, model: ReducedLimitModel
) -> Path:
    """Frobenius norms of A(t), b(t) against the network's projected weights."""
    L = net.depth
    layer_t = torch.arange(L, dtype=torch.float64) / L
    delta = net.effective_delta().detach().double()
    A_net, b_net = net.A.detach().double(), net.b.detach().double()
    if not warm.field.has_gain and warm.form == "neural-ode":
        A_net = L * delta[:, None, None] * A_net
        b_net = L * delta[:, None] * b_net
    fine = torch.linspace(0, 1, 201, dtype=torch.float64)
    figure, axes = _figure(2)
    for axis, index, label in ((axes[0], 0, "A"), (axes[1], 1, "b")):
        axis.plot(
            layer_t.numpy(), _norms((A_net, b_net)[index]), ".", ms=3, label="network"
        )
        for name, reduced in (("warm start", warm), ("trained", model)):
            with torch.no_grad():
                path = reduced.weights(fine.to(reduced.dtype).to(reduced.device))
            axis.plot(fine.numpy(), _norms(path[index]), label=name)
        axis.set_xlabel("t = k / L")
        axis.set_ylabel(f"Frobenius norm of {label}")
        axis.legend(fontsize=8)
    return atomic_save_figure(figure, folder / "plots" / "reduced_weights.png", dpi=110)


def _plot_loss(folder: Path, metrics: dict[str, Any]) -> Path:
    figure, axis = _figure(1)
    epochs = range(1, len(metrics["train_loss"]) + 1)
    axis.semilogy(epochs, metrics["train_loss"], label="reduced, train")
    axis.semilogy(epochs, metrics["test_loss"], label="reduced, test")
    axis.axhline(
        metrics["test"]["network"]["mse"],
        color="black",
        linestyle="--",
        label=f"network depth {metrics['depth']}, test",
    )
    axis.set_xlabel("epoch")
    axis.set_ylabel("mean squared error")
    axis.legend(fontsize=8)
    return atomic_save_figure(figure, folder / "plots" / "reduced_loss.png", dpi=110)
