"""Data sets for training residual networks: synthetic, digits, MNIST, user tensors.

Every loader returns a :class:`Dataset` with inputs of shape ``(n, d_in)`` and
targets of shape ``(n, d_out)``. Nothing is ever downloaded: the synthetic data
is computed, the digits ship with scikit-learn, and MNIST is read from files
the user already has.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from deeplimits._checks import check_choice, check_int, check_tensor, describe

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "dataset_from_spec",
    "digits",
    "from_tensors",
    "load_dataset",
    "mnist",
    "mnist_features",
    "ode_targets",
    "read_idx",
    "synthetic_ode",
]

#: Names accepted by :func:`load_dataset`.
DATASET_NAMES = ("synthetic", "digits", "mnist")

_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_MNIST_FEATURES = 25
_MNIST_CLASSES = 10
_DIGITS_CLASSES = 10


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split of inputs and targets.

    Attributes:
        name: short name ("synthetic", "digits", "mnist" or a user name).
        x_train: inputs, shape ``(n_train, d_in)``.
        y_train: targets, shape ``(n_train, d_out)``.
        x_test: inputs, shape ``(n_test, d_in)``.
        y_test: targets, shape ``(n_test, d_out)``.
        task: ``"regression"`` or ``"classification"``.
        labels_train: class labels, int64 of shape ``(n_train,)``, or ``None``
            for regression.
        labels_test: class labels, int64 of shape ``(n_test,)``, or ``None``.
        description: one paragraph saying how the data was made.
        spec: the arguments that rebuild the data with :func:`load_dataset`
            (empty for user tensors, which cannot be rebuilt from arguments).
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    task: str
    labels_train: Tensor | None
    labels_test: Tensor | None
    description: str
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def dim_in(self) -> int:
        """Number of input features ``d_in``."""
        return int(self.x_train.shape[1])

    @property
    def dim_out(self) -> int:
        """Number of target features ``d_out``."""
        return int(self.y_train.shape[1])

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return int(self.x_test.shape[0])

    def fingerprint(self) -> str:
        """Return the SHA-256 digest of all tensors, to detect changed data."""
        digest = hashlib.sha256()
        tensors = [self.x_train, self.y_train, self.x_test, self.y_test]
        tensors += [t for t in (self.labels_train, self.labels_test) if t is not None]
        for tensor in tensors:
            array = tensor.detach().to("cpu").contiguous().numpy()
            digest.update(str(array.dtype).encode())
            digest.update(str(array.shape).encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    def to(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Dataset:
        """Return a copy with float tensors moved to ``device`` and cast to ``dtype``.

        Labels keep their int64 dtype and only move device.
        """

        def move(tensor: Tensor) -> Tensor:
            return tensor.to(device=device, dtype=dtype)

        def move_labels(tensor: Tensor | None) -> Tensor | None:
            return None if tensor is None else tensor.to(device=device)

        return Dataset(
            name=self.name,
            x_train=move(self.x_train),
            y_train=move(self.y_train),
            x_test=move(self.x_test),
            y_test=move(self.y_test),
            task=self.task,
            labels_train=move_labels(self.labels_train),
            labels_test=move_labels(self.labels_test),
            description=self.description,
            spec=dict(self.spec),
        )


def _unit_rows(array: np.ndarray) -> np.ndarray:
    """Scale each row to unit Euclidean norm (rows of zeros stay zero)."""
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms > 0.0, norms, 1.0)


def _one_hot(labels: np.ndarray, width: int) -> np.ndarray:
    """Return one-hot rows of length ``width`` (classes fill the first entries)."""
    targets = np.zeros((labels.shape[0], width))
    targets[np.arange(labels.shape[0]), labels] = 1.0
    return targets


def _as_tensor(array: np.ndarray, dtype: torch.dtype) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(dtype)


def _check_dtype(dtype: Any) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(
            f"dtype must be a floating torch.dtype such as torch.float32, got "
            f"{describe(dtype)}."
        )
    return dtype


# ---------------------------------------------------------------------------
# Synthetic ODE data


def ode_targets(x: np.ndarray, steps: int = 100) -> np.ndarray:
    r"""Map inputs through the residual recursion that defines the synthetic data.

    Starting from :math:`z_0 = x`, for :math:`j = 0, \dots, n-1`,

    .. math::

        z_{j+1} = z_j + n^{-1/2} \tanh\big(\sin(5\pi j/n)\, z_j
            + \cos(5\pi j/n)\big),

    with :math:`n` = ``steps``; the result is :math:`z_n`, before any
    normalisation.

    Args:
        x: float64 array of shape ``(n_samples, d)``.
        steps: number of steps :math:`n`.

    Returns:
        Array of shape ``(n_samples, d)``.
    """
    z = np.array(x, dtype=np.float64, copy=True)
    scale = 1.0 / math.sqrt(steps)
    for j in range(steps):
        phase = 5.0 * math.pi * j / steps
        z = z + scale * np.tanh(math.sin(phase) * z + math.cos(phase))
    return z


def synthetic_ode(
    dim: int = 10,
    n_train: int = 1024,
    n_test: int = 256,
    steps: int = 100,
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    r"""Build the synthetic regression data set defined by a residual recursion.

    Inputs are drawn uniformly on :math:`[-1, 1]^d` with
    ``numpy.random.default_rng(seed)``: one draw of ``n_train + n_test`` rows,
    the first ``n_train`` for training. Each target is :math:`z_n` from
    :func:`ode_targets` started at the raw input. Then inputs and targets are
    each scaled to unit Euclidean norm, row by row. All arithmetic is float64;
    the tensors are cast to ``dtype`` at the end.

    Args:
        dim: dimension :math:`d` of inputs and targets.
        n_train: number of training samples.
        n_test: number of test samples.
        steps: number of recursion steps :math:`n`.
        seed: seed of the input draw.
        dtype: floating dtype of the returned tensors.

    Returns:
        A regression :class:`Dataset` with ``d_in = d_out = dim``.

    Example:
        >>> data = synthetic_ode(dim=4, n_train=8, n_test=2)
        >>> tuple(data.x_train.shape), tuple(data.y_test.shape)
        ((8, 4), (2, 4))
    """
    check_int("dim", dim, minimum=1)
    check_int("n_train", n_train, minimum=1)
    check_int("n_test", n_test, minimum=1)
    check_int("steps", steps, minimum=1)
    check_int("seed", seed, minimum=0)
    _check_dtype(dtype)

    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n_train + n_test, dim))
    y = _unit_rows(ode_targets(x, steps))
    x = _unit_rows(x)
    description = (
        f"Synthetic ODE regression data: {n_train} train and {n_test} test "
        f"inputs uniform on [-1, 1]^{dim} (seed {seed}); each target is the "
        f"state after {steps} steps of z <- z + n^-1/2 tanh(sin(5 pi j/n) z + "
        "cos(5 pi j/n)) from z = x; inputs and targets scaled to unit norm."
    )
    spec = {"name": "synthetic", "dim": dim, "seed": seed}
    spec |= {"n_train": n_train, "n_test": n_test, "steps": steps}
    return Dataset(
        name="synthetic",
        x_train=_as_tensor(x[:n_train], dtype),
        y_train=_as_tensor(y[:n_train], dtype),
        x_test=_as_tensor(x[n_train:], dtype),
        y_test=_as_tensor(y[n_train:], dtype),
        task="regression",
        labels_train=None,
        labels_test=None,
        description=description,
        spec=spec,
    )


# ---------------------------------------------------------------------------
# scikit-learn digits


def digits(
    dim: int = 10,
    seed: int = 0,
    *,
    test_fraction: float = 0.2,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    r"""Build a classification data set from scikit-learn's 8x8 handwritten digits.

    The 1797 images (64 pixels each, values 0..16) ship with scikit-learn, so
    nothing is downloaded. The map to ``dim`` features is fixed by ``seed``:

    1. A stratified split (``sklearn.model_selection.train_test_split`` with
       ``random_state=seed``) keeps ``test_fraction`` of the images for testing.
    2. Each pixel is standardised with the mean and standard deviation of the
       training split (pixels that are constant there keep unit scale).
    3. PCA fitted on the training split keeps the ``dim`` leading principal
       directions (by SVD; each direction's sign is fixed so that its largest
       entry in absolute value is positive). PCA is used, not a random
       projection, because it keeps the most pixel variance for a given
       ``dim`` and depends on the seed only through the split.
    4. Each sample is scaled to unit Euclidean norm, like the synthetic data.

    Targets are one-hot vectors in :math:`\mathbb{R}^{d}`: the class ``c``
    sets entry ``c`` to 1 and entries 10..d-1 are always 0, so a residual
    network of width ``dim`` can output them directly.

    Args:
        dim: number of features :math:`d`, from 10 (one entry per class) to 64
            (the number of pixels).
        seed: seed of the train/test split.
        test_fraction: share of the images kept for testing, in (0, 1).
        dtype: floating dtype of the returned float tensors.

    Returns:
        A classification :class:`Dataset` with labels.

    Raises:
        ValueError: if ``dim`` is below 10 or above 64.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    check_int("dim", dim)
    if not _DIGITS_CLASSES <= dim <= 64:
        raise ValueError(
            f"dim must be between 10 and 64 for the digits data, got {dim}. "
            "The one-hot targets need one entry per class (10) and PCA of the "
            "64 pixels gives at most 64 features."
        )
    check_int("seed", seed, minimum=0)
    test_fraction = _check_fraction(test_fraction)
    _check_dtype(dtype)

    # Split, then standardise with statistics of the training split only.
    bunch = load_digits()
    pixels = np.asarray(bunch.data, dtype=np.float64)
    labels = np.asarray(bunch.target, dtype=np.int64)
    x_train, x_test, l_train, l_test = train_test_split(
        pixels, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0.0, std, 1.0)
    x_train = (x_train - mean) / std
    x_test = (x_test - mean) / std

    # PCA on the (already centred) training split.
    _, _, vt = np.linalg.svd(x_train, full_matrices=False)
    components = vt[:dim]
    largest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(dim), largest])
    components = components * signs[:, None]
    f_train = _unit_rows(x_train @ components.T)
    f_test = _unit_rows(x_test @ components.T)

    description = (
        f"scikit-learn digits (8x8 images, 10 classes): {len(l_train)} train and "
        f"{len(l_test)} test images (stratified split, seed {seed}); pixels "
        f"standardised on the training split, PCA to {dim} features fitted on "
        "the training split, each sample scaled to unit norm; one-hot targets "
        f"in R^{dim}."
    )
    spec = {"name": "digits", "dim": dim, "seed": seed}
    spec["test_fraction"] = test_fraction
    return Dataset(
        name="digits",
        x_train=_as_tensor(f_train, dtype),
        y_train=_as_tensor(_one_hot(l_train, dim), dtype),
        x_test=_as_tensor(f_test, dtype),
        y_test=_as_tensor(_one_hot(l_test, dim), dtype),
        task="classification",
        labels_train=torch.from_numpy(l_train.copy()),
        labels_test=torch.from_numpy(l_test.copy()),
        description=description,
        spec=spec,
    )


# ---------------------------------------------------------------------------
# MNIST from local idx files


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an unsigned-byte array from an idx file (the MNIST file format).

    The header is two zero bytes, a type code (``0x08`` for unsigned bytes),
    the number of dimensions ``n``, then ``n`` big-endian 32-bit sizes. Files
    that start with the gzip magic bytes are decompressed first.

    Args:
        path: file to read, compressed with gzip or not.

    Returns:
        A ``uint8`` array of the shape given in the header.

    Raises:
        ValueError: if the header is invalid or the data size disagrees with it.
    """
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(
            f"{str(path)!r} is not an unsigned-byte idx file: its header starts "
            f"with {raw[:4]!r}, expected b'\\x00\\x00\\x08' then the number of "
            "dimensions. Check that the file is an MNIST idx file."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(s) for s in np.frombuffer(raw[4:header], dtype=">u4"))
    expected = int(np.prod(shape)) if shape else 1
    if len(raw) - header != expected:
        raise ValueError(
            f"{str(path)!r} contains {len(raw) - header} data bytes but its header "
            f"gives shape {shape} ({expected} bytes). The file is truncated or "
            "corrupt; copy it again."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _mnist_folder(root: Path) -> Path:
    """Find the folder under ``root`` that contains the raw MNIST files."""
    for candidate in (root / "MNIST" / "raw", root / "raw", root):
        name = _MNIST_FILES["train_images"]
        if (candidate / name).is_file() or (candidate / f"{name}.gz").is_file():
            return candidate
    expected = root / "MNIST" / "raw"
    first = expected / _MNIST_FILES["train_images"]
    raise FileNotFoundError(
        f"MNIST files not found: expected {str(first)!r}"
        " (or the same name with .gz) and the other three idx files "
        f"({', '.join(list(_MNIST_FILES.values())[1:])}) in {str(expected)!r}, "
        "the folder layout of torchvision.datasets.MNIST. deeplimits never "
        "downloads data: copy the files there, or pass the folder that contains "
        "MNIST/raw as root= in Python or as --data-dir on the command line."
    )


def _mnist_file(folder: Path, key: str) -> Path:
    name = _MNIST_FILES[key]
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"MNIST file missing: expected {str(folder / name)!r} (or with .gz). "
        "Copy all four idx files into that folder."
    )


def mnist_features(images: np.ndarray, seed: int = 0) -> np.ndarray:
    r"""Map 28x28 images to 25 features with two fixed random convolutions.

    Pixels are scaled to [0, 1]. A 5x5 convolution with stride 2 (28 -> 12)
    is followed directly by a 3x3 convolution with stride 2 (12 -> 5), both
    with one channel, no bias and no nonlinearity in between, so the features
    are a fixed linear map of the pixels. The kernel entries are drawn from
    :math:`N(0, 1/k^2)` for a :math:`k \times k` kernel with
    ``torch.Generator().manual_seed(seed)``. The 5x5 output is flattened and
    each sample is scaled to unit Euclidean norm.

    Args:
        images: ``uint8`` or float array of shape ``(n, 28, 28)``, values 0..255.
        seed: seed of the kernels.

    Returns:
        float64 array of shape ``(n, 25)``.
    """
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"images must have shape (n, 28, 28), got {images.shape}. MNIST "
            "images are 28x28."
        )
    generator = torch.Generator().manual_seed(seed)
    kernel1 = torch.randn(1, 1, 5, 5, generator=generator, dtype=torch.float64) / 5
    kernel2 = torch.randn(1, 1, 3, 3, generator=generator, dtype=torch.float64) / 3
    pixels = torch.from_numpy(np.asarray(images, dtype=np.float64) / 255.0)
    with torch.no_grad():
        hidden = torch.nn.functional.conv2d(pixels[:, None], kernel1, stride=2)
        out = torch.nn.functional.conv2d(hidden, kernel2, stride=2)
    return _unit_rows(out.reshape(len(images), _MNIST_FEATURES).numpy())


def _subset(n_total: int, n_keep: int | None, rng: np.random.Generator) -> np.ndarray:
    if n_keep is None or n_keep >= n_total:
        return np.arange(n_total)
    return np.sort(rng.choice(n_total, size=n_keep, replace=False))


def mnist(
    root: str | os.PathLike[str],
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    r"""Load MNIST from local idx files and reduce each image to 25 features.

    The files are looked up in torchvision's layout,
    ``root/MNIST/raw/train-images-idx3-ubyte`` and so on (gzip-compressed
    ``.gz`` files are read too); ``root/raw`` and ``root`` itself are tried
    next. Features come from :func:`mnist_features`, targets are one-hot in
    :math:`\mathbb{R}^{25}` (entries 10..24 are always 0).

    Args:
        root: folder that contains ``MNIST/raw``.
        n_train: keep a random subset of this many training images (all when
            ``None``).
        n_test: the same for the test images.
        seed: seed of the convolution kernels and of the subsets.
        dtype: floating dtype of the returned float tensors.

    Returns:
        A classification :class:`Dataset` with ``d_in = d_out = 25``.

    Raises:
        FileNotFoundError: if the files are not there; the message names the
            path expected. Nothing is downloaded.
    """
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path, got {describe(root)}.")
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if value is not None:
            check_int(name, value, minimum=1)
    check_int("seed", seed, minimum=0)
    _check_dtype(dtype)

    folder = _mnist_folder(Path(root))
    arrays = {key: read_idx(_mnist_file(folder, key)) for key in _MNIST_FILES}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"MNIST {split} files disagree: {images.shape[0]} images but "
                f"{labels.shape[0]} labels in {str(folder)!r}."
            )
        if labels.size and int(labels.max()) >= _MNIST_CLASSES:
            raise ValueError(
                f"MNIST {split} labels must be 0..9, found {int(labels.max())} "
                f"in {str(folder)!r}."
            )

    rng = np.random.default_rng(seed)
    keep_train = _subset(arrays["train_images"].shape[0], n_train, rng)
    keep_test = _subset(arrays["test_images"].shape[0], n_test, rng)
    l_train = arrays["train_labels"][keep_train].astype(np.int64)
    l_test = arrays["test_labels"][keep_test].astype(np.int64)
    f_train = mnist_features(arrays["train_images"][keep_train], seed)
    f_test = mnist_features(arrays["test_images"][keep_test], seed)

    description = (
        f"MNIST from {str(folder)!r}: {len(l_train)} train and {len(l_test)} test "
        "images; two fixed random convolutions (5x5 stride 2, then 3x3 stride "
        f"2, seed {seed}) give 25 features, each sample scaled to unit norm; "
        "one-hot targets in R^25."
    )
    spec: dict[str, Any] = {"name": "mnist", "dim": _MNIST_FEATURES, "seed": seed}
    spec |= {
        "data_dir": str(Path(root).resolve()),
        "n_train": n_train,
        "n_test": n_test,
    }
    return Dataset(
        name="mnist",
        x_train=_as_tensor(f_train, dtype),
        y_train=_as_tensor(_one_hot(l_train, _MNIST_FEATURES), dtype),
        x_test=_as_tensor(f_test, dtype),
        y_test=_as_tensor(_one_hot(l_test, _MNIST_FEATURES), dtype),
        task="classification",
        labels_train=torch.from_numpy(l_train),
        labels_test=torch.from_numpy(l_test),
        description=description,
        spec=spec,
    )


# ---------------------------------------------------------------------------
# User tensors


def _check_fraction(test_fraction: Any) -> float:
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)):
        raise TypeError(
            f"test_fraction must be a float in (0, 1), got {describe(test_fraction)}."
        )
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(
            f"test_fraction must be strictly between 0 and 1, got {test_fraction}. "
            "Pass for example 0.2 to keep 20% of the samples for testing."
        )
    return float(test_fraction)


def _check_target_width(target_width: Any, x: Tensor) -> int:
    """Return the one-hot width: ``target_width``, or the width of ``x`` if None."""
    if target_width is None:
        return int(x.shape[1])
    check_int("target_width", target_width, minimum=1)
    return int(target_width)


def _prepare_targets(
    x: Tensor, y: Any, task: str | None, target_width: int | None = None
) -> tuple[Tensor, Tensor | None, str]:
    """Check ``y`` and return float targets, labels (or None) and the task."""
    if not isinstance(y, Tensor):
        raise TypeError(
            f"y must be a torch.Tensor, got {describe(y)}. Convert it with "
            "torch.as_tensor."
        )
    if y.ndim not in (1, 2):
        raise ValueError(
            f"y must have shape (n,) of integer labels or (n, d_out) of targets, "
            f"got shape {tuple(y.shape)}."
        )
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"x and y must have the same number of samples, got x of shape "
            f"{tuple(x.shape)} and y of shape {tuple(y.shape)}."
        )
    if y.device != x.device:
        raise ValueError(
            f"x is on device {x.device} but y is on {y.device}. Move both to "
            "one device with .to()."
        )
    if task is None:
        task = "regression" if y.is_floating_point() else "classification"
    check_choice("task", task, ("regression", "classification"))

    if not y.is_floating_point():
        # Bool labels are the classes 0 (False) and 1 (True).
        if y.ndim != 1:
            raise ValueError(
                f"integer or bool y must be class labels of shape (n,), got shape "
                f"{tuple(y.shape)}. Pass float targets of shape (n, d_out) "
                "instead, or the class indices of shape (n,)."
            )
        if task != "classification":
            raise TypeError(
                f"y of dtype {y.dtype} contains class labels, so task must be "
                f"'classification', got task {task!r}. For regression pass "
                f"float targets, for example y.to({x.dtype}).reshape(-1, 1)."
            )
        labels = y.to(torch.int64)
        if int(labels.min()) < 0:
            raise ValueError(
                f"class labels in y must be >= 0, got minimum {int(labels.min())}."
            )
        width = _check_target_width(target_width, x)
        n_classes = int(labels.max()) + 1
        if n_classes > width:
            source = "target_width" if target_width is not None else "the width of x"
            raise ValueError(
                f"y has {n_classes} classes (labels 0..{n_classes - 1}) but the "
                f"one-hot targets have width {width}, set by {source}. Pass "
                f"target_width={n_classes} or more (a network must then map "
                f"R^{x.shape[1]} to R^{n_classes}), or give x at least "
                f"{n_classes} features."
            )
        targets = torch.zeros(len(labels), width, dtype=x.dtype, device=x.device)
        targets[torch.arange(len(labels), device=x.device), labels] = 1.0
        return targets, labels, task

    if target_width is not None:
        raise ValueError(
            f"target_width applies only to integer or bool class labels, but y "
            f"has float dtype {y.dtype} and shape {tuple(y.shape)}. Leave "
            "target_width=None; float targets keep their own width."
        )
    check_tensor("y", y, ndim=2)
    if y.dtype != x.dtype:
        raise TypeError(
            f"x and y must have the same floating dtype, got x {x.dtype} and y "
            f"{y.dtype}. Convert one with .to({x.dtype})."
        )
    if task == "classification":
        return y, y.argmax(dim=1), task
    return y, None, task


def from_tensors(
    x: Tensor,
    y: Tensor,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    task: str | None = None,
    name: str = "tensors",
    target_width: int | None = None,
) -> Dataset:
    r"""Wrap user tensors as a :class:`Dataset` with a seeded train/test split.

    Args:
        x: float inputs of shape ``(n, d_in)``, no NaN or infinite entries.
        y: float targets of shape ``(n, d_out)`` in the dtype of ``x``, or
            integer or bool class labels of shape ``(n,)``, turned into
            one-hot targets of width ``target_width``. Bool labels are the
            classes 0 (``False``) and 1 (``True``).
        test_fraction: share of the samples kept for testing, in (0, 1); the
            test split gets ``round(test_fraction * n)`` samples, at least 1
            and at most ``n - 1``.
        seed: seed of the random permutation that makes the split.
        task: ``"regression"`` or ``"classification"``; by default integer
            or bool ``y`` means classification and float ``y`` regression. For float
            targets with ``task="classification"`` the labels are the argmax of
            each row.
        name: name stored in the data set.
        target_width: width of the one-hot targets made from class labels.
            ``None`` takes ``d_in``, the width of ``x``, so that a network
            mapping :math:`\mathbb{R}^d` to :math:`\mathbb{R}^d` can output
            them directly (classes fill the first entries, the rest stay 0).

    Returns:
        A :class:`Dataset` on the device of ``x``.

    Raises:
        TypeError: for non-tensors, integer ``x`` or mismatched dtypes.
        ValueError: for wrong shapes, NaN or infinite entries, fewer than 2
            samples, a test fraction outside (0, 1), more classes than
            ``target_width`` or ``target_width`` with float ``y``.
    """
    check_tensor("x", x, ndim=2)
    y_float, labels, task = _prepare_targets(x, y, task, target_width)
    check_tensor("y", y_float, ndim=2)
    test_fraction = _check_fraction(test_fraction)
    check_int("seed", seed, minimum=0)
    n = int(x.shape[0])
    if n < 2:
        raise ValueError(
            f"x must hold at least 2 samples to split into train and test, got {n}."
        )

    n_test = min(max(round(test_fraction * n), 1), n - 1)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator).to(x.device)
    test_index, train_index = order[:n_test], order[n_test:]
    description = (
        f"User tensors {name!r}: {n - n_test} train and {n_test} test samples "
        f"(random split, seed {seed}), inputs in R^{x.shape[1]}, targets in "
        f"R^{y_float.shape[1]}, task {task}."
    )
    return Dataset(
        name=name,
        x_train=x[train_index],
        y_train=y_float[train_index],
        x_test=x[test_index],
        y_test=y_float[test_index],
        task=task,
        labels_train=None if labels is None else labels[train_index],
        labels_test=None if labels is None else labels[test_index],
        description=description,
    )


def load_dataset(
    name: str,
    *,
    dim: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> Dataset:
    """Load a built-in data set by name.

    Args:
        name: ``"synthetic"``, ``"digits"`` or ``"mnist"``.
        dim: number of features. ``None`` takes the data set's default: 10 for
            synthetic and digits, 25 for MNIST (the only value MNIST accepts).
        data_dir: folder that contains ``MNIST/raw``, required for ``"mnist"``
            and rejected for the other data sets, which read no files.
        seed: seed passed to the loader.

    Returns:
        The :class:`Dataset`.

    Raises:
        ValueError: for an unknown name, a ``dim`` the data set does not
            accept, ``data_dir`` missing for MNIST or given for another data set.
    """
    check_choice("name", name, DATASET_NAMES)
    if data_dir is not None and name != "mnist":
        raise ValueError(
            f"data_dir is only used by the 'mnist' data set, but name is "
            f"{name!r} and data_dir is {str(data_dir)!r}. The {name} data is "
            "built without reading files: pass data_dir=None."
        )
    if dim is not None:
        check_int("dim", dim, minimum=1)
    if name == "synthetic":
        return synthetic_ode(dim=10 if dim is None else dim, seed=seed)
    if name == "digits":
        return digits(dim=10 if dim is None else dim, seed=seed)
    if dim is not None and dim != _MNIST_FEATURES:
        raise ValueError(
            f"dim must be 25 for the MNIST data (its two convolutions give 5x5 "
            f"features), got {dim}. Pass dim=None or dim=25."
        )
    if data_dir is None:
        raise ValueError(
            "data_dir is missing, and the MNIST data needs it: pass the folder that "
            "contains MNIST/raw/train-images-idx3-ubyte (torchvision's layout) as "
            "data_dir= in Python or as --data-dir on the command line."
        )
    return mnist(data_dir, seed=seed)


def dataset_from_spec(spec: dict[str, Any]) -> Dataset:
    """Rebuild a built-in data set from its :attr:`Dataset.spec`.

    Args:
        spec: a dictionary as stored in ``Dataset.spec`` (and in a sweep's
            ``config.json``).

    Returns:
        The same data set as the one that produced ``spec``.

    Raises:
        ValueError: if ``spec`` is empty (user tensors cannot be rebuilt) or
            names an unknown data set.
    """
    if not isinstance(spec, dict):
        raise TypeError(f"spec must be a dict, got {describe(spec)}.")
    name = spec.get("name")
    if name not in DATASET_NAMES:
        raise ValueError(
            f"spec must name a built-in data set ({', '.join(DATASET_NAMES)}), "
            f"got name {name!r}. Data sets made from user tensors cannot be "
            "rebuilt from a spec."
        )
    options = {key: value for key, value in spec.items() if key != "name"}
    if name == "synthetic":
        return synthetic_ode(**options)
    if name == "digits":
        return digits(**options)
    options.pop("dim", None)
    root = options.pop("data_dir")
    return mnist(root, **options)
