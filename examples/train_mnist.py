"""Train on MNIST read from local idx files (nothing is downloaded).

Run: python examples/train_mnist.py --data-dir ~/data
     (the folder that contains MNIST/raw/train-images-idx3-ubyte, torchvision's
     layout). Without --data-dir, the script writes 200 random 28x28 images in
     the same file format to a temporary folder, to show the pipeline running.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from deeplimits import ResNet
from deeplimits.data import mnist
from deeplimits.training import train


def write_random_idx_files(root: Path) -> None:
    """Write random images and labels in the MNIST idx format under root."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (150, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 150),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (50, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 50),
    }
    for name, array in files.items():
        header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
        (raw / name).write_bytes(header + array.astype(np.uint8).tobytes())


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data-dir", help="folder that contains MNIST/raw")
parser.add_argument("--n-train", type=int, default=5000, help="training images used")
args = parser.parse_args()
torch.set_num_threads(1)

with tempfile.TemporaryDirectory() as scratch:
    root = args.data_dir
    if root is None:
        root = scratch
        write_random_idx_files(Path(root))
        print("no --data-dir: using 200 random images (accuracy will be chance)")
    data = mnist(root, n_train=args.n_train, n_test=1000, seed=0)
print(data.description)

net = ResNet(25, 16, activation="tanh", init="xavier", init_scale=1.0, seed=0)
result = train(net, data, lr=1e-2, epochs=10, progress=False)
print(f"test accuracy {100 * result.test_accuracy[-1]:.1f}% ({result.stop_reason})")

# A missing folder is an error that names the path expected.
try:
    mnist("/nonexistent/folder")
except FileNotFoundError as error:
    print("missing folder:", error)
