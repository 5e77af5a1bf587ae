"""Depth sweeps: train one network (or R replicas) per depth into a run folder.

A run folder contains

- ``config.json``: every argument of :func:`depth_sweep`, the data set's
  spec, the per-depth seeds and the versions of Python, torch, numpy and
  deeplimits, so the sweep can be rerun;
- ``metrics.json``: per depth, the training and test loss curves, final
  losses per replica, accuracies, the stop reason, the wall time and the
  replica spread ``replica_spread_A`` (see :func:`depth_sweep`);
- ``weights/depth_00064.safetensors``: each trained network in the format of
  :meth:`deeplimits.ResNet.save` (tensors ``A``, ``b``, ``delta``);
- ``data.safetensors``: only for data sets built from user tensors, which
  cannot be rebuilt from arguments.

Every file is written atomically (temporary file, then :func:`os.replace`).
A depth counts as finished when both its weight file and its entry in
``metrics.json`` exist, so a sweep interrupted at any point resumes by
training only the depths that are not finished. The weight file is written
before the metrics entry, so a metrics entry without its weight file means
the file was removed afterwards: :func:`load_sweep` and
:func:`finished_depths` skip that depth with a :class:`MissingWeightsWarning`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deeplimits import _io
from deeplimits._checks import check_choice, check_int, check_positive_float, describe
from deeplimits.data import DATASET_NAMES, Dataset, dataset_from_spec, load_dataset
from deeplimits.inits import InitSpec, init_name
from deeplimits.network import DELTA_MODES, ResNet
from deeplimits.training import (
    DivergenceWarning,
    IdenticalReplicasWarning,
    check_train_options,
    replica_spread,
    train,
)

__all__ = [
    "MissingWeightsWarning",
    "RunConfigError",
    "SweepResult",
    "depth_seed",
    "depth_sweep",
    "finished_depths",
    "geometric_depths",
    "load_sweep",
    "missing_weights",
    "weights_path",
]

CONFIG_FORMAT = "deeplimits.sweep/1"

logger = logging.getLogger(__name__)

# Keys of config.json that may differ when a run folder is resumed: the list
# of depths may grow, and where or when a run happened does not change the
# results it stores.
_RESUMABLE_KEYS = frozenset({"depths", "depth_seeds", "device", "versions", "created"})


class RunConfigError(ValueError):
    """A run folder was made with a configuration other than the one requested."""


class MissingWeightsWarning(UserWarning):
    """A depth recorded in ``metrics.json`` has no weight file, so it is skipped."""


@dataclass
class SweepResult:
    """Networks and records of a depth sweep.

    Attributes:
        run_dir: the run folder, or ``None`` for a sweep kept in memory.
        depths: the depths of this sweep, in increasing order.
        networks: trained network per depth.
        metrics: per-depth records, keyed by depth (the ``"depths"`` part of
            ``metrics.json``, with int keys).
        config: the content of ``config.json``.
        dataset: the data set the networks were trained on.
    """

    run_dir: Path | None
    depths: list[int]
    networks: dict[int, ResNet] = field(default_factory=dict)
    metrics: dict[int, dict[str, Any]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    dataset: Dataset | None = None


def geometric_depths(min_depth: int, max_depth: int, base: float) -> list[int]:
    r"""Return the depths :math:`\lfloor b^n \rfloor`, n = 0, 1, ..., in a range.

    The values are deduplicated, sorted and kept only when
    ``min_depth <= value <= max_depth``. A relative margin of :math:`10^{-9}`
    absorbs rounding, so that for example :math:`\sqrt 2^{\,2}` counts as 2.

    Args:
        min_depth: smallest depth kept, at least 1.
        max_depth: largest depth kept, at least ``min_depth``.
        base: ratio :math:`b > 1` of the grid.

    Returns:
        Increasing list of depths.

    Raises:
        ValueError: if the range contains no such depth, or for invalid arguments.

    Example:
        >>> geometric_depths(3, 256, 2)
        [4, 8, 16, 32, 64, 128, 256]
        >>> geometric_depths(3, 300, 1.5)
        [3, 5, 7, 11, 17, 25, 38, 57, 86, 129, 194, 291]
    """
    check_int("min_depth", min_depth, minimum=1)
    check_int("max_depth", max_depth, minimum=1)
    if max_depth < min_depth:
        raise ValueError(
            f"max_depth must be at least min_depth, got min_depth={min_depth} and "
            f"max_depth={max_depth}. Swap them."
        )
    base = check_positive_float("base", base)
    if base <= 1.0:
        raise ValueError(
            f"base must be greater than 1 for a growing grid, got {base}. Pass for "
            "example 2 to double the depth at each step."
        )
    depths: set[int] = set()
    power = 0
    while True:
        value = math.floor(base**power * (1.0 + 1e-9))
        if value > max_depth:
            break
        if value >= min_depth:
            depths.add(value)
        power += 1
    if not depths:
        raise ValueError(
            f"no depth floor({base}^n) lies in [{min_depth}, {max_depth}]. Widen the "
            "range or use a smaller base."
        )
    return sorted(depths)


def depth_seed(seed: int, depth: int) -> int:
    """Return the seed of one depth, derived from the sweep's base seed.

    ``numpy.random.SeedSequence([seed, depth])`` mixes the two integers, so
    every depth gets its own stream that does not depend on which other depths
    the sweep contains. The value seeds the network's initialisation and the
    shuffling of its training.
    """
    check_int("seed", seed, minimum=0)
    check_int("depth", depth, minimum=1)
    state = np.random.SeedSequence([seed, depth]).generate_state(1, dtype=np.uint32)
    return int(state[0])


def weights_path(run_dir: str | os.PathLike[str], depth: int) -> Path:
    """Return the weight file of ``depth``, e.g. ``weights/depth_00064.safetensors``."""
    return Path(run_dir) / "weights" / f"depth_{depth:05d}.safetensors"


def _versions() -> dict[str, str]:
    import deeplimits

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "deeplimits": deeplimits.__version__,
    }


def _finite_or_none(value: Any) -> Any:
    """Replace NaN and infinities by None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    return value


def _check_depths(depths: Any) -> list[int]:
    if isinstance(depths, (str, bytes)) or not hasattr(depths, "__iter__"):
        raise TypeError(
            f"depths must be a list of ints, got {describe(depths)}. Use for "
            "example geometric_depths(3, 256, 2)."
        )
    values = list(depths)
    if not values:
        raise ValueError("depths must hold at least one depth, got an empty list.")
    for value in values:
        check_int("each depth in depths", value, minimum=1)
    return sorted(set(values))


def _resolve_dataset(
    dataset: str | Dataset,
    dim: int | None,
    data_dir: str | os.PathLike[str] | None,
    seed: int,
) -> Dataset:
    if isinstance(dataset, Dataset):
        data = dataset
    elif isinstance(dataset, str):
        if dataset not in DATASET_NAMES:
            names = ", ".join(repr(name) for name in DATASET_NAMES)
            raise ValueError(
                f"dataset must be one of {names} or a deeplimits.data.Dataset, got "
                f"{dataset!r}."
            )
        data = load_dataset(dataset, dim=dim, data_dir=data_dir, seed=seed)
    else:
        raise TypeError(
            f"dataset must be a name or a deeplimits.data.Dataset, got "
            f"{describe(dataset)}."
        )
    if data.dim_in != data.dim_out:
        raise ValueError(
            f"a residual network maps R^d to R^d, so the data set needs as many "
            f"target entries as inputs, got d_in={data.dim_in} and "
            f"d_out={data.dim_out}. Pad the targets or project the inputs."
        )
    if dim is not None and dim != data.dim_in:
        raise ValueError(
            f"dim={dim} does not match the data set, whose inputs have "
            f"{data.dim_in} features. Pass dim=None or dim={data.dim_in}."
        )
    return data


def _dataset_record(data: Dataset) -> dict[str, Any]:
    if data.spec:
        return dict(data.spec)
    return {
        "name": data.name,
        "user_tensors": True,
        "dim": data.dim_in,
        "n_train": data.n_train,
        "n_test": data.n_test,
        "task": data.task,
        "fingerprint": data.fingerprint(),
    }


def _activation_name(activation: Any) -> str:
    from deeplimits.activations import get_activation

    return get_activation(activation).name


def _make_config(
    depths: list[int], data: Dataset, options: dict[str, Any]
) -> dict[str, Any]:
    config: dict[str, Any] = {"format": CONFIG_FORMAT, "depths": depths}
    config["dataset"] = _dataset_record(data)
    config["dataset_size"] = {
        "n_train": data.n_train,
        "n_test": data.n_test,
        "task": data.task,
    }
    config |= options
    config["depth_seeds"] = {str(d): depth_seed(options["seed"], d) for d in depths}
    config["versions"] = _versions()
    config["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return config


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _compare_configs(
    stored: dict[str, Any], requested: dict[str, Any], run_dir: Path
) -> None:
    keys = (set(stored) | set(requested)) - _RESUMABLE_KEYS
    differing = sorted(key for key in keys if stored.get(key) != requested.get(key))
    if differing:
        lines = [
            f"{key}: stored {stored.get(key)!r}, requested {requested.get(key)!r}"
            for key in differing
        ]
        raise RunConfigError(
            f"run folder {str(run_dir)!r} was made with a different configuration, "
            f"so it is not resumed or overwritten. Differing keys: "
            f"{'; '.join(lines)}. Pass a new out folder, or rerun with the stored "
            "settings to resume."
        )


def _prepare_run_dir(run_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Create or validate the run folder; return the config to store."""
    config_path = run_dir / "config.json"
    if config_path.is_file():
        stored = _read_json(config_path)
        _compare_configs(stored, config, run_dir)
        merged = dict(stored)
        merged["depths"] = sorted(set(stored["depths"]) | set(config["depths"]))
        merged["depth_seeds"] = dict(stored.get("depth_seeds", {}))
        merged["depth_seeds"].update(config["depth_seeds"])
        merged["versions"] = config["versions"]
        merged["device"] = config["device"]
        return merged
    if run_dir.exists() and any(run_dir.iterdir()):
        raise RunConfigError(
            f"out folder {str(run_dir)!r} exists, is not empty and has no "
            "config.json, so it is not a deeplimits run folder. Pass a new or "
            "empty folder."
        )
    return config


def _read_metrics(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metrics.json"
    if path.is_file():
        return _read_json(path)
    return {"format": CONFIG_FORMAT, "depths": {}}


def _is_finished(run_dir: Path, metrics: dict[str, Any], depth: int) -> bool:
    return str(depth) in metrics["depths"] and weights_path(run_dir, depth).is_file()


def missing_weights(run_dir: str | os.PathLike[str]) -> dict[int, Path]:
    """Return the depths in ``metrics.json`` whose weight file is missing.

    Returns:
        ``{depth: expected weight file}``, in increasing depth; empty when
        the folder or ``metrics.json`` is missing.
    """
    folder = Path(run_dir)
    metrics = _read_metrics(folder)
    depths = sorted(int(key) for key in metrics["depths"])
    return {
        depth: weights_path(folder, depth)
        for depth in depths
        if not weights_path(folder, depth).is_file()
    }


def missing_weights_message(depth: int, path: Path) -> str:
    """Return the message of a :class:`MissingWeightsWarning` for one depth."""
    return (
        f"depth {depth} is recorded in metrics.json but its weight file "
        f"{str(path)!r} is missing, so depth {depth} is skipped. Restore the "
        "file, or rerun the same `deeplimits run` command with --out on this "
        "folder to train the depth again."
    )


def _warn_missing_weights(folder: Path, stacklevel: int) -> None:
    for depth, path in missing_weights(folder).items():
        warnings.warn(
            missing_weights_message(depth, path),
            MissingWeightsWarning,
            stacklevel=stacklevel + 1,
        )


def finished_depths(run_dir: str | os.PathLike[str]) -> list[int]:
    """Return the finished depths of a run folder, in increasing order.

    A depth is finished when both its weight file and its entry in
    ``metrics.json`` exist. A missing folder or ``metrics.json`` gives ``[]``.
    Each depth in ``metrics.json`` without its weight file is left out with a
    :class:`MissingWeightsWarning` that names the depth and the file.
    """
    folder = Path(run_dir)
    _warn_missing_weights(folder, stacklevel=2)
    return _finished_depths(folder)


def _finished_depths(folder: Path) -> list[int]:
    metrics = _read_metrics(folder)
    return sorted(
        int(key) for key in metrics["depths"] if _is_finished(folder, metrics, int(key))
    )


def _resume_message(run_dir: Path, reused: list[int], to_train: list[int]) -> str:
    if reused:
        noun = "depth" if len(reused) == 1 else "depths"
        done = f"{len(reused)} {noun} already trained ({', '.join(map(str, reused))})"
    else:
        done = "no depth finished yet"
    todo = (
        f"training {', '.join(map(str, to_train))}"
        if to_train
        else "nothing left to train"
    )
    return f"Resuming {run_dir}: {done}, {todo}."


def _train_depth(depth: int, net: ResNet, data: Dataset, **options: Any) -> Any:
    """Train one depth; prefix its errors and training warnings with the depth.

    A :class:`~deeplimits.training.DivergenceWarning` or
    :class:`~deeplimits.training.IdenticalReplicasWarning` is issued again
    with ``depth L:`` in front and ``stacklevel`` pointing at the caller of
    :func:`depth_sweep`. Other warnings pass through unchanged.
    """
    prefixed = (DivergenceWarning, IdenticalReplicasWarning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DivergenceWarning)
        warnings.simplefilter("always", IdenticalReplicasWarning)
        try:
            trained = train(net, data, **options)
        except FloatingPointError as error:
            raise FloatingPointError(f"depth {depth}: {error}") from error
    for item in caught:
        if issubclass(item.category, prefixed):
            # Levels: this function, depth_sweep, then its caller.
            warnings.warn(f"depth {depth}: {item.message}", item.category, stacklevel=3)
        else:
            warnings.warn_explicit(
                item.message, item.category, item.filename, item.lineno
            )
    return trained


def _depth_record(
    depth: int, seed: int, net: ResNet, result: Any, run_dir: Path | None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "depth": depth,
        "seed": seed,
        "replicas": net.replicas,
        "stop_reason": result.stop_reason,
        "epochs_run": result.epochs_run,
        "diverged": result.diverged,
        "wall_time_s": result.wall_time,
        "initial_train_loss": result.initial_train_loss,
        "final_train_loss": result.final_train_loss_per_replica,
        "final_test_loss": result.final_test_loss_per_replica,
        "final_train_accuracy": result.final_train_accuracy_per_replica,
        "final_test_accuracy": result.final_test_accuracy_per_replica,
        "train_loss": result.train_loss,
        "test_loss": result.test_loss,
        "train_accuracy": result.train_accuracy,
        "test_accuracy": result.test_accuracy,
        "train_loss_per_replica": result.train_loss_per_replica,
        "effective_delta_mean": net.effective_delta().mean(dim=-1).reshape(-1).tolist(),
        "replica_spread_A": replica_spread(net.A) if net.has_replicas else None,
    }
    if run_dir is not None:
        record["weights"] = weights_path(run_dir, depth).relative_to(run_dir).as_posix()
    return _finite_or_none(record)


def depth_sweep(
    depths: list[int],
    *,
    dataset: str | Dataset = "synthetic",
    dim: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    activation: str = "tanh",
    delta: str = "shared",
    init: InitSpec = "xavier-depth",
    init_scale: float = 0.01,
    replicas: int = 1,
    optimizer: str = "adam",
    lr: float = 1e-2,
    epochs: int = 100,
    batch_size: int = 32,
    tol: float = 1e-6,
    patience: int = 5,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> SweepResult:
    """Train one :class:`~deeplimits.ResNet` (with ``replicas`` copies) per depth.

    Each depth ``L`` gets the seed :func:`depth_seed` ``(seed, L)``, which
    seeds both its initialisation and the shuffling of its training, so a
    depth's result does not depend on the other depths of the sweep. Depths
    are trained from the shallowest up with :func:`deeplimits.train`, where
    each replica gets its own shuffling of the training set.

    For ``replicas > 1`` the record of each depth stores
    ``replica_spread_A``, the relative spread
    :math:`\\max_r \\lVert A^{(r)} - \\bar A \\rVert_F / \\lVert \\bar A \\rVert_F`
    of the trained weights about their mean over replicas (``None`` for one
    replica). Replicas that end with a spread of all parameters below
    ``1e-6`` are near-copies whose error bars mean nothing, and the sweep
    issues an :class:`~deeplimits.training.IdenticalReplicasWarning` that
    names the depth.

    With ``out``, results go to that run folder (layout in the module
    docstring) after each depth. If ``out`` already contains a sweep, it is
    resumed: finished depths are loaded, not retrained. Resuming requires the
    same configuration; only the list of depths may differ (new depths are
    added to ``config.json``), and the device may change.

    Args:
        depths: depths :math:`L \\ge 1`, e.g. from :func:`geometric_depths`.
        dataset: ``"synthetic"``, ``"digits"``, ``"mnist"`` or a
            :class:`~deeplimits.data.Dataset` (with ``d_in == d_out``).
        dim: width of the networks. ``None`` takes the data set's width.
        data_dir: folder that contains ``MNIST/raw`` (for ``dataset="mnist"``).
        activation: activation name, e.g. ``"tanh"`` (see
            :func:`deeplimits.get_activation`).
        delta: ``"none"``, ``"shared"`` or ``"per-layer"``.
        init: initialisation name or config object (see :mod:`deeplimits.inits`).
        init_scale: scale ``s`` of the initialisation.
        replicas: independent networks per depth, trained in one batch.
        optimizer, lr, epochs, batch_size, tol, patience: passed to
            :func:`deeplimits.train`.
        seed: base seed; also the seed of the data set.
        dtype: floating dtype of the networks.
        device: device for training (``None``: CPU).
        out: run folder, created if missing; ``None`` keeps results in memory.
        progress: show tqdm progress bars.

    Returns:
        A :class:`SweepResult`.

    Raises:
        RunConfigError: (a ``ValueError``) if ``out`` contains a run made with a
            different configuration; the message names the differing keys.
            Nothing in the folder is changed.
        FloatingPointError: if training diverges at some depth; the depths
            finished before it stay in the run folder.
    """
    from tqdm.auto import tqdm

    # Validate everything before touching the disk.
    depth_list = _check_depths(depths)
    check_choice("delta", delta, DELTA_MODES)
    check_int("replicas", replicas, minimum=1)
    check_train_options(
        optimizer=optimizer,
        lr=lr,
        epochs=epochs,
        batch_size=batch_size,
        tol=tol,
        patience=patience,
        seed=seed,
    )
    init_scale = check_positive_float("init_scale", init_scale, allow_zero=True)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {describe(dtype)}.")
    data = _resolve_dataset(dataset, dim, data_dir, seed)
    options: dict[str, Any] = {
        "dim": data.dim_in,
        "activation": _activation_name(activation),
        "delta": delta,
        "init": init_name(init),
        "init_scale": init_scale,
        "replicas": replicas,
        "optimizer": optimizer,
        "lr": lr,
        "epochs": epochs,
        "batch_size": batch_size,
        "tol": tol,
        "patience": patience,
        "seed": seed,
        "dtype": str(dtype).removeprefix("torch."),
        "device": str(device) if device is not None else "cpu",
    }
    config = _make_config(depth_list, data, options)

    # Run folder: create, or check the stored configuration and resume.
    run_dir = None if out is None else Path(out)
    metrics: dict[str, Any] = {"format": CONFIG_FORMAT, "depths": {}}
    if run_dir is not None:
        resuming = (run_dir / "config.json").is_file()
        config = _prepare_run_dir(run_dir, config)
        metrics = _read_metrics(run_dir)
        if resuming:
            reused = [d for d in depth_list if _is_finished(run_dir, metrics, d)]
            to_train = [d for d in depth_list if d not in reused]
            logger.info(_resume_message(run_dir, reused, to_train))
        _io.atomic_write_json(run_dir / "config.json", config)
        if not data.spec and not (run_dir / "data.safetensors").is_file():
            _save_dataset(run_dir / "data.safetensors", data)

    result = SweepResult(run_dir, depth_list, config=config, dataset=data)
    # The context manager closes the bar on KeyboardInterrupt too.
    progress_bar = tqdm(
        depth_list, disable=not progress, desc="depth sweep", unit="depth"
    )
    with progress_bar as bar:
        for depth in bar:
            bar.set_postfix(depth=depth)
            if run_dir is not None and _is_finished(run_dir, metrics, depth):
                result.networks[depth] = ResNet.load(
                    weights_path(run_dir, depth), activation=activation, device=device
                )
                result.metrics[depth] = metrics["depths"][str(depth)]
                continue

            # Train this depth, then save weights before the metrics entry.
            seed_l = depth_seed(seed, depth)
            net = ResNet(
                data.dim_in,
                depth,
                activation=activation,
                delta=delta,
                init=init,
                init_scale=init_scale,
                replicas=replicas,
                seed=seed_l,
                dtype=dtype,
                device=device,
            )
            trained = _train_depth(
                depth,
                net,
                data,
                optimizer=optimizer,
                lr=lr,
                epochs=epochs,
                batch_size=batch_size,
                tol=tol,
                patience=patience,
                seed=seed_l,
                device=device,
                progress=progress,
            )
            record = _depth_record(depth, seed_l, net, trained, run_dir)
            result.networks[depth] = net
            result.metrics[depth] = record
            if run_dir is not None:
                net.save(weights_path(run_dir, depth))
                metrics["depths"][str(depth)] = record
                metrics["depths"] = dict(
                    sorted(metrics["depths"].items(), key=lambda item: int(item[0]))
                )
                _io.atomic_write_json(run_dir / "metrics.json", metrics)
    return result


def _save_dataset(path: Path, data: Dataset) -> None:
    tensors = {
        "x_train": data.x_train,
        "y_train": data.y_train,
        "x_test": data.x_test,
        "y_test": data.y_test,
    }
    if data.labels_train is not None and data.labels_test is not None:
        tensors["labels_train"] = data.labels_train
        tensors["labels_test"] = data.labels_test
    metadata = {"name": data.name, "task": data.task, "description": data.description}
    _io.save_tensors(path, tensors, metadata)


def _load_dataset_file(path: Path) -> Dataset:
    tensors, metadata = _io.load_tensors(path)
    return Dataset(
        name=metadata["name"],
        x_train=tensors["x_train"],
        y_train=tensors["y_train"],
        x_test=tensors["x_test"],
        y_test=tensors["y_test"],
        task=metadata["task"],
        labels_train=tensors.get("labels_train"),
        labels_test=tensors.get("labels_test"),
        description=metadata["description"],
    )


def load_sweep(
    run_dir: str | os.PathLike[str],
    *,
    activation: Any = None,
    device: str | torch.device | None = None,
    load_data: bool = True,
) -> SweepResult:
    """Read a run folder written by :func:`depth_sweep`.

    Networks are read with :meth:`deeplimits.ResNet.load` (safetensors, never
    pickle). Only finished depths (weight file and metrics entry) are loaded.
    Each depth in ``metrics.json`` whose weight file is missing is skipped
    with a :class:`MissingWeightsWarning` that names the depth and the file.

    Args:
        run_dir: the run folder.
        activation: needed only for networks trained with a user activation,
            whose function is not stored.
        device: where to put the networks.
        load_data: rebuild the data set (built-in data sets are recomputed
            from their spec, user tensors read from ``data.safetensors``).
            MNIST needs its files at the stored ``data_dir``.

    Returns:
        A :class:`SweepResult` whose ``depths`` are the finished depths.

    Raises:
        FileNotFoundError: if ``run_dir`` or its ``config.json`` is missing.
        ValueError: if a weight file cannot be read (for example a truncated
            file); the message names the file.
    """
    folder = Path(run_dir)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"no sweep in {str(folder)!r}: expected {str(config_path)!r}. Pass a "
            "folder written by depth_sweep(out=...) or `deeplimits run`."
        )
    config = _read_json(config_path)
    metrics = _read_metrics(folder)
    _warn_missing_weights(folder, stacklevel=2)
    finished = _finished_depths(folder)
    result = SweepResult(folder, finished, config=config)
    for depth in finished:
        result.networks[depth] = ResNet.load(
            weights_path(folder, depth), activation=activation, device=device
        )
        result.metrics[depth] = metrics["depths"][str(depth)]
    if load_data:
        spec = config["dataset"]
        if spec.get("user_tensors"):
            result.dataset = _load_dataset_file(folder / "data.safetensors")
        else:
            result.dataset = dataset_from_spec(spec)
    return result
