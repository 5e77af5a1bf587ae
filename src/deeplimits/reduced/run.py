"""The reduced-model stage of a run folder: ``deeplimits reduce RUN_DIR``.

:func:`reduce_run` warm-starts a :class:`ReducedLimitModel` from the deepest
network of a finished depth sweep, trains it on the run's data set with the
run's optimiser settings, and writes

- ``RUN_DIR/reduced.json``: configuration, parameter counts, losses and
  accuracies of the network, the warm start, the trained model and the
  trained model sampled back into a network of the same depth;
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

__all__ = ["ReduceResult", "reduce_run", "SECTION_NAME"]

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
    steps: int = 8,
    epochs: int | None = None,
    lr: float | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> ReduceResult:
    """Fit and train the reduced-form model of a run and add it to the report.

    Args:
        run_dir: a folder written by :func:`deeplimits.sweep.depth_sweep` or
            ``deeplimits run``.
        basis, K, form, rank: of the model (see :class:`ReducedLimitModel`).
        steps: solver steps (resolution) of the model. The default of 8 rk4
            steps keeps training fast; raise it for weight paths with many
            oscillations (large K or a Fourier basis).

            NOTE: training at a low resolution can shape A(t) between the
            solver's sample times. In one 3-epoch run on the synthetic data
            (K = 8, 8 steps) the trained model kept its test loss, but the
            network sampled from it at depth 32 had a 6x higher test loss.
            ``reduced.json`` records this as ``resampled_network``.
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
        net, basis, K, form=form, rank=rank, steps=steps
    )
    warm = ReducedLimitModel.from_network(
        net, basis, K, form=form, rank=rank, steps=steps
    )
    options = {key: sweep.config[key] for key in _TRAIN_KEYS if key in sweep.config}
    if epochs is not None:
        options["epochs"] = epochs
    if lr is not None:
        options["lr"] = lr
    history = train(model, data, device=device, progress=progress, **options)
    resampled = model.to_resnet(depth)

    # Metrics of the four models on the test split.
    metrics: dict[str, Any] = {
        "format": "deeplimits.reduced/1",
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
            "reduced": _evaluate(model, data),
            "resampled_network": _evaluate(resampled, data),
        },
        "epochs_run": history.epochs_run,
        "stop_reason": history.stop_reason,
        "train_loss": history.train_loss,
        "test_loss": history.test_loss,
        "wall_time": time.perf_counter() - started,
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
        folder / "sections" / SECTION_NAME, _section(metrics)
    )
    try:
        from ..report import write_report
    except ModuleNotFoundError:  # pragma: no cover - report.py ships with the package
        pass
    else:
        files["report"] = write_report(folder)
    return ReduceResult(folder, model, depth, metrics, files)


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


def _section(metrics: dict[str, Any]) -> str:
    config, test = metrics["model"], metrics["test"]
    counts = metrics["parameters"]
    rows = [
        ("network", "trained ResNet, depth " + str(metrics["depth"])),
        ("warm_start", "reduced model, projected, before training"),
        ("reduced", "reduced model, trained"),
        ("resampled_network", f"trained model sampled at depth {metrics['depth']}"),
    ]
    lines = [
        "## Reduced-form limit model",
        "",
        f"A {config['form']} with {config['basis']} basis, K = {config['K']}"
        f", rank {config['rank'] or 'full'}, {config['steps']} {config['method']} "
        f"steps, warm-started from the depth-{metrics['depth']} network and "
        f"trained for {metrics['epochs_run']} epochs (stop: "
        f"{metrics['stop_reason']}).",
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
    lines += [
        "",
        "![reduced weights](plots/reduced_weights.png)",
        "",
        "![reduced training](plots/reduced_loss.png)",
        "",
    ]
    return "\n".join(lines)


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
