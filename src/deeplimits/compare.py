r"""Compare residual networks with their continuous-time limit.

For a network with hidden states :math:`h_0 = x, \dots, h_L` and a limit
:math:`H` solved from :math:`H(0) = x`, the trajectory error of one input is

.. math::

    e(x) = \frac{\max_{k = 0..L} \|h_k - H(t_k)\|}{\|x\|}, \qquad t_k = k/L,

with Euclidean norms (an input with :math:`x = 0` uses the absolute error).
:func:`compare` reduces :math:`e(x)` over a batch by its maximum (default) or
mean, and reports the output error :math:`\|h_L - H(1)\| / \|x\|` the same
way, together with the test loss (mean squared error) and accuracy of the
network and of the limit. Over a sweep, :func:`compare_sweep` fits
:math:`e \approx C L^{-\eta}` by least squares on log-log axes, with a 95%
Student-t interval for the rate :math:`\eta`, and :func:`convergence_verdict`
turns that fit into a plain verdict. :func:`compare_run` does all of this for
a run folder and writes ``limits.json``, plots and a report section.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from scipy import stats
from torch import Tensor, nn

from ._checks import check_choice, check_tensor, describe
from ._io import atomic_save_figure
from .limits.ode import LinearODELimit, NeuralODELimit
from .limits.sde import LinearQuadraticSDELimit
from .network import ResNet, layer_times

__all__ = [
    "Comparison",
    "RateFit",
    "SweepComparison",
    "compare",
    "compare_run",
    "compare_sweep",
    "convergence_verdict",
    "fit_rate",
    "plot_error_vs_depth",
    "plot_trajectories",
]

REDUCTIONS = ("max", "mean")
LIMIT_TYPES = (NeuralODELimit, LinearODELimit, LinearQuadraticSDELimit)

# A sweep "converges" when the lower end of the 95% interval of the rate eta
# exceeds CONVERGENCE_MIN_RATE and the log-log fit has R^2 >= CONVERGENCE_MIN_R2.
# At eta = 0.25 the depth must grow 16-fold to halve the error, so a slower
# decay is not read as convergence.
CONVERGENCE_MIN_RATE = 0.25
CONVERGENCE_MIN_R2 = 0.9
# Relative trajectory error of the source network against its own limit above
# which the report warns that the limit does not reproduce that network.
SOURCE_ERROR_THRESHOLD = 0.05
# Fixed rk4 steps per layer of the limit for activations that are not C^1 at 0
# (ReLU). Adaptive solvers reject step after step at the kinks of sigma in H,
# which made dopri5 at rtol=1e-8 take about 33,000 evaluations for one ReLU
# limit of depth 128, against 4,096 for rk4 with 8 steps per layer.
KINKED_STEPS_PER_LAYER = 8
# Relative errors below ROUNDOFF_FACTOR machine epsilons of float64 (the dtype
# of every comparison), or below the solver tolerance where that is larger,
# are numerical noise: compare_sweep leaves them out of the rate fit.
ROUNDOFF_FACTOR = 1e3
ODE_RTOL = 1e-8
ODE_ATOL = 1e-10
ROUNDOFF_REASON = "errors at round-off level"


def _optional(value: float | None) -> str:
    return "None" if value is None else f"{value:.4g}"


@dataclass(frozen=True)
class Comparison:
    """A network against a limit on one batch of inputs.

    Attributes:
        depth: Depth :math:`L` of the network.
        trajectory_error: :math:`\\max_k \\|h_k - H(t_k)\\| / \\|x\\|`, reduced
            over inputs by ``reduction``.
        output_error: :math:`\\|h_L - H(1)\\| / \\|x\\|`, reduced the same way.
        reduction: ``"max"`` or ``"mean"`` over inputs.
        per_input_error: Trajectory error of each input, shape ``(batch,)``.
        network_loss, limit_loss: Mean squared error against the targets, or
            ``None`` without targets.
        network_accuracy, limit_accuracy: Share of inputs whose output's
            largest entry matches the label, or ``None`` without labels.
        solver: How the limit was solved, e.g. ``"dopri5, rtol=1e-08"``.
        error_floor: Relative error below which the trajectory error is
            numerical noise: ``ROUNDOFF_FACTOR`` machine epsilons of float64,
            or the solver's ``rtol`` for dopri5. The errors are relative to
            :math:`\\|x\\|`, so this floor is too.
    """

    depth: int
    trajectory_error: float
    output_error: float
    reduction: str
    per_input_error: Tensor
    network_loss: float | None = None
    limit_loss: float | None = None
    network_accuracy: float | None = None
    limit_accuracy: float | None = None
    solver: str = ""
    error_floor: float = 0.0

    def __repr__(self) -> str:
        return (
            f"Comparison(depth={self.depth}, reduction={self.reduction!r}, "
            f"trajectory_error={self.trajectory_error:.4g}, "
            f"output_error={self.output_error:.4g}, "
            f"network_loss={_optional(self.network_loss)}, "
            f"limit_loss={_optional(self.limit_loss)}, "
            f"network_accuracy={_optional(self.network_accuracy)}, "
            f"limit_accuracy={_optional(self.limit_accuracy)}, "
            f"per_input_error=<tensor of shape "
            f"{tuple(self.per_input_error.shape)}>, solver={self.solver!r})"
        )

    __str__ = __repr__

    def to_dict(self) -> dict[str, Any]:
        """Return the numbers as a JSON-serialisable dictionary."""
        return {
            "depth": self.depth,
            "trajectory_error": self.trajectory_error,
            "output_error": self.output_error,
            "reduction": self.reduction,
            "network_loss": self.network_loss,
            "limit_loss": self.limit_loss,
            "network_accuracy": self.network_accuracy,
            "limit_accuracy": self.limit_accuracy,
            "solver": self.solver,
            "error_floor": self.error_floor,
        }


@dataclass(frozen=True)
class RateFit:
    r"""Least-squares fit of :math:`\log e = \log C - \eta \log L`.

    Attributes:
        eta: Convergence rate :math:`\eta` in :math:`e \approx C L^{-\eta}`.
        stderr: Standard error of :math:`\eta`.
        ci_low, ci_high: 95% Student-t interval with ``n - 2`` degrees of freedom.
        r2: Coefficient of determination on log-log axes.
        depths: Depths used in the fit.
    """

    eta: float
    stderr: float
    ci_low: float
    ci_high: float
    r2: float
    depths: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the fit as a JSON-serialisable dictionary."""
        return {
            "eta": self.eta,
            "stderr": self.stderr,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "r2": self.r2,
            "depths": list(self.depths),
        }


@dataclass(frozen=True)
class SweepComparison:
    """Comparisons at every depth of a sweep and the fitted convergence rate.

    Attributes:
        comparisons: :class:`Comparison` per depth.
        rate: Fit of the trajectory error against depth, or ``None`` with
            fewer than 3 depths whose error is positive and above the
            round-off floor.
        excluded_depths: Depths compared but left out of the rate fit, e.g.
            the depth the limit was fitted from.
        roundoff_depths: Depths left out of the rate fit because their error
            is at or below :attr:`Comparison.error_floor`.
        rate_note: Why ``rate`` is ``None`` (e.g. ``"errors at round-off
            level"``), or ``None`` when a rate was fitted.
    """

    comparisons: dict[int, Comparison] = field(default_factory=dict)
    rate: RateFit | None = None
    excluded_depths: tuple[int, ...] = ()
    roundoff_depths: tuple[int, ...] = ()
    rate_note: str | None = None

    @property
    def verdict(self) -> str:
        """Verdict of :func:`convergence_verdict` on :attr:`rate`."""
        return convergence_verdict(self.rate)

    def summary(self) -> str:
        """Return one line per depth and a line with the rate and the verdict."""
        lines = [
            f"L = {depth}: trajectory error {c.trajectory_error:.3g}"
            for depth, c in sorted(self.comparisons.items())
        ]
        if self.rate is None:
            reason = self.rate_note or "fewer than 3 depths with a positive error"
            lines.append(f"rate: undetermined ({reason})")
        else:
            lines.append(
                f"rate: eta = {self.rate.eta:.3g} (95% interval "
                f"[{self.rate.ci_low:.3g}, {self.rate.ci_high:.3g}], "
                f"R^2 = {self.rate.r2:.3f})"
            )
        lines.append(f"verdict: {self.verdict}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        errors = ", ".join(
            f"{depth}: {c.trajectory_error:.3g}"
            for depth, c in sorted(self.comparisons.items())
        )
        return (
            f"SweepComparison(trajectory_error={{{errors}}}, rate={self.rate}, "
            f"verdict={self.verdict!r}, rate_note={self.rate_note!r}, "
            f"excluded_depths={self.excluded_depths}, "
            f"roundoff_depths={self.roundoff_depths})"
        )

    __str__ = summary


def convergence_verdict(
    rate: RateFit | None,
    *,
    min_rate: float = CONVERGENCE_MIN_RATE,
    min_r2: float = CONVERGENCE_MIN_R2,
) -> str:
    r"""Classify a rate fit as converging or not.

    Returns ``"converges"``, ``"no clear convergence"`` or ``"undetermined"``.

    The verdict is ``"converges"`` when the 95% interval of :math:`\eta` lies
    above ``min_rate`` (``ci_low > min_rate``) and ``r2 >= min_r2``, and
    ``"undetermined"`` without a fit (fewer than 3 depths).
    """
    if rate is None:
        return "undetermined"
    if rate.ci_low > min_rate and rate.r2 >= min_r2:
        return "converges"
    return "no clear convergence"


def fit_rate(depths: list[int], errors: list[float]) -> RateFit | None:
    r"""Fit :math:`e \approx C L^{-\eta}` and its 95% interval.

    Points with a zero or non-finite error are left out; fewer than 3
    remaining points return ``None``, because the interval needs at least one
    degree of freedom.
    """
    pairs = [
        (d, e)
        for d, e in zip(depths, errors, strict=True)
        if e > 0 and math.isfinite(e)
    ]
    if len(pairs) < 3:
        return None
    log_depth = torch.tensor([math.log(d) for d, _ in pairs], dtype=torch.float64)
    log_error = torch.tensor([math.log(e) for _, e in pairs], dtype=torch.float64)
    n = len(pairs)
    centred = log_depth - log_depth.mean()
    slope = float((centred * (log_error - log_error.mean())).sum() / (centred**2).sum())
    intercept = float(log_error.mean()) - slope * float(log_depth.mean())
    residuals = log_error - (intercept + slope * log_depth)
    sse = float((residuals**2).sum())
    sst = float(((log_error - log_error.mean()) ** 2).sum())
    stderr = math.sqrt(sse / (n - 2) / float((centred**2).sum()))
    quantile = float(stats.t.ppf(0.975, n - 2))
    eta = -slope
    return RateFit(
        eta=eta,
        stderr=stderr,
        ci_low=eta - quantile * stderr,
        ci_high=eta + quantile * stderr,
        r2=1.0 - sse / sst if sst > 0 else 1.0,
        depths=tuple(d for d, _ in pairs),
    )


def _network_states(net: ResNet, x: Tensor, replica: int) -> tuple[ResNet, Tensor]:
    single = net.replica(replica) if net.has_replicas else net
    single = copy.deepcopy(single).to(dtype=torch.float64, device=x.device)
    with torch.no_grad():
        return single, single.hidden_states(x)


def _limit_states(limit: nn.Module, x: Tensor, depth: int) -> tuple[Tensor, str, float]:
    """Solve ``limit`` from ``x`` at the knots of a depth-``depth`` network.

    Returns the states ``(depth + 1, batch, d)``, a description of the solver
    and the relative error floor of the solve.
    """
    roundoff = ROUNDOFF_FACTOR * torch.finfo(torch.float64).eps
    ts = layer_times(depth).to(x.device)
    if isinstance(limit, LinearQuadraticSDELimit):
        if limit.depth != depth:
            raise ValueError(
                f"a pathwise SDE limit is driven by its own network's path, so it "
                f"can only be compared with a network of depth {limit.depth}, got "
                f"depth {depth}. Fit a limit per depth with fit_limit(net, 'sde')."
            )
        solver = "euler on the network's own path"
        return limit.integrate(x, ts).ys, solver, roundoff
    # compare() accepts only LIMIT_TYPES (see check_limit), so this is an ODE limit.
    assert isinstance(limit, (NeuralODELimit, LinearODELimit))
    if not limit.activation.c2_at_zero:
        steps = _kinked_steps(limit.depth, depth)
        solution = limit.integrate(
            x, ts, method="rk4", backend="stepper", dt=1.0 / (steps * limit.depth)
        )
        return solution.ys, f"rk4, {steps} steps per layer of the limit", roundoff
    solution = limit.integrate(x, ts, rtol=ODE_RTOL, atol=ODE_ATOL)
    solver = f"dopri5, rtol={ODE_RTOL:.0e}, atol={ODE_ATOL:.0e}"
    return solution.ys, solver, max(roundoff, ODE_RTOL)


def _kinked_steps(limit_depth: int, depth: int) -> int:
    """Return rk4 steps per limit layer whose grid contains the network's knots.

    Fixed-grid solvers interpolate output times between steps linearly, so the
    step count is raised from ``KINKED_STEPS_PER_LAYER`` to a multiple of
    ``depth / gcd(depth, limit_depth)``, which puts every knot ``k / depth`` on
    the grid.
    """
    needed = depth // math.gcd(depth, limit_depth)
    steps = math.lcm(KINKED_STEPS_PER_LAYER, needed)
    # NOTE: past 256 steps per layer the cost outweighs the interpolation error
    # at the knots, which is O(step^2), so those depths keep the base count.
    return steps if steps <= 256 else KINKED_STEPS_PER_LAYER


def check_limit(limit: object) -> None:
    """Raise ``TypeError`` unless ``limit`` is one of the limit classes."""
    if not isinstance(limit, LIMIT_TYPES):
        raise TypeError(
            "limit must be a NeuralODELimit, LinearODELimit or "
            f"LinearQuadraticSDELimit, got {describe(limit)}. Build one from the "
            "network with deeplimits.limits.fit_limit(net)."
        )


def _mse(output: Tensor, y: Tensor | None) -> float | None:
    return None if y is None else float(((output - y) ** 2).mean())


def _accuracy(output: Tensor, labels: Tensor | None) -> float | None:
    if labels is None:
        return None
    return float((output.argmax(dim=1) == labels).double().mean())


def compare(
    net: ResNet,
    limit: nn.Module,
    x: Tensor,
    y: Tensor | None = None,
    *,
    labels: Tensor | None = None,
    reduction: str = "max",
    replica: int = 0,
) -> Comparison:
    r"""Measure how far a network's hidden states are from a limit's solution.

    Both are evaluated in float64 on copies, so the comparison measures the
    model error and not float32 rounding. ODE limits are solved with dopri5
    at ``rtol=1e-8``, ``atol=1e-10``, except for activations that are not
    :math:`C^1` at 0 (ReLU): their kinks make adaptive steps fail again and
    again, so they use rk4 with ``KINKED_STEPS_PER_LAYER`` steps per layer of
    the limit. An SDE limit uses its pathwise mode, so it must come from a
    network of the same depth.

    Args:
        net: The network; with replicas, replica ``replica`` is compared.
        limit: A :class:`~deeplimits.limits.NeuralODELimit`,
            :class:`~deeplimits.limits.LinearODELimit` or
            :class:`~deeplimits.limits.LinearQuadraticSDELimit`, e.g. from
            :func:`~deeplimits.limits.fit_limit`.
        x: Inputs, shape ``(batch, d)``.
        y: Targets, shape ``(batch, d)``, for the test losses.
        labels: Class labels, shape ``(batch,)``, for the accuracies.
        reduction: ``"max"`` or ``"mean"`` of the per-input errors.
        replica: Replica of ``net`` to compare.

    Returns:
        A :class:`Comparison`.

    Raises:
        TypeError: for a ``limit`` that is not one of the limit classes.
        ValueError: for a bad reduction, shapes that do not match, or a
            pathwise SDE limit of another depth.
    """
    check_limit(limit)
    check_choice("reduction", reduction, REDUCTIONS)
    check_tensor("x", x, ndim=2)
    if x.shape[1] != net.dim:
        raise ValueError(
            f"x must have shape (batch, {net.dim}) to match the network, got "
            f"{tuple(x.shape)}."
        )
    if y is not None and tuple(y.shape) != tuple(x.shape):
        raise ValueError(
            f"y must have the shape of x {tuple(x.shape)}, got {tuple(y.shape)}."
        )
    x64 = x.detach().to(torch.float64)
    _, states = _network_states(net, x64, replica)
    limit64 = copy.deepcopy(limit).to(dtype=torch.float64, device=x.device)
    with torch.no_grad():
        solution, solver, floor = _limit_states(limit64, x64, net.depth)

    scale = x64.norm(dim=1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    per_input = (states - solution).norm(dim=2).amax(dim=0) / scale
    output_gap = (states[-1] - solution[-1]).norm(dim=1) / scale
    reduce: Callable[[Tensor], Tensor] = (
        torch.amax if reduction == "max" else torch.mean
    )
    y64 = None if y is None else y.detach().to(torch.float64)
    return Comparison(
        depth=net.depth,
        trajectory_error=float(reduce(per_input)),
        output_error=float(reduce(output_gap)),
        reduction=reduction,
        per_input_error=per_input,
        network_loss=_mse(states[-1], y64),
        limit_loss=_mse(solution[-1], y64),
        network_accuracy=_accuracy(states[-1], labels),
        limit_accuracy=_accuracy(solution[-1], labels),
        solver=solver,
        error_floor=floor,
    )


def compare_sweep(
    networks: Mapping[int, ResNet],
    limit: nn.Module | Callable[[ResNet], nn.Module],
    x: Tensor,
    y: Tensor | None = None,
    *,
    labels: Tensor | None = None,
    reduction: str = "max",
    exclude_depths: tuple[int, ...] = (),
    progress: bool = False,
) -> SweepComparison:
    r"""Compare every network of a sweep with a limit and fit the rate :math:`\eta`.

    Args:
        networks: ``{depth: ResNet}``.
        limit: One limit for every depth (ODE limits), or a function that builds
            the limit of each network (pathwise SDE limits, one per depth).
        x, y, labels, reduction: As for :func:`compare`.
        exclude_depths: Depths compared but left out of the rate fit, e.g. the
            depth the limit was fitted from.
        progress: Show a progress bar.

    A depth is left out of the rate fit when its trajectory error is at or
    below the comparison's ``error_floor``, because a slope fitted to
    numerical noise means nothing. The floor is ``ROUNDOFF_FACTOR`` machine
    epsilons of float64 relative to :math:`\|x\|`, or the dopri5 ``rtol``
    where that is larger. When
    fewer than 3 depths remain, ``rate`` is ``None`` and ``rate_note`` is
    ``"errors at round-off level"``.

    Returns:
        A :class:`SweepComparison`.
    """
    depths = sorted(networks)
    iterator: Any = depths
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(depths, desc="compare", unit="depth")
    comparisons = {}
    for depth in iterator:
        net = networks[depth]
        target = limit if isinstance(limit, nn.Module) else limit(net)
        comparisons[depth] = compare(
            net, target, x, y, labels=labels, reduction=reduction
        )
    used = [d for d in depths if d not in exclude_depths]
    roundoff = [
        d for d in used if comparisons[d].trajectory_error <= comparisons[d].error_floor
    ]
    fitted = [d for d in used if d not in roundoff]
    rate = fit_rate(fitted, [comparisons[d].trajectory_error for d in fitted])
    note = None
    if rate is None:
        positive = fit_rate(used, [comparisons[d].trajectory_error for d in used])
        note = (
            ROUNDOFF_REASON
            if positive is not None
            else "fewer than 3 depths with a positive error"
        )
    return SweepComparison(
        comparisons=comparisons,
        rate=rate,
        excluded_depths=tuple(d for d in depths if d in exclude_depths),
        roundoff_depths=tuple(roundoff),
        rate_note=note,
    )


def plot_trajectories(
    networks: Mapping[int, ResNet],
    limit: nn.Module | None,
    x: Tensor,
    path: str | Path,
    *,
    n_inputs: int = 3,
    component: int = 0,
    max_depths: int = 4,
) -> Path:
    """Plot one coordinate of the hidden states of a few inputs against ``t``.

    Each panel is one input: the network at up to ``max_depths`` depths
    (markers at :math:`t_k`) and the limit (a line on a fine grid; the
    pathwise SDE limit of the deepest network on its knots).

    Returns:
        The path of the PNG file.
    """
    import matplotlib

    x64 = x[:n_inputs].detach().to(torch.float64)
    depths = sorted(networks)
    if len(depths) > max_depths:
        picks = torch.linspace(0, len(depths) - 1, max_depths).round().long()
        depths = [depths[int(i)] for i in picks]
    figure = Figure(figsize=(4 * x64.shape[0], 3.2))
    axes = figure.subplots(1, x64.shape[0])
    axes = [axes] if x64.shape[0] == 1 else list(axes)
    colours = matplotlib.colormaps["viridis"](
        torch.linspace(0, 0.9, len(depths)).numpy()
    )
    for colour, depth in zip(colours, depths, strict=True):
        _, states = _network_states(networks[depth], x64, 0)
        times = layer_times(depth).numpy()
        for i, axis in enumerate(axes):
            axis.plot(
                times,
                states[:, i, component].numpy(),
                "o",
                ms=2.5,
                color=colour,
                label=f"network L={depth}",
            )
    if limit is not None:
        check_limit(limit)
        limit64 = copy.deepcopy(limit).to(dtype=torch.float64)
        assert isinstance(limit64, LIMIT_TYPES)  # .to() keeps the class
        with torch.no_grad():
            if isinstance(limit64, LinearQuadraticSDELimit):
                solution = limit64.integrate(x64)
            elif not limit64.activation.c2_at_zero:
                ts = torch.linspace(0, 1, 201, dtype=torch.float64)
                dt = 1.0 / (KINKED_STEPS_PER_LAYER * limit64.depth)
                solution = limit64.integrate(
                    x64, ts, method="rk4", backend="stepper", dt=dt
                )
            else:
                ts = torch.linspace(0, 1, 201, dtype=torch.float64)
                solution = limit64.integrate(x64, ts, rtol=1e-8, atol=1e-10)
        for i, axis in enumerate(axes):
            axis.plot(
                solution.ts.numpy(),
                solution.ys[:, i, component].numpy(),
                "k-",
                lw=1.2,
                label="limit H(t)",
            )
    for i, axis in enumerate(axes):
        axis.set_xlabel("t = k / L")
        axis.set_ylabel(f"coordinate {component}")
        axis.set_title(f"input {i}")
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    return _save(figure, path)


SOURCE_LABEL = "source network, not in fit"


def error_figure(result: SweepComparison) -> Figure:
    """Draw the trajectory and output errors against depth on log-log axes.

    Depths in ``result.excluded_depths`` (the network the limit was fitted
    from) are drawn apart as red crosses labelled ``SOURCE_LABEL``, so their
    small error does not read as the end of a converging curve.
    """
    depths = sorted(result.comparisons)
    fitted_depths = [d for d in depths if d not in result.excluded_depths]
    source_depths = [d for d in depths if d in result.excluded_depths]
    figure = Figure(figsize=(5, 3.6))
    axis = figure.subplots()
    if fitted_depths:
        axis.loglog(
            fitted_depths,
            [result.comparisons[d].trajectory_error for d in fitted_depths],
            "o-",
            label="max_k |h_k - H(t_k)| / |x|",
        )
        axis.loglog(
            fitted_depths,
            [result.comparisons[d].output_error for d in fitted_depths],
            "s--",
            label="|h_L - H(1)| / |x|",
        )
    if source_depths:
        axis.loglog(
            source_depths,
            [result.comparisons[d].trajectory_error for d in source_depths],
            "x",
            color="tab:red",
            ms=9,
            mew=2,
            linestyle="none",
            label=SOURCE_LABEL,
        )
    rate = result.rate
    if rate is not None:
        fitted = [result.comparisons[d].trajectory_error for d in rate.depths]
        log_c = sum(
            math.log(e) + rate.eta * math.log(d)
            for d, e in zip(rate.depths, fitted, strict=True)
        ) / len(fitted)
        line = [math.exp(log_c) * d ** (-rate.eta) for d in rate.depths]
        axis.loglog(
            rate.depths,
            line,
            "k:",
            label=f"fit L^-eta, eta = {rate.eta:.2f} "
            f"[{rate.ci_low:.2f}, {rate.ci_high:.2f}]",
        )
    axis.set_xlabel("depth L")
    axis.set_ylabel(f"error ({result.comparisons[depths[0]].reduction} over inputs)")
    axis.set_title("Network against limit: relative error by depth (replica 0)")
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def plot_error_vs_depth(result: SweepComparison, path: str | Path) -> Path:
    """Plot :func:`error_figure` to a PNG file and return its path."""
    return _save(error_figure(result), path)


def _save(figure: Any, path: str | Path) -> Path:
    return atomic_save_figure(figure, path)


def compare_run(run_dir: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """Compare every depth of a run folder with the deep limit and report it.

    Steps: read the sweep (:func:`deeplimits.sweep.load_sweep`), fit the limit
    with ``fit_limit(sweep, "auto")`` (the scaling verdict from
    ``scaling.json`` when present), compare each depth on the test inputs,
    fit the convergence rate, then write ``RUN_DIR/limits.json``,
    ``RUN_DIR/plots/limits_trajectories.png``,
    ``RUN_DIR/plots/limits_error_vs_depth.png`` and
    ``RUN_DIR/sections/30-limits.md``, and reassemble ``report.md`` with
    :func:`deeplimits.report.write_report`.

    ODE limits are fitted from the deepest network and compared with every
    shallower one (the deepest depth is left out of the rate fit). An SDE limit
    is pathwise, so each depth is compared with the SDE driven by its own
    path. When no limit applies, the networks are compared with the neural
    ODE of the deepest network as a discrete reference, and the report says
    there is no limit.

    Returns:
        The content of ``limits.json``.
    """
    from ._io import atomic_write_json, atomic_write_text
    from .limits import NoLimitError, fit_limit
    from .report import write_report
    from .sweep import load_sweep

    start = time.perf_counter()
    folder = Path(run_dir)
    sweep = load_sweep(folder)
    networks = {d: sweep.networks[d] for d in sweep.depths}
    if not networks:
        raise FileNotFoundError(
            f"run folder {str(folder)!r} has no finished depths to compare. "
            "Train a sweep into it first."
        )
    if sweep.dataset is None:
        raise ValueError(
            f"run folder {str(folder)!r} has no data set to compare on; "
            "load_sweep could not rebuild it."
        )
    deepest = max(networks)
    data = sweep.dataset
    x, y, labels = data.x_test, data.y_test, data.labels_test

    evidence: Any
    try:
        limit = fit_limit(sweep, "auto")
        evidence = limit.evidence
        has_limit = True
    except NoLimitError as error:
        evidence = error.evidence
        limit = fit_limit(networks[deepest], "neural-ode")
        has_limit = False
    # fit_limit returns only instances of LIMIT_TYPES.
    assert isinstance(limit, LIMIT_TYPES)
    regime = evidence.regime if has_limit else "none"

    if regime == "sde":
        target: Any = lambda net: fit_limit(net, "sde")  # noqa: E731
        excluded: tuple[int, ...] = ()
    else:
        target, excluded = limit, (deepest,)
    result = compare_sweep(
        networks,
        target,
        x,
        y,
        labels=labels,
        exclude_depths=excluded,
        progress=progress,
    )

    plots = folder / "plots"
    trajectory_limit = limit if regime != "sde" else fit_limit(networks[deepest], "sde")
    shown = {d: n for d, n in networks.items() if regime != "sde" or d == deepest}
    plot_trajectories(shown, trajectory_limit, x, plots / "limits_trajectories.png")
    plot_error_vs_depth(result, plots / "limits_error_vs_depth.png")

    source_error = (
        None if regime == "sde" else result.comparisons[deepest].trajectory_error
    )
    activation = limit.activation
    record = {
        "regime": regime,
        "has_limit": has_limit,
        "limit_class": type(limit).__name__ if has_limit else None,
        "limit_depth": deepest,
        "activation": activation.name,
        "sigma_prime_0": activation.dsigma0,
        "evidence": evidence.to_dict(),
        "reduction": "max",
        "per_depth": {
            str(d): c.to_dict() for d, c in sorted(result.comparisons.items())
        },
        "rate": None if result.rate is None else result.rate.to_dict(),
        "rate_note": result.rate_note,
        "rate_excludes": list(excluded),
        "rate_roundoff_depths": list(result.roundoff_depths),
        "convergence": {
            "verdict": convergence_verdict(result.rate),
            "min_rate": CONVERGENCE_MIN_RATE,
            "min_r2": CONVERGENCE_MIN_R2,
        },
        "source_error": source_error,
        "source_error_threshold": SOURCE_ERROR_THRESHOLD,
        "wall_time_s": time.perf_counter() - start,
    }
    atomic_write_json(folder / "limits.json", record)
    atomic_write_text(folder / "sections" / "30-limits.md", _section(record))
    write_report(folder)
    return record


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def _percent(value: float | None) -> str:
    """Format a share in [0, 1] as a percentage, like the training table."""
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _equation(record: dict[str, Any]) -> str:
    """Return the limit equation in plain text, with the value of sigma'(0)."""
    regime = record["regime"]
    slope = record.get("sigma_prime_0")
    slope_text = "" if slope is None else f", sigma'(0) = {slope:g}"
    if regime == "neural-ode":
        return "dH/dt = deltabar(t) sigma(Abar(t) H + bbar(t))"
    if regime == "linear-ode":
        return (
            "dH/dt = sigma'(0) deltabar(t) (Abar(t) H + bbar(t))"
            f"{slope_text}, with deltabar Abar = lim L delta_k A_k and "
            "deltabar bbar = lim L delta_k b_k"
        )
    return f"dH = sigma'(0) (dV^A H + dV^b) + (sigma''(0)/2) dQ(H)  (Ito){slope_text}"


def _source_lines(record: dict[str, Any]) -> list[str]:
    """Describe the network the limit was fitted from and how well it matches."""
    depth = record["limit_depth"]
    if record["regime"] == "sde":
        return [
            "Each depth is compared with the pathwise SDE driven by its own "
            "weight path (Euler with dt = 1/L), so the error measures the "
            "second-order expansion of the network.",
        ]
    if record["has_limit"]:
        lines = [
            f"The limit was fitted from the deepest network (L = {depth}, "
            "replica 0), and every depth is compared with that one limit. Each "
            "depth is a separately trained network, so the shallower networks "
            "are not discretisations of this limit, and the L = "
            f"{depth} row is left out of the rate fit.",
        ]
    else:
        lines = [
            "For reference only, each depth is compared with the neural ODE "
            "whose Euler scheme is the deepest network (L = "
            f"{depth}, replica 0); the L = {depth} row is left out of the rate fit.",
        ]
    error, threshold = record["source_error"], record["source_error_threshold"]
    if error is None:
        return lines
    lines.append("")
    if error > threshold:
        reason = (
            "its linearisation sigma'(0) z: the pre-activations A_k h + b_k "
            "are not small enough for the linear ODE"
            if record["regime"] == "linear-ode"
            else "its limit: one Euler step 1/L is too coarse for these weights"
        )
        lines.append(
            f"**Warning: the limit does not reproduce its own source network.** "
            f"At L = {depth} the network is {error:.3g} away from the limit "
            f"(relative), above the threshold {threshold}. At this depth the "
            f"network is far from {reason}, so the errors below mix that gap "
            "with any effect of depth."
        )
    else:
        lines.append(
            f"The limit reproduces its source network: error {error:.3g} at "
            f"L = {depth} (threshold {threshold})."
        )
    return lines


def _verdict_lines(record: dict[str, Any]) -> list[str]:
    """State the convergence rate and what it means in plain words."""
    rate, convergence = record["rate"], record["convergence"]
    if rate is None:
        if record.get("rate_note") == ROUNDOFF_REASON:
            return [
                "No rate was fitted because the errors are at round-off level: "
                "the limit reproduces the networks to numerical precision."
            ]
        return [
            "Too few depths with a positive error to fit a rate, so nothing "
            "can be said about convergence."
        ]
    lines = [
        f"Convergence rate: error ~ L^-eta with eta = {rate['eta']:.3f} "
        f"(95% interval [{rate['ci_low']:.3f}, {rate['ci_high']:.3f}], "
        f"R^2 = {rate['r2']:.3f}, depths {rate['depths']}).",
        "",
    ]
    rule = (
        f"the lower end of the 95% interval of eta above "
        f"{convergence['min_rate']} and R^2 >= {convergence['min_r2']}"
    )
    if convergence["verdict"] == "converges":
        lines.append(f"**Verdict: converges** ({rule}).")
        return lines
    if record["regime"] == "sde":
        why = (
            "the pathwise error measures the second-order expansion of each "
            "network, and it shrinks only when the increments delta_k A_k "
            "shrink like L^-1/2."
        )
    else:
        why = (
            "independently trained networks at different depths need not "
            "approach the limit fitted from the deepest one."
        )
    lines.append(
        f"**Verdict: no clear convergence** (converging needs {rule}). These "
        f"networks do not approach this limit as L grows: {why}"
    )
    return lines


def _section(record: dict[str, Any]) -> str:
    evidence = record["evidence"]
    lines = ["## Deep limit and convergence", ""]
    if record["has_limit"]:
        lines.append(
            f"Limit: **{record['regime']}** ({record['limit_class']}), chosen from "
            f"{evidence['source']}: `{_equation(record)}`."
        )
    else:
        lines.append(
            "No ODE or SDE limit follows from the scaling (reasons below). For "
            "reference, the networks are compared with the neural ODE whose "
            f"Euler scheme is the deepest network (L = {record['limit_depth']})."
        )
    lines.append("")
    lines.extend(f"- {reason}" for reason in evidence["reasons"])
    lines.append("")
    lines.extend(_source_lines(record))
    lines += [
        "",
        "Each row compares replica 0 of the network at that depth with the "
        "limit. The training table reports means over all replicas, so its "
        "loss and accuracy can differ from the network columns here.",
        "",
        "| L | max_k abs(h_k - H(t_k)) / abs(x) | output error | test loss "
        "(network) | test loss (limit) | accuracy (network) | accuracy (limit) |",
        "|---|---|---|---|---|---|---|",
    ]
    excluded = set(record["rate_excludes"])
    for depth, row in record["per_depth"].items():
        mark = " (source, not in fit)" if int(depth) in excluded else ""
        lines.append(
            f"| {depth}{mark} | {_number(row['trajectory_error'])} | "
            f"{_number(row['output_error'])} | {_number(row['network_loss'])} | "
            f"{_number(row['limit_loss'])} | {_percent(row['network_accuracy'])} | "
            f"{_percent(row['limit_accuracy'])} |"
        )
    lines.append("")
    lines.extend(_verdict_lines(record))
    lines += [
        "",
        "![trajectories](plots/limits_trajectories.png)",
        "",
        "![error against depth](plots/limits_error_vs_depth.png)",
        "",
    ]
    return "\n".join(lines)
