"""The scaling stage of a run folder: ``deeplimits analyze RUN_DIR``.

:func:`analyze_run` reads the trained networks of a run folder, runs
:func:`~deeplimits.scaling.estimate.estimate_scaling` and writes

- ``RUN_DIR/scaling.json``: :meth:`ScalingResult.to_dict`;
- ``RUN_DIR/plots/scaling_*.png``: the plots of :mod:`~deeplimits.scaling.plots`;
- ``RUN_DIR/sections/20-scaling.md``: the scaling section of the report;

then reassembles ``RUN_DIR/report.md`` with :func:`deeplimits.report.write_report`.
Every file is written atomically.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from .._io import atomic_write_json, atomic_write_text
from .estimate import estimate_scaling
from .result import ScalingResult

__all__ = ["analyze_run", "write_section", "SECTION_NAME", "RESULT_NAME"]

SECTION_NAME = "20-scaling.md"
"""File name of the scaling section under ``RUN_DIR/sections``."""

RESULT_NAME = "scaling.json"
"""File name of the scaling result in the run folder."""


def _fit_cell(fit: object) -> str:
    if fit is None:
        return "unavailable"
    return (
        f"{fit.exponent:.3f} ± {fit.stderr:.3f} "  # type: ignore[attr-defined]
        f"[{fit.ci_low:.3f}, {fit.ci_high:.3f}]"  # type: ignore[attr-defined]
    )


def _deep_cell(fit: object) -> str:
    if fit is None:
        return "-"
    return (
        f"{fit.exponent:.3f} [{fit.ci_low:.3f}, "  # type: ignore[attr-defined]
        f"{fit.ci_high:.3f}], L = {fit.min_depth}.."  # type: ignore[attr-defined]
        f"{fit.max_depth}"  # type: ignore[attr-defined]
    )


def write_section(
    result: ScalingResult, plots: Mapping[str, Path | str] | None = None
) -> str:
    """Return the Markdown scaling section of a run report.

    Args:
        result: The scaling result.
        plots: ``{name: path}`` of the plots, with paths relative to the run
            folder (``report.md`` sits there), as written by
            :func:`~deeplimits.scaling.plots.plot_all`.
    """
    verdict = result.verdict
    limit = verdict.limit
    depths = ", ".join(str(depth) for depth in result.depths)
    lines = [
        "## Scaling of the trained weights",
        "",
        f"Activation {result.activation}, delta {result.delta_mode}, width "
        f"{result.dim}, {result.replicas} replica(s) per depth, depths {depths}. "
        f"Exponents come from the {result.statistic} statistic: a statistic "
        "behaving like L^-exponent has that exponent, with its standard error "
        "and 95% interval (Student t, pooled over replicas).",
        "",
        "The intervals assume that the power law holds over the whole depth "
        "range; the last column refits each exponent over the deeper half of "
        "the depths, and a value far outside the full-range interval means "
        "the log-log plot bends.",
        "",
        "| exponent | sequence | estimate ± se [95% interval] | R² | "
        "deeper half [95% interval] |",
        "|---|---|---|---|---|",
    ]
    named = [
        ("alpha", "delta_k", result.alpha, "alpha"),
        ("beta", "A_k", result.beta, "beta"),
        ("beta_b", "b_k", result.beta_b, "beta_b"),
        (
            "gamma (alpha + beta)",
            "delta_k A_k",
            result.beta_effective,
            "beta_effective",
        ),
    ]
    for label, sequence, fit, key in named:
        r2 = "-" if fit is None else f"{fit.r2:.3f}"
        lines.append(
            f"| {label} | {sequence} | {_fit_cell(fit)} | {r2} | "
            f"{_deep_cell(result.deep_half.get(key))} |"
        )
    if result.replicas > 1 and result.distinct_replicas:
        counts = ", ".join(
            f"L = {depth}: {count}" for depth, count in result.distinct_replicas.items()
        )
        lines += [
            "",
            f"Distinct replicas per depth (of {result.replicas}): {counts}.",
        ]

    lines += [
        "",
        f"**Verdict: {verdict.label}.** Limit: `{limit.kind}`.",
        "",
    ]
    if limit.latex:
        lines += ["$$", limit.latex, "$$", ""]
    lines += [f"Reason: {limit.reason}", "", "Evidence:", ""]
    lines += [f"- {sentence}" for sentence in verdict.evidence]
    others = [text for text in result.caveats if text not in verdict.caveats]
    if others:
        lines += ["", "Caveats:", ""]
        lines += [f"- {sentence}." for sentence in others]

    lines += [
        "",
        "Roughness ratio of delta_k A_k (coarse over fine quadratic variation of "
        "the cumulative path: about 2 when smooth, about 1 when Brownian):",
        "",
        "| L | ratio (median) | per replica | band | effective layers | "
        "largest layer share |",
        "|---|---|---|---|---|---|",
    ]
    for item in result.roughness:
        ratios = ", ".join(f"{value:.3f}" for value in item.ratios)
        lines.append(
            f"| {item.depth} | {item.ratio:.3f} | {ratios} | {item.band} | "
            f"{item.effective_layers:.1f} | {100 * item.largest_layer_share:.1f}% |"
        )

    table = result.exponent_table()
    lines += ["", "Exponents of every statistic (pooled over replicas):", ""]
    lines.append("| " + " | ".join(table[0]) + " |")
    lines.append("|" + "---|" * len(table[0]))
    lines += ["| " + " | ".join(row) + " |" for row in table[1:]]

    if plots:
        lines += [""]
        for name, file in plots.items():
            lines.append(f"![{name}]({Path(file).as_posix()})")
    return "\n".join(lines) + "\n"


def analyze_run(
    run_dir: str | os.PathLike[str], *, progress: bool = True
) -> ScalingResult:
    """Analyse the scaling of a run folder and add it to the run's report.

    Args:
        run_dir: A folder written by :func:`deeplimits.depth_sweep`.
        progress: Print each step and the summary to standard error.

    Returns:
        The :class:`~deeplimits.scaling.result.ScalingResult`, also written to
        ``RUN_DIR/scaling.json``.

    Raises:
        FileNotFoundError: if ``run_dir`` is not a folder.
        ValueError: as :func:`~deeplimits.scaling.estimate.estimate_scaling`.
    """
    from ..report import write_report
    from .plots import plot_all

    folder = Path(run_dir)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"run_dir {os.fspath(run_dir)!r} is not a folder. Pass the folder "
            "that deeplimits run or depth_sweep(out=...) wrote."
        )

    def report(message: str) -> None:
        if progress:
            print(f"[scaling] {message}", file=sys.stderr, flush=True)

    report(f"reading the networks in {folder}")
    result = estimate_scaling(folder)
    atomic_write_json(folder / RESULT_NAME, result.to_dict())
    report(f"wrote {folder / RESULT_NAME}")

    written = plot_all(result, folder / "plots")
    relative = {name: path.relative_to(folder) for name, path in written.items()}
    report(f"wrote {len(written)} plots under {folder / 'plots'}")

    atomic_write_text(
        folder / "sections" / SECTION_NAME, write_section(result, relative)
    )
    write_report(folder)
    report(f"updated {folder / 'report.md'}")
    if progress:
        print(result.summary(), file=sys.stderr, flush=True)
    return result
