"""Run reports: training plots, the training section and the assembled report.

A run folder's report is ``report.md``: a title, then every file of
``sections/`` in name order (``10-training.md``, ``20-scaling.md``, ...).
Each stage writes its own section and then calls :func:`write_report`.

Plots are drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas, so
they never open a window and never change the caller's pyplot backend.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deeplimits._io import atomic_save_figure, atomic_write_text
from deeplimits.network import ResNet, effective_weights

__all__ = [
    "plot_final_loss",
    "plot_weights",
    "write_report",
    "write_training_section",
]

TRAINING_SECTION = "10-training.md"


def _new_figure(width: float, height: float, columns: int = 1) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, columns)
    return figure, axes


def _replica_stats(values: list[float | None]) -> tuple[float, float, float]:
    """Return mean, min and max of the finite values (NaN when there are none)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return math.nan, math.nan, math.nan
    return float(np.mean(finite)), min(finite), max(finite)


def _plain_log_ticks(axes: Any, depths: list[int]) -> None:
    """Label log-scale axes with plain numbers, with one depth tick per depth.

    Matplotlib's default log formatter writes labels such as ``4x10^0`` and, on
    a y range within one decade, ``5.15x10^-2`` on minor ticks. Minor ticks on
    the y axis are labelled only when the range spans less than one decade,
    because then there may be no major tick to label.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    def plain(value: float, _position: int | None = None) -> str:
        return f"{value:.3g}"

    axes.xaxis.set_major_locator(FixedLocator(depths))
    axes.xaxis.set_major_formatter(FuncFormatter(plain))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.yaxis.set_major_formatter(FuncFormatter(plain))
    low, high = axes.get_ylim()
    narrow = low > 0 and high / low < 10.0
    axes.yaxis.set_minor_formatter(FuncFormatter(plain) if narrow else NullFormatter())


def plot_final_loss(
    metrics: Mapping[int, Mapping[str, Any]], path: str | os.PathLike[str]
) -> Path:
    """Plot the final training and test loss against depth on log-log axes.

    Markers are the mean over replicas; error bars span the smallest to the
    largest replica.

    Args:
        metrics: per-depth records as in ``metrics.json`` (keys ``depth``,
            ``final_train_loss`` and ``final_test_loss``, lists per replica).
        path: PNG file to write.

    The depth axis has one tick per depth, and both axes label their ticks as
    plain numbers (``0.05``, ``64``) rather than powers of ten.

    Returns:
        The path written.
    """
    depths = sorted(int(depth) for depth in metrics)
    if not depths:
        raise ValueError("metrics must hold at least one depth to plot, got none.")
    figure, axes = _new_figure(6.0, 4.2)
    for key, label, marker in (
        ("final_train_loss", "train", "o"),
        ("final_test_loss", "test", "s"),
    ):
        stats = [_replica_stats(metrics[depth][key]) for depth in depths]
        mean = np.array([s[0] for s in stats])
        below = mean - np.array([s[1] for s in stats])
        above = np.array([s[2] for s in stats]) - mean
        axes.errorbar(
            depths, mean, yerr=[below, above], marker=marker, capsize=3, label=label
        )
    replicas = metrics[depths[0]].get("replicas", 1)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("depth L (number of residual layers)")
    axes.set_ylabel("final mean squared error (target units squared)")
    axes.set_title(f"Final loss against depth ({replicas} replicas, min-max bars)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    _plain_log_ticks(axes, depths)
    return atomic_save_figure(figure, path, dpi=110)


def plot_weights(
    net: ResNet,
    path: str | os.PathLike[str],
    *,
    entries: int = 4,
    replica: int = 0,
) -> Path:
    r"""Plot entries of :math:`A_k` and the norms of :math:`A_k`, :math:`\delta_k A_k`.

    Both panels use the layer time :math:`t_k = k/L` as x axis. The left
    panel shows the entries :math:`(A_k)_{ij}` for the first ``entries`` pairs
    of ``(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), ...``; the right panel the
    Frobenius norms :math:`\lVert A_k \rVert` and
    :math:`\lVert \delta_k A_k \rVert` on a log scale.

    Args:
        net: the network.
        path: PNG file to write.
        entries: number of matrix entries drawn, at least 1.
        replica: which replica to draw, for a network with replicas.

    Returns:
        The path written.
    """
    single = net.replica(replica) if net.has_replicas else net
    with torch.no_grad():
        A = single.A.detach().double().cpu()
        delta_A, _ = effective_weights(single)
        delta_A = delta_A.detach().double().cpu()
    depth, dim = single.depth, single.dim
    times = np.arange(depth) / depth
    pairs = [(i, j) for i in range(dim) for j in range(dim)]
    pairs.sort(key=lambda ij: (max(ij), ij))
    figure, (left, right) = _new_figure(11.0, 4.2, columns=2)

    for i, j in pairs[: max(1, entries)]:
        left.plot(times, A[:, i, j].numpy(), marker=".", label=f"$(A_k)_{{{i}{j}}}$")
    left.set_xlabel("layer time t = k/L (dimensionless)")
    left.set_ylabel("weight entry (dimensionless)")
    left.set_title(f"Entries of A_k, depth L = {depth}")
    left.grid(True, alpha=0.3)
    left.legend(fontsize="small")

    right.plot(times, torch.linalg.matrix_norm(A).numpy(), label="$\\|A_k\\|_F$")
    right.plot(
        times,
        torch.linalg.matrix_norm(delta_A).numpy(),
        label="$\\|\\delta_k A_k\\|_F$",
    )
    right.set_yscale("log")
    right.set_xlabel("layer time t = k/L (dimensionless)")
    right.set_ylabel("Frobenius norm (dimensionless)")
    right.set_title(f"Weight norms, depth L = {depth}")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize="small")
    if net.has_replicas:
        figure.suptitle(f"replica {replica} of {net.replicas}")
    return atomic_save_figure(figure, path, dpi=110)


def _format_loss(values: list[float | None]) -> str:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "n/a"
    if len(finite) == 1:
        return f"{finite[0]:.3e}"
    return f"{np.mean(finite):.3e} ± {np.std(finite, ddof=1):.1e}"


def _training_table(
    metrics: Mapping[int, Mapping[str, Any]],
    missing: Mapping[int, Path] | None = None,
) -> list[str]:
    """Return the rows of the training table; depths in ``missing`` are marked."""
    missing = missing or {}
    classify = any(m.get("final_test_accuracy") for m in metrics.values())
    spread = any(m.get("replica_spread_A") is not None for m in metrics.values())
    header = "| depth L | replicas | epochs | stop | train loss | test loss |"
    rule = "|---:|---:|---:|---|---|---|"
    if classify:
        header += " test accuracy |"
        rule += "---|"
    if spread:
        header += " replica spread of A |"
        rule += "---:|"
    header += " mean delta_k | wall time (s) |"
    rule += "---:|---:|"
    lines = [header, rule]
    for depth in sorted(metrics):
        record = metrics[depth]
        delta = record.get("effective_delta_mean") or []
        stop = record["stop_reason"]
        if record.get("diverged"):
            stop += ", diverged: lower the learning rate"
        if depth in missing:
            stop += ", weight file missing: not analysed"
        row = (
            f"| {depth} | {record['replicas']} | {record['epochs_run']} | "
            f"{stop} | {_format_loss(record['final_train_loss'])} | "
            f"{_format_loss(record['final_test_loss'])} |"
        )
        if classify:
            accuracy = record.get("final_test_accuracy") or []
            row += f" {100 * float(np.mean(accuracy)):.1f}% |" if accuracy else " n/a |"
        if spread:
            value = record.get("replica_spread_A")
            row += f" {value:.2e} |" if value is not None else " n/a |"
        row += f" {float(np.mean(delta)):.3g} |" if delta else " n/a |"
        row += f" {record['wall_time_s']:.1f} |"
        lines.append(row)
    return lines


def write_training_section(run_dir: str | os.PathLike[str]) -> Path:
    """Write the training plots and ``sections/10-training.md``, then the report.

    The section contains the sweep's settings, a table with one row per depth
    (losses as mean ± standard deviation over replicas, and the relative
    spread of ``A`` over replicas), the plot of final loss against depth and
    the weight plot of the deepest network. A depth recorded in
    ``metrics.json`` whose weight file is missing keeps its row, marked
    "weight file missing", and is named below the table; the function then
    issues one :class:`~deeplimits.sweep.MissingWeightsWarning` per such depth.

    Args:
        run_dir: a run folder written by :func:`deeplimits.depth_sweep`.

    Returns:
        The path of the section file.
    """
    from deeplimits.sweep import (
        MissingWeightsWarning,
        load_sweep,
        missing_weights,
        missing_weights_message,
    )

    folder = Path(run_dir)
    # load_sweep would warn from inside this function; warn once from here
    # instead, pointing at the caller.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingWeightsWarning)
        sweep = load_sweep(folder, load_data=False)
    missing = missing_weights(folder)
    for depth, path in missing.items():
        warnings.warn(
            missing_weights_message(depth, path), MissingWeightsWarning, stacklevel=2
        )
    if not sweep.depths:
        raise ValueError(
            f"run folder {str(folder)!r} has no finished depth yet, so there is "
            "nothing to report. Run depth_sweep on it first."
        )
    config = sweep.config
    deepest = max(sweep.depths)
    loss_plot = plot_final_loss(sweep.metrics, folder / "plots" / "training_loss.png")
    weight_plot = plot_weights(
        sweep.networks[deepest],
        folder / "plots" / f"training_weights_depth_{deepest:05d}.png",
    )

    table_metrics = dict(sweep.metrics)
    stored = _read_metrics_json(folder)
    for depth in missing:
        if str(depth) in stored:
            table_metrics[depth] = stored[str(depth)]
    name = config["dataset"].get("name")
    size = config.get("dataset_size", {})
    lines = [
        "## Training",
        "",
        f"Data: {name} ({size.get('n_train', '?')} train, "
        f"{size.get('n_test', '?')} test samples, width d = {config['dim']}). "
        f"Networks: activation {config['activation']}, delta {config['delta']}, "
        f"init {config['init']} (scale {config['init_scale']}), "
        f"{config['replicas']} replica(s) per depth. Training: "
        f"{config['optimizer']} with learning rate {config['lr']}, batch size "
        f"{config['batch_size']}, at most {config['epochs']} epochs, patience "
        f"{config['patience']}, tolerance {config['tol']}, base seed "
        f"{config['seed']}.",
        "",
        "Losses are mean squared errors over samples and output entries, as mean "
        "± standard deviation over replicas.",
        "",
        *_training_table(table_metrics, missing),
        "",
        *_missing_lines(folder, missing),
        f"![Final loss against depth](plots/{loss_plot.name})",
        "",
        f"![Weights of the deepest network (L = {deepest})](plots/{weight_plot.name})",
        "",
    ]
    section = atomic_write_text(
        folder / "sections" / TRAINING_SECTION, "\n".join(lines)
    )
    write_report(folder)
    return section


def _read_metrics_json(folder: Path) -> dict[str, Any]:
    """Return the ``"depths"`` part of ``metrics.json`` (string keys)."""
    import json

    path = folder / "metrics.json"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as handle:
        return dict(json.load(handle).get("depths", {}))


def _missing_lines(folder: Path, missing: Mapping[int, Path]) -> list[str]:
    if not missing:
        return []
    files = ", ".join(
        f"L = {depth} (`{path.relative_to(folder).as_posix()}`)"
        for depth, path in missing.items()
    )
    return [
        f"Weight files missing: {files}. These depths are listed above from "
        "metrics.json but are left out of the plots and of the later analyses.",
        "",
    ]


def write_report(run_dir: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Assemble ``report.md`` from ``sections/*.md`` in name order.

    Args:
        run_dir: the run folder.
        title: first heading; by default ``deeplimits report: <folder name>``.

    Returns:
        The path of ``report.md`` (written atomically).
    """
    folder = Path(run_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"run folder {str(folder)!r} does not exist.")
    heading = title if title is not None else f"deeplimits report: {folder.name}"
    parts = [f"# {heading}", ""]
    sections = folder / "sections"
    files = sorted(sections.glob("*.md")) if sections.is_dir() else []
    for file in files:
        parts.append(file.read_text(encoding="utf-8").rstrip("\n"))
        parts.append("")
    if not files:
        parts.append("No report sections have been written yet.")
        parts.append("")
    return atomic_write_text(folder / "report.md", "\n".join(parts))
