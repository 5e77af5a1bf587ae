"""Tests of the data sets: recipes against independent recomputations."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from deeplimits.data import (
    Dataset,
    dataset_from_spec,
    digits,
    from_tensors,
    load_dataset,
    mnist,
    read_idx,
    synthetic_ode,
)


def _reference_target(x: np.ndarray, steps: int) -> np.ndarray:
    """One sample of the synthetic recipe, written with scalar Python maths."""
    z = [float(v) for v in x]
    for j in range(steps):
        s = math.sin(5 * math.pi * j / steps)
        c = math.cos(5 * math.pi * j / steps)
        z = [zi + math.tanh(s * zi + c) / math.sqrt(steps) for zi in z]
    norm = math.sqrt(sum(v * v for v in z))
    return np.array([v / norm for v in z])


# ---------------------------------------------------------------------------
# synthetic


def test_synthetic_shapes_and_norms():
    data = synthetic_ode()
    assert data.x_train.shape == (1024, 10)
    assert data.y_train.shape == (1024, 10)
    assert data.x_test.shape == (256, 10)
    assert data.y_test.shape == (256, 10)
    assert data.task == "regression"
    assert data.labels_train is None
    assert data.x_train.dtype == torch.float32
    for tensor in (data.x_train, data.y_train, data.x_test, data.y_test):
        norms = tensor.double().norm(dim=1)
        assert torch.allclose(norms, torch.ones_like(norms), atol=1e-6)


def test_synthetic_matches_scalar_recipe():
    data = synthetic_ode(dim=5, n_train=6, n_test=3, seed=7, dtype=torch.float64)
    raw = np.random.default_rng(7).uniform(-1.0, 1.0, size=(9, 5))
    x_all = torch.cat([data.x_train, data.x_test]).numpy()
    y_all = torch.cat([data.y_train, data.y_test]).numpy()
    for i in range(9):
        expected_x = raw[i] / np.linalg.norm(raw[i])
        np.testing.assert_allclose(x_all[i], expected_x, rtol=0, atol=1e-14)
        np.testing.assert_allclose(
            y_all[i], _reference_target(raw[i], 100), rtol=0, atol=1e-12
        )


def test_synthetic_steps_change_targets():
    short = synthetic_ode(dim=3, n_train=4, n_test=2, steps=10, dtype=torch.float64)
    raw = np.random.default_rng(0).uniform(-1.0, 1.0, size=(6, 3))
    np.testing.assert_allclose(
        short.y_train[0].numpy(), _reference_target(raw[0], 10), atol=1e-12
    )


def test_synthetic_seeded():
    first = synthetic_ode(dim=3, n_train=8, n_test=2, seed=1)
    again = synthetic_ode(dim=3, n_train=8, n_test=2, seed=1)
    other = synthetic_ode(dim=3, n_train=8, n_test=2, seed=2)
    assert torch.equal(first.x_train, again.x_train)
    assert first.fingerprint() == again.fingerprint()
    assert not torch.equal(first.x_train, other.x_train)
    assert first.fingerprint() != other.fingerprint()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dim": 0}, ValueError, "dim must be at least 1, got 0"),
        ({"n_train": 0}, ValueError, "n_train must be at least 1"),
        ({"steps": 2.5}, TypeError, "steps must be an int"),
        ({"seed": -1}, ValueError, "seed must be at least 0"),
        ({"dtype": torch.int64}, TypeError, "dtype must be a floating"),
    ],
)
def test_synthetic_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        synthetic_ode(**kwargs)


# ---------------------------------------------------------------------------
# digits


@pytest.fixture(scope="module")
def digits10() -> Dataset:
    return digits(dim=10, seed=0, dtype=torch.float64)


def test_digits_shapes_labels_and_targets(digits10):
    data = digits10
    assert data.n_train == 1437
    assert data.n_test == 360
    assert data.dim_in == 10
    assert data.dim_out == 10
    assert data.task == "classification"
    assert data.labels_train.dtype == torch.int64
    assert set(data.labels_train.tolist()) == set(range(10))
    assert torch.equal(data.y_train.argmax(dim=1), data.labels_train)
    assert torch.equal(data.y_train.sum(dim=1), torch.ones(data.n_train).double())
    norms = data.x_train.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-12)


def test_digits_features_match_sklearn_pca(digits10):
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    bunch = load_digits()
    x_train, x_test, _, l_test = train_test_split(
        bunch.data, bunch.target, test_size=0.2, random_state=0, stratify=bunch.target
    )
    scaler = StandardScaler().fit(x_train)
    pca = PCA(n_components=10, svd_solver="full").fit(scaler.transform(x_train))
    expected = pca.transform(scaler.transform(x_test))
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    ours = digits10.x_test.numpy()
    # Principal directions are defined up to sign: align each column first.
    signs = np.sign(np.sum(ours * expected, axis=0))
    np.testing.assert_allclose(ours, expected * signs, atol=1e-8)
    assert np.array_equal(digits10.labels_test.numpy(), l_test)


def test_digits_wider_targets_pad_with_zeros():
    data = digits(dim=16, seed=1)
    assert data.dim_in == 16
    assert data.y_train.shape == (1437, 16)
    assert torch.count_nonzero(data.y_train[:, 10:]) == 0


@pytest.mark.parametrize("dim", [9, 65])
def test_digits_rejects_dim(dim):
    with pytest.raises(ValueError, match=f"between 10 and 64 .* got {dim}"):
        digits(dim=dim)


def test_digits_rejects_test_fraction():
    with pytest.raises(ValueError, match="test_fraction must be strictly between"):
        digits(test_fraction=1.0)


# ---------------------------------------------------------------------------
# MNIST from tiny idx files written here


def _write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim])
    header += np.array(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)


@pytest.fixture()
def mnist_root(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(6, 28, 28)),
        "train-labels-idx1-ubyte": np.array([0, 1, 2, 3, 9, 5]),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(4, 28, 28)),
        "t10k-labels-idx1-ubyte": np.array([4, 4, 7, 8]),
    }
    for name, array in arrays.items():
        _write_idx(raw / name, array, compress=name.startswith("train-images"))
    return tmp_path, arrays


def _reference_features(images: np.ndarray, seed: int) -> np.ndarray:
    """Strided cross-correlations written as explicit loops."""
    generator = torch.Generator().manual_seed(seed)
    k1 = (torch.randn(1, 1, 5, 5, generator=generator, dtype=torch.float64) / 5)[0, 0]
    k2 = (torch.randn(1, 1, 3, 3, generator=generator, dtype=torch.float64) / 3)[0, 0]
    k1, k2 = k1.numpy(), k2.numpy()
    out = np.zeros((len(images), 25))
    for n, image in enumerate(images / 255.0):
        hidden = np.zeros((12, 12))
        for r in range(12):
            for c in range(12):
                hidden[r, c] = np.sum(image[2 * r : 2 * r + 5, 2 * c : 2 * c + 5] * k1)
        for r in range(5):
            for c in range(5):
                patch = hidden[2 * r : 2 * r + 3, 2 * c : 2 * c + 3]
                out[n, 5 * r + c] = np.sum(patch * k2)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_mnist_features_match_loops(mnist_root):
    root, arrays = mnist_root
    data = mnist(root, seed=5, dtype=torch.float64)
    assert data.x_train.shape == (6, 25)
    assert data.y_test.shape == (4, 25)
    expected = _reference_features(arrays["train-images-idx3-ubyte"], 5)
    np.testing.assert_allclose(data.x_train.numpy(), expected, atol=1e-12)
    expected_test = _reference_features(arrays["t10k-images-idx3-ubyte"], 5)
    np.testing.assert_allclose(data.x_test.numpy(), expected_test, atol=1e-12)


def test_mnist_labels_and_one_hot(mnist_root):
    root, arrays = mnist_root
    data = mnist(root)
    assert data.labels_train.tolist() == [0, 1, 2, 3, 9, 5]
    assert data.labels_test.tolist() == [4, 4, 7, 8]
    assert torch.equal(data.y_test.argmax(dim=1), data.labels_test)
    assert torch.count_nonzero(data.y_train[:, 10:]) == 0
    assert data.task == "classification"


def test_mnist_subset_and_spec(mnist_root):
    root, _ = mnist_root
    data = mnist(root, n_train=3, seed=1)
    assert data.n_train == 3
    assert data.n_test == 4
    rebuilt = dataset_from_spec(data.spec)
    assert rebuilt.fingerprint() == data.fingerprint()


def test_mnist_missing_folder_names_path(tmp_path):
    expected = str(tmp_path / "nowhere" / "MNIST" / "raw" / "train-images-idx3-ubyte")
    with pytest.raises(FileNotFoundError, match="never downloads") as info:
        mnist(tmp_path / "nowhere")
    assert expected in str(info.value)
    assert "as root= in Python or as --data-dir on the command line" in str(info.value)


def test_mnist_missing_labels_file(mnist_root):
    root, _ = mnist_root
    (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        mnist(root)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="not an unsigned-byte idx file"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1]) + np.array([5], ">u4").tobytes() + b"ab")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(short)


def test_mnist_rejects_mismatched_counts(mnist_root):
    root, _ = mnist_root
    _write_idx(root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", np.array([1, 2]))
    with pytest.raises(ValueError, match="4 images but 2 labels"):
        mnist(root)


# ---------------------------------------------------------------------------
# user tensors and load_dataset


def test_from_tensors_split_is_a_seeded_partition():
    x = torch.arange(40.0).reshape(20, 2)
    y = x * 2
    data = from_tensors(x, y, test_fraction=0.25, seed=3)
    assert data.n_train == 15
    assert data.n_test == 5
    together = torch.cat([data.x_train, data.x_test])[:, 0].sort().values
    assert torch.equal(together, x[:, 0])
    assert torch.equal(data.y_train, data.x_train * 2)
    again = from_tensors(x, y, test_fraction=0.25, seed=3)
    assert torch.equal(again.x_test, data.x_test)
    assert data.task == "regression"
    assert data.spec == {}


def test_from_tensors_integer_labels_become_one_hot():
    x = torch.randn(10, 3, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 2])
    data = from_tensors(x, labels, test_fraction=0.3)
    assert data.task == "classification"
    assert data.y_train.shape == (7, 3)
    assert data.y_train.dtype == torch.float64
    assert torch.equal(data.y_train.argmax(dim=1), data.labels_train)


def test_from_tensors_labels_pad_to_width_of_x():
    x = torch.randn(20, 6)
    labels = torch.arange(20) % 3
    data = from_tensors(x, labels)
    assert data.dim_out == 6
    assert torch.equal(data.y_train.argmax(dim=1), data.labels_train)
    assert torch.all(data.y_train[:, 3:] == 0.0)
    assert torch.all(data.y_train.sum(dim=1) == 1.0)


def test_from_tensors_target_width_option():
    x = torch.randn(20, 2)
    labels = torch.arange(20) % 4
    data = from_tensors(x, labels, target_width=5)
    assert data.dim_out == 5
    assert torch.equal(data.y_test.argmax(dim=1), data.labels_test)
    assert torch.all(data.y_test[:, 4] == 0.0)


def test_from_tensors_bool_labels_are_classes():
    x = torch.randn(50, 3)
    flags = x[:, 0] > 0
    data = from_tensors(x, flags, test_fraction=0.2)
    assert data.task == "classification"
    assert data.labels_train.dtype == torch.int64
    assert data.dim_out == 3
    train_flags = data.x_train[:, 0] > 0
    assert torch.equal(data.labels_train, train_flags.to(torch.int64))
    assert torch.equal(data.y_train[:, 1], train_flags.to(torch.float32))


def test_from_tensors_labels_train_resnet():
    from deeplimits import ResNet, train

    torch.manual_seed(0)
    data = from_tensors(torch.randn(200, 6), torch.randint(0, 3, (200,)))
    result = train(ResNet(6, 8, seed=0), data, epochs=3, progress=False)
    assert result.epochs_run >= 1
    assert result.test_accuracy is not None


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "error", "match"),
    [
        (torch.ones(4, 2), torch.ones(3, 2), {}, ValueError, "same number of samples"),
        (torch.ones(4), torch.ones(4, 2), {}, ValueError, "x must have 2 dimensions"),
        (
            torch.tensor([[1.0, math.nan], [0.0, 1.0]]),
            torch.ones(2, 2),
            {},
            ValueError,
            "x contains 1 NaN or infinite",
        ),
        (
            torch.ones(4, 2),
            torch.tensor([[1.0], [math.inf], [0.0], [0.0]]),
            {},
            ValueError,
            "y contains 1 NaN or infinite",
        ),
        (
            torch.ones(4, 2, dtype=torch.int64),
            torch.ones(4, 2),
            {},
            TypeError,
            "x must",
        ),
        (
            torch.ones(4, 2),
            torch.ones(4, 2, dtype=torch.float64),
            {},
            TypeError,
            "same floating dtype",
        ),
        (
            torch.ones(4, 2),
            torch.ones(4, 2, dtype=torch.int64),
            {},
            ValueError,
            r"must be class labels of shape \(n,\), got shape \(4, 2\)",
        ),
        (
            torch.ones(4, 2),
            torch.tensor([0, 1, 0, 1]),
            {"task": "regression"},
            TypeError,
            "task must be 'classification', got task 'regression'",
        ),
        (
            torch.ones(4, 2),
            torch.tensor([0, 1, 2, 0]),
            {},
            ValueError,
            "3 classes .* width 2, set by the width of x.*target_width=3",
        ),
        (
            torch.ones(4, 5),
            torch.tensor([0, 1, 2, 0]),
            {"target_width": 2},
            ValueError,
            "3 classes .* width 2, set by target_width",
        ),
        (
            torch.ones(4, 2),
            torch.ones(4, 2),
            {"target_width": 3},
            ValueError,
            "target_width applies only to integer or bool class labels",
        ),
        (torch.ones(4, 2), [1, 2, 3, 4], {}, TypeError, "y must be a torch.Tensor"),
        (torch.ones(4, 2), torch.ones(4, 2), {"test_fraction": 0.0}, ValueError, "0"),
        (torch.ones(1, 2), torch.ones(1, 2), {}, ValueError, "at least 2 samples"),
        (torch.ones(4, 2), torch.ones(4, 2), {"task": "ranking"}, ValueError, "task"),
    ],
)
def test_from_tensors_rejects_bad_input(x, y, kwargs, error, match):
    with pytest.raises(error, match=match):
        from_tensors(x, y, **kwargs)


def test_load_dataset_names_and_errors(tmp_path):
    data = load_dataset("synthetic", seed=2)
    assert data.dim_in == 10
    assert data.fingerprint() == synthetic_ode(seed=2).fingerprint()
    with pytest.raises(ValueError, match="name must be one of .* got 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="data_dir is missing.*--data-dir"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="dim must be 25 for the MNIST data"):
        load_dataset("mnist", dim=10, data_dir=tmp_path)


@pytest.mark.parametrize("name", ["synthetic", "digits"])
def test_load_dataset_rejects_data_dir(name, tmp_path):
    with pytest.raises(ValueError, match="data_dir is only used by the 'mnist'"):
        load_dataset(name, data_dir=tmp_path)


def test_dataset_from_spec_rejects_user_spec():
    with pytest.raises(ValueError, match="cannot be rebuilt"):
        dataset_from_spec({})


def test_dataset_to_casts_floats_only(digits10):
    moved = digits10.to(dtype=torch.float32)
    assert moved.x_train.dtype == torch.float32
    assert moved.labels_train.dtype == torch.int64
