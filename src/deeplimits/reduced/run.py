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

import json
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
# Reduced form for each limit kind of the scaling verdict (scaling.json). Other
# kinds ("neural-ode", "relu-ode", "none") get the neural ODE.
VERDICT_FORMS = {"linear-ode": "linear-ode", "ito-sde": "sde"}


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
    form: str | None = None,
    rank: int | None = None,
    method: str | None = None,
    steps: int | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> ReduceResult:
    r"""Fit and train the reduced-form model of a run and add it to the report.

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
        basis, K, rank, method: of the model (see
            :class:`ReducedLimitModel`).
        form: ``"neural-ode"``, ``"linear-ode"`` or ``"sde"``. ``None``
            (default) follows the limit of the run's scaling verdict in
            ``scaling.json``: ``"linear-ode"`` for a linear-ODE limit,
            ``"sde"`` for an Ito-SDE limit, and ``"neural-ode"`` otherwise
            or when there is no verdict. When the activation has no linear
            limit (no :math:`\sigma'(0)`, as for relu) a chosen linear form
            falls back to the neural ODE. The section states the reason.
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
    if form is None:
        form, form_reason = _form_from_verdict(folder)
        try:
            warm = ReducedLimitModel.from_network(
                net, basis, K, form=form, rank=rank, method=method, steps=steps
            )
        except ValueError as error:
            if form == "neural-ode":
                raise
            form_reason += (
                f" That form does not apply to this network ({error}), so the "
                "neural-ode form is used instead."
            )
            form = "neural-ode"
            warm = ReducedLimitModel.from_network(
                net, basis, K, form=form, rank=rank, method=method, steps=steps
            )
    else:
        form_reason = f"set by the caller (form={form!r})."
        warm = ReducedLimitModel.from_network(
            net, basis, K, form=form, rank=rank, method=method, steps=steps
        )
    model = ReducedLimitModel.from_network(
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
        "form_reason": form_reason,
        "network_epochs_run": sweep.metrics.get(depth, {}).get("epochs_run"),
        "parameters": {
            "network": sum(p.numel() for p in net.parameters()),
            "reduced": model.num_parameters(),
        },
        "test": {
            "network": _evaluate(net, data),
            "warm_start": _evaluate(warm, data),
            "warm_start_train": _evaluate(warm, data, split="train"),
            "reduced": check.coarse,
            "reduced_fine": check.fine,
            "resampled_network": _evaluate(resampled, data),
        },
        "resolution": check.to_json(),
        "gain": _gain_summary(model),
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


def _form_from_verdict(folder: Path) -> tuple[str, str]:
    """Choose the form from ``scaling.json``; return it and the reason."""
    path = folder / "scaling.json"
    if not path.is_file():
        return "neural-ode", (
            "the default: the run has no scaling verdict (scaling.json) to "
            "choose a form from."
        )
    try:
        kind = json.loads(path.read_text())["verdict"]["limit"]["kind"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return "neural-ode", (
            f"the default: scaling.json has no readable limit kind ({error!r})."
        )
    if kind in VERDICT_FORMS:
        return VERDICT_FORMS[kind], (
            f"chosen to match the scaling verdict, whose limit is `{kind}`."
        )
    return "neural-ode", (
        f"the default: the scaling verdict's limit is `{kind}`, which has no "
        "reduced form of its own."
    )


def _evaluate(
    model: nn.Module, data: Any, split: str = "test"
) -> dict[str, float | None]:
    """Mean squared error and accuracy on a split, computed as deeplimits.train."""
    reference = next(model.parameters())
    x = getattr(data, f"x_{split}").to(dtype=reference.dtype, device=reference.device)
    y = getattr(data, f"y_{split}").to(dtype=reference.dtype, device=reference.device)
    with torch.no_grad():
        output = model(x)
    mse = float((output - y).square().mean())
    accuracy = None
    true_labels = getattr(data, f"labels_{split}")
    if true_labels is not None:
        labels = true_labels.to(reference.device)
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
        f"Form: {config['form']}, {metrics.get('form_reason', 'set by the caller.')}",
        "",
        _epochs_sentence(metrics),
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
    gain_lines = _gain_lines(metrics.get("gain"))
    if gain_lines:
        lines += ["", *gain_lines]
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


def _epochs_sentence(metrics: dict[str, Any]) -> str:
    depth, reduced_epochs = metrics["depth"], metrics["epochs_run"]
    network_epochs = metrics.get("network_epochs_run")
    network_text = (
        "for the sweep's epochs"
        if network_epochs is None
        else f"for {network_epochs} epochs"
    )
    total = (
        ""
        if network_epochs is None
        else f", {network_epochs + reduced_epochs} epochs in all"
    )
    return (
        f"The depth-{depth} network was trained {network_text}. The reduced "
        f"model starts from that trained network (the warm-start row is its "
        f"projection onto the basis) and was then trained for {reduced_epochs} "
        f"more epochs{total}. The two trained rows therefore differ in training "
        "time as well as in model class."
    )


# Times within this distance of t = 0 or t = 1 count as the ends of [0, 1]
# when the weight norm there is compared with the norm in the middle.
_EDGE_WIDTH = 0.1


def _gain_summary(model: ReducedLimitModel) -> dict[str, float] | None:
    """Compare |g(t)| and ||A(t)|| near the ends of [0, 1] with the middle."""
    if not model.field.has_gain:
        return None
    ts = torch.linspace(0, 1, 201, dtype=torch.float64)
    with torch.no_grad():
        gains = torch.stack(
            [model.field.gain(t.to(model.dtype)) for t in ts.to(model.device)]
        )
        A, _ = model.weights(ts.to(dtype=model.dtype, device=model.device))
    gains = gains.detach().double().abs().flatten().cpu()
    norms = torch.as_tensor(_norms(A))
    edge = (ts <= _EDGE_WIDTH) | (ts >= 1 - _EDGE_WIDTH)
    return {
        "gain_min_edges": float(gains[edge].min()),
        "gain_median_middle": float(gains[~edge].median()),
        "A_norm_max_edges": float(norms[edge].max()),
        "A_norm_median_middle": float(norms[~edge].median()),
    }


def _gain_lines(gain: dict[str, float] | None) -> list[str]:
    if gain is None:
        return []
    lines = [
        "The neural ODE has a gain, dH/dt = g(t) sigma(A(t) H + b(t)), so only "
        "g(t) A(t) and g(t) b(t) set the step; the weights plot shows |g(t)| "
        "next to ||A(t)||."
    ]
    edges_large = gain["A_norm_max_edges"] > 2 * gain["A_norm_median_middle"]
    gain_small = gain["gain_min_edges"] < 0.5 * gain["gain_median_middle"]
    if edges_large and gain_small:
        lines[0] += (
            f" Within {_EDGE_WIDTH} of t = 0 or t = 1, ||A(t)|| reaches "
            f"{_format(gain['A_norm_max_edges'])} against a median of "
            f"{_format(gain['A_norm_median_middle'])} in the middle, where |g(t)| "
            f"falls to {_format(gain['gain_min_edges'])} (median "
            f"{_format(gain['gain_median_middle'])} in the middle): large A(t) "
            "there is scaled down by the small gain."
        )
    return lines


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
    """Plot the norms of A(t), b(t) (and g(t)) against the network's weights."""
    L = net.depth
    layer_t = torch.arange(L, dtype=torch.float64) / L
    delta = net.effective_delta().detach().double()
    A_net, b_net = net.A.detach().double(), net.b.detach().double()
    if not warm.field.has_gain and warm.form == "neural-ode":
        A_net = L * delta[:, None, None] * A_net
        b_net = L * delta[:, None] * b_net
    fine = torch.linspace(0, 1, 201, dtype=torch.float64)
    has_gain = model.field.has_gain
    figure, axes = _figure(3 if has_gain else 2)
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
        axis.set_title(f"{label}(t): network and reduced model")
        axis.legend(fontsize=8)
    if has_gain:
        axis = axes[2]
        axis.plot(layer_t.numpy(), (L * delta).numpy(), ".", ms=3, label="network")
        for name, reduced in (("warm start", warm), ("trained", model)):
            with torch.no_grad():
                gains = [
                    float(reduced.field.gain(t.to(reduced.dtype).to(reduced.device)))
                    for t in fine
                ]
            axis.plot(fine.numpy(), gains, label=name)
        axis.set_xlabel("t = k / L")
        axis.set_ylabel("g(t), network: L delta_k")
        axis.set_title("gain g(t)")
        axis.legend(fontsize=8)
    figure.suptitle(f"Reduced model ({model.form}) and the depth-{L} network")
    return atomic_save_figure(figure, folder / "plots" / "reduced_weights.png", dpi=110)


def _plot_loss(folder: Path, metrics: dict[str, Any]) -> Path:
    """Plot the training curves, with the warm start as epoch 0."""
    figure, axis = _figure(1)
    epochs = range(len(metrics["train_loss"]) + 1)
    train_loss = [metrics["test"]["warm_start_train"]["mse"], *metrics["train_loss"]]
    test_loss = [metrics["test"]["warm_start"]["mse"], *metrics["test_loss"]]
    axis.semilogy(epochs, train_loss, marker=".", label="reduced, train")
    axis.semilogy(epochs, test_loss, marker=".", label="reduced, test")
    axis.axhline(
        metrics["test"]["network"]["mse"],
        color="black",
        linestyle="--",
        label=f"network depth {metrics['depth']}, test",
    )
    axis.set_xlabel("epoch (0: warm start)")
    axis.set_ylabel("mean squared error")
    axis.set_title("Reduced model training")
    axis.legend(fontsize=8)
    return atomic_save_figure(figure, folder / "plots" / "reduced_loss.png", dpi=110)
