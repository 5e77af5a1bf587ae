"""Command line: ``deeplimits run | analyze | compare | reduce``.

``deeplimits run`` trains a depth sweep into a run folder, writes the training
section of the report, then runs the scaling analysis and the comparison with
the limit (and the reduced model with ``--reduce``). The later stages live in
other modules, which are imported only when a stage runs. A stage whose module
is not installed is skipped with a printed note.

A stage that fails with one of :data:`EXPECTED_ERRORS` (invalid or missing
input, such as a truncated weight file) prints one line
``deeplimits STAGE: error: MESSAGE`` and exits with status 1. Other exception
types print their traceback. Setting the environment variable
``DEEPLIMITS_TRACEBACK=1`` prints the traceback for every error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deeplimits import __version__

__all__ = ["build_parser", "main", "parse_depths"]

#: Default depth grid: floor(1.5^n) between 3 and 300, that is
#: 3, 5, 7, 11, 17, 25, 38, 57, 86, 129, 194, 291.
DEFAULT_DEPTHS = "3:300:1.5"

#: Fewest distinct depths ``run`` accepts: the scaling analysis fits a power
#: law in the depth, and two points always fit a line exactly.
MIN_RUN_DEPTHS = 3

#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED_STATUS = 130

# (module, function, description) of each stage after training.
STAGES = {
    "analyze": ("deeplimits.scaling", "analyze_run", "scaling analysis"),
    "compare": ("deeplimits.compare", "compare_run", "comparison with the limit"),
    "reduce": ("deeplimits.reduced", "reduce_run", "reduced-form model"),
}


#: Errors a stage raises for invalid or missing input; the CLI prints their
#: message on one line. Subclasses such as deeplimits.sweep.RunConfigError
#: are ValueErrors.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    FileNotFoundError,
    FloatingPointError,
)

#: Environment variable that turns on tracebacks for expected errors.
TRACEBACK_VARIABLE = "DEEPLIMITS_TRACEBACK"


class StageUnavailableError(RuntimeError):
    """A stage's module or entry point is not installed."""


def _show_tracebacks() -> bool:
    return os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0")


def parse_depths(text: str) -> list[int]:
    """Parse ``--depths``: ``MIN:MAX:BASE`` (geometric grid) or ``4,8,16``.

    The result holds at least :data:`MIN_RUN_DEPTHS` (3) distinct depths,
    because the scaling analysis after training fits a power law in the depth.

    Returns:
        The depths in increasing order.

    Raises:
        argparse.ArgumentTypeError: for a malformed value, a depth below 1, a
            depth listed twice, or fewer than 3 depths; the message gives the
            value received and the two accepted forms.
    """
    from deeplimits.sweep import geometric_depths

    forms = "Use MIN:MAX:BASE, e.g. 3:256:2, or a comma-separated list, e.g. 4,8,16."
    text = text.strip()
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError(f"expected 3 fields, got {len(parts)}")
            depths = geometric_depths(int(parts[0]), int(parts[1]), float(parts[2]))
        else:
            depths = [int(part) for part in text.split(",") if part.strip()]
            if not depths or min(depths) < 1:
                raise ValueError("every depth must be an integer >= 1")
            repeated = sorted({d for d in depths if depths.count(d) > 1})
            if repeated:
                listed = ", ".join(map(str, repeated))
                noun = "depth" if len(repeated) == 1 else "depths"
                raise ValueError(f"{noun} {listed} listed more than once")
        if len(depths) < MIN_RUN_DEPTHS:
            raise ValueError(
                f"the scaling analysis needs at least {MIN_RUN_DEPTHS} distinct "
                f"depths, got {len(depths)}: {', '.join(map(str, depths))}"
            )
        return sorted(depths)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"invalid depths {text!r} ({str(error).rstrip('.')}). {forms}"
        ) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def _float_checker(*, allow_zero: bool) -> Callable[[str], float]:
    rule = "a finite number >= 0" if allow_zero else "a finite number > 0"

    def check(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = value >= 0.0 if allow_zero else value > 0.0
        if not math.isfinite(value) or not ok:
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
        return value

    return check


def _add_run_options(run: argparse.ArgumentParser) -> None:
    from deeplimits.activations import ACTIVATION_NAMES
    from deeplimits.inits import INIT_NAMES
    from deeplimits.network import DELTA_MODES
    from deeplimits.training import OPTIMIZERS

    data = run.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=("synthetic", "digits", "mnist"),
        default="synthetic",
        help="data set: synthetic ODE regression data, scikit-learn's 8x8 digits, "
        "or MNIST from --data-dir (default: %(default)s)",
    )
    data.add_argument(
        "--data-dir",
        metavar="PATH",
        help="folder that contains MNIST/raw/train-images-idx3-ubyte and the other "
        "idx files (torchvision's layout); required with --dataset mnist, "
        "nothing is downloaded",
    )
    data.add_argument(
        "--dim",
        type=_positive_int,
        help="network width d in features (default: 10 for synthetic and digits, "
        "25 for mnist, the only value it accepts)",
    )

    network = run.add_argument_group("networks")
    network.add_argument(
        "--depths",
        type=parse_depths,
        default=DEFAULT_DEPTHS,
        metavar="MIN:MAX:BASE|L1,L2,...",
        help="depths L in layers, at least 3 distinct: MIN:MAX:BASE gives the "
        "distinct floor(BASE^n) in [MIN, MAX], or a comma-separated list without "
        f"repeats (default: {DEFAULT_DEPTHS}, i.e. 3, 5, 7, 11, ..., 194, 291)",
    )
    network.add_argument(
        "--activation",
        choices=ACTIVATION_NAMES,
        default="tanh",
        help="activation sigma (default: %(default)s)",
    )
    network.add_argument(
        "--delta",
        choices=DELTA_MODES,
        default="shared",
        help="layer scale delta_k: none (1), shared (one trainable scalar, "
        "initialised to 1/L) or per-layer (default: %(default)s)",
    )
    network.add_argument(
        "--init",
        choices=INIT_NAMES,
        default="xavier-depth",
        help="initialisation of A_k and b_k (default: %(default)s)",
    )
    network.add_argument(
        "--init-scale",
        type=_float_checker(allow_zero=True),
        default=0.01,
        help="scale s of the initialisation, dimensionless (default: %(default)s)",
    )
    network.add_argument(
        "--replicas",
        type=_positive_int,
        default=4,
        help="independent networks per depth, trained in one batch; they give "
        "the error bars (default: %(default)s)",
    )

    training = run.add_argument_group("training")
    training.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default="adam",
        help="optimizer (default: %(default)s)",
    )
    training.add_argument(
        "--epochs",
        type=_positive_int,
        default=30,
        help="maximum number of epochs (passes over the training set) per depth "
        "(default: %(default)s)",
    )
    training.add_argument(
        "--lr",
        type=_float_checker(allow_zero=False),
        default=1e-2,
        help="learning rate (default: %(default)s)",
    )
    training.add_argument(
        "--batch-size",
        type=_positive_int,
        default=32,
        help="samples per optimizer step (default: %(default)s)",
    )
    training.add_argument(
        "--patience",
        type=_positive_int,
        default=5,
        help="stop a depth after this many epochs without a 1%% decrease of the "
        "training loss (default: %(default)s)",
    )
    training.add_argument(
        "--tol",
        type=_float_checker(allow_zero=True),
        default=1e-6,
        help="stop a depth once the training mean squared error is below this "
        "value (default: %(default)s)",
    )
    training.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        help="base seed of data, initialisation and shuffling; each depth derives "
        "its own seed from it (default: %(default)s)",
    )
    training.add_argument(
        "--device",
        default="cpu",
        help="torch device for training, e.g. cpu or cuda (default: %(default)s)",
    )
    _add_threads_option(training)

    output = run.add_argument_group("output")
    output.add_argument(
        "--out",
        metavar="DIR",
        help="run folder; an existing run folder with the same settings is "
        "resumed (default: a new folder runs/run-YYYYmmdd-HHMMSS in the current "
        "directory)",
    )
    output.add_argument(
        "--reduce",
        action="store_true",
        help="also fit the reduced-form limit model after the comparison",
    )
    output.add_argument(
        "--no-progress", action="store_true", help="hide the progress bars"
    )


def _add_threads_option(group: Any) -> None:
    group.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        help="CPU threads torch may use (default: %(default)s; the networks "
        "multiply d x d matrices with small d, where more threads mostly add "
        "synchronisation cost, and on a busy machine a lot of it)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``deeplimits`` command."""
    parser = argparse.ArgumentParser(
        prog="deeplimits",
        description="Train residual networks across depths and study their deep "
        "limit (scaling of the weights, neural ODE or SDE limit).",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="train a depth sweep, then analyse scaling and compare with the limit",
        description="Train one network per depth into a run folder, write the "
        "report, then run the scaling analysis and the comparison with the "
        "limit. Defaults train the synthetic data set in a few minutes on 2 CPU "
        "cores.",
    )
    _add_run_options(run)
    for name, (module, function, description) in STAGES.items():
        stage = commands.add_parser(
            name,
            help=f"run the {description} on a finished run folder",
            description=f"Run the {description} ({module}.{function}) on RUN_DIR "
            "and update its report.",
        )
        stage.add_argument("run_dir", metavar="RUN_DIR", help="run folder")
        stage.add_argument(
            "--no-progress", action="store_true", help="hide the progress bars"
        )
        _add_threads_option(stage)
        if name == "reduce":
            stage.add_argument(
                "--basis",
                choices=("legendre", "chebyshev", "piecewise-linear", "fourier"),
                help="basis of the reduced model's weight paths (default: legendre)",
            )
            stage.add_argument(
                "--form",
                choices=("neural-ode", "linear-ode", "sde"),
                help="equation of the reduced model (default: the limit of the "
                "scaling verdict in scaling.json, neural-ode without one)",
            )
            stage.add_argument(
                "--rank",
                type=_positive_int,
                help="rank of A(t) (default: full rank)",
            )
            stage.add_argument(
                "--epochs",
                type=_positive_int,
                help="training epochs of the reduced model (default: the run's)",
            )
            stage.add_argument(
                "--lr",
                type=_float_checker(allow_zero=False),
                help="learning rate of the reduced model (default: the run's)",
            )
            stage.add_argument(
                "--terms",
                type=_positive_int,
                help="number K of basis functions per weight",
            )
            stage.add_argument(
                "--steps",
                type=_positive_int,
                help="fixed rk4 solver steps on [0, 1] for training (default: "
                "grows with K, 28 for K = 8)",
            )
    return parser


def _load_stage(name: str) -> Callable[..., Any]:
    """Import a stage's entry point or raise StageUnavailableError."""
    module_name, function, _ = STAGES[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or not module_name.startswith(error.name):
            raise
        raise StageUnavailableError(
            f"{module_name} is not installed in this copy of deeplimits"
        ) from error
    entry = getattr(module, function, None)
    if entry is None:
        raise StageUnavailableError(f"{module_name} has no function {function}")
    return entry


def _default_out() -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"run-{stamp}"
    candidate, suffix = base, 2
    while candidate.exists():
        candidate = Path(f"{base}-{suffix}")
        suffix += 1
    return candidate


def _print_summary(metrics: dict[int, dict[str, Any]]) -> None:
    print(f"{'depth':>6} {'train loss':>11} {'test loss':>11} {'epochs':>6}  stop")
    for depth in sorted(metrics):
        record = metrics[depth]
        train = [v for v in record["final_train_loss"] if v is not None]
        test = [v for v in record["final_test_loss"] if v is not None]
        train_mean = sum(train) / len(train) if train else math.nan
        test_mean = sum(test) / len(test) if test else math.nan
        line = (
            f"{depth:>6} {train_mean:>11.3e} {test_mean:>11.3e} "
            f"{record['epochs_run']:>6}  {record['stop_reason']}"
        )
        accuracy = record.get("final_test_accuracy")
        if accuracy:
            line += f"  test accuracy {100 * sum(accuracy) / len(accuracy):.1f}%"
        if record.get("diverged"):
            line += "  diverged: lower --lr"
        print(line)


def _run_stage(name: str, run_dir: Path, progress: bool, **options: Any) -> bool:
    """Run one stage inside ``run``; return False if it failed."""
    description = STAGES[name][2]
    try:
        entry = _load_stage(name)
    except StageUnavailableError as error:
        print(f"note: skipping the {description}: {error}.")
        return True
    print(f"{description}...")
    started = time.perf_counter()
    try:
        entry(run_dir, progress=progress, **options)
    except EXPECTED_ERRORS as error:
        print(f"error: the {description} failed: {error}", file=sys.stderr)
        if _show_tracebacks():
            traceback.print_exc()
        return False
    except Exception:
        print(f"error: the {description} failed:", file=sys.stderr)
        traceback.print_exc()
        return False
    print(f"{description} done in {time.perf_counter() - started:.1f} s")
    return True


def _sweep_with_messages(sweep: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``depth_sweep``, printing its resume line and training warnings.

    The resume line comes from the ``deeplimits.sweep`` logger at INFO level
    and goes to stdout. Each :class:`~deeplimits.training.DivergenceWarning`
    and :class:`~deeplimits.training.IdenticalReplicasWarning` is printed to
    stderr as ``deeplimits run: warning: ...``; other warnings are issued
    again unchanged.
    """
    from deeplimits.sweep import logger as sweep_logger
    from deeplimits.training import DivergenceWarning, IdenticalReplicasWarning

    printed = (DivergenceWarning, IdenticalReplicasWarning)

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = sweep_logger.level
    sweep_logger.addHandler(handler)
    sweep_logger.setLevel(logging.INFO)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DivergenceWarning)
            warnings.simplefilter("always", IdenticalReplicasWarning)
            try:
                return sweep(*args, **kwargs)
            finally:
                _print_warnings(caught, printed)
    finally:
        sweep_logger.removeHandler(handler)
        sweep_logger.setLevel(level)


def _print_warnings(
    caught: list[warnings.WarningMessage],
    category: type[Warning] | tuple[type[Warning], ...],
) -> None:
    for item in caught:
        if issubclass(item.category, category):
            print(f"deeplimits run: warning: {item.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(
                item.message, item.category, item.filename, item.lineno
            )


def _print_interrupted(run_dir: Path) -> None:
    """Print what Ctrl-C during training left in ``run_dir`` and how to resume."""
    from deeplimits.sweep import finished_depths

    done = finished_depths(run_dir)
    if done:
        noun, verb = ("depth", "is") if len(done) == 1 else ("depths", "are")
        saved = (
            f"Interrupted. The finished {noun} ({', '.join(map(str, done))}) "
            f"{verb} saved in {run_dir}"
        )
    else:
        saved = (
            "Interrupted before the first depth finished, so nothing is saved "
            f"in {run_dir}"
        )
    print(
        f"\n{saved}; rerun the same command with --out {run_dir} to resume.",
        file=sys.stderr,
    )


def _command_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from deeplimits.report import write_training_section
    from deeplimits.sweep import RunConfigError, depth_sweep

    if args.dataset == "mnist" and args.data_dir is None:
        parser.error("argument --data-dir: required with --dataset mnist")
    if args.dataset != "mnist" and args.data_dir is not None:
        parser.error(
            f"argument --data-dir: only used with --dataset mnist, got "
            f"--dataset {args.dataset}"
        )
    run_dir = Path(args.out) if args.out is not None else _default_out()
    progress = not args.no_progress
    print(
        f"deeplimits run: {args.dataset} data, depths {args.depths}, "
        f"{args.replicas} replica(s) each, results in {run_dir}"
    )

    # Stage 1: the depth sweep and its report section.
    started = time.perf_counter()
    try:
        sweep = _sweep_with_messages(
            depth_sweep,
            args.depths,
            dataset=args.dataset,
            dim=args.dim,
            data_dir=args.data_dir,
            activation=args.activation,
            delta=args.delta,
            init=args.init,
            init_scale=args.init_scale,
            replicas=args.replicas,
            optimizer=args.optimizer,
            lr=args.lr,
            epochs=args.epochs,
            batch_size=args.batch_size,
            tol=args.tol,
            patience=args.patience,
            seed=args.seed,
            device=args.device,
            out=run_dir,
            progress=progress,
        )
    except (RunConfigError, FileNotFoundError, ValueError) as error:
        print(f"deeplimits run: error: {error}", file=sys.stderr)
        return 2
    except FloatingPointError as error:
        print(f"deeplimits run: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _print_interrupted(run_dir)
        return INTERRUPTED_STATUS
    write_training_section(run_dir)
    print(f"training done in {time.perf_counter() - started:.1f} s")
    _print_summary(sweep.metrics)

    # Later stages; each one writes its own section and the report.
    stages = ["analyze", "compare", *(["reduce"] if args.reduce else [])]
    ok = True
    for name in stages:
        try:
            ok = _run_stage(name, run_dir, progress) and ok
        except KeyboardInterrupt:
            print(
                f"\nInterrupted during the {STAGES[name][2]}. The trained depths "
                f"are saved in {run_dir}; run `deeplimits {name} {run_dir}` to "
                "repeat this stage.",
                file=sys.stderr,
            )
            return INTERRUPTED_STATUS
    print(f"report: {run_dir / 'report.md'}")
    print(f"total time {time.perf_counter() - started:.1f} s")
    return 0 if ok else 1


def _command_stage(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not (run_dir / "config.json").is_file():
        print(
            f"deeplimits {args.command}: error: {str(run_dir)!r} is not a run folder "
            "(no config.json). Pass a folder written by `deeplimits run`.",
            file=sys.stderr,
        )
        return 2
    try:
        entry = _load_stage(args.command)
    except StageUnavailableError as error:
        print(
            f"deeplimits {args.command}: error: the {STAGES[args.command][2]} is not "
            f"available: {error}.",
            file=sys.stderr,
        )
        return 2
    try:
        _report_missing_weights(args.command, run_dir)
    except EXPECTED_ERRORS as error:
        return _print_stage_error(args.command, error)
    options: dict[str, Any] = {"progress": not args.no_progress}
    if args.command == "reduce":
        if args.basis is not None:
            options["basis"] = args.basis
        if args.terms is not None:
            options["K"] = args.terms
        if args.steps is not None:
            options["steps"] = args.steps
        for name in ("form", "rank", "epochs", "lr"):
            if getattr(args, name) is not None:
                options[name] = getattr(args, name)
    from deeplimits.sweep import MissingWeightsWarning

    try:
        # The missing weight files were reported above, once.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MissingWeightsWarning)
            entry(run_dir, **options)
    except KeyboardInterrupt:
        print(f"\ndeeplimits {args.command}: interrupted.", file=sys.stderr)
        return INTERRUPTED_STATUS
    except EXPECTED_ERRORS as error:
        return _print_stage_error(args.command, error)
    print(f"report: {run_dir / 'report.md'}")
    return 0


def _print_stage_error(command: str, error: Exception) -> int:
    """Print an expected stage error on one line; return exit status 1."""
    print(f"deeplimits {command}: error: {error}", file=sys.stderr)
    if _show_tracebacks():
        traceback.print_exception(error)
    return 1


def _report_missing_weights(command: str, run_dir: Path) -> None:
    """Print each depth whose weight file is missing and mark it in the report.

    The training section is rewritten so that its table marks those depths.
    """
    from deeplimits.report import write_training_section
    from deeplimits.sweep import (
        MissingWeightsWarning,
        missing_weights,
        missing_weights_message,
    )

    missing = missing_weights(run_dir)
    for depth, path in missing.items():
        message = missing_weights_message(depth, path)
        print(f"deeplimits {command}: warning: {message}", file=sys.stderr)
    if missing:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MissingWeightsWarning)
            write_training_section(run_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``deeplimits`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 if a stage failed, 2 for invalid
        input (argparse errors exit with status 2 through ``SystemExit``),
        130 after Ctrl-C (``KeyboardInterrupt``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    import torch

    torch.set_num_threads(args.threads)
    try:
        if args.command == "run":
            return _command_run(args, parser)
        return _command_stage(args)
    except KeyboardInterrupt:
        # Ctrl-C outside the steps that print their own message, e.g. while
        # writing the training section of the report.
        print(f"\ndeeplimits {args.command}: interrupted.", file=sys.stderr)
        return INTERRUPTED_STATUS
